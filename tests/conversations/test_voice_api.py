"""The voice upload and the trigger path together, as telephony and the console use them."""

from __future__ import annotations

import http.client
import uuid
from collections.abc import Iterator
from decimal import Decimal
from urllib.parse import urlparse

import httpx

from kalimera.conversations.ingest import Outcome
from tests.conftest import Server, Tenant
from tests.support.audio_fixtures import PNG_BYTES, fixture, wav_bytes
from tests.support.calls import ingest, make_agent, with_services

MiB = 1024 * 1024


def _upload(
    tenant: Tenant, agent_id: uuid.UUID, filename: str, data: bytes, **fields: str
) -> httpx.Response:
    return tenant.client.post(
        f"/kalimera/ai-agent/{agent_id}/voice",
        data=fields,
        files={"voice_file": (filename, data, "application/octet-stream")},
    )


def test_a_three_exchange_call_uploaded_becomes_one_completed_conversation(
    server: Server, tenant: Tenant
) -> None:
    settings = server.settings
    agent_id = make_agent(settings, tenant.id, "outbound")
    conversation_id = str(uuid.uuid4())
    exchanges = [
        ("input", "call.wav", wav_bytes(1.5), "Hello, I love this service, thank you!"),
        ("output", "reply.flac", fixture("tone-2250ms.flac"), "Glad to hear it. How can I help?"),
        ("input", "q.ogg", fixture("tone-1750ms.ogg"), "I would like to book a table."),
        ("output", "a.mp3", fixture("tone-1250ms.mp3"), "Done: Friday at eight."),
        ("input", "bye.wav", wav_bytes(0.75), "Great, wonderful, thanks a lot."),
        ("output", "bye2.wav", wav_bytes(1.0), "Goodbye!"),
    ]
    blobs = []
    for i, (direction, filename, data, transcript) in enumerate(exchanges):
        fields = {
            "conversation_id": conversation_id,
            "direction": direction,
            "transcript": transcript,
            "language": "en-GB",
            "from_number": "+302101234567",
            "to_number": "+302107654321",
        }
        if i == len(exchanges) - 1:
            fields["final"] = "true"
        response = _upload(tenant, agent_id, filename, data, **fields)
        assert response.status_code == 202, response.text
        body = response.json()
        assert body["status"] is True
        assert body["message"] == "Successfully stored."
        assert body["conversation_id"] == conversation_id
        blobs.append(body["blob"])
    # seq defaults pair the turns up: 1, 1, 2, 2, 3, 3
    assert [b.rsplit("/", 1)[1].split(".")[0] for b in blobs] == [
        "000001-input",
        "000001-output",
        "000002-input",
        "000002-output",
        "000003-input",
        "000003-output",
    ]
    # The conversation is written by the trigger, not by the upload.
    assert tenant.client.get(f"/kalimera/conversations/{conversation_id}").status_code == 404
    for blob in blobs:
        assert ingest(settings, f"kalimera-voice/{blob}").outcome is Outcome.INGESTED

    response = tenant.client.get(f"/kalimera/conversations/{conversation_id}")
    assert response.status_code == 200, response.text
    conv = response.json()
    assert conv["status"] == "Completed"
    assert conv["ended_at"] is not None
    assert Decimal(str(conv["duration"])) == Decimal("8.500")
    assert conv["turn_count"] == 6
    assert conv["sentiment"] == "positive"
    assert 0.05 <= conv["sentiment_score"] <= 1
    assert (conv["from_number"], conv["to_number"]) == ("+302101234567", "+302107654321")
    assert conv["profile_type"] == "outbound"
    assert conv["language"] == "en-GB"
    turns = conv["turns"]
    assert [(t["seq"], t["direction"]) for t in turns] == [
        (1, "input"),
        (1, "output"),
        (2, "input"),
        (2, "output"),
        (3, "input"),
        (3, "output"),
    ]
    assert [t["transcript"] for t in turns] == [e[3] for e in exchanges]
    assert [t["duration"] for t in turns] == [1.5, 2.25, 1.75, 1.25, 0.75, 1.0]
    for turn, (_, _, data, _) in zip(turns, exchanges, strict=True):
        download = httpx.get(turn["audio_url"], timeout=10)
        assert download.status_code == 200
        assert download.content == data
    tampered = turns[0]["audio_url"].replace("sig=", "sig=x")
    assert httpx.get(tampered, timeout=10).status_code == 403

    by_agent = tenant.client.get(
        f"/kalimera/ai-agent/{agent_id}/voice", params={"conversation_id": conversation_id}
    )
    assert by_agent.status_code == 200
    assert len(by_agent.json()["turns"]) == 6
    listing = tenant.client.get(f"/kalimera/ai-agent/{agent_id}/voice").json()
    assert [c["id"] for c in listing["items"]] == [conversation_id]
    assert listing["total"] == 1


