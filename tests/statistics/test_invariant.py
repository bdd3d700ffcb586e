"""The invariant of statistics.md: every number the API returns equals the ground truth.

Hypothesis writes random conversations for two tenants, rolls up, makes late edits, deletions
and late inserts (sometimes rolling up again, sometimes not), then asks every endpoint with a
random zone, range, granularity and agent filter, and compares every field with one plain SQL
query per statistic over ``kalimera_conversations``.
"""

from __future__ import annotations

import threading
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from itertools import accumulate
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kalimera.settings import Settings
from kalimera.statistics.measures import REASONS, Histogram
from kalimera.statistics.windows import quarter_floor
from tests.conftest import Server, make_token
from tests.statistics.conftest import Conv, Db, rollup

ZONES = [
    "UTC",
    "Europe/Athens",
    "Asia/Kolkata",  # +05:30
    "Asia/Kathmandu",  # +05:45
    "America/New_York",
    "Australia/Lord_Howe",  # a 30-minute DST shift
    "Pacific/Chatham",  # +12:45 / +13:45
]
DURATIONS = [
    None,
    Decimal("0"),
    Decimal("29.999"),
    Decimal("30"),
    Decimal("59.999"),
    Decimal("60"),
    Decimal("179.999"),
    Decimal("180"),
    Decimal("300"),
    Decimal("599.999"),
    Decimal("600"),
    Decimal("3600.125"),
    Decimal("0.05"),
    Decimal("12.345"),
]
NOW = datetime.now(UTC)
TODAY = NOW.date()
MIDNIGHT = datetime(TODAY.year, TODAY.month, TODAY.day, tzinfo=UTC)
EPOCH = MIDNIGHT - timedelta(days=40)
SPAN_SECONDS = int((NOW - EPOCH).total_seconds()) - 60


