"""Outcomes reported by telephony: ``ended_reason``, ``cost`` and per-turn ``latency_ms``, through
PATCH, a turn's metadata or sidecar and both uploads; the idle timer's ``idle-timeout``; the
conversation's ``cost`` and ``latency`` summaries."""

from __future__ import annotations

import json
import random
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote

import httpx

from kalimera.conversations.ingest import Outcome, ingest_blob
from kalimera.services import Services
from kalimera.statistics.rollup import finalise_idle
from tests.conftest import Server, Tenant
from tests.support.audio_fixtures import fixture, wav_bytes
from tests.support.calls import Call, ingest, make_agent, put_blob, query, with_services
from tests.support.problems import assert_problem

COST = {"currency": "EUR", "telephony": 0.012, "stt": 0.004, "llm": 0.0031, "tts": 0.002}
NO_LATENCY = {"p50_ms": None, "p90_ms": None, "max_ms": None, "turns": 0}


def _start(tenant: Tenant, agent_id: uuid.UUID, **fields: Any) -> dict[str, Any]:
    body = {"agent_id": str(agent_id), "profile_type": "inbound", **fields}
    response = tenant.client.post("/kalimera/conversations", json=body)
    assert response.status_code == 201, response.text
    return response.json()  # type: ignore[no-any-return]


def _meta(**values: Any) -> dict[str, str]:
    """Blob metadata as telephony writes it: URL-encoded text, objects as JSON."""
    return {
        k: quote(v if isinstance(v, str) else json.dumps(v), safe="") for k, v in values.items()
    }


def _conversation(tenant: Tenant, conversation_id: object) -> dict[str, Any]:
    response = tenant.client.get(f"/kalimera/conversations/{conversation_id}")
    assert response.status_code == 200, response.text
    return response.json()  # type: ignore[no-any-return]


def _locs(response: httpx.Response) -> list[list[Any]]:
    return [e["loc"] for e in assert_problem(response, 422)["errors"]]  # type: ignore[attr-defined]


def _rejections(settings: Any, name: str) -> list[str]:
    rows = query(
        settings,
        "SELECT reason FROM kalimera_ingest_rejections WHERE blob_name = %(b)s",
        {"b": name},
    )
    return [r["reason"] for r in rows]


def test_a_patch_sets_the_ended_reason_and_cost_and_every_read_carries_them(
    server: Server, tenant: Tenant
) -> None:
    agent_id = make_agent(server.settings, tenant.id)
    conv = _start(tenant, agent_id)
    assert (conv["ended_reason"], conv["cost"], conv["latency"]) == (None, None, NO_LATENCY)
    url = f"/kalimera/conversations/{conv['id']}"
    done = tenant.client.patch(
        url, json={"status": "Completed", "ended_reason": "customer-ended-call", "cost": COST}
    )
    assert done.status_code == 200, done.text
    body = done.json()
    assert body["ended_reason"] == "customer-ended-call"
    # An absent component is 0; the total is the components' sum, to the digit.
    assert body["cost"] == {**COST, "other": 0.0, "total": 0.0211}
    listed = tenant.client.get("/kalimera/conversations", params={"agent_id": str(agent_id)})
    assert [(c["ended_reason"], c["cost"]) for c in listed.json()["items"]] == [
        (body["ended_reason"], body["cost"])
    ]
    one = _conversation(tenant, conv["id"])
    assert (one["ended_reason"], one["cost"], one["latency"]) == (
        body["ended_reason"],
        body["cost"],
        NO_LATENCY,
    )
    # A cost reported again replaces the stored one whole; a PATCH without them keeps both.
    again = tenant.client.patch(url, json={"cost": {"currency": "USD", "other": 1.5}}).json()
    assert again["cost"] == {
        "currency": "USD",
        "telephony": 0.0,
        "stt": 0.0,
        "llm": 0.0,
        "tts": 0.0,
        "other": 1.5,
        "total": 1.5,
    }
    renamed = tenant.client.patch(url, json={"title": "Booking"}).json()
    assert (renamed["ended_reason"], renamed["cost"]) == ("customer-ended-call", again["cost"])
    changed = tenant.client.patch(url, json={"ended_reason": "transferred"}).json()
    assert changed["ended_reason"] == "transferred"


