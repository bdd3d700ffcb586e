"""Finding calls (docs/conversations.md, "Finding calls"): the listing's filters on the outcome,
the analysis and the words of a call, alone and together, paged, and kept to the tenant.

The analysis columns are written as the analysis pipeline writes them (plain UPDATEs of
``analysis``, ``success_result``, ...) and turns as the ingestion does (rows of
``kalimera_recordings``), through the app's pool as the tenant: the index's triggers run as
they do in production, under row-level security."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote

import pytest

from kalimera.db import transaction
from kalimera.services import Services
from kalimera.settings import Settings
from tests.conftest import Server, Tenant
from tests.support.audio_fixtures import wav_bytes
from tests.support.calls import Call, ingest, make_agent, put_blob, with_services
from tests.support.cli import kalimera

BASE = datetime(2026, 5, 1, 9, tzinfo=UTC)


def _sql(settings: Settings, tenant_id: uuid.UUID, statement: str, params: dict[str, Any]) -> None:
    async def work(services: Services) -> None:
        async with transaction(await services.db(), tenant_id=tenant_id) as conn:
            await conn.execute(statement, params)  # type: ignore[arg-type]

    with_services(settings, work)


class Calls:
    """One tenant's calls, made through the API and given outcomes, analyses and turns."""

    def __init__(self, server: Server, tenant: Tenant) -> None:
        self.settings = server.settings
        self.tenant = tenant
        self.agent = make_agent(server.settings, tenant.id)
        self.made = 0

    def call(
        self,
        *,
        transcripts: tuple[str, ...] = (),
        summary: str | None = None,
        data: dict[str, Any] | None = None,
        success: str | None = None,
        sentiment: str = "unknown",
        ended_reason: str | None = None,
        duration: str | None = None,
    ) -> str:
        started = BASE + timedelta(minutes=self.made)
        self.made += 1
        response = self.tenant.client.post(
            "/kalimera/conversations",
            json={
                "agent_id": str(self.agent),
                "profile_type": "inbound",
                "started_at": started.isoformat(),
            },
        )
        assert response.status_code == 201, response.text
        conversation = response.json()["id"]
        for seq, words in enumerate(transcripts, start=1):
            self.turn(conversation, seq, words)
        analysis = None
        if summary is not None or data is not None:
            analysis = json.dumps({"status": "done", "summary": summary, "data": data or {}})
        _sql(
            self.settings,
            self.tenant.id,
            "UPDATE kalimera_conversations SET analysis = %(analysis)s::jsonb,"
            " analysis_status = CASE WHEN %(analysis)s::text IS NULL THEN NULL ELSE 'done' END,"
            " success_rubric = CASE WHEN %(success)s::text IS NULL THEN NULL ELSE 'pass_fail' END,"
            " success_result = %(success)s, sentiment = %(sentiment)s,"
            " ended_reason = %(reason)s, duration = %(duration)s::numeric"
            " WHERE tenant_id = %(t)s AND id = %(c)s",
            {
                "analysis": analysis,
                "success": success,
                "sentiment": sentiment,
                "reason": ended_reason,
                "duration": duration,
                "t": self.tenant.id,
                "c": conversation,
            },
        )
        return conversation

    def turn(self, conversation: str, seq: int, words: str) -> None:
        """Write (or rewrite) the caller's turn ``seq``, as the ingestion's upsert does."""
        _sql(
            self.settings,
            self.tenant.id,
            "INSERT INTO kalimera_recordings (tenant_id, conversation_id, seq, direction,"
            " blob_name, etag, blob_modified_at, duration, transcript, recorded_at)"
            " VALUES (%(t)s, %(c)s, %(s)s, 'input', 'b', 'e', now(), 1, %(w)s, now())"
            " ON CONFLICT (tenant_id, conversation_id, seq, direction)"
            " DO UPDATE SET transcript = EXCLUDED.transcript",
            {"t": self.tenant.id, "c": conversation, "s": seq, "w": words},
        )

    def get(self, **params: Any) -> dict[str, Any]:
        response = self.tenant.client.get("/kalimera/conversations", params=params)
        assert response.status_code == 200, response.text
        return response.json()  # type: ignore[no-any-return]

    def ids(self, **params: Any) -> list[str]:
        return [c["id"] for c in self.get(limit=100, **params)["items"]]