@st.composite
def instants(draw: st.DrawFn) -> datetime:
    """Random instants in the last 40 days, often on a 15-minute mark, a local midnight, in
    one of a few busy quarters or today (which intraday runs roll up in part)."""
    kind = draw(st.sampled_from(["any", "quarter", "half_past_six", "busy", "today"]))
    seconds = draw(st.integers(0, SPAN_SECONDS))
    if kind == "today":
        seconds = SPAN_SECONDS - seconds % max(1, int((NOW - MIDNIGHT).total_seconds()))
    if kind == "busy":  # a few busy quarters, where several agents share a bucket
        seconds = draw(st.sampled_from([5, 17, 33])) * 86400 + 10 * 3600 + seconds % 900
    at = EPOCH + timedelta(seconds=seconds)
    if kind == "quarter":
        at = at.replace(minute=at.minute // 15 * 15, second=0)
    elif kind == "half_past_six":  # midnight in Asia/Kolkata
        at = at.replace(hour=18, minute=30, second=0) - timedelta(
            seconds=draw(st.sampled_from([0, 1]))
        )
    return min(at, NOW - timedelta(seconds=1))


LIKERT = ["strongly_disagree", "disagree", "neutral", "agree", "strongly_agree"]
# Latencies rounded down to 10 ms, a few values often so that percentiles fall on ties.
LATENCY = st.one_of(
    st.sampled_from([0, 10, 500, 510, 800, 1200]), st.integers(0, 400).map(lambda n: n * 10)
)
COSTS = st.one_of(
    st.none(),
    st.fixed_dictionaries(
        {"currency": st.sampled_from(["EUR", "EUR", "EUR", "USD"])},
        optional={
            part: st.sampled_from([0, 0.001, 0.0125, 0.5, 1.25, 3])
            for part in ("telephony", "stt", "llm", "tts", "other")
        },
    ),
)


@st.composite
def verdicts(draw: st.DrawFn) -> dict[str, Any]:
    """An analysis status and a verdict of one of the three rubrics (or none)."""
    rubric = draw(st.sampled_from([None, "pass_fail", "pass_fail", "score_1_10", "likert_5"]))
    return {
        "analysis_status": draw(
            st.sampled_from([None, "pending", "done", "done", "failed", "skipped"])
        ),
        "success_rubric": rubric,
        "success_result": draw(st.sampled_from(["pass", "fail"]))
        if rubric == "pass_fail"
        else draw(st.sampled_from(LIKERT))
        if rubric == "likert_5"
        else None,
        "success_score": draw(st.integers(1, 10)) if rubric == "score_1_10" else None,
        "analysis_cost": draw(
            st.sampled_from([None, Decimal("0"), Decimal("0.000125"), Decimal("0.0042")])
        ),
    }


@st.composite
def conversations(draw: st.DrawFn, tenants: list[uuid.UUID], agents: list[uuid.UUID]) -> Conv:
    index = draw(st.integers(0, len(agents) - 1))
    status = draw(st.sampled_from(["Completed", "Completed", "Failed", "Active"]))
    started = draw(instants())
    idle = draw(st.sampled_from([timedelta(minutes=5), timedelta(hours=5)]))
    return Conv(
        tenant_id=tenants[index % len(tenants)],
        agent_id=agents[index],
        started_at=started,
        status=status,
        profile_type=draw(st.sampled_from(["inbound", "outbound"])),
        language=draw(st.sampled_from(["en", "el", "de", None])),
        duration=draw(st.sampled_from(DURATIONS)),
        sentiment=draw(st.sampled_from(["positive", "neutral", "negative", "unknown"])),
        # Active ones: recently heard from or long idle (never near the idle boundary).
        last_activity_at=max(started, NOW - idle) if status == "Active" else started,
        ended_reason=draw(st.sampled_from([None, *REASONS])),
        cost=draw(COSTS),
        latencies=draw(st.lists(LATENCY, max_size=6)),
        **draw(verdicts()),
    )


@st.composite
def scenarios(draw: st.DrawFn) -> dict[str, Any]:
    tenants = [uuid.uuid4(), uuid.uuid4()]
    agents = [uuid.uuid4() for _ in range(4)]  # agents 0, 2 -> tenant 0; 1, 3 -> tenant 1
    first = draw(st.lists(conversations(tenants, agents), max_size=40))
    late = draw(st.lists(conversations(tenants, agents), max_size=10))
    edits = draw(
        st.lists(
            st.tuples(
                st.integers(0, 10_000),
                st.sampled_from(
                    [
                        "status",
                        "sentiment",
                        "duration",
                        "move",
                        "delete",
                        "agent",
                        "reason",
                        "cost",
                        "latency",
                        "verdict",
                    ]
                ),
                instants(),
                st.sampled_from(DURATIONS),
            ),
            min_size=1,
            max_size=12,
        )
    )
    start = TODAY - timedelta(days=draw(st.integers(-2, 42)))
    return {
        "tenants": tenants,
        "agents": agents,
        "first": first,
        "late": late,
        "edits": edits,
        "rollup_again": draw(st.booleans()),
        # The quarter-hourly run over today: after the first rollup, after the late writes.
        "today_first": draw(st.booleans()),
        "today_again": draw(st.booleans()),
        # UTC twice as often: every closed day is then a whole day of its period.
        "tz": draw(st.sampled_from(["UTC", *ZONES])),
        "granularity": draw(st.sampled_from(["day", "week", "month"])),
        "range": draw(
            st.one_of(
                st.just(None),
                st.tuples(st.just(start), st.integers(0, 45).map(lambda n: start + timedelta(n))),
            )
        ),
        "agent": draw(st.sampled_from([None, 0, 2])),
        "limit": draw(st.integers(1, 100)),
    }


def _edit(db: Db, rows: list[Conv], edit: tuple[int, str, datetime, Decimal | None]) -> None:
    if not rows:
        return
    index, kind, at, duration = edit
    row = rows[index % len(rows)]
    key = {"t": row.tenant_id, "i": row.id}
    sql = {
        "status": "UPDATE kalimera_conversations SET status = CASE status WHEN 'Completed'"
        " THEN 'Failed' ELSE 'Completed' END WHERE tenant_id = %(t)s AND id = %(i)s",
        "sentiment": "UPDATE kalimera_conversations SET sentiment = CASE sentiment WHEN"
        " 'positive' THEN 'negative' ELSE 'positive' END WHERE tenant_id = %(t)s AND id = %(i)s",
        "duration": "UPDATE kalimera_conversations SET duration = %(d)s"
        " WHERE tenant_id = %(t)s AND id = %(i)s",
        "move": "UPDATE kalimera_conversations SET started_at = %(at)s,"
        " last_activity_at = greatest(last_activity_at, %(at)s)"
        " WHERE tenant_id = %(t)s AND id = %(i)s",
        "delete": "DELETE FROM kalimera_conversations WHERE tenant_id = %(t)s AND id = %(i)s",
        "agent": "UPDATE kalimera_conversations SET agent_id = %(a)s"
        " WHERE tenant_id = %(t)s AND id = %(i)s",
        # Late outcomes: telephony's PATCH, a re-uploaded turn, a new analysis.
        "reason": "UPDATE kalimera_conversations SET ended_reason = CASE WHEN ended_reason"
        " IS NULL THEN 'busy' WHEN ended_reason = 'busy' THEN 'voicemail' END"
        " WHERE tenant_id = %(t)s AND id = %(i)s",
        "cost": "UPDATE kalimera_conversations SET cost = CASE WHEN cost IS NULL THEN"
        """ '{"currency": "EUR", "llm": 0.25}'::jsonb END WHERE tenant_id = %(t)s AND id = %(i)s""",
        "latency": "UPDATE kalimera_conversations SET latency_rounded_ms ="
        " latency_rounded_ms || %(ms)s::int WHERE tenant_id = %(t)s AND id = %(i)s",
        "verdict": "UPDATE kalimera_conversations SET analysis_status = 'done',"
        " success_rubric = 'pass_fail', success_result = CASE success_result WHEN 'pass' THEN"
        " 'fail' ELSE 'pass' END, success_score = NULL,"
        " analysis_cost = coalesce(analysis_cost, 0) + 0.001"
        " WHERE tenant_id = %(t)s AND id = %(i)s",
    }[kind]
    ms = int(duration or 0) * 10
    db.execute(sql, {**key, "d": duration, "at": at, "a": uuid.uuid4(), "ms": ms})


# --- ground truth: one plain query per statistic ------------------------------------------

IN_RANGE = """
    c.tenant_id = %(tenant)s
    AND (%(agent)s::uuid IS NULL OR c.agent_id = %(agent)s)
    AND (c.started_at AT TIME ZONE %(tz)s)::date BETWEEN %(start)s AND %(end)s
"""

PERIODS = """
    SELECT generate_series(date_trunc(%(g)s, %(start)s::timestamp), %(end)s::timestamp,
                           ('1 ' || %(g)s)::interval)::date AS period
"""

TRUTH_HISTORY = f"""
SELECT p.period,
       count(c.id) FILTER (WHERE c.profile_type = 'inbound') AS inbound,
       count(c.id) FILTER (WHERE c.profile_type = 'outbound') AS outbound,
       count(c.id) AS total,
       count(c.id) FILTER (WHERE c.status = 'Completed') AS completed,
       count(c.id) FILTER (WHERE c.status = 'Failed') AS failed,
       coalesce(sum(c.duration), 0) AS total_duration,
       round(avg(c.duration), 1) AS avg_duration
FROM ({PERIODS}) p
LEFT JOIN kalimera_conversations c
  ON date_trunc(%(g)s, c.started_at AT TIME ZONE %(tz)s)::date = p.period AND {IN_RANGE}
GROUP BY p.period ORDER BY p.period
"""  # noqa: S608

TRUTH_SENTIMENT_SERIES = f"""
SELECT p.period,
       count(c.id) FILTER (WHERE c.sentiment = 'positive') AS positive,
       count(c.id) FILTER (WHERE c.sentiment = 'neutral') AS neutral,
       count(c.id) FILTER (WHERE c.sentiment = 'negative') AS negative,
       count(c.id) FILTER (WHERE c.sentiment = 'unknown') AS unknown,
       count(c.id) AS total
FROM ({PERIODS}) p
LEFT JOIN kalimera_conversations c
  ON date_trunc(%(g)s, c.started_at AT TIME ZONE %(tz)s)::date = p.period AND {IN_RANGE}
GROUP BY p.period ORDER BY p.period
"""  # noqa: S608

TRUTH_SENTIMENT = f"""
SELECT label, count(c.id) AS n,
       coalesce(round(count(c.id) * 100.0 / nullif(sum(count(c.id)) OVER (), 0), 1), 0) AS pct
FROM unnest(ARRAY['positive', 'neutral', 'negative', 'unknown']) AS label
LEFT JOIN kalimera_conversations c ON c.sentiment = label AND {IN_RANGE}
GROUP BY label
"""  # noqa: S608

TRUTH_BY_STATUS = f"""
SELECT s AS key, count(c.id) AS n
FROM unnest(ARRAY['Active', 'Completed', 'Failed']) AS s
LEFT JOIN kalimera_conversations c ON c.status = s AND {IN_RANGE}
GROUP BY s
"""  # noqa: S608

TRUTH_BY_PROFILE = f"""
SELECT s AS key, count(c.id) AS n
FROM unnest(ARRAY['inbound', 'outbound']) AS s
LEFT JOIN kalimera_conversations c ON c.profile_type = s AND {IN_RANGE}
GROUP BY s
"""  # noqa: S608

TRUTH_BY_HOUR = f"""
SELECT h AS key, count(c.id) AS n
FROM generate_series(0, 23) AS h
LEFT JOIN kalimera_conversations c
  ON extract(hour FROM c.started_at AT TIME ZONE %(tz)s) = h AND {IN_RANGE}
GROUP BY h
"""  # noqa: S608

TRUTH_BY_WEEKDAY = f"""
SELECT d - 1 AS key, count(c.id) AS n
FROM generate_series(1, 7) AS d
LEFT JOIN kalimera_conversations c
  ON extract(isodow FROM c.started_at AT TIME ZONE %(tz)s) = d AND {IN_RANGE}
GROUP BY d
"""  # noqa: S608

TRUTH_BY_WEEKDAY_HOUR = f"""
SELECT d - 1 AS dow, h AS hour, count(c.id) AS n
FROM generate_series(1, 7) AS d CROSS JOIN generate_series(0, 23) AS h
LEFT JOIN kalimera_conversations c
  ON extract(isodow FROM c.started_at AT TIME ZONE %(tz)s) = d
  AND extract(hour FROM c.started_at AT TIME ZONE %(tz)s) = h AND {IN_RANGE}
GROUP BY d, h
"""  # noqa: S608

TRUTH_BY_DURATION = f"""
SELECT CASE WHEN c.duration IS NULL THEN 'unknown'
            WHEN c.duration < 30 THEN '0-30s'
            WHEN c.duration < 60 THEN '30-60s'
            WHEN c.duration < 180 THEN '1-3m'
            WHEN c.duration < 300 THEN '3-5m'
            WHEN c.duration < 600 THEN '5-10m'
            ELSE '10m+' END AS key,
       count(*) AS n
FROM kalimera_conversations c WHERE {IN_RANGE}
GROUP BY 1
"""  # noqa: S608

TRUTH_BY_LANGUAGE = f"""
SELECT coalesce(c.language, 'unknown') AS key, count(*) AS n
FROM kalimera_conversations c WHERE {IN_RANGE}
GROUP BY 1
"""  # noqa: S608

TRUTH_TOTALS = f"""
SELECT count(*) AS total, round(avg(c.duration), 1) AS avg_duration
FROM kalimera_conversations c WHERE {IN_RANGE}
"""  # noqa: S608

TRUTH_REALTIME = """
SELECT count(*) FILTER (WHERE profile_type = 'inbound') AS inbound,
       count(*) FILTER (WHERE profile_type = 'outbound') AS outbound
FROM kalimera_conversations
WHERE tenant_id = %(tenant)s AND (%(agent)s::uuid IS NULL OR agent_id = %(agent)s)
  AND status = 'Active' AND last_activity_at >= now() - make_interval(mins => %(idle)s)
"""

TRUTH_RECENT = """
SELECT id FROM kalimera_conversations
WHERE tenant_id = %(tenant)s AND (%(agent)s::uuid IS NULL OR agent_id = %(agent)s)
ORDER BY started_at DESC, id DESC LIMIT %(limit)s
"""


ENDED_ROWS = f"""
SELECT date_trunc(%(g)s, c.started_at AT TIME ZONE %(tz)s)::date AS period, c.*,
       CASE WHEN c.cost IS NULL AND c.analysis_cost IS NULL THEN NULL
            ELSE coalesce((c.cost->>'telephony')::numeric, 0)
                 + coalesce((c.cost->>'stt')::numeric, 0)
                 + coalesce((c.cost->>'llm')::numeric, 0) + coalesce((c.cost->>'tts')::numeric, 0)
                 + coalesce((c.cost->>'other')::numeric, 0) + coalesce(c.analysis_cost, 0)
       END AS total_cost
FROM kalimera_conversations c
WHERE {IN_RANGE} AND c.status IN ('Completed', 'Failed')
"""  # noqa: S608

# One row per period and one for the whole range (period NULL).
TRUTH_OUTCOMES = f"""
SELECT period, count(*) AS ended,
       count(*) FILTER (WHERE analysis_status = 'done') AS analysed,
       count(*) FILTER (WHERE success_rubric = 'pass_fail') AS success_evaluated,
       count(*) FILTER (WHERE success_rubric = 'pass_fail' AND success_result = 'pass')
           AS success_pass,
       round(100.0 * count(*) FILTER (WHERE success_rubric = 'pass_fail'
                                      AND success_result = 'pass')
             / nullif(count(*) FILTER (WHERE success_rubric = 'pass_fail'), 0), 1) AS success_rate,
       round(avg(success_score) FILTER (WHERE success_rubric = 'score_1_10'), 2) AS avg_score
FROM ({ENDED_ROWS}) AS c
GROUP BY GROUPING SETS ((period), ())
"""  # noqa: S608

TRUTH_REASONS = f"""
SELECT period, coalesce(ended_reason, 'unknown') AS reason, count(*) AS n
FROM ({ENDED_ROWS}) AS c
GROUP BY GROUPING SETS ((period, 2), (2))
"""  # noqa: S608

TRUTH_COSTS = f"""
SELECT period, coalesce(cost->>'currency', 'unknown') AS currency, sum(total_cost) AS total,
       round(avg(total_cost), 6) AS avg, count(*) AS n
FROM ({ENDED_ROWS}) AS c
WHERE total_cost IS NOT NULL
GROUP BY GROUPING SETS ((period, 2), (2))
"""  # noqa: S608

TRUTH_LATENCY = f"""
SELECT period, percentile_disc(0.5) WITHIN GROUP (ORDER BY t.v) AS p50,
       percentile_disc(0.9) WITHIN GROUP (ORDER BY t.v) AS p90
FROM ({ENDED_ROWS}) AS c CROSS JOIN LATERAL unnest(c.latency_rounded_ms) AS t(v)
GROUP BY GROUPING SETS ((period), ())
"""  # noqa: S608


def _num(value: Any) -> Decimal | None:
    """A JSON number or a SQL numeric, comparable exactly."""
    return None if value is None else Decimal(str(value)).normalize()


def _counts(db: Db, sql: str, params: dict[str, Any]) -> dict[Any, int]:
    return {row["key"]: row["n"] for row in db.execute(sql, params)}


def check_outcomes(
    db: Db, client: httpx.Client, query: dict[str, Any], p: dict[str, Any], g: str
) -> None:
    """The outcome statistics, every period and the totals, against plain SQL."""
    got = client.get("/kalimera/statistics/outcomes", params={**query, "granularity": g})
    assert got.status_code == 200, got.text
    body = got.json()
    assert body["granularity"] == g
    truth = db.execute(TRUTH_HISTORY, {**p, "g": g})  # the periods
    assert [x["period_start"] for x in body["series"]] == [r["period"].isoformat() for r in truth]
    q = {**p, "g": g}
    counts = {r["period"]: r for r in db.execute(TRUTH_OUTCOMES, q)}
    reasons: dict[Any, dict[str, int]] = {}
    for r in db.execute(TRUTH_REASONS, q):
        reasons.setdefault(r["period"], {})[r["reason"]] = r["n"]
    costs: dict[Any, dict[str, dict[str, Any]]] = {}
    for r in db.execute(TRUTH_COSTS, q):
        costs.setdefault(r["period"], {})[r["currency"]] = r
    latency = {r["period"]: r for r in db.execute(TRUTH_LATENCY, q)}
    points = [(date.fromisoformat(x["period_start"]), x) for x in body["series"]]
    for period, point in [*points, (None, body["totals"])]:
        row = counts.get(period, {})
        for key in ("ended", "analysed", "success_evaluated", "success_pass"):
            assert point[key] == row.get(key, 0), (period, key, point, row)
        for key in ("success_rate", "avg_score"):
            assert _num(point[key]) == _num(row.get(key)), (period, key, point, row)
        assert point["by_ended_reason"] == dict.fromkeys(REASONS, 0) | reasons.get(period, {})
        mine = costs.get(period, {})
        assert {
            k: (_num(v["total"]), _num(v["avg"]), v["conversations"])
            for k, v in point["cost_by_currency"].items()
        } == {k: (_num(v["total"]), _num(v["avg"]), v["n"]) for k, v in mine.items()}, (
            period,
            point,
            mine,
        )
        one = next(iter(mine.items())) if len(mine) == 1 else None
        if not mine:
            assert (point["cost_total"], point["cost_avg"], point["currency"]) == (0, None, None)
        elif one is None:
            assert (point["cost_total"], point["cost_avg"], point["currency"]) == (None, None, None)
        else:
            assert _num(point["cost_total"]) == _num(one[1]["total"])
            assert _num(point["cost_avg"]) == _num(one[1]["avg"])
            assert point["currency"] == (None if one[0] == "unknown" else one[0])
        lat = latency.get(period, {})
        assert point["latency_p50_ms"] == lat.get("p50"), (period, point, lat)
        assert point["latency_p90_ms"] == lat.get("p90"), (period, point, lat)


def check_everything(
    db: Db, client: httpx.Client, settings_: Settings, s: dict[str, Any], tenant: uuid.UUID
) -> None:
    tz = s["tz"]
    agent = s["agents"][s["agent"]] if s["agent"] is not None else None
    if s["range"] is None:
        from zoneinfo import ZoneInfo

        end: date = datetime.now(ZoneInfo(tz)).date()
        start: date = end - timedelta(days=29)
        query: dict[str, Any] = {"tz": tz}
    else:
        start, end = s["range"]
        query = {"tz": tz, "start": start.isoformat(), "end": end.isoformat()}
    if agent is not None:
        query["agent_id"] = str(agent)
    p = {"tenant": tenant, "agent": agent, "tz": tz, "start": start, "end": end}
    g = s["granularity"]

    # history
    got = client.get("/kalimera/statistics/history", params={**query, "granularity": g})
    assert got.status_code == 200, got.text
    body = got.json()
    assert body["granularity"] == g
    truth = db.execute(TRUTH_HISTORY, {**p, "g": g})
    assert [x["period_start"] for x in body["series"]] == [r["period"].isoformat() for r in truth]
    for point, row in zip(body["series"], truth, strict=True):
        for key in ("inbound", "outbound", "total", "completed", "failed"):
            assert point[key] == row[key], (key, point, row)
        assert _num(point["total_duration"]) == _num(row["total_duration"]), (point, row)
        assert _num(point["avg_duration"]) == _num(row["avg_duration"]), (point, row)

    # sentiment
    got = client.get("/kalimera/statistics/sentiment", params={**query, "granularity": g})
    assert got.status_code == 200, got.text
    body = got.json()
    truth = db.execute(TRUTH_SENTIMENT_SERIES, {**p, "g": g})
    assert [x["period_start"] for x in body["series"]] == [r["period"].isoformat() for r in truth]
    for point, row in zip(body["series"], truth, strict=True):
        for key in ("positive", "neutral", "negative", "unknown", "total"):
            assert point[key] == row[key], (key, point, row)
    labels = {row["label"]: row for row in db.execute(TRUTH_SENTIMENT, p)}
    assert body["total"] == sum(row["n"] for row in labels.values())
    for label, row in labels.items():
        assert body[label] == row["n"], (label, body, row)
        assert _num(body["percentages"][label]) == _num(row["pct"]), (label, body, row)

    # call breakdown
    got = client.get("/kalimera/statistics/call-breakdown", params=query)
    assert got.status_code == 200, got.text
    body = got.json()
    assert body["by_status"] == _counts(db, TRUTH_BY_STATUS, p)
    assert body["by_profile_type"] == _counts(db, TRUTH_BY_PROFILE, p)
    hours = _counts(db, TRUTH_BY_HOUR, p)
    assert body["by_hour"] == [hours[h] for h in range(24)]
    weekdays = _counts(db, TRUTH_BY_WEEKDAY, p)
    assert body["by_weekday"] == [weekdays[d] for d in range(7)]
    cells = {(r["dow"], r["hour"]): r["n"] for r in db.execute(TRUTH_BY_WEEKDAY_HOUR, p)}
    assert body["by_weekday_hour"] == [[cells[d, h] for h in range(24)] for d in range(7)]
    buckets = dict.fromkeys(["0-30s", "30-60s", "1-3m", "3-5m", "5-10m", "10m+", "unknown"], 0)
    assert body["by_duration_bucket"] == buckets | _counts(db, TRUTH_BY_DURATION, p)
    assert body["by_language"] == _counts(db, TRUTH_BY_LANGUAGE, p)
    totals = db.execute(TRUTH_TOTALS, p)[0]
    assert body["total"] == totals["total"]
    assert _num(body["avg_duration"]) == _num(totals["avg_duration"])

    # realtime
    got = client.get("/kalimera/statistics/realtime", params=query)
    assert got.status_code == 200, got.text
    body = got.json()
    truth_rt = db.execute(TRUTH_REALTIME, {**p, "idle": settings_.idle_minutes})[0]
    assert body["active_inbound"] == truth_rt["inbound"]
    assert body["active_outbound"] == truth_rt["outbound"]
    assert body["active_total"] == truth_rt["inbound"] + truth_rt["outbound"]
    assert body["as_of"].endswith("Z")

    check_outcomes(db, client, query, p, g)

    # recent logs
    got = client.get(
        "/kalimera/statistics/recent-logs",
        params={k: v for k, v in query.items() if k in ("tz", "agent_id")} | {"limit": s["limit"]},
    )
    assert got.status_code == 200, got.text
    items = got.json()["items"]
    assert [x["id"] for x in items] == [
        str(r["id"]) for r in db.execute(TRUTH_RECENT, {**p, "limit": s["limit"]})
    ]
    assert all(x["started_at"].endswith("Z") for x in items)


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(s=scenarios())
def test_every_statistic_equals_the_ground_truth_through_rollups_edits_and_time_zones(
    db: Db, server: Server, settings: Settings, s: dict[str, Any]
) -> None:
    db.insert(s["first"])
    rollup(settings)
    if s["today_first"]:
        rollup(settings, through=quarter_floor(datetime.now(UTC)))
    rows = list(s["first"])
    for edit in s["edits"]:
        _edit(db, rows, edit)
    db.insert(s["late"])
    if s["rollup_again"]:
        rollup(settings)
    if s["today_again"]:
        rollup(settings, through=quarter_floor(datetime.now(UTC)))
    tenant = s["tenants"][0]
    token = make_token(settings, tenant)
    with httpx.Client(
        base_url=server.url, timeout=30, headers={"Authorization": f"Bearer {token}"}
    ) as client:
        check_everything(db, client, settings, s, tenant)


@pytest.mark.parametrize(
    "tz", ["UTC", "Europe/Athens", "Asia/Kolkata", "Asia/Kathmandu", "America/New_York"]
)
def test_busy_days_answered_from_tail_rows_equal_the_ground_truth(
    db: Db, server: Server, settings: Settings, tz: str
) -> None:
    tenants = [uuid.uuid4(), uuid.uuid4()]
    agents = [uuid.uuid4() for _ in range(4)]
    rows = []
    for days_ago, count in ((3, 150), (10, 110), (11, 20)):
        day = TODAY - timedelta(days=days_ago)
        first = datetime(day.year, day.month, day.day, tzinfo=UTC)
        rows += [
            Conv(
                tenants[0],
                agents[2 * (i % 2)],
                first + timedelta(minutes=9 * i, seconds=i),
                status=["Completed", "Failed", "Active"][i % 3],
                profile_type=["inbound", "outbound"][i % 2],
                language=["en", "el", None][i % 3],
                duration=DURATIONS[i % len(DURATIONS)],
                sentiment=["positive", "neutral", "negative", "unknown"][i % 4],
                ended_reason=[None, *REASONS][i % 13],
                cost=[None, {"currency": "EUR", "telephony": i / 1000}][i % 2],
                latencies=[(i * 37) % 90 * 10 for _ in range(i % 4)],
                analysis_status=["done", None, "pending"][i % 3],
                success_rubric=["pass_fail", "score_1_10", None][i % 3],
                success_result=["pass", None, None][i % 3]
                if i % 5
                else ["fail", None, None][i % 3],
                success_score=[None, i % 10 + 1, None][i % 3],
                analysis_cost=Decimal(i) / 10000 if i % 7 else None,
            )
            for i in range(count)
        ]
    db.insert(rows)
    rollup(settings)
    busy = db.execute(
        "SELECT day FROM kalimera_stats_rolled WHERE tenant_id = %(t)s AND busy ORDER BY day",
        {"t": tenants[0]},
    )
    assert [r["day"] for r in busy] == [TODAY - timedelta(days=n) for n in (10, 3)]
    # The busy days have outcome tail rows too (all agents, by currency): from each half hour
    # after midnight to the end of the day, those that hold an ended conversation; the quiet day
    # has none.
    tails = db.execute(
        "SELECT bucket, currency, ended, lat_values, lat_cum FROM kalimera_stats_outcome_tail"
        " WHERE tenant_id = %(t)s ORDER BY 1, 2",
        {"t": tenants[0]},
    )
    expected = db.execute(
        "SELECT date_trunc('day', c.started_at, 'UTC') + h * interval '30 minutes' AS bucket,"
        " coalesce(c.cost->>'currency', '') AS currency, count(DISTINCT c.id) AS ended,"
        " array_agg(v) FILTER (WHERE v IS NOT NULL) AS latencies"
        " FROM kalimera_conversations c CROSS JOIN generate_series(1, 47) AS h"
        " LEFT JOIN LATERAL unnest(c.latency_rounded_ms) AS v ON true"
        " WHERE c.tenant_id = %(t)s AND c.status IN ('Completed', 'Failed')"
        " AND (c.started_at AT TIME ZONE 'UTC')::date = ANY(%(days)s)"
        " AND c.started_at >= date_trunc('day', c.started_at, 'UTC') + h * interval '30 minutes'"
        " GROUP BY 1, 2 ORDER BY 1, 2",
        {"t": tenants[0], "days": [r["day"] for r in busy]},
    )
    assert len(tails) > 20

    def histogram(latencies: list[int]) -> tuple[list[int], list[int]]:
        counts = sorted(Counter(latencies).items())
        return [v for v, _ in counts], list(accumulate(n for _, n in counts))

    assert [
        (
            r["bucket"],
            r["currency"],
            r["ended"],
            (lambda h: (list(h.values), list(h.cumulative)))(
                Histogram.of(r["lat_values"], r["lat_cum"])
            ),
        )
        for r in tails
    ] == [
        (r["bucket"], r["currency"], r["ended"], histogram(r["latencies"] or [])) for r in expected
    ]
    # A late edit leaves one busy day dirty (answered live), the other read from tail rows.
    db.execute(
        "UPDATE kalimera_conversations SET sentiment = 'negative' WHERE tenant_id = %(t)s"
        " AND id = %(i)s",
        {"t": tenants[0], "i": rows[-1].id},
    )
    token = make_token(settings, tenants[0])
    with httpx.Client(
        base_url=server.url, timeout=30, headers={"Authorization": f"Bearer {token}"}
    ) as client:
        for granularity, agent in (("day", None), ("week", None), ("day", 0)):
            scenario = {
                "tz": tz,
                "agents": agents,
                "agent": agent,
                "range": (TODAY - timedelta(days=12), TODAY),
                "granularity": granularity,
                "limit": 100,
            }
            check_everything(db, client, settings, scenario, tenants[0])


@contextmanager
def writing(settings: Settings, tenant: uuid.UUID, conv: Callable[[], Conv]) -> Iterator[None]:
    """A writer thread for the body of the block: a new conversation, then one of the tenant's
    completed ones failed, one statement each (as ingestion writes), over and over."""
    assert settings.database_url is not None
    writer_db = Db(settings.database_url.get_secret_value())
    done = threading.Event()

    def write() -> None:
        while not done.is_set():
            writer_db.insert([conv()])
            writer_db.execute(
                "UPDATE kalimera_conversations SET status = 'Failed' WHERE tenant_id = %(t)s"
                " AND id = (SELECT id FROM kalimera_conversations WHERE tenant_id = %(t)s"
                " AND status = 'Completed' LIMIT 1)",
                {"t": tenant},
            )

    writer = threading.Thread(target=write)
    writer.start()
    try:
        yield
    finally:
        done.set()
        writer.join()
        writer_db.close()


def test_writes_racing_the_rollup_are_never_lost(
    db: Db, server: Server, settings: Settings
) -> None:
    import random

    tenant, agents = uuid.uuid4(), [uuid.uuid4() for _ in range(4)]
    days = [TODAY - timedelta(days=n) for n in range(1, 9)]
    rng = random.Random(7)

    def conv() -> Conv:
        day = rng.choice(days)
        at = datetime(day.year, day.month, day.day, tzinfo=UTC) + timedelta(
            seconds=rng.randrange(86400)
        )
        return Conv(tenant, agents[rng.randrange(0, 4, 2)], at, status="Completed")

    db.insert([conv() for _ in range(60)])
    rollup(settings)
    with writing(settings, tenant, conv):
        for _ in range(8):
            rollup(settings, batch_pairs=1)

    token = make_token(settings, tenant)
    with httpx.Client(
        base_url=server.url, timeout=30, headers={"Authorization": f"Bearer {token}"}
    ) as client:
        scenario = {
            "tz": "Asia/Kolkata",
            "agents": agents,
            "agent": None,
            "range": (days[-1] - timedelta(days=1), TODAY),
            "granularity": "day",
            "limit": 5,
        }
        check_everything(db, client, settings, scenario, tenant)  # dirty days answered live
        rollup(settings)
        check_everything(db, client, settings, scenario, tenant)  # all of it from rollups
        check_everything(db, client, settings, scenario | {"agent": 0, "tz": "UTC"}, tenant)


def test_writes_racing_the_intraday_rollup_are_never_lost(
    db: Db, server: Server, settings: Settings
) -> None:
    """Today's calls keep arriving and changing while the quarter-hourly run rolls today up:
    a write it could not see lowers the day's changed_from (or, holding the mark, keeps the run
    from claiming the day), so the quarters it touched are read live (migration 0028)."""
    import random

    tenant, agents = uuid.uuid4(), [uuid.uuid4() for _ in range(4)]
    rng = random.Random(11)
    midnight = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)

    def conv() -> Conv:
        span = max(1, int((datetime.now(UTC) - midnight).total_seconds()))
        at = midnight + timedelta(seconds=rng.randrange(span))
        return Conv(tenant, agents[rng.randrange(0, 4, 2)], at, status="Completed")

    db.insert([conv() for _ in range(60)])
    # Today's days of the other tests' tenants rolled up first, in one batch: the racing runs
    # below, a day a batch, then find only this tenant's day to redo.
    rollup(settings, through=quarter_floor(datetime.now(UTC)))
    with writing(settings, tenant, conv):
        for _ in range(8):
            rollup(settings, through=quarter_floor(datetime.now(UTC)), batch_pairs=1)

    token = make_token(settings, tenant)
    scenario = {
        "tz": "UTC",
        "agents": agents,
        "agent": None,
        "range": (TODAY - timedelta(days=1), TODAY),
        "granularity": "day",
        "limit": 5,
    }
    with httpx.Client(
        base_url=server.url, timeout=30, headers={"Authorization": f"Bearer {token}"}
    ) as client:
        check_everything(db, client, settings, scenario, tenant)
        cut = quarter_floor(datetime.now(UTC))
        rollup(settings, through=cut)
        (mark,) = db.execute(
            "SELECT rolled_to, changed_from FROM kalimera_stats_dirty WHERE tenant_id = %(t)s",
            {"t": tenant},
        )
        # In the day's first quarter there is nothing closed to roll up.
        assert mark["rolled_to"] == (cut if cut > midnight else None)
        assert mark["changed_from"] is None or cut == midnight
        check_everything(db, client, settings, scenario, tenant)  # today's quarters rolled up
        check_everything(db, client, settings, scenario | {"tz": "Asia/Kolkata"}, tenant)
        check_everything(db, client, settings, scenario | {"agent": 0}, tenant)