def test_bad_outcomes_in_a_patch_are_422_naming_the_field_and_change_nothing(
    server: Server, tenant: Tenant
) -> None:
    agent_id = make_agent(server.settings, tenant.id)
    conv = _start(tenant, agent_id)
    url = f"/kalimera/conversations/{conv['id']}"
    cases: list[tuple[dict[str, Any], list[Any]]] = [
        ({"ended_reason": "hung-up"}, ["body", "ended_reason"]),
        ({"ended_reason": "idle-timeout"}, ["body", "ended_reason"]),  # the timer's, only
        ({"ended_reason": ""}, ["body", "ended_reason"]),
        ({"cost": {**COST, "stt": -0.01}}, ["body", "cost", "stt"]),
        ({"cost": {**COST, "llm": "cheap"}}, ["body", "cost", "llm"]),
        ({"cost": {**COST, "tts": 1e12}}, ["body", "cost", "tts"]),
        ({"cost": {**COST, "currency": "eur"}}, ["body", "cost", "currency"]),
        ({"cost": {**COST, "currency": "EURO"}}, ["body", "cost", "currency"]),
        ({"cost": {"telephony": 1}}, ["body", "cost", "currency"]),
        ({"cost": {**COST, "tip": 1}}, ["body", "cost", "tip"]),
        ({"cost": [1, 2]}, ["body", "cost"]),
        ({"cost": '{"currency": "EUR"}'}, ["body", "cost"]),  # an object, not JSON text
    ]
    for body, loc in cases:
        response = tenant.client.patch(url, json=body)
        assert loc in _locs(response), (body, response.text)
    # NaN and infinity are not JSON numbers, but some encoders write them.
    raw = '{"cost": {"currency": "EUR", "llm": NaN}}'
    nan = tenant.client.patch(url, content=raw, headers={"Content-Type": "application/json"})
    assert nan.status_code in (400, 422), nan.text
    after = _conversation(tenant, conv["id"])
    assert (after["ended_reason"], after["cost"], after["status"]) == (None, None, "Active")


def test_the_final_turns_metadata_and_sidecar_set_the_outcomes(call: Call) -> None:
    settings = call.settings
    first = call.name(1, "input", "wav")
    put_blob(settings, first, wav_bytes(1), _meta(transcript="Hello"))
    assert ingest(settings, first).outcome is Outcome.INGESTED
    answer = call.name(1, "output", "flac")
    put_blob(settings, answer, fixture("tone-2250ms.flac"), _meta(latency_ms="730"))
    assert ingest(settings, answer).outcome is Outcome.INGESTED
    last = call.name(2, "output", "wav")
    meta = _meta(final="true", ended_reason="agent-ended-call", cost=COST, latency_ms="455")
    put_blob(settings, last, wav_bytes(0.5), meta)
    assert ingest(settings, last).outcome is Outcome.INGESTED
    conv = _conversation(call.tenant, call.conversation_id)
    assert (conv["status"], conv["ended_reason"]) == ("Completed", "agent-ended-call")
    assert conv["cost"]["total"] == 0.0211
    # percentile_disc over [450, 730]: p50 the first, p90 the second; the max is exact.
    assert conv["latency"] == {"p50_ms": 450, "p90_ms": 730, "max_ms": 730, "turns": 2}
    assert [t["latency_ms"] for t in conv["turns"]] == [None, 730, 455]
    # A later PATCH wins, and a redelivery of the same version does not take it back.
    url = f"/kalimera/conversations/{call.conversation_id}"
    assert call.tenant.client.patch(url, json={"ended_reason": "transferred"}).is_success
    assert ingest(settings, last).outcome is Outcome.DUPLICATE
    assert _conversation(call.tenant, call.conversation_id)["ended_reason"] == "transferred"

    # The sidecar's keys win over the metadata's, as they do for the transcript.
    sidecar = f"{last.rsplit('.', 1)[0]}.json"
    cost = {"currency": "EUR", "telephony": 0.02, "other": 0.005}
    put_blob(
        settings,
        sidecar,
        json.dumps({"ended_reason": "silence-timeout", "cost": cost, "latency_ms": 1999}).encode(),
    )
    assert ingest(settings, sidecar).outcome is Outcome.INGESTED
    conv = _conversation(call.tenant, call.conversation_id)
    assert conv["ended_reason"] == "silence-timeout"
    assert conv["cost"] == {
        "currency": "EUR",
        "telephony": 0.02,
        "stt": 0.0,
        "llm": 0.0,
        "tts": 0.0,
        "other": 0.005,
        "total": 0.025,
    }
    assert conv["latency"] == {"p50_ms": 730, "p90_ms": 1990, "max_ms": 1999, "turns": 2}
    rows = query(
        settings,
        "SELECT seq, latency_ms FROM kalimera_recordings WHERE tenant_id = %(t)s"
        " AND conversation_id = %(c)s AND direction = 'output' ORDER BY seq",
        {"t": call.tenant.id, "c": call.conversation_id},
    )
    assert [(r["seq"], r["latency_ms"]) for r in rows] == [(1, 730), (2, 1999)]