def test_uploading_the_same_turn_again_overwrites_the_recording(
    server: Server, tenant: Tenant
) -> None:
    agent_id = make_agent(server.settings, tenant.id)
    conversation_id = str(uuid.uuid4())
    fields = {"conversation_id": conversation_id, "seq": "1", "direction": "input"}
    first = _upload(tenant, agent_id, "a.wav", wav_bytes(1.0), **fields).json()["blob"]
    ingest(server.settings, first)
    second = _upload(tenant, agent_id, "a.wav", wav_bytes(2.0), **fields).json()["blob"]
    assert first == second
    assert ingest(server.settings, second).outcome is Outcome.INGESTED
    conv = tenant.client.get(f"/kalimera/conversations/{conversation_id}").json()
    assert (conv["duration"], conv["turn_count"]) == (2.0, 1)


def test_a_long_transcript_travels_in_the_sidecar(server: Server, tenant: Tenant) -> None:
    agent_id = make_agent(server.settings, tenant.id)
    transcript = "Καλημέρα, σας ευχαριστώ πολύ. " * 400
    blob = _upload(tenant, agent_id, "a.wav", wav_bytes(0.5), transcript=transcript).json()
    ingest(server.settings, blob["blob"])
    conv = tenant.client.get(f"/kalimera/conversations/{blob['conversation_id']}").json()
    assert conv["turns"][0]["transcript"] == transcript.strip()


def test_the_seed_messages_for_missing_unnamed_and_empty_files(
    server: Server, tenant: Tenant
) -> None:
    agent_id = make_agent(server.settings, tenant.id)
    url = f"/kalimera/ai-agent/{agent_id}/voice"
    no_file = tenant.client.post(url, data={"direction": "input"}, files={"other": ("x", b"1")})
    assert (no_file.status_code, no_file.json()["detail"]) == (400, "No file part")
    not_multipart = tenant.client.post(url, json={"voice_file": "x"})
    assert (not_multipart.status_code, not_multipart.json()["detail"]) == (400, "No file part")
    unnamed = _upload(tenant, agent_id, "", b"RIFF")
    assert (unnamed.status_code, unnamed.json()["detail"]) == (400, "No selected file")
    empty = _upload(tenant, agent_id, "a.wav", b"")
    assert (empty.status_code, empty.json()["detail"]) == (400, "Empty file")
    assert empty.headers["content-type"] == "application/problem+json"


def _form(boundary: str, parts: list[tuple[str, str | None, bytes]]) -> bytes:
    """A multipart body built by hand: (name, filename or None, content) per part."""
    out = b""
    for name, filename, content in parts:
        disposition = f'form-data; name="{name}"'
        if filename is not None:
            disposition += f'; filename="{filename}"'
        out += f"--{boundary}\r\nContent-Disposition: {disposition}\r\n\r\n".encode()
        out += content + b"\r\n"
    return out + f"--{boundary}--\r\n".encode()


def test_a_body_without_a_voice_file_part_is_400_no_file_part_whatever_else_it_holds(
    server: Server, tenant: Tenant
) -> None:
    agent_id = make_agent(server.settings, tenant.id)
    url = f"/kalimera/ai-agent/{agent_id}/voice"
    recording = wav_bytes(5.0)  # 80 KB: more than any form field may hold
    bodies = {
        "the recording under another name": [
            ("direction", None, b"input"),
            ("seq", None, b"1"),
            ("file", "call.wav", recording),
        ],
        "binary parts": [("audio", "a.wav", b"RIFF\xff\xfe\x00\x81"), ("language", None, b"\xff")],
        "bad fields only": [
            ("seq", None, b"abc"),
            ("direction", None, b"sideways"),
            ("transcript", None, b"x" * 100_000),
            ("conversation_id", None, b"not-a-uuid"),
        ],
        "no parts at all": [],
    }
    for case, parts in bodies.items():
        boundary = uuid.uuid4().hex
        response = tenant.client.post(
            url,
            content=_form(boundary, parts),
            headers={"Content-Type": f"multipart/form-data; boundary={boundary}"},
        )
        assert (response.status_code, response.json()["detail"]) == (400, "No file part"), case
        assert response.headers["content-type"] == "application/problem+json"
    for headers in ({"Content-Type": "multipart/form-data; boundary=x"}, {}):
        empty = tenant.client.post(url, content=b"", headers=headers)
        assert (empty.status_code, empty.json()["detail"]) == (400, "No file part"), headers
        assert empty.headers["content-type"] == "application/problem+json"
    assert _blobs(server, tenant, agent_id) == []