@pytest.fixture
def calls(server: Server, tenant: Tenant) -> Calls:
    return Calls(server, tenant)


def test_each_outcome_filter_alone_and_together(calls: Calls) -> None:
    a = calls.call(success="pass", sentiment="positive", ended_reason="voicemail", duration="12.5")
    b = calls.call(success="fail", sentiment="negative", ended_reason="busy", duration="60")
    c = calls.call(success="pass", sentiment="negative", ended_reason="busy", duration="600.001")
    d = calls.call()  # nothing known yet: no verdict, no reason, no duration
    assert calls.ids() == [d, c, b, a]
    assert calls.ids(success="pass") == [c, a]
    assert calls.ids(success="fail") == [b]
    assert calls.ids(sentiment="negative") == [c, b]
    assert calls.ids(sentiment="unknown") == [d]
    assert calls.ids(ended_reason="busy") == [c, b]
    assert calls.ids(ended_reason="idle-timeout") == []
    assert calls.ids(min_duration=60) == [c, b]
    assert calls.ids(min_duration=60.001) == [c]
    assert calls.ids(max_duration=60) == [b, a]
    assert calls.ids(max_duration=12.4999) == []
    assert calls.ids(min_duration=12.5, max_duration=12.5) == [a]
    assert calls.ids(min_duration=600.0005) == [c]  # durations are exact to the millisecond
    assert calls.ids(success="pass", sentiment="negative") == [c]
    assert calls.ids(ended_reason="busy", max_duration=100) == [b]
    assert calls.ids(success="pass", ended_reason="voicemail", min_duration=1) == [a]
    page = calls.get(success="pass", limit=1, page=2)
    assert (page["total"], [i["id"] for i in page["items"]]) == (2, [a])


def test_q_finds_greek_and_english_words_whatever_the_case_and_accents(calls: Calls) -> None:
    greek = calls.call(transcripts=("Καλημέρα σας, θα ήθελα μια κράτηση για αύριο",))
    street = calls.call(transcripts=("Μένω στην ΟΔΟΣ Πανεπιστημίου",))
    english = calls.call(transcripts=("Good morning, I need a REFUND for my invoice",))
    calls.call(transcripts=("nothing to see here",))
    for q in ("καλημέρα", "Καλημέρα", "καλημερα", "ΚΑΛΗΜΕΡΑ", "ΚΑΛΗΜΈΡΑ"):
        assert calls.ids(q=q) == [greek], q
    assert calls.ids(q="κρατηση αυριο") == [greek]  # every word, anywhere in the call
    assert calls.ids(q="κράτηση refund") == []
    assert calls.ids(q="οδός") == [street]  # a typed final sigma finds the capital sigma
    assert calls.ids(q="οδος πανεπιστημιου") == [street]
    for q in ("refund", "Refund", "REFUND invoice", "  refund,   invoice! "):
        assert calls.ids(q=q) == [english], q
    assert calls.ids(q="refun") == []  # whole words


def test_q_matches_the_summary_or_the_transcripts(calls: Calls) -> None:
    spoken = calls.call(transcripts=("the parcel never arrived",), summary="A delivery problem")
    summed = calls.call(transcripts=("hello",), summary="Customer asked about a parcel refund")
    only_summary = calls.call(summary="Ζήτησε επιστροφή χρημάτων")
    assert calls.ids(q="parcel") == [summed, spoken]
    assert calls.ids(q="arrived") == [spoken]  # in a transcript only
    assert calls.ids(q="delivery") == [spoken]  # in the summary only
    assert calls.ids(q="επιστροφη") == [only_summary]  # a call with no turns at all
    assert calls.ids(q="hello refund") == [summed]  # one word in each


