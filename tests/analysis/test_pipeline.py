"""When a call is analysed (docs/analysis.md, "When it runs"): the request is written in the
transaction that ends the call or changes its transcript, relayed to the queue, and the consumer
stores the result; without a model the analysis is ``skipped``, never invented."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest

from kalimera.db import transaction
from kalimera.services import Services
from kalimera.statistics.rollup import finalise_idle
from tests.conftest import Server, Tenant
from tests.support.analysis import drain_with, outbox_rows, results, say
from tests.support.calls import Call, make_agent, query, with_services


class Rollback(Exception):
    pass


def _conversation(tenant: Tenant, conversation_id: object) -> dict:  # type: ignore[type-arg]
    response = tenant.client.get(f"/kalimera/conversations/{conversation_id}")
    assert response.status_code == 200, response.text
    return response.json()  # type: ignore[no-any-return]


def test_the_request_commits_or_rolls_back_with_the_end_of_the_call(call: Call) -> None:
    say(call, [("input", "Hello, I would like a table for two.")], final=False)
    assert call.conversation()["status"] == "Active"  # type: ignore[index]
    seen: list[list[dict]] = []  # type: ignore[type-arg]

    async def end(services: Services, *, commit: bool) -> None:
        async with transaction(await services.db(), tenant_id=call.tenant.id) as conn:
            await conn.execute(
                "UPDATE kalimera_conversations SET status = 'Completed', ended_at = now()"
                " WHERE tenant_id = %(t)s AND id = %(c)s",
                {"t": call.tenant.id, "c": call.conversation_id},
            )
            cur = await conn.execute(
                "SELECT reason FROM kalimera_analysis_outbox WHERE conversation_id = %(c)s",
                {"c": call.conversation_id},
            )
            seen.append(list(await cur.fetchall()))
            if not commit:
                raise Rollback

    with pytest.raises(Rollback):
        with_services(call.settings, lambda s: end(s, commit=False))
    assert seen == [[{"reason": "ended"}]]  # written by the same transaction...
    assert outbox_rows(call.settings, call.conversation_id) == []  # ...and gone with it
    row = call.conversation()
    assert row is not None
    assert (row["status"], row["analysis"], row["analysis_status"]) == ("Active", None, None)

    with_services(call.settings, lambda s: end(s, commit=True))
    assert outbox_rows(call.settings, call.conversation_id) == [
        {"kind": "analyse", "reason": "ended"}
    ]
    row = call.conversation()
    assert row is not None
    assert (row["analysis"], row["analysis_status"]) == ({"status": "pending"}, "pending")


def test_without_a_model_the_analysis_is_skipped_and_every_read_shows_it(call: Call) -> None:
    say(call, [("input", "Hello, a table for four please."), ("output", "Booked, see you.")])
    pending = _conversation(call.tenant, call.conversation_id)
    assert pending["status"] == "Completed"
    # The final turn's ingestion relayed the request right after its commit.
    assert outbox_rows(call.settings, call.conversation_id) == []
    assert pending["analysis"]["status"] == "pending"
    assert drain_with(call.settings) >= 1
    conv = _conversation(call.tenant, call.conversation_id)
    analysis = conv["analysis"]
    assert (analysis["status"], analysis["reason"], analysis["plan_version"]) == (
        "skipped",
        "no model configured",
        0,
    )
    assert analysis["summary"] is None
    assert analysis["analysed_at"] is not None
    listed = call.tenant.client.get(
        "/kalimera/conversations", params={"agent_id": str(call.agent_id)}
    ).json()
    assert [c["analysis"] for c in listed["items"]] == [analysis]
    assert [r["status"] for r in results(call.settings, call.conversation_id)] == ["skipped"]


def test_a_failed_call_is_analysed_only_when_it_has_a_transcript(
    server: Server, tenant: Tenant
) -> None:
    agent_id = make_agent(server.settings, tenant.id)
    silent = tenant.client.post(
        "/kalimera/conversations", json={"agent_id": str(agent_id), "profile_type": "inbound"}
    ).json()
    url = f"/kalimera/conversations/{silent['id']}"
    failed = tenant.client.patch(url, json={"status": "Failed"}).json()
    assert failed["analysis"] is None
    assert outbox_rows(server.settings, uuid.UUID(silent["id"])) == []

    spoken = Call(server.settings, tenant)
    say(spoken, [("input", "Hello? Is anyone there?")], final=False)
    done = tenant.client.patch(
        f"/kalimera/conversations/{spoken.conversation_id}", json={"status": "Failed"}
    ).json()
    assert done["analysis"] == {**done["analysis"], "status": "pending"}


def test_the_idle_timer_and_a_turn_after_the_end_ask_for_an_analysis(call: Call) -> None:
    say(call, [("input", "Can I book for Friday?")], final=False)
    query(
        call.settings,
        "UPDATE kalimera_conversations SET last_activity_at = now() - interval '3 hours'"
        " WHERE id = %(c)s RETURNING id",
        {"c": call.conversation_id},
    )

    async def finalise(services: Services) -> int:
        return await finalise_idle(await services.db(), idle_minutes=120)

    assert with_services(call.settings, finalise) >= 1
    assert outbox_rows(call.settings, call.conversation_id) == [
        {"kind": "analyse", "reason": "ended"}
    ]
    drain_with(call.settings)
    first = call.conversation()
    assert first is not None
    assert (first["analysis_status"], first["transcript_version"]) == ("skipped", 1)

    # A late turn with words: a new transcript version, asked for again and relayed at once.
    say(call, [("output", "Yes, Friday at eight works.")], final=False, first=2)
    late = call.conversation()
    assert late is not None
    assert (late["analysis_status"], late["transcript_version"]) == ("pending", 2)
    drain_with(call.settings)
    assert [
        (r["transcript_version"], r["status"]) for r in results(call.settings, call.conversation_id)
    ] == [
        (1, "skipped"),
        (2, "skipped"),
    ]


def test_a_patch_that_ends_the_call_asks_once_and_a_rename_asks_nothing(call: Call) -> None:
    say(call, [("input", "Hi"), ("output", "Hello, how can I help?")], final=False)
    url = f"/kalimera/conversations/{call.conversation_id}"
    ended = call.tenant.client.patch(url, json={"status": "Completed"})
    assert ended.status_code == 200, ended.text
    assert ended.json()["analysis"]["status"] == "pending"
    drain_with(call.settings)
    renamed = call.tenant.client.patch(url, json={"title": "Booking", "status": "Failed"})
    assert renamed.json()["analysis"]["status"] == "skipped"
    assert outbox_rows(call.settings, call.conversation_id) == []


def test_the_conversations_day_stays_marked_when_the_analysis_changes_its_sentiment(
    call: Call,
) -> None:
    # Checked on the trigger itself: a sentiment change marks the day (migration 0006).
    say(call, [("input", "This is wonderful, thank you so much!")])
    drain_with(call.settings)
    day = datetime.now(UTC).date()
    query(
        call.settings,
        "DELETE FROM kalimera_stats_dirty WHERE tenant_id = %(t)s RETURNING day",
        {"t": call.tenant.id},
    )
    query(
        call.settings,
        "UPDATE kalimera_conversations SET sentiment = 'negative' WHERE id = %(c)s RETURNING id",
        {"c": call.conversation_id},
    )
    marks = query(
        call.settings,
        "SELECT day FROM kalimera_stats_dirty WHERE tenant_id = %(t)s",
        {"t": call.tenant.id},
    )
    assert [m["day"] for m in marks] in ([day], [day - timedelta(days=1)])