def test_bad_outcomes_in_metadata_or_a_sidecar_are_listed_rejections_that_say_why(
    call: Call,
) -> None:
    settings = call.settings
    cases: list[tuple[str, dict[str, str], dict[str, Any] | None, str]] = [
        ("output", _meta(ended_reason="hung-up"), None, "ended_reason"),
        ("output", _meta(ended_reason="idle-timeout"), None, "idle timer"),
        ("output", _meta(cost="{not json"), None, "cost"),
        ("output", _meta(cost={"currency": "EUR", "stt": -1}), None, "cost.stt"),
        ("output", _meta(cost={"stt": 1}), None, "cost.currency"),
        ("output", _meta(latency_ms="-5"), None, "latency_ms"),
        ("output", _meta(latency_ms="fast"), None, "latency_ms"),
        ("output", {}, {"latency_ms": 12.5}, "latency_ms"),
        ("output", {}, {"cost": [1]}, "cost"),
        ("input", _meta(latency_ms="300"), None, "output turn"),
    ]
    for seq, (direction, meta, sidecar, said) in enumerate(cases, start=1):
        name = call.name(seq, direction, "wav")
        if sidecar is not None:
            put_blob(settings, f"{name[:-4]}.json", json.dumps(sidecar).encode())
        put_blob(settings, name, wav_bytes(0.2), meta)
        result = ingest(settings, name)
        assert result.outcome is Outcome.REJECTED, (meta, sidecar)
        assert said in result.reason, (said, result.reason)
        assert _rejections(settings, name) == [result.reason]
    assert call.conversation() is None  # nothing was written


