"""``make run`` ingests what is uploaded to Azurite, through the same function as the trigger."""

from __future__ import annotations

import asyncio
import time

from kalimera.conversations.poller import run_poller
from kalimera.db import transaction
from kalimera.services import Services
from tests.conversations.audio_fixtures import wav_bytes
from tests.conversations.conftest import Call, with_services


def test_the_dev_poller_ingests_a_new_blob_within_two_seconds(call: Call) -> None:
    name = call.name(1, "input", "wav")

    async def work(services: Services) -> float:
        poller = asyncio.create_task(run_poller(services))
        try:
            await asyncio.sleep(1.0)  # the first round lists what other tests left behind
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