def test_q_ranks_by_how_often_the_words_occur_then_newest(calls: Calls) -> None:
    once = calls.call(transcripts=("one refund",))
    thrice = calls.call(transcripts=("refund refund", "and a refund"), summary="refund")
    twice = calls.call(transcripts=("refund",), summary="asked for a refund")
    also_twice = calls.call(summary="refund refund")
    assert calls.ids(q="refund") == [thrice, also_twice, twice, once]


def test_an_ingested_recording_is_found_by_its_words(call: Call) -> None:
    """The real path: a blob's transcript, through the trigger's ingestion, then replaced by a
    newer version of the same turn (and its sidecar)."""
    name = call.name(1, "input", "wav")
    put_blob(call.settings, name, wav_bytes(1.0), {"transcript": quote("Καλημέρα, μια κράτηση")})
    ingest(call.settings, name)
    conversation = str(call.conversation_id)

    def found(q: str) -> list[str]:
        response = call.tenant.client.get("/kalimera/conversations", params={"q": q})
        assert response.status_code == 200, response.text
        return [c["id"] for c in response.json()["items"]]

    assert found("καλημερα κρατηση") == [conversation]
    put_blob(call.settings, name, wav_bytes(1.0), {"transcript": "cancel%20please"})
    ingest(call.settings, name)
    assert found("κρατηση") == []
    assert found("CANCEL") == [conversation]


def _terms(calls: Calls, conversation: str, *, rebuild: bool = False) -> list[tuple[str, int]]:
    """The call's terms as the triggers keep them, or (``rebuild``) as the migration's
    ``kalimera_search_reindex`` makes them from the call's rows (then rolled back)."""
    found: list[tuple[str, int]] = []

    async def work(services: Services) -> None:
        async with transaction(await services.db(), tenant_id=calls.tenant.id) as conn:
            params = {"t": calls.tenant.id, "c": conversation}
            if rebuild:
                await conn.execute(
                    "SELECT kalimera_search_reindex(ARRAY[%(t)s::uuid], ARRAY[%(c)s::uuid])",
                    params,
                )
            cur = await conn.execute(
                "SELECT term, hits FROM kalimera_conversation_terms"
                " WHERE tenant_id = %(t)s AND conversation_id = %(c)s ORDER BY term",
                params,
            )
            found.extend((r["term"], r["hits"]) for r in await cur.fetchall())
            await conn.rollback()

    with_services(calls.settings, work)
    return found


def test_changed_words_are_found_and_old_ones_no_longer(calls: Calls) -> None:
    """Each change moves only its own words; the counts stay those of a rebuild from scratch."""
    conversation = calls.call(
        transcripts=("apple apple fig", "fig"), summary="banana fig", data={"a": 1, "b": "x"}
    )
    assert ("fig", 3) in _terms(calls, conversation)
    calls.turn(conversation, 1, "cherry fig")  # a re-uploaded recording replaces the turn's words
    assert calls.ids(q="apple") == []
    assert calls.ids(q="cherry") == [conversation]
    assert _terms(calls, conversation) == _terms(calls, conversation, rebuild=True)
    _sql(
        calls.settings,
        calls.tenant.id,
        "UPDATE kalimera_conversations SET analysis = analysis"
        ' || \'{"summary": "damson", "data": {"a": 2}}\''
        " WHERE tenant_id = %(t)s AND id = %(c)s",
        {"t": calls.tenant.id, "c": conversation},
    )
    assert calls.ids(q="banana") == []
    assert calls.ids(q="damson cherry") == [conversation]
    assert calls.ids(**{"data.a": "1"}) == []
    assert calls.ids(**{"data.b": "x"}) == []
    assert calls.ids(**{"data.a": "2"}) == [conversation]
    assert ("fig", 2) in _terms(calls, conversation)
    assert _terms(calls, conversation) == _terms(calls, conversation, rebuild=True)
    _sql(
        calls.settings,
        calls.tenant.id,
        "DELETE FROM kalimera_recordings WHERE tenant_id = %(t)s AND conversation_id = %(c)s"
        " AND seq = 2",
        {"t": calls.tenant.id, "c": conversation},
    )
    assert ("fig", 1) in _terms(calls, conversation)
    assert _terms(calls, conversation) == _terms(calls, conversation, rebuild=True)