def test_wrong_kinds_of_file_are_415_and_store_nothing(server: Server, tenant: Tenant) -> None:
    agent_id = make_agent(server.settings, tenant.id)
    conversation_id = str(uuid.uuid4())
    for filename, data in (
        ("image.wav", PNG_BYTES),
        ("notes.txt", b"hello"),
        ("song.mp3", fixture("tone-2250ms.flac")),
        ("noext", wav_bytes(0.1)),
    ):
        response = _upload(tenant, agent_id, filename, data, conversation_id=conversation_id)
        assert response.status_code == 415, (filename, response.text)
    assert _blobs(server, tenant, agent_id) == []


def test_an_unknown_or_foreign_agent_is_404(server: Server, new_tenant) -> None:  # type: ignore[no-untyped-def]
    owner, other = new_tenant(), new_tenant()
    agent_id = make_agent(server.settings, owner.id)
    for tenant, agent in ((other, agent_id), (owner, uuid.uuid4())):
        response = _upload(tenant, agent, "a.wav", wav_bytes(0.1))
        assert response.status_code == 404
        assert tenant.client.get(f"/kalimera/ai-agent/{agent}/voice").status_code == 404


def test_bad_fields_are_422(server: Server, tenant: Tenant) -> None:
    agent_id = make_agent(server.settings, tenant.id)
    for fields in (
        {"conversation_id": "not-a-uuid"},
        {"direction": "sideways"},
        {"seq": "0"},
        {"seq": "abc"},
        {"profile_type": "both"},
        {"final": "maybe"},
        {"from_number": "1" * 40},
    ):
        response = _upload(tenant, agent_id, "a.wav", wav_bytes(0.1), **fields)
        assert response.status_code == 422, (fields, response.text)


def _multipart_stream(boundary: str, size: int) -> Iterator[bytes]:
    yield (
        f'--{boundary}\r\nContent-Disposition: form-data; name="direction"\r\n\r\ninput\r\n'
        f'--{boundary}\r\nContent-Disposition: form-data; name="voice_file"; '
        f'filename="big.wav"\r\nContent-Type: audio/wav\r\n\r\n'
    ).encode()
    chunk = wav_bytes(0.01)[:44] + b"\0" * (MiB - 44)
    sent = 0
    while sent < size:
        yield chunk
        chunk = b"\0" * MiB
        sent += MiB
    yield f"\r\n--{boundary}--\r\n".encode()


def test_a_file_over_25_mib_streamed_without_length_is_413_and_stores_nothing(
    server: Server, tenant: Tenant
) -> None:
    agent_id = make_agent(server.settings, tenant.id)
    boundary = uuid.uuid4().hex
    response = tenant.client.post(
        f"/kalimera/ai-agent/{agent_id}/voice",
        content=_multipart_stream(boundary, 26 * MiB),
        headers={"Content-Type": f"multipart/form-data; boundary={boundary}"},
    )
    assert response.status_code == 413
    assert response.headers["content-type"] == "application/problem+json"
    assert _blobs(server, tenant, agent_id) == []


def test_a_declared_length_over_the_limit_is_413_before_the_body_is_read(
    server: Server, tenant: Tenant
) -> None:
    agent_id = make_agent(server.settings, tenant.id)
    url = urlparse(server.url)
    conn = http.client.HTTPConnection(url.hostname, url.port, timeout=10)
    conn.putrequest("POST", f"/kalimera/ai-agent/{agent_id}/voice")
    conn.putheader("Authorization", f"Bearer {tenant.token}")
    conn.putheader("Content-Type", "multipart/form-data; boundary=x")
    conn.putheader("Content-Length", str(200 * MiB))
    conn.endheaders()  # no body is sent at all: the answer must not wait for it
    response = conn.getresponse()
    assert response.status == 413
    conn.close()


def test_a_file_of_exactly_the_limit_is_accepted(server: Server, tenant: Tenant) -> None:
    agent_id = make_agent(server.settings, tenant.id)
    data = wav_bytes(0.01)[:44] + b"\0" * (server.settings.max_upload_bytes - 44)
    response = _upload(tenant, agent_id, "big.wav", data)
    assert response.status_code == 202, response.text


def _blobs(server: Server, tenant: Tenant, agent_id: uuid.UUID) -> list[str]:
    return _list_blobs(server, f"{tenant.id}/{agent_id}/")


def _list_blobs(server: Server, prefix: str) -> list[str]:
    async def work(services) -> list[str]:  # type: ignore[no-untyped-def]
        container = services.recordings
        return [b.name async for b in container.list_blobs(name_starts_with=prefix)]

    return with_services(server.settings, work)
