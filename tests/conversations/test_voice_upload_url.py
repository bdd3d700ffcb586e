"""``POST /kalimera/ai-agent/{agent_id}/voice/upload-url``: a recording of any size goes
straight to Blob Storage with a create-only SAS, and becomes a turn as an uploaded one does."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest

from kalimera.auth import Scope
from kalimera.conversations.ingest import Outcome
from tests.conftest import Server, Tenant
from tests.support.audio_fixtures import wav_bytes
from tests.support.calls import ingest, make_agent, with_services
from tests.support.recordings import sox_wav


def _url(tenant: Tenant, agent_id: uuid.UUID, **body: Any) -> httpx.Response:
    return tenant.client.post(f"/kalimera/ai-agent/{agent_id}/voice/upload-url", json=body)


def _put(answer: dict[str, Any], content: bytes | Iterator[bytes], size: int) -> httpx.Response:
    headers = {**answer["headers"], "Content-Length": str(size)}
    return httpx.put(answer["url"], content=content, headers=headers, timeout=300)


def test_the_url_creates_that_one_blob_with_its_metadata_and_can_do_nothing_else(
    server: Server, tenant: Tenant
) -> None:
    agent_id = make_agent(server.settings, tenant.id, "outbound")
    conversation_id = str(uuid.uuid4())
    before = datetime.now(UTC)
    response = _url(
        tenant,
        agent_id,
        conversation_id=conversation_id,
        direction="output",
        seq=3,
        ext="wav",
        language="el-GR",
        transcript="Καλημέρα, thank you so much!",
        from_number="+302101234567",
        to_number="+302107654321",
        final=True,
    )
    assert response.status_code == 201, response.text
    answer = response.json()
    assert set(answer) == {"url", "blob", "conversation_id", "headers", "expires_at"}
    assert answer["conversation_id"] == conversation_id
    assert answer["blob"] == f"{tenant.id}/{agent_id}/{conversation_id}/000003-output.wav"
    expires_at = datetime.fromisoformat(answer["expires_at"])
    assert timedelta(minutes=14) < expires_at - before <= timedelta(minutes=15, seconds=5)
    assert answer["headers"]["x-ms-blob-type"] == "BlockBlob"
    assert answer["headers"]["Content-Type"] == "audio/wav"
    assert answer["headers"]["x-ms-meta-from_number"] == "%2B302101234567"
    assert answer["headers"]["x-ms-meta-final"] == "true"

    data = wav_bytes(2.5)
    put = _put(answer, data, len(data))
    assert put.status_code == 201, put.text

    base, token = answer["url"].split("?", 1)
    container = base.rsplit("/", len(answer["blob"].split("/")))[0]
    other = f"{container}/{tenant.id}/{agent_id}/{conversation_id}/000004-output.wav?{token}"
    refused = {
        "overwrite": httpx.put(answer["url"], content=data, headers=answer["headers"]),
        "another name": httpx.put(other, content=data, headers=answer["headers"]),
        "read": httpx.get(answer["url"]),
        "delete": httpx.delete(answer["url"]),
        "list": httpx.get(f"{container}?restype=container&comp=list&{token}"),
        "metadata": httpx.put(f"{answer['url']}&comp=metadata", headers={"x-ms-meta-final": "x"}),
        "tampered": httpx.put(
            answer["url"].replace("sig=", "sig=x"), content=data, headers=answer["headers"]
        ),
    }
    assert {what: r.status_code for what, r in refused.items()} == dict.fromkeys(refused, 403)

    assert ingest(server.settings, answer["blob"]).outcome is Outcome.INGESTED
    conv = tenant.client.get(f"/kalimera/conversations/{conversation_id}").json()
    assert conv["status"] == "Completed"
    assert conv["language"] == "el-GR"
    assert (conv["from_number"], conv["to_number"]) == ("+302101234567", "+302107654321")
    [turn] = conv["turns"]
    assert (turn["seq"], turn["direction"], turn["duration"]) == (3, "output", 2.5)
    assert turn["transcript"] == "Καλημέρα, thank you so much!"
    assert httpx.get(turn["audio_url"], timeout=10).content == data


@pytest.fixture(scope="session")
def half_hour_wav(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return sox_wav(tmp_path_factory.mktemp("long") / "call.wav", 1800, rate=16000)


def _chunks(path: Path) -> Iterator[bytes]:
    with path.open("rb") as f:
        while chunk := f.read(1024 * 1024):
            yield chunk


def test_a_30_minute_16_khz_wav_put_to_the_url_becomes_a_turn_of_exactly_1800_s(
    server: Server, tenant: Tenant, half_hour_wav: Path
) -> None:
    size = half_hour_wav.stat().st_size
    assert size == 57_600_044  # 1800 s x 16,000 samples x 2 bytes + the 44-byte header
    agent_id = make_agent(server.settings, tenant.id)
    answer = _url(tenant, agent_id, ext="wav", final=True).json()
    assert answer["blob"].endswith("/000001-input.wav")
    started = time.perf_counter()
    put = _put(answer, _chunks(half_hour_wav), size)
    elapsed = time.perf_counter() - started
    assert put.status_code == 201, put.text
    print(f"PUT of {size:,} bytes to the SAS URL: {elapsed:.2f} s")

    result = ingest(server.settings, answer["blob"])
    assert result.outcome is Outcome.INGESTED, result.reason
    conv = tenant.client.get(f"/kalimera/conversations/{answer['conversation_id']}").json()
    assert Decimal(str(conv["duration"])) == Decimal("1800.000")
    assert [t["duration"] for t in conv["turns"]] == [1800.0]


def test_without_seq_urls_pair_up_like_uploads(server: Server, tenant: Tenant) -> None:
    agent_id = make_agent(server.settings, tenant.id)
    conversation_id = str(uuid.uuid4())
    names = []
    for direction in ("input", "output", "input", "output"):
        answer = _url(
            tenant, agent_id, conversation_id=conversation_id, direction=direction, ext="wav"
        )
        names.append(answer.json()["blob"].rsplit("/", 1)[1])
    assert names == [
        "000001-input.wav",
        "000001-output.wav",
        "000002-input.wav",
        "000002-output.wav",
    ]


def test_a_long_transcript_goes_to_the_sidecar_and_reaches_the_turn(
    server: Server, tenant: Tenant
) -> None:
    agent_id = make_agent(server.settings, tenant.id)
    transcript = "Σας ευχαριστώ πολύ για την εξυπηρέτηση. " * 300
    answer = _url(tenant, agent_id, ext="wav", transcript=transcript).json()
    assert not any(h.endswith("transcript") for h in answer["headers"])
    data = wav_bytes(0.5)
    assert _put(answer, data, len(data)).status_code == 201
    assert ingest(server.settings, answer["blob"]).outcome is Outcome.INGESTED
    conv = tenant.client.get(f"/kalimera/conversations/{answer['conversation_id']}").json()
    assert conv["turns"][0]["transcript"] == transcript.strip()


def test_bad_fields_are_422_as_for_the_upload_and_nothing_is_signed(
    server: Server, tenant: Tenant
) -> None:
    agent_id = make_agent(server.settings, tenant.id)
    for body in (
        {"ext": "txt"},
        {},
        {"ext": "wav", "conversation_id": "not-a-uuid"},
        {"ext": "wav", "direction": "sideways"},
        {"ext": "wav", "seq": 0},
        {"ext": "wav", "seq": 1_000_000},
        {"ext": "wav", "seq": "abc"},
        {"ext": "wav", "profile_type": "both"},
        {"ext": "wav", "final": "maybe"},
        {"ext": "wav", "from_number": "1" * 40},
        {"ext": "wav", "language": "x\x00"},
        {"ext": "wav", "transcript": "x" * 65_537},
        {"ext": "wav", "colour": "blue"},
    ):
        response = _url(tenant, agent_id, **body)
        assert response.status_code == 422, (body, response.text)
        assert response.headers["content-type"] == "application/problem+json"
        assert "url" not in response.json()
    for content in (b"{", b"[]", b"not json"):
        response = tenant.client.post(
            f"/kalimera/ai-agent/{agent_id}/voice/upload-url",
            content=content,
            headers={"Content-Type": "application/json"},
        )
        assert response.status_code in (400, 422), (content, response.text)
        assert response.headers["content-type"] == "application/problem+json"


def test_a_url_for_a_recording_already_stored_is_409(server: Server, tenant: Tenant) -> None:
    agent_id = make_agent(server.settings, tenant.id)
    fields = {"conversation_id": str(uuid.uuid4()), "seq": 1, "ext": "wav"}
    answer = _url(tenant, agent_id, **fields).json()
    data = wav_bytes(0.5)
    assert _put(answer, data, len(data)).status_code == 201
    again = _url(tenant, agent_id, **fields)
    assert again.status_code == 409, again.text
    assert answer["blob"] in again.json()["detail"]


def test_another_tenant_an_unknown_agent_or_a_read_only_token_gets_no_url(
    server: Server, new_tenant: Any
) -> None:
    owner = new_tenant()
    agent_id = make_agent(server.settings, owner.id)
    other, reader = new_tenant(), new_tenant(scopes=(Scope.CONVERSATIONS_READ,))
    assert _url(other, agent_id, ext="wav").status_code == 404
    assert _url(owner, uuid.uuid4(), ext="wav").status_code == 404
    assert _url(reader, agent_id, ext="wav").status_code == 403
    anonymous = httpx.post(
        f"{server.url}/kalimera/ai-agent/{agent_id}/voice/upload-url", json={"ext": "wav"}
    )
    assert anonymous.status_code == 401

    async def blobs(services) -> list[str]:  # type: ignore[no-untyped-def]
        container = services.recordings
        prefix = f"{owner.id}/"
        return [b.name async for b in container.list_blobs(name_starts_with=prefix)]

    assert with_services(server.settings, blobs) == []