def test_data_fields_compare_as_json(calls: Calls) -> None:
    four = calls.call(data={"party_size": 4, "intent": "booking", "callback": True, "code": "42"})
    four_point_o = calls.call(data={"party_size": 4.0, "intent": "Booking", "callback": False})
    text_four = calls.call(data={"party_size": "4", "code": 42, "greeting": "Καλημέρα"})
    calls.call(data={"party_size": [4], "intent": None, "nested": {"a": 1}})
    calls.call(summary="no data")
    assert calls.ids(**{"data.party_size": "4"}) == [four_point_o, four]
    assert calls.ids(**{"data.party_size": "4e0"}) == [four_point_o, four]
    assert calls.ids(**{"data.party_size": '"4"'}) == [text_four]
    assert calls.ids(**{"data.code": "42"}) == [text_four]
    assert calls.ids(**{"data.code": '"42"'}) == [four]
    assert calls.ids(**{"data.intent": "booking"}) == [four]  # strings are exact
    assert calls.ids(**{"data.intent": '"Booking"'}) == [four_point_o]
    assert calls.ids(**{"data.callback": "true"}) == [four]
    assert calls.ids(**{"data.callback": "false"}) == [four_point_o]
    assert calls.ids(**{"data.greeting": "Καλημέρα"}) == [text_four]
    assert calls.ids(**{"data.party_size": "4", "data.intent": "booking"}) == [four]
    assert calls.ids(**{"data.nested": "1"}) == []


def test_everything_together(calls: Calls) -> None:
    match = calls.call(
        transcripts=("θέλω να κλείσω τραπέζι",),
        data={"party_size": 6},
        success="pass",
        sentiment="positive",
        ended_reason="customer-ended-call",
        duration="95",
    )
    calls.call(transcripts=("θέλω τραπέζι",), data={"party_size": 6}, success="fail")
    calls.call(transcripts=("θέλω τραπέζι",), data={"party_size": 5}, success="pass")
    calls.call(transcripts=("θέλω",), data={"party_size": 6}, success="pass", duration="95")
    params = {
        "q": "Τραπέζι",
        "data.party_size": "6",
        "success": "pass",
        "sentiment": "positive",
        "ended_reason": "customer-ended-call",
        "min_duration": 90,
        "max_duration": 100,
        "agent_id": str(calls.agent),
        "status": "Active",
        "start": "2026-05-01",
    }
    assert calls.ids(**params) == [match]
    assert calls.get(**params)["total"] == 1


def test_paging_through_a_search_shows_each_call_once(calls: Calls) -> None:
    """Ties of rank (the same hits) fall back to newest first and then the id: a total order."""
    made = [
        calls.call(transcripts=(" ".join(["ticket"] * (1 + i % 3)),), success="pass")
        for i in range(13)
    ]
    calls.call(transcripts=("ticket",), success="fail")
    for params in ({"q": "ticket", "success": "pass"}, {"success": "pass"}):
        seen: list[str] = []
        for page in range(1, 6):
            body = calls.get(limit=3, page=page, **params)
            assert body["total"] == 13
            seen += [c["id"] for c in body["items"]]
        assert len(seen) == len(set(seen)) == 13
        assert set(seen) == set(made)
    assert calls.ids(q="ticket", success="pass")[:5] == [
        made[11],
        made[8],
        made[5],
        made[2],
        made[10],
    ]


