"""Contacts on calls (issue 16, item 8): a conversation's ``contact_id`` is the tenant's contact
whose number (E.164) is the caller's on an inbound call, the callee's on an outbound one; set at
ingestion and at the start report, and when a contact is created, imported or its number
changes; the list filters by it and a contact has its page of calls, within its tenant only."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import httpx

from tests.conftest import Server, Tenant
from tests.support.audio_fixtures import wav_bytes
from tests.support.calls import Call, ingest, make_agent, put_blob
from tests.support.problems import assert_problem

NUMBER = "+302101234567"
NATIONAL = "210 123 4567"  # the same number as telephony may send it (region GR by default)
OTHER = "+302107654321"


def _contact(tenant: Tenant, number: str | None, first: str = "Ada") -> int:
    body = {"first_name": first, "last_name": "Lovelace", "contact_no": number}
    made = tenant.client.post("/kalimera/contact", json=body)
    assert made.status_code == 201, made.text
    return int(made.json()["id"])


def _start(tenant: Tenant, agent_id: uuid.UUID, profile: str, **numbers: str) -> str:
    body = {"agent_id": str(agent_id), "profile_type": profile, **numbers}
    started = tenant.client.post("/kalimera/conversations", json=body)
    assert started.status_code == 201, started.text
    return str(started.json()["id"])


def _contact_of(tenant: Tenant, conversation_id: str) -> int | None:
    read = tenant.client.get(f"/kalimera/conversations/{conversation_id}")
    assert read.status_code == 200, read.text
    return read.json()["contact_id"]  # type: ignore[no-any-return]


def _calls_of(tenant: Tenant, contact_id: int) -> list[str]:
    page = tenant.client.get(f"/kalimera/contact/{contact_id}/conversations", params={"limit": 100})
    assert page.status_code == 200, page.text
    listed = tenant.client.get(
        "/kalimera/conversations", params={"contact_id": contact_id, "limit": 100}
    )
    assert listed.json() == page.json()
    return sorted(item["id"] for item in page.json()["items"])


def test_an_ingested_inbound_call_finds_its_caller_in_any_notation(call: Call) -> None:
    contact = _contact(call.tenant, NUMBER)
    name = call.name(1, "input", "wav")
    put_blob(call.settings, name, wav_bytes(0.5), {"from_number": NATIONAL, "to_number": OTHER})
    ingest(call.settings, name)
    conversation = str(call.conversation_id)
    assert _contact_of(call.tenant, conversation) == contact
    assert _calls_of(call.tenant, contact) == [conversation]
    # The number telephony sent stays as sent.
    read = call.tenant.client.get(f"/kalimera/conversations/{conversation}").json()
    assert read["from_number"] == NATIONAL


def test_an_outbound_call_is_with_its_callee_not_its_caller(server: Server, tenant: Tenant) -> None:
    callee, caller = _contact(tenant, OTHER, "Callee"), _contact(tenant, NUMBER, "Caller")
    agent = make_agent(server.settings, tenant.id, "outbound")
    started = _start(tenant, agent, "outbound", from_number=NUMBER, to_number=OTHER)
    assert _contact_of(tenant, started) == callee
    # The first turn of an outbound call, numbers in its metadata.
    conversation = uuid.uuid4()
    name = f"{tenant.id}/{agent}/{conversation}/000001-output.wav"
    put_blob(server.settings, name, wav_bytes(0.5), {"from_number": NUMBER, "to_number": OTHER})
    ingest(server.settings, name)
    assert _contact_of(tenant, str(conversation)) == callee
    assert _calls_of(tenant, caller) == []
    assert _calls_of(tenant, callee) == sorted([started, str(conversation)])


def test_a_contact_made_later_finds_its_calls_and_a_new_number_moves_them(
    server: Server, tenant: Tenant
) -> None:
    agent = make_agent(server.settings, tenant.id)
    first = _start(tenant, agent, "inbound", from_number=NUMBER)
    second = _start(tenant, agent, "inbound", from_number="+30 210 765 4321")
    anonymous = _start(tenant, agent, "inbound", from_number="anonymous")
    assert _contact_of(tenant, first) is None

    contact = _contact(tenant, NUMBER)
    assert _calls_of(tenant, contact) == [first]
    changed = tenant.client.put(f"/kalimera/contact/{contact}", json={"contact_no": OTHER})
    assert changed.status_code == 200, changed.text
    assert _calls_of(tenant, contact) == [second]
    assert _contact_of(tenant, first) is None
    assert _contact_of(tenant, anonymous) is None

    cleared = tenant.client.put(f"/kalimera/contact/{contact}", json={"contact_no": None})
    assert cleared.status_code == 200, cleared.text
    assert _calls_of(tenant, contact) == []

    again = tenant.client.put(f"/kalimera/contact/{contact}", json={"contact_no": NUMBER})
    assert again.status_code == 200
    assert tenant.client.delete(f"/kalimera/contact/{contact}").status_code == 200
    assert _contact_of(tenant, first) is None  # the call stays, its contact is gone


def test_an_import_links_every_new_contact_s_calls_in_one_batch(
    server: Server, tenant: Tenant
) -> None:
    agent = make_agent(server.settings, tenant.id)
    numbers = [f"+3021012345{n:02d}" for n in range(20)]
    calls = [_start(tenant, agent, "inbound", from_number=n) for n in numbers]
    rows = "".join(f"Name{n},Surname{n},{number}\n" for n, number in enumerate(numbers))
    imported = tenant.client.post(
        "/kalimera/contact/import",
        content=("first_name,last_name,contact_no\n" + rows).encode(),
        headers={"Content-Type": "text/csv"},
    )
    assert imported.status_code == 200, imported.text
    assert imported.json()["created"] == len(numbers)
    by_call = {c: _contact_of(tenant, c) for c in calls}
    assert None not in by_call.values()
    assert len(set(by_call.values())) == len(numbers)
    for conversation, contact in by_call.items():
        assert contact is not None
        assert _calls_of(tenant, contact) == [conversation]


def test_contacts_link_only_their_own_tenant_s_calls(
    server: Server, new_tenant: Callable[..., Tenant]
) -> None:
    owner, other = new_tenant(), new_tenant()
    call = _start(owner, make_agent(server.settings, owner.id), "inbound", from_number=NUMBER)
    theirs = _contact(other, NUMBER)
    assert _contact_of(owner, call) is None
    assert _calls_of(other, theirs) == []
    mine = _contact(owner, NUMBER)
    assert _contact_of(owner, call) == mine
    # Another tenant's contact: 404 on its page, nothing through the filter.
    assert_problem(other.client.get(f"/kalimera/contact/{mine}/conversations"), 404)
    listed = other.client.get("/kalimera/conversations", params={"contact_id": mine})
    assert listed.json()["total"] == 0
    assert _calls_of(owner, mine) == [call]


def test_a_bad_contact_id_is_422_and_an_unknown_one_404(tenant: Tenant) -> None:
    for bad in ("abc", "0", "-1", "1.5", str(2**63)):
        listed = tenant.client.get("/kalimera/conversations", params={"contact_id": bad})
        assert_problem(listed, 422)
        assert_problem(tenant.client.get(f"/kalimera/contact/{bad}/conversations"), 422)
    assert_problem(tenant.client.get("/kalimera/contact/999999/conversations"), 404)
    paged = tenant.client.get(f"/kalimera/contact/{_contact(tenant, None)}/conversations")
    assert paged.json() == {"items": [], "total": 0, "page": 1, "limit": 10}
    for bad_page in ({"page": "0"}, {"limit": "101"}):
        contact = _contact(tenant, None, "Other")
        assert_problem(
            tenant.client.get(f"/kalimera/contact/{contact}/conversations", params=bad_page), 422
        )


def test_a_contact_made_while_its_calls_start_gets_every_one_of_them(
    server: Server, tenant: Tenant
) -> None:
    """The two sides race: calls starting while the contact is created. Neither sees the
    other's uncommitted row; the tenant's contact-numbers lock makes the second to commit see
    the first, so no call is left without its contact (and nothing deadlocks)."""
    agent = make_agent(server.settings, tenant.id)
    headers = dict(tenant.client.headers)
    for round_ in range(3):
        number = f"+3021099900{round_:02d}"

        def start(_: int, number: str = number) -> str:
            with httpx.Client(base_url=server.url, headers=headers, timeout=30) as client:
                body = {"agent_id": str(agent), "profile_type": "inbound", "from_number": number}
                started = client.post("/kalimera/conversations", json=body)
                assert started.status_code == 201, started.text
                return str(started.json()["id"])

        with ThreadPoolExecutor(max_workers=8) as pool:
            calls = pool.map(start, range(12))
            contact = _contact(tenant, number, f"Racer{round_}")
            started = list(calls)
        assert _calls_of(tenant, contact) == sorted(started)
