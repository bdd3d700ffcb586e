"""Real recordings at real sizes become turns of their exact length, whichever way they arrive:
written straight to Blob Storage (telephony's path) or uploaded through the API.

The recordings come from ``tests.support.corpus``: speech made by espeak-ng and encoded by sox,
libFLAC, LAME, libvorbis and libopus (cached under ``.local/corpus``)."""

from __future__ import annotations

import asyncio
import uuid
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal
from pathlib import Path

import pytest

from kalimera import storage
from kalimera.conversations.ingest import IngestResult, Outcome, ingest_blob
from kalimera.services import Services
from kalimera.settings import Settings
from tests.conftest import Server, Tenant
from tests.support.audio_fixtures import wav_bytes
from tests.support.calls import Call, ingest, put_blob, query, with_services
from tests.support.corpus import CORPUS, FORMATS, Recording, ffprobe_seconds, make, make_all

UPLOAD_LIMIT = 25 * 1024 * 1024


def upload(tenant: Tenant, agent_id: uuid.UUID, conversation_id: uuid.UUID, seq: int,
           file_name: str, data: bytes) -> str:  # fmt: skip
    """Send a recording through ``POST .../voice`` as the README's curl line does; its blob."""
    response = tenant.client.post(
        f"/kalimera/ai-agent/{agent_id}/voice",
        data={"conversation_id": str(conversation_id), "direction": "input", "seq": str(seq)},
        files={"voice_file": (file_name, data, "application/octet-stream")},
        timeout=120,
    )
    assert response.status_code == 202, response.text
    return str(response.json()["blob"])


def turn_duration(settings: Settings, blob: str) -> Decimal | None:
    rows = query(
        settings, "SELECT duration FROM kalimera_recordings WHERE blob_name = %(b)s", {"b": blob}
    )
    return rows[0]["duration"] if rows else None


def ingest_both_ways(
    server: Server, tenant: Tenant, recordings: list[tuple[str, bytes]]
) -> list[tuple[str, Decimal | None, Decimal | None]]:
    """Each (file name, bytes) written straight to Blob Storage and, up to the upload limit,
    uploaded through the API; (file name, duration via blob, duration via API) for each. A
    rejection fails with its reason."""
    settings = server.settings
    direct, uploaded = Call(settings, tenant), Call(settings, tenant)
    results = []
    for seq, (file_name, data) in enumerate(recordings, start=1):
        ext = file_name.rsplit(".", 1)[1]
        blob = direct.name(seq, "input", ext)
        put_blob(settings, blob, data)
        result = ingest(settings, blob)
        assert result.outcome is Outcome.INGESTED, (file_name, result.reason)
        via_api = None
        if len(data) <= UPLOAD_LIMIT:
            sent = upload(tenant, uploaded.agent_id, uploaded.conversation_id, seq, file_name, data)
            result = ingest(settings, sent)
            assert result.outcome is Outcome.INGESTED, (file_name, result.reason)
            via_api = turn_duration(settings, sent)
        results.append((file_name, turn_duration(settings, blob), via_api))
    return results


def test_a_20_second_8khz_wav_of_320044_bytes_becomes_a_20_second_turn(
    server: Server, tenant: Tenant
) -> None:
    data = wav_bytes(20.0)
    assert len(data) == 320_044
    [(_, direct, via_api)] = ingest_both_ways(server, tenant, [("call.wav", data)])
    assert direct == via_api == Decimal("20.000")


@pytest.mark.parametrize("fmt", FORMATS)
def test_a_recording_over_64_kib_becomes_a_turn_in_every_format(
    server: Server, tenant: Tenant, fmt: str
) -> None:
    rec = Recording(60, 8000, fmt)
    data = make(rec).read_bytes()
    assert len(data) > 64 * 1024
    [(_, direct, via_api)] = ingest_both_ways(server, tenant, [(rec.file_name, data)])
    assert direct is not None
    assert via_api is not None
    assert abs(direct - rec.duration) <= rec.tolerance
    assert via_api == direct


@pytest.fixture(scope="module")
def corpus() -> dict[Recording, Path]:
    """The whole corpus, made in parallel on the first run (a few minutes), cached after."""
    return make_all(CORPUS)


@pytest.mark.parametrize("rec", CORPUS, ids=lambda rec: rec.label)
def test_every_recording_of_the_corpus_becomes_a_turn_of_its_exact_length(
    server: Server, tenant: Tenant, corpus: dict[Recording, Path], rec: Recording
) -> None:
    path = corpus[rec]
    data = path.read_bytes()
    [(_, direct, via_api)] = ingest_both_ways(server, tenant, [(rec.file_name, data)])
    assert direct is not None
    assert abs(direct - rec.duration) <= rec.tolerance, (direct, rec.duration)
    if len(data) <= UPLOAD_LIMIT:
        assert via_api == direct
    else:
        assert via_api is None  # over the upload's cap: telephony writes it to Blob Storage
    # ffprobe, read independently, agrees: exactly for PCM, FLAC and Vorbis; for Opus it adds
    # the pre-skip (312 samples at 48 kHz) and for MP3 the encoder's delay and padding, which
    # the ingestion leaves out.
    probed = ffprobe_seconds(path)
    if rec.fmt == "opus":
        assert Decimal("0") <= probed - direct <= Decimal("0.0075")
    else:
        assert abs(probed - direct) <= rec.tolerance


def test_probes_that_read_past_the_head_and_tail_never_starve_the_downloads(
    call: Call, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A WAV with 200 KB of chunks before its audio (recorders write bext, LIST and JUNK chunks)
    # is probed in a thread that waits for the ranges the event loop downloads; a download may
    # need the loop's default executor (aiohttp's netrc and proxy lookups, when a client trusts
    # the environment), so probes that filled it would wait forever. A small default executor
    # makes the collision likely, and the clients trust the environment here.
    options = storage._client_options
    monkeypatch.setattr(storage, "_client_options", lambda: {**options(), "use_env_settings": True})
    wav = make(Recording(60, 8000, "wav")).read_bytes()
    fmt_end = 12 + 8 + int.from_bytes(wav[16:20], "little")
    junk = b"JUNK" + (200_000).to_bytes(4, "little") + bytes(200_000)
    body = wav[12:fmt_end] + junk + wav[fmt_end:]
    data = b"RIFF" + (4 + len(body)).to_bytes(4, "little") + b"WAVE" + body
    names = [call.name(seq, "input", "wav") for seq in range(1, 13)]
    for name in names:
        put_blob(call.settings, name, data)

    async def all_at_once(services: Services) -> list[IngestResult]:
        asyncio.get_running_loop().set_default_executor(ThreadPoolExecutor(max_workers=2))
        work = asyncio.gather(*(ingest_blob(services=services, blob_name=name) for name in names))
        return await asyncio.wait_for(work, timeout=60)

    results = with_services(call.settings, all_at_once)
    assert [r.outcome for r in results] == [Outcome.INGESTED] * len(names)
    conv = call.conversation()
    assert conv is not None
    assert conv["duration"] == Decimal("60.000") * len(names)