def test_another_tenants_matching_call_never_appears(
    server: Server, new_tenant: Callable[..., Tenant]
) -> None:
    mine, theirs = Calls(server, new_tenant()), Calls(server, new_tenant())
    kept = mine.call(transcripts=("κράτηση",), data={"intent": "booking"}, success="pass")
    theirs.call(transcripts=("κράτηση",), data={"intent": "booking"}, success="pass")
    assert mine.ids(q="κρατηση") == [kept]
    assert mine.ids(**{"data.intent": "booking"}) == [kept]
    assert mine.get(q="κρατηση", success="pass")["total"] == 1


@pytest.mark.parametrize(
    ("params", "name"),
    [
        ({"success": "maybe"}, "success"),
        ({"success": "agree"}, "success"),
        ({"ended_reason": "hung-up"}, "ended_reason"),
        ({"sentiment": "happy"}, "sentiment"),
        ({"min_duration": "-1"}, "min_duration"),
        ({"min_duration": "soon"}, "min_duration"),
        ({"max_duration": "nan"}, "max_duration"),
        ({"max_duration": "inf"}, "max_duration"),
        ({"min_duration": "10", "max_duration": "5"}, "max_duration"),
        ({"q": ""}, "q"),
        ({"q": "x" * 201}, "q"),
        ({"q": "?! …"}, "q"),
        ({"q": "a b c d e f g h i j k"}, "q"),
        ({"data.1st": "x"}, "data.1st"),
        ({"data.": "x"}, "data."),
        ({"data.a-b": "x"}, "data.a-b"),
        ({"data." + "x" * 65: "1"}, "data." + "x" * 65),
        ({"data.intent": "null"}, "data.intent"),
        ({"data.intent": "[1]"}, "data.intent"),
        ({"data.intent": '{"a": 1}'}, "data.intent"),
        ({"data.intent": "x" * 101}, "data.intent"),
        ({"data.size": "1e100000"}, "data.size"),
        ({f"data.f{i}": "1" for i in range(6)}, "data.f5"),
        ({"q": "refund\x00"}, "q"),
        ({"data.intent": "a\x00b"}, "data.intent"),
    ],
)
def test_a_bad_filter_is_422_naming_it(calls: Calls, params: dict[str, str], name: str) -> None:
    response = calls.tenant.client.get("/kalimera/conversations", params=params)
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert [e["loc"] for e in response.json()["errors"]] == [["query", name]]


def test_a_data_field_given_twice_is_422(calls: Calls) -> None:
    response = calls.tenant.client.get(
        "/kalimera/conversations", params=[("data.intent", "a"), ("data.intent", "b")]
    )
    assert response.status_code == 422
    assert response.json()["errors"][0]["loc"] == ["query", "data.intent"]


def test_the_operator_command_indexes_calls_the_migration_left(
    calls: Calls, settings_env: dict[str, str]
) -> None:
    """A database with more calls than migration 0019 indexes itself: ``kalimera ingest
    reindex-words`` builds the terms, a batch a transaction, and the calls are found."""
    made = [calls.call(transcripts=(f"Παραγγελία {n}",), data={"n": n}) for n in range(3)]
    before = [_terms(calls, c) for c in made]
    _sql(
        calls.settings,
        calls.tenant.id,
        "DELETE FROM kalimera_conversation_terms WHERE tenant_id = %(t)s",
        {"t": calls.tenant.id},
    )
    assert calls.ids(q="παραγγελια") == []
    done = kalimera(settings_env, "ingest", "reindex-words", "--batch", "2")
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("indexed the words of ")
    assert calls.ids(q="παραγγελια") == made[::-1]
    assert calls.ids(q="παραγγελια", **{"data.n": "1"}) == [made[1]]
    assert [_terms(calls, c) for c in made] == before