def test_both_uploads_carry_the_outcomes_and_refuse_bad_ones(
    server: Server, tenant: Tenant
) -> None:
    settings = server.settings
    agent_id = make_agent(settings, tenant.id)
    conversation_id = str(uuid.uuid4())
    voice = f"/kalimera/ai-agent/{agent_id}/voice"

    # The multipart upload: cost travels as JSON text in its field.
    fields = {"conversation_id": conversation_id, "direction": "output", "latency_ms": "812"}
    stored = tenant.client.post(
        voice, data=fields, files={"voice_file": ("a.wav", wav_bytes(0.5), "audio/wav")}
    )
    assert stored.status_code == 202, stored.text
    assert ingest(settings, stored.json()["blob"]).outcome is Outcome.INGESTED

    # The upload URL: the outcomes become the blob's metadata headers.
    body = {
        "conversation_id": conversation_id,
        "direction": "output",
        "ext": "wav",
        "final": True,
        "ended_reason": "max-duration-reached",
        "cost": COST,
        "latency_ms": 1204,
    }
    issued = tenant.client.post(f"{voice}/upload-url", json=body)
    assert issued.status_code == 201, issued.text
    answer = issued.json()
    assert answer["headers"]["x-ms-meta-ended_reason"] == "max-duration-reached"
    assert answer["headers"]["x-ms-meta-latency_ms"] == "1204"
    data = wav_bytes(0.5)
    put = httpx.put(answer["url"], content=data, headers=answer["headers"], timeout=60)
    assert put.status_code == 201, put.text
    assert ingest(settings, answer["blob"]).outcome is Outcome.INGESTED
    conv = _conversation(tenant, conversation_id)
    assert (conv["status"], conv["ended_reason"]) == ("Completed", "max-duration-reached")
    assert conv["cost"]["total"] == 0.0211
    assert conv["latency"] == {"p50_ms": 810, "p90_ms": 1200, "max_ms": 1204, "turns": 2}

    cases: list[tuple[dict[str, Any], list[Any]]] = [
        ({"direction": "input", "latency_ms": 300}, ["body", "latency_ms"]),
        ({"direction": "output", "latency_ms": -1}, ["body", "latency_ms"]),
        ({"direction": "output", "latency_ms": 4_000_000}, ["body", "latency_ms"]),
        ({"ended_reason": "idle-timeout"}, ["body", "ended_reason"]),
        ({"ended_reason": "bye"}, ["body", "ended_reason"]),
        ({"cost": {"currency": "EUR", "tts": -2}}, ["body", "cost", "tts"]),
    ]
    for extra, loc in cases:
        bad = {"conversation_id": conversation_id, "ext": "wav", **extra}
        assert loc in _locs(tenant.client.post(f"{voice}/upload-url", json=bad)), extra
        form = {k: str(v) if not isinstance(v, dict) else json.dumps(v) for k, v in extra.items()}
        response = tenant.client.post(
            voice,
            data={"conversation_id": conversation_id, **form},
            files={"voice_file": ("b.wav", wav_bytes(0.1), "audio/wav")},
        )
        assert loc in _locs(response), (extra, response.text)
    bad_cost = tenant.client.post(
        voice,
        data={"conversation_id": conversation_id, "cost": "{oops"},
        files={"voice_file": ("b.wav", wav_bytes(0.1), "audio/wav")},
    )
    assert ["body", "cost"] in _locs(bad_cost)
    assert _conversation(tenant, conversation_id)["turn_count"] == 2


