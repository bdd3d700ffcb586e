"""``make run`` ingests what is uploaded to Azurite, through the same function as the trigger."""

from __future__ import annotations

import asyncio
import time
from decimal import Decimal
from typing import Any

import pytest

from kalimera.conversations import audio
from kalimera.conversations.attempts import MAX_ATTEMPTS
from kalimera.db import transaction
from kalimera.dev.poller import POLL_SECONDS, poll_once, run_poller
from kalimera.services import Services
from tests.support.audio_fixtures import wav_bytes
from tests.support.calls import Call, query, with_services
from tests.support.corpus import Recording, make


def test_the_dev_poller_ingests_a_new_blob_within_two_seconds(call: Call) -> None:
    name = call.name(1, "input", "wav")

    async def work(services: Services) -> float:
        # What other tests left in the container is ingested first, however long that takes:
        # the bar is for a blob that arrives while the poller is idle.
        seen: dict[str, str] = {}
        await poll_once(services, seen)
        poller = asyncio.create_task(run_poller(services, seen=seen))
        try:
            await asyncio.sleep(POLL_SECONDS)
            blob = services.blobs.get_blob_client(call.settings.voice_container, name)
            await blob.upload_blob(wav_bytes(1.0), overwrite=True)
            uploaded = time.monotonic()
            pool = await services.db()
            while time.monotonic() - uploaded < 10:
                async with transaction(pool, system=True) as conn:
                    cur = await conn.execute(
                        "SELECT 1 FROM kalimera_recordings WHERE blob_name = %(b)s", {"b": name}
                    )
                    if await cur.fetchone():
                        return time.monotonic() - uploaded
                await asyncio.sleep(0.05)
            raise AssertionError("not ingested within 10 s")
        finally:
            poller.cancel()
            await asyncio.gather(poller, return_exceptions=True)

    assert with_services(call.settings, work) <= 2.0


def test_the_poller_ingests_opus_and_gives_up_on_an_unexpected_error_after_three_rounds(
    call: Call, monkeypatch: pytest.MonkeyPatch
) -> None:
    opus = call.name(1, "input", "ogg")
    broken = call.name(1, "output", "wav")
    broken_data = wav_bytes(1.234)
    real_probe = audio.probe

    def probe(ext: str, file: audio.SparseFile) -> audio.AudioInfo:
        if file.size == len(broken_data):  # this one blob meets a fault nobody foresaw
            raise RuntimeError("an unforeseen fault")
        return real_probe(ext, file)

    monkeypatch.setattr(audio, "probe", probe)

    def rows(sql: str, name: str) -> list[dict[str, Any]]:
        return query(call.settings, sql, {"b": name})

    async def work(services: Services) -> None:
        poller = asyncio.create_task(run_poller(services))
        try:
            container = services.blobs.get_container_client(call.settings.voice_container)
            await container.upload_blob(opus, make(Recording(60, 8000, "opus")).read_bytes())
            await container.upload_blob(broken, broken_data)
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline:
                await asyncio.sleep(0.25)
                ingested = await asyncio.to_thread(
                    rows, "SELECT duration FROM kalimera_recordings WHERE blob_name = %(b)s", opus
                )
                rejected = await asyncio.to_thread(
                    rows, "SELECT reason FROM kalimera_ingest_rejections WHERE blob_name = %(b)s",
                    broken,
                )  # fmt: skip
                if ingested and rejected:
                    break
            await asyncio.sleep(2 * POLL_SECONDS)  # more rounds: the rejection is not retried
        finally:
            poller.cancel()
            await asyncio.gather(poller, return_exceptions=True)

    with_services(call.settings, work)
    assert rows("SELECT duration FROM kalimera_recordings WHERE blob_name = %(b)s", opus) == [
        {"duration": Decimal("60.000")}
    ]
    assert rows(
        "SELECT reason FROM kalimera_ingest_rejections WHERE blob_name = %(b)s", broken
    ) == [{"reason": "internal error: RuntimeError: an unforeseen fault"}]
    attempts = rows("SELECT attempts FROM kalimera_ingest_attempts WHERE blob_name = %(b)s", broken)
    assert attempts == [{"attempts": MAX_ATTEMPTS}]
