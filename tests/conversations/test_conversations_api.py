"""Telephony's call start and end reports, and the console's listing of conversations."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from kalimera.auth import Scope
from tests.conftest import Server, Tenant
from tests.support.calls import make_agent


def _start(tenant: Tenant, agent_id: uuid.UUID, **fields: object):  # type: ignore[no-untyped-def]
    body = {"agent_id": str(agent_id), "profile_type": "inbound", **fields}
    return tenant.client.post("/kalimera/conversations", json=body)


def test_starting_a_call_twice_with_one_id_is_idempotent(server: Server, tenant: Tenant) -> None:
    agent_id = make_agent(server.settings, tenant.id)
    conversation_id = str(uuid.uuid4())
    first = _start(
        tenant, agent_id, id=conversation_id, title="Booking", from_number="+302101234567"
    )
    assert first.status_code == 201, first.text
    body = first.json()
    assert body["status"] == "Active"
    assert (body["id"], body["title"], body["turn_count"]) == (conversation_id, "Booking", 0)
    assert body["sentiment"] == "unknown"
    again = _start(tenant, agent_id, id=conversation_id, title="Something else")
    assert again.status_code == 200
    assert again.json() == body


def test_a_call_for_an_unknown_agent_is_404(server: Server, tenant: Tenant) -> None:
    assert _start(tenant, uuid.uuid4()).status_code == 404


def test_ending_a_call_sets_status_and_ended_at(server: Server, tenant: Tenant) -> None:
    agent_id = make_agent(server.settings, tenant.id)
    started = datetime.now(UTC) - timedelta(minutes=5)
    conv = _start(tenant, agent_id, started_at=started.isoformat()).json()
    url = f"/kalimera/conversations/{conv['id']}"
    done = tenant.client.patch(url, json={"status": "Completed", "title": "Done"})
    assert done.status_code == 200, done.text
    assert (done.json()["status"], done.json()["title"]) == ("Completed", "Done")
    assert done.json()["ended_at"] is not None
    ended = (started + timedelta(minutes=3)).isoformat()
    failed = tenant.client.patch(url, json={"status": "Failed", "ended_at": ended}).json()
    assert failed["status"] == "Failed"
    assert datetime.fromisoformat(failed["ended_at"]) == started + timedelta(minutes=3)
    before_start = (started - timedelta(minutes=1)).isoformat()
    assert tenant.client.patch(url, json={"ended_at": before_start}).status_code == 422
    assert tenant.client.patch(url, json={"status": "Active"}).status_code == 422
    assert tenant.client.patch(url, json={"colour": "red"}).status_code == 422


def test_another_tenant_gets_404_and_changes_nothing(
    server: Server, new_tenant: Callable[..., Tenant]
) -> None:
    owner, other = new_tenant(), new_tenant()
    conv = _start(owner, make_agent(server.settings, owner.id)).json()
    url = f"/kalimera/conversations/{conv['id']}"
    assert other.client.get(url).status_code == 404
    assert other.client.patch(url, json={"status": "Failed"}).status_code == 404
    assert owner.client.get(url).json()["status"] == "Active"
    assert other.client.get("/kalimera/conversations").json()["total"] == 0


def test_scopes_are_enforced(server: Server, new_tenant: Callable[..., Tenant]) -> None:
    reader = new_tenant(scopes=(Scope.CONVERSATIONS_READ,))
    agent_id = make_agent(server.settings, reader.id)
    assert _start(reader, agent_id).status_code == 403
    upload = reader.client.post(
        f"/kalimera/ai-agent/{agent_id}/voice", files={"voice_file": ("a.wav", b"RIFF")}
    )
    assert upload.status_code == 403
    assert reader.client.get("/kalimera/conversations").status_code == 200
    writer = new_tenant(scopes=(Scope.CONVERSATIONS_WRITE,))
    assert writer.client.get("/kalimera/conversations").status_code == 403


def test_listing_filters_and_pages_newest_first(server: Server, tenant: Tenant) -> None:
    inbound = make_agent(server.settings, tenant.id, "inbound")
    outbound = make_agent(server.settings, tenant.id, "outbound")
    base = datetime(2026, 3, 1, 12, tzinfo=UTC)
    made = []
    for i in range(7):
        agent, profile = (inbound, "inbound") if i % 2 == 0 else (outbound, "outbound")
        body = _start(
            tenant, agent, profile_type=profile, started_at=(base + timedelta(days=i)).isoformat()
        ).json()
        made.append(body["id"])
    tenant.client.patch(f"/kalimera/conversations/{made[0]}", json={"status": "Completed"})

    def ids(**params: object) -> list[str]:
        response = tenant.client.get("/kalimera/conversations", params=params)
        assert response.status_code == 200, response.text
        return [c["id"] for c in response.json()["items"]]

    assert ids(limit=100) == made[::-1]
    page = tenant.client.get("/kalimera/conversations", params={"limit": 3, "page": 2}).json()
    assert (page["total"], page["page"], page["limit"]) == (7, 2, 3)
    assert [c["id"] for c in page["items"]] == made[::-1][3:6]
    assert ids(agent_id=str(outbound)) == [made[5], made[3], made[1]]
    assert ids(profile_type="inbound") == [made[6], made[4], made[2], made[0]]
    assert ids(status="Completed") == [made[0]]
    assert ids(start="2026-03-03", end="2026-03-04") == [made[3], made[2]]
    assert ids(start="2026-03-06") == [made[6], made[5]]
    assert ids(end="2026-03-01") == [made[0]]
    assert ids(agent_id=str(inbound), page=9) == []
    agent_page = tenant.client.get(f"/kalimera/ai-agent/{outbound}/voice").json()
    assert [c["id"] for c in agent_page["items"]] == [made[5], made[3], made[1]]


def test_out_of_range_paging_and_bad_filters_are_422(server: Server, tenant: Tenant) -> None:
    for params in (
        {"limit": 101},
        {"limit": 0},
        {"page": 0},
        {"status": "Paused"},
        {"profile_type": "both"},
        {"agent_id": "nope"},
        {"start": "yesterday"},
        {"start": "0"},
        {"end": "2026-03-01T10:00:00Z"},
    ):
        response = tenant.client.get("/kalimera/conversations", params=params)
        assert response.status_code == 422, params
        assert response.headers["content-type"] == "application/problem+json"
    assert tenant.client.get("/kalimera/conversations/not-a-uuid").status_code == 422