def test_the_latency_summary_over_many_turns_equals_plain_sql_and_follows_a_reupload(
    call: Call,
) -> None:
    settings = call.settings
    rng = random.Random(14)
    latencies = [rng.randrange(0, 5000) for _ in range(37)]
    latencies[5] = 1234  # values within one 10 ms step
    latencies[6] = 1239

    def name(seq: int) -> str:
        return call.name(seq, "output", "wav")

    async def ingest_all(services: Services) -> None:
        container = services.recordings
        audio = wav_bytes(0.1)
        for seq, latency in enumerate(latencies, start=1):
            meta = _meta(latency_ms=str(latency), transcript=f"answer {seq}")
            await container.upload_blob(name(seq), audio, overwrite=True, metadata=meta)
            result = await ingest_blob(services=services, blob_name=name(seq))
            assert result.outcome is Outcome.INGESTED
        # A caller turn and an output turn without a latency do not count.
        await container.upload_blob(call.name(1, "input", "wav"), audio, overwrite=True)
        await ingest_blob(services=services, blob_name=call.name(1, "input", "wav"))
        await container.upload_blob(name(len(latencies) + 1), audio, overwrite=True)
        await ingest_blob(services=services, blob_name=name(len(latencies) + 1))

    with_services(settings, ingest_all)

    truth_sql = """
        SELECT percentile_disc(0.5) WITHIN GROUP (ORDER BY latency_ms / 10 * 10) AS p50_ms,
               percentile_disc(0.9) WITHIN GROUP (ORDER BY latency_ms / 10 * 10) AS p90_ms,
               max(latency_ms) AS max_ms, count(latency_ms) AS turns
        FROM kalimera_recordings
        WHERE tenant_id = %(t)s AND conversation_id = %(c)s AND direction = 'output'
    """
    params = {"t": call.tenant.id, "c": call.conversation_id}

    def expected(values: list[int]) -> dict[str, int]:
        rounded = sorted(v // 10 * 10 for v in values)
        # percentile_disc(f): the first value whose cumulative share reaches f.
        at = {
            f: next(x for i, x in enumerate(rounded, 1) if i / len(rounded) >= f)
            for f in (0.5, 0.9)
        }
        return {"p50_ms": at[0.5], "p90_ms": at[0.9], "max_ms": max(values), "turns": len(values)}

    conv = _conversation(call.tenant, call.conversation_id)
    assert conv["latency"] == query(settings, truth_sql, params)[0] == expected(latencies)
    assert conv["turn_count"] == len(latencies) + 2

    # Telephony re-uploads one answer with another latency: the summary follows it.
    latencies[0] = 9990
    put_blob(settings, name(1), wav_bytes(0.2), _meta(latency_ms="9990"))
    assert ingest(settings, name(1)).outcome is Outcome.INGESTED
    conv = _conversation(call.tenant, call.conversation_id)
    assert conv["latency"] == query(settings, truth_sql, params)[0] == expected(latencies)
    assert conv["latency"]["max_ms"] == 9990
    turns = {(t["seq"], t["direction"]): t["latency_ms"] for t in conv["turns"]}
    assert turns[(1, "output")] == 9990
    assert turns[(1, "input")] is None

    # A turn whose new latency leaves the summary as it was still changes the conversation's
    # histogram, so the day is marked dirty for the outcome statistics.
    smallest = latencies.index(min(latencies))
    assert min(latencies) >= 10
    before = expected(latencies)
    latencies[smallest] = 0
    assert expected(latencies) == before
    marks = "DELETE FROM kalimera_stats_dirty WHERE tenant_id = %(t)s RETURNING day"
    query(settings, marks, params)
    put_blob(settings, name(smallest + 1), wav_bytes(0.2), _meta(latency_ms="0"))
    assert ingest(settings, name(smallest + 1)).outcome is Outcome.INGESTED
    row = call.conversation()
    assert row is not None
    assert row["latency_rounded_ms"] == sorted(v // 10 * 10 for v in latencies)
    assert [r["day"] for r in query(settings, marks, params)] == [row["started_at"].date()]


def test_the_idle_timer_ends_a_silent_call_with_idle_timeout_and_keeps_a_reported_reason(
    server: Server, tenant: Tenant
) -> None:
    settings = server.settings
    agent_id = make_agent(settings, tenant.id)
    long_ago = (datetime.now(UTC) - timedelta(minutes=settings.idle_minutes + 60)).isoformat()
    silent = _start(tenant, agent_id, started_at=long_ago)
    reported = _start(tenant, agent_id, started_at=long_ago)
    ended = _start(tenant, agent_id, started_at=long_ago)
    live = _start(tenant, agent_id)
    patch = tenant.client.patch
    assert patch(
        f"/kalimera/conversations/{reported['id']}", json={"ended_reason": "voicemail"}
    ).is_success
    assert patch(f"/kalimera/conversations/{ended['id']}", json={"status": "Failed"}).is_success

    async def run(services: Services) -> int:
        return await finalise_idle(await services.db(), idle_minutes=settings.idle_minutes)

    assert with_services(settings, run) >= 2
    after = {
        key: _conversation(tenant, conv["id"])
        for key, conv in {
            "silent": silent,
            "reported": reported,
            "ended": ended,
            "live": live,
        }.items()
    }
    assert (after["silent"]["status"], after["silent"]["ended_reason"]) == (
        "Completed",
        "idle-timeout",
    )
    assert (after["reported"]["status"], after["reported"]["ended_reason"]) == (
        "Completed",
        "voicemail",
    )
    assert (after["ended"]["status"], after["ended"]["ended_reason"]) == ("Failed", None)
    assert (after["live"]["status"], after["live"]["ended_reason"]) == ("Active", None)


def test_another_tenant_can_neither_see_nor_change_the_outcomes(
    server: Server, new_tenant: Callable[..., Tenant]
) -> None:
    owner, other = new_tenant(), new_tenant()
    agent_id = make_agent(server.settings, owner.id)
    conv = _start(owner, agent_id)
    url = f"/kalimera/conversations/{conv['id']}"
    assert owner.client.patch(url, json={"ended_reason": "busy", "cost": COST}).is_success
    foreign = other.client.patch(url, json={"ended_reason": "error", "cost": {"currency": "USD"}})
    assert_problem(foreign, 404)
    assert_problem(other.client.get(url), 404)
    listed = other.client.get("/kalimera/conversations").json()
    assert conv["id"] not in {c["id"] for c in listed["items"]}
    mine = _conversation(owner, conv["id"])
    assert (mine["ended_reason"], mine["cost"]["currency"]) == ("busy", "EUR")
