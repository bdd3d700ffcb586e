"""URLs and headers (issue 16, item 5): the recordings a conversation list names are signed URLs
a browser can fetch, as the turns' are; every 201 says where its resource is (``Location``); a
conversation read carries an ``ETag`` that ``If-None-Match`` answers with 304 and a PATCH's
``If-Match`` with 412 when stale (no ``If-Match``: the change is made, as on contacts)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from kalimera.conversations import signing
from kalimera.conversations.ingest import Outcome
from kalimera.services import Services
from tests.conftest import Server, Tenant
from tests.support.audio_fixtures import wav_bytes
from tests.support.calls import ingest, make_agent, with_services
from tests.support.problems import assert_problem


def _upload(
    tenant: Tenant, agent_id: uuid.UUID, conversation_id: str, direction: str, data: bytes
) -> httpx.Response:
    return tenant.client.post(
        f"/kalimera/ai-agent/{agent_id}/voice",
        data={"conversation_id": conversation_id, "direction": direction, "seq": "1"},
        files={"voice_file": (f"{direction}.wav", data, "audio/wav")},
    )


def _call(server: Server, tenant: Tenant) -> tuple[uuid.UUID, str, dict[str, bytes]]:
    """A call of one exchange, uploaded through the API and ingested: (agent, id, bytes by
    direction)."""
    agent_id = make_agent(server.settings, tenant.id)
    conversation_id = str(uuid.uuid4())
    sent = {"input": wav_bytes(0.4), "output": wav_bytes(0.6)}
    for direction, data in sent.items():
        stored = _upload(tenant, agent_id, conversation_id, direction, data)
        assert stored.status_code == 202, stored.text
        assert ingest(server.settings, stored.json()["blob"]).outcome is Outcome.INGESTED
    return agent_id, conversation_id, sent


def _version(tag: str) -> str:
    return tag.strip('"').split("-")[0]


def test_a_listed_conversation_s_recordings_are_signed_urls_that_fetch_the_bytes(
    server: Server, tenant: Tenant
) -> None:
    agent_id, conversation_id, sent = _call(server, tenant)
    pages = [
        tenant.client.get("/kalimera/conversations"),
        tenant.client.get(f"/kalimera/ai-agent/{agent_id}/voice"),
    ]
    for page in pages:
        assert page.status_code == 200, page.text
        (item,) = page.json()["items"]
        assert item["id"] == conversation_id
        assert item["conversation_url"] is None  # never written: one recording per turn
        for field, direction in (("input_file_url", "input"), ("output_file_url", "output")):
            url = item[field]
            assert "sig=" in url
            assert "sp=r" in url
            fetched = httpx.get(url)
            assert fetched.status_code == 200, fetched.text
            assert fetched.content == sent[direction]
            # The container is private: the URL without its signature fetches nothing.
            assert httpx.get(url.split("?")[0]).status_code in (401, 403, 404)
    detail = tenant.client.get(f"/kalimera/conversations/{conversation_id}").json()
    assert detail["input_file_url"] == pages[0].json()["items"][0]["input_file_url"]


def test_read_urls_are_the_same_within_a_window_and_valid_15_minutes_or_more(
    server: Server,
) -> None:
    async def sign(services: Services) -> list[str]:
        first = await signing.Signer.for_services(services)
        again = await signing.Signer.for_services(services)
        later = signing.Signer(
            services.blobs,
            first.container,
            account_key=first.account_key,
            now=first.window_start + signing.WINDOW,
        )
        return [s.url("t/a/c/000001-input.wav") for s in (first, again, later)]

    before = datetime.now(UTC)
    first, again, later = with_services(server.settings, sign)
    if first != again:  # signed either side of a window's end: sign again
        first, again, later = with_services(server.settings, sign)
    assert first == again
    assert later != first
    expiry = datetime.fromisoformat(parse_qs(urlsplit(first).query)["se"][0].replace("Z", "+00:00"))
    assert expiry - before >= timedelta(minutes=15) - timedelta(seconds=1)
    assert expiry - before <= signing.SAS_LIFETIME + signing.WINDOW


def test_every_201_says_where_its_resource_is(server: Server, tenant: Tenant) -> None:
    agent_id = make_agent(server.settings, tenant.id)
    started = tenant.client.post(
        "/kalimera/conversations", json={"agent_id": str(agent_id), "profile_type": "inbound"}
    )
    assert started.status_code == 201
    location = started.headers["Location"]
    assert location == f"/kalimera/conversations/{started.json()['id']}"
    assert tenant.client.get(location).status_code == 200
    again = tenant.client.post(
        "/kalimera/conversations",
        json={"agent_id": str(agent_id), "profile_type": "inbound", "id": started.json()["id"]},
    )
    assert again.status_code == 200
    assert "Location" not in again.headers

    conversation_id = str(uuid.uuid4())
    path = f"/kalimera/conversations/{conversation_id}"
    stored = _upload(tenant, agent_id, conversation_id, "input", wav_bytes(0.2))
    assert (stored.status_code, stored.headers["Location"]) == (202, path)
    body = {"conversation_id": conversation_id, "direction": "output", "seq": 1, "ext": "wav"}
    for _ in range(2):  # the second answer is the first one replayed, Location included
        issued = tenant.client.post(
            f"/kalimera/ai-agent/{agent_id}/voice/upload-url",
            json=body,
            headers={"Idempotency-Key": f"url-{conversation_id}"},
        )
        assert (issued.status_code, issued.headers["Location"]) == (201, path)

    made = tenant.client.post("/kalimera/ai-agent", json={"name": "A", "type": "inbound"})
    assert made.headers["Location"] == f"/kalimera/ai-agent/{made.json()['id']}"
    run = tenant.client.post(
        f"/kalimera/ai-agent/{agent_id}/analysis-runs",
        json={"since": "2026-01-01", "until": "2026-01-31"},
    )
    assert run.status_code == 202, run.text
    assert tenant.client.get(run.headers["Location"]).json()["id"] == run.json()["id"]


def test_the_document_declares_location_on_every_201(server: Server, tenant: Tenant) -> None:
    document = tenant.client.get("/kalimera/openapi.json").json()
    created = [
        (method, path, operation["responses"]["201"])
        for path, operations in document["paths"].items()
        for method, operation in operations.items()
        if "201" in operation["responses"]
    ]
    assert len(created) >= 5
    for method, path, response in created:
        assert "Location" in response.get("headers", {}), (method, path)


def test_a_conversation_read_is_tagged_and_answers_304_while_unchanged(
    server: Server, tenant: Tenant
) -> None:
    agent_id, conversation_id, _ = _call(server, tenant)
    paths = [
        f"/kalimera/conversations/{conversation_id}",
        f"/kalimera/ai-agent/{agent_id}/voice?conversation_id={conversation_id}",
    ]
    for path in paths:
        read = tenant.client.get(path)
        tag = read.headers["ETag"]
        for header in (tag, f'"1", {tag}', "W/" + tag, "*"):
            unchanged = tenant.client.get(path, headers={"If-None-Match": header})
            if unchanged.status_code == 200:  # a new signing window began: a new tag
                tag = unchanged.headers["ETag"]
                unchanged = tenant.client.get(path, headers={"If-None-Match": tag})
            assert unchanged.status_code == 304
            assert unchanged.content == b""
            assert unchanged.headers["ETag"] == tag
        # Same version, URLs of another window: not current, a full answer.
        version, window = tag.strip('"').split("-")
        older = f'"{version}-{int(window) - 1}"'
        assert tenant.client.get(path, headers={"If-None-Match": older}).status_code == 200

    tag = tenant.client.get(paths[0]).headers["ETag"]
    renamed = tenant.client.patch(paths[0], json={"title": "Renamed"})
    assert _version(renamed.headers["ETag"]) != _version(tag)
    assert tenant.client.get(paths[0], headers={"If-None-Match": tag}).status_code == 200


def test_a_turn_ingested_moves_the_version(server: Server, tenant: Tenant) -> None:
    agent_id, conversation_id, _ = _call(server, tenant)
    path = f"/kalimera/conversations/{conversation_id}"
    tag = tenant.client.get(path).headers["ETag"]
    stored = tenant.client.post(
        f"/kalimera/ai-agent/{agent_id}/voice",
        data={"conversation_id": conversation_id, "direction": "input", "seq": "2"},
        files={"voice_file": ("input.wav", wav_bytes(0.3), "audio/wav")},
    )
    ingest(server.settings, stored.json()["blob"])
    read = tenant.client.get(path, headers={"If-None-Match": tag})
    assert read.status_code == 200
    assert read.json()["turn_count"] == 3
    assert _version(read.headers["ETag"]) != _version(tag)


def test_a_stale_if_match_on_patch_is_412_and_changes_nothing(
    server: Server, tenant: Tenant
) -> None:
    agent_id = make_agent(server.settings, tenant.id)
    started = tenant.client.post(
        "/kalimera/conversations", json={"agent_id": str(agent_id), "profile_type": "inbound"}
    )
    path, first = started.headers["Location"], started.headers["ETag"]
    renamed = tenant.client.patch(path, json={"title": "One"}, headers={"If-Match": first})
    assert renamed.status_code == 200, renamed.text
    second = renamed.headers["ETag"]
    assert _version(second) != _version(first)
    for stale in (first, '"not-ours"', '"1"', f'"{_version(first)}"'):
        body = assert_problem(
            tenant.client.patch(path, json={"title": "Lost"}, headers={"If-Match": stale}), 412
        )
        assert "changed" in str(body["detail"])
    assert tenant.client.get(path).json()["title"] == "One"
    # The tag of a read in any window names the version: a write compares that.
    for form in ("{tag}", '"{version}-1"', '"{version}"', "*"):
        current = form.format(tag=second, version=_version(second))
        tagged = tenant.client.patch(path, json={"title": form}, headers={"If-Match": current})
        assert tagged.status_code == 200, tagged.text
        second = tagged.headers["ETag"]
    assert tenant.client.patch(path, json={"title": "4"}).status_code == 200  # as on contacts
    unknown = f"/kalimera/conversations/{uuid.uuid4()}"
    assert_problem(
        tenant.client.patch(unknown, json={"title": "x"}, headers={"If-Match": "*"}), 404
    )


@pytest.mark.parametrize("header", ["If-Match", "If-None-Match"])
def test_odd_precondition_headers_are_never_a_5xx(tenant: Tenant, header: str) -> None:
    path = f"/kalimera/conversations/{uuid.uuid4()}"
    for value in ('"', "W/", '"-"', '"99999999999999999999-1"', "\u00e9", ",,,"):
        headers: dict[str, Any] = {header: value.encode("latin-1")}
        got = tenant.client.request(
            "PATCH" if header == "If-Match" else "GET",
            path,
            json={"title": "x"} if header == "If-Match" else None,
            headers=headers,
        )
        assert got.status_code == 404, (value, got.text)
