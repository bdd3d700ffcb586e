"""Uploads that race and uploads retried: telephony sends at once and retries on any doubt.

Recordings of 70 to 119 s at 16 kHz (2.2 to 3.8 MB, two blocks each), made by sox.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest

from kalimera.conversations.ingest import Outcome
from tests.conftest import Server, Tenant
from tests.support.audio_fixtures import PNG_BYTES, wav_bytes
from tests.support.calls import ingest, make_agent, query, with_services
from tests.support.recordings import sox_wav

AT_ONCE = 8


@pytest.fixture(scope="module")
def recordings(tmp_path_factory: pytest.TempPathFactory) -> list[bytes]:
    folder = tmp_path_factory.mktemp("race")
    return [
        sox_wav(folder / f"{i}.wav", 70 + 7 * i, rate=16000, freq=300 + 50 * i).read_bytes()
        for i in range(AT_ONCE)
    ]


def _at_once(
    server: Server, tenant: Tenant, requests: list[Callable[[httpx.Client], httpx.Response]]
) -> list[httpx.Response]:
    """Send the requests together, each on its own connection, released by one barrier."""
    barrier = threading.Barrier(len(requests))

    def send(request: Callable[[httpx.Client], httpx.Response]) -> httpx.Response:
        with httpx.Client(
            base_url=server.url,
            timeout=120,
            headers={"Authorization": f"Bearer {tenant.token}"},
        ) as client:
            barrier.wait()
            return request(client)

    with ThreadPoolExecutor(len(requests)) as pool:
        return list(pool.map(send, requests))


def _upload(
    agent_id: uuid.UUID, data: bytes, key: str | None = None, **fields: str
) -> Callable[[httpx.Client], httpx.Response]:
    headers = {"Idempotency-Key": key} if key else {}
    return lambda client: client.post(
        f"/kalimera/ai-agent/{agent_id}/voice",
        data=fields,
        files={"voice_file": ("call.wav", data, "audio/wav")},
        headers=headers,
    )


def _stored(server: Server, prefix: str) -> dict[str, bytes]:
    async def work(services: Any) -> dict[str, bytes]:
        container = services.recordings
        return {
            b.name: await (await container.download_blob(b.name)).readall()
            async for b in container.list_blobs(name_starts_with=prefix)
        }

    return with_services(server.settings, work)


def test_uploads_of_one_recording_at_once_never_mix_and_never_fail_with_5xx(
    server: Server, tenant: Tenant, recordings: list[bytes]
) -> None:
    agent_id = make_agent(server.settings, tenant.id)
    fields = {"conversation_id": str(uuid.uuid4()), "direction": "input", "seq": "1"}
    answers = _at_once(server, tenant, [_upload(agent_id, data, **fields) for data in recordings])
    statuses = [a.status_code for a in answers]
    assert set(statuses) <= {202, 409}, [(a.status_code, a.text) for a in answers]
    assert 202 in statuses
    for answer in answers:
        if answer.status_code == 409:
            assert answer.headers["content-type"] == "application/problem+json"
    [(name, stored)] = _stored(server, f"{tenant.id}/{agent_id}/").items()
    accepted = [data for data, a in zip(recordings, answers, strict=True) if a.status_code == 202]
    assert stored in accepted, "the stored recording is not byte for byte one of the uploads"
    result = ingest(server.settings, name)
    assert result.outcome is Outcome.INGESTED, result.reason


def test_uploads_without_seq_at_once_get_distinct_seqs(
    server: Server, tenant: Tenant, recordings: list[bytes]
) -> None:
    agent_id = make_agent(server.settings, tenant.id)
    conversation_id = str(uuid.uuid4())
    answers = _at_once(
        server,
        tenant,
        [_upload(agent_id, data, conversation_id=conversation_id) for data in recordings],
    )
    assert [a.status_code for a in answers] == [202] * AT_ONCE, [a.text for a in answers]
    names = [a.json()["blob"] for a in answers]
    stored = _stored(server, f"{tenant.id}/{agent_id}/{conversation_id}/")
    assert sorted(stored) == sorted(names)
    assert [stored[name] for name in names] == recordings  # each answer names its own file
    seqs = sorted(int(name.rsplit("/", 1)[1][:6]) for name in names)
    assert seqs == list(range(1, AT_ONCE + 1))
    for name in names:
        assert ingest(server.settings, name).outcome is Outcome.INGESTED
    conv = tenant.client.get(f"/kalimera/conversations/{conversation_id}").json()
    assert conv["turn_count"] == AT_ONCE


def test_a_retried_upload_with_its_idempotency_key_answers_as_the_first_and_stores_once(
    server: Server, new_tenant: Callable[..., Tenant]
) -> None:
    tenant, other = new_tenant(), new_tenant()
    agent_id = make_agent(server.settings, tenant.id)
    conversation_id = str(uuid.uuid4())
    key = str(uuid.uuid4())
    send = _upload(agent_id, wav_bytes(1.5), key, conversation_id=conversation_id)
    first, retry = send(tenant.client), send(tenant.client)
    assert first.status_code == 202, first.text
    assert (retry.status_code, retry.json()) == (202, first.json())
    assert retry.headers["Idempotent-Replayed"] == "true"
    assert list(_stored(server, f"{tenant.id}/{agent_id}/{conversation_id}/")) == [
        first.json()["blob"]
    ]

    different = _upload(agent_id, wav_bytes(2.0), key, conversation_id=conversation_id)
    refused = different(tenant.client)
    assert refused.status_code == 422, refused.text
    assert refused.headers["content-type"] == "application/problem+json"
    other_field = _upload(agent_id, wav_bytes(1.5), key, conversation_id=conversation_id, seq="7")
    assert other_field(tenant.client).status_code == 422

    # Keys are the tenant's own: the same key elsewhere is another request.
    other_agent = make_agent(server.settings, other.id)
    theirs = _upload(other_agent, wav_bytes(1.5), key, conversation_id=conversation_id)
    assert theirs(other.client).status_code == 202
    assert len(_stored(server, f"{tenant.id}/{agent_id}/{conversation_id}/")) == 1


def test_the_same_key_sent_many_times_at_once_stores_one_recording(
    server: Server, tenant: Tenant, recordings: list[bytes]
) -> None:
    agent_id = make_agent(server.settings, tenant.id)
    conversation_id = str(uuid.uuid4())
    send = _upload(agent_id, recordings[0], str(uuid.uuid4()), conversation_id=conversation_id)
    answers = _at_once(server, tenant, [send] * AT_ONCE)
    assert {a.status_code for a in answers} <= {202, 409}, [a.text for a in answers]
    bodies = {a.text for a in answers if a.status_code == 202}
    assert len(bodies) == 1
    late = send(tenant.client)  # the client's last retry, after the others have finished
    assert (late.status_code, late.text) == (202, bodies.pop())
    stored = _stored(server, f"{tenant.id}/{agent_id}/{conversation_id}/")
    assert list(stored.values()) == [recordings[0]]
    for answer in answers:
        if answer.status_code == 409:
            assert answer.headers["Retry-After"]


def test_a_failed_request_frees_its_key_and_an_expired_key_is_new_again(
    server: Server, tenant: Tenant
) -> None:
    agent_id = make_agent(server.settings, tenant.id)
    conversation_id = str(uuid.uuid4())
    key = str(uuid.uuid4())
    bad = _upload(agent_id, PNG_BYTES, key, conversation_id=conversation_id)
    assert bad(tenant.client).status_code == 415
    good = _upload(agent_id, wav_bytes(1.0), key, conversation_id=conversation_id)
    first = good(tenant.client)
    assert first.status_code == 202, first.text
    assert first.json()["blob"].endswith("/000001-input.wav")  # the failure used no seq

    query(
        server.settings,
        "UPDATE kalimera_idempotency_keys SET expires_at = now() - interval '1 second'"
        " WHERE tenant_id = %(t)s AND key = %(k)s RETURNING key",
        {"t": tenant.id, "k": key},
    )
    again = good(tenant.client)
    assert again.status_code == 202
    assert "Idempotent-Replayed" not in again.headers
    assert again.json()["blob"].endswith("/000002-input.wav")


def test_upload_url_replays_its_answer_for_the_same_key(server: Server, tenant: Tenant) -> None:
    agent_id = make_agent(server.settings, tenant.id)
    url = f"/kalimera/ai-agent/{agent_id}/voice/upload-url"
    body = {"conversation_id": str(uuid.uuid4()), "ext": "flac", "transcript": "Hello"}
    headers = {"Idempotency-Key": "retry-me-0001"}
    first = tenant.client.post(url, json=body, headers=headers)
    retry = tenant.client.post(url, json=body, headers=headers)
    assert first.status_code == 201, first.text
    assert (retry.status_code, retry.json()) == (201, first.json())
    assert first.json()["blob"].endswith("/000001-input.flac")
    fresh = tenant.client.post(url, json=body)  # no key: a new URL, for the next seq
    assert fresh.json()["blob"].endswith("/000002-input.flac")
    changed = tenant.client.post(url, json={**body, "ext": "wav"}, headers=headers)
    assert changed.status_code == 422, changed.text


def test_a_malformed_idempotency_key_is_422(server: Server, tenant: Tenant) -> None:
    agent_id = make_agent(server.settings, tenant.id)
    for key in ("x" * 256, "has space", ""):
        response = tenant.client.post(
            f"/kalimera/ai-agent/{agent_id}/voice/upload-url",
            json={"ext": "wav"},
            headers={"Idempotency-Key": key},
        )
        assert response.status_code == 422, (key, response.text)
    assert _stored(server, f"{tenant.id}/{agent_id}/") == {}
