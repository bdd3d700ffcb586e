"""The statistics reads: rollups for clean closed days, live rows for the rest, merged.

A request names local dates ``start``..``end`` in a zone ``tz``; that is one UTC interval
``[ws, we)`` (from local midnight to local midnight). It is split into UTC ranges:

- served by the 15-minute rollups: closed UTC days (before today) without a dirty mark, when the
  zone's offsets in the window are multiples of 15 minutes (each bucket then lies in one local
  hour, so local days, weeks, months, hours and weekdays come out exact);
- served live from ``kalimera_conversations``: everything else (dirty days, today, the future,
  and the whole window in a zone with odd offsets).

Both halves produce the same columns and are summed by local period in one SQL statement, in one
REPEATABLE READ snapshot together with the read of the dirty marks, so a concurrent rollup or
write cannot make a day counted twice or not at all. Languages are rolled up per UTC day
(``kalimera_stats_rolled.languages``, ``agent_languages``), so for them the partial UTC days at
the window's edges are read live too.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, fields
from datetime import UTC, date, datetime, time, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any
from zoneinfo import ZoneInfo

from kalimera.db import Conn
from kalimera.statistics.models import (
    ByDurationBucket,
    ByProfileType,
    ByStatus,
    CallBreakdown,
    ConversationLog,
    Granularity,
    History,
    HistoryPoint,
    Realtime,
    RecentLogs,
    SentimentPercentages,
    SentimentPoint,
    SentimentStatistics,
)
from kalimera.statistics.rollup import ALL_AGENTS, MEASURES

ONE_DAY = timedelta(days=1)
QUARTER_SECONDS = 15 * 60
TENTH = Decimal("0.1")

Range = tuple[datetime, datetime]


def round1(value: Decimal) -> Decimal:
    """One decimal, half away from zero, as PostgreSQL's ``round(numeric, 1)``."""
    return value.quantize(TENTH, rounding=ROUND_HALF_UP)


def local_midnight(day: date, zone: ZoneInfo) -> datetime:
    """The first instant of local ``day`` in UTC (a midnight skipped by DST starts at the jump)."""
    return datetime.combine(day, time(), tzinfo=zone).astimezone(UTC)


@dataclass(frozen=True)
class Window:
    """Local dates ``start``..``end`` in ``tz`` as the UTC interval ``[ws, we)``."""

    tz: str
    start: date
    end: date
    ws: datetime
    we: datetime
    aligned: bool
    hourly: bool

    @classmethod
    def of(cls, tz: str, start: date, end: date) -> Window:
        zone = ZoneInfo(tz)
        ws, we = local_midnight(start, zone), local_midnight(end + ONE_DAY, zone)
        # Sample the offset at every local midnight and noon of the window: all multiples of
        # 15 minutes means 15-minute buckets fall each in one local hour (tzdata has no DST
        # change off a 15-minute mark since local mean time was abandoned).
        offsets = set()
        day = start - ONE_DAY
        while day <= end + ONE_DAY:
            for moment in (time(), time(12)):
                offset = datetime.combine(day, moment, tzinfo=zone).utcoffset()
                offsets.add(offset.total_seconds() if offset is not None else 0.5)
            day += ONE_DAY
        return cls(
            tz=tz,
            start=start,
            end=end,
            ws=ws,
            we=we,
            aligned=all(o % QUARTER_SECONDS == 0 for o in offsets),
            hourly=all(o % 3600 == 0 for o in offsets),
        )


def utc_day_start(day: date) -> datetime:
    return datetime.combine(day, time(), tzinfo=UTC)


def subtract(outer: Range, holes: list[Range]) -> list[Range]:
    """``outer`` minus the (sorted, disjoint) ``holes``, as sorted disjoint ranges."""
    lo, hi = outer
    out: list[Range] = []
    for h_lo, h_hi in holes:
        if h_hi <= lo or h_lo >= hi:
            continue
        if h_lo > lo:
            out.append((lo, h_lo))
        lo = max(lo, h_hi)
    if lo < hi:
        out.append((lo, hi))
    return out


@dataclass(frozen=True)
class Plan:
    """Which UTC ranges of a window the rollups answer and which are read live."""

    rolled: list[Range]
    hours: list[Range]
    live: list[Range]
    language_days: list[tuple[date, date]]
    language_live: list[Range]


def intersect(ranges: list[Range], days: list[date]) -> list[Range]:
    """The parts of ``ranges`` that lie in the UTC ``days``, merged, sorted."""
    out: list[Range] = []
    for day in sorted(set(days)):
        d_lo, d_hi = utc_day_start(day), utc_day_start(day) + ONE_DAY
        for lo, hi in ranges:
            lo, hi = max(lo, d_lo), min(hi, d_hi)
            if lo < hi:
                if out and out[-1][1] == lo:
                    out[-1] = (out[-1][0], hi)
                else:
                    out.append((lo, hi))
    return out


def plan(
    window: Window, *, dirty: list[date], now: datetime, busy: list[date] | None = None
) -> Plan:
    """Split the window: ``dirty`` are the tenant's dirty UTC days within it, ``busy`` its rolled
    up days with hour rows (used when the zone's offsets are whole hours)."""
    today = utc_day_start(now.astimezone(UTC).date())
    closed = (window.ws, max(window.ws, min(window.we, today)))
    holes = [(utc_day_start(d), utc_day_start(d) + ONE_DAY) for d in sorted(set(dirty))]
    clean = subtract(closed, holes)
    rolled = clean if window.aligned else []
    hours = intersect(rolled, busy or []) if window.hourly else []
    live = subtract((window.ws, window.we), rolled)
    rolled = [part for lo, hi in rolled for part in subtract((lo, hi), hours)]
    # Languages: whole UTC days only.
    language_days: list[tuple[date, date]] = []
    for lo, hi in clean:
        first = (lo + (-lo.timestamp() % 86400) * timedelta(seconds=1)).date()
        last = hi.date() - ONE_DAY  # hi is exclusive; whole days end at or before it
        if first <= last:
            language_days.append((first, last))
    whole = [(utc_day_start(a), utc_day_start(b) + ONE_DAY) for a, b in language_days]
    language_live = subtract((window.ws, window.we), whole)
    return Plan(
        rolled=rolled,
        hours=hours,
        live=live,
        language_days=language_days,
        language_live=language_live,
    )


_MEASURES = ", ".join(MEASURES)

_LIVE_MEASURES = """
    1 AS total,
    (c.profile_type = 'inbound')::int AS inbound,
    (c.status = 'Completed')::int AS completed,
    (c.status = 'Failed')::int AS failed,
    (c.sentiment = 'positive')::int AS positive,
    (c.sentiment = 'neutral')::int AS neutral,
    (c.sentiment = 'negative')::int AS negative,
    coalesce(c.duration, 0) AS duration_sum,
    (c.duration IS NOT NULL)::int AS duration_count,
    coalesce((c.duration < 30)::int, 0) AS d_0_30,
    coalesce((c.duration >= 30 AND c.duration < 60)::int, 0) AS d_30_60,
    coalesce((c.duration >= 60 AND c.duration < 180)::int, 0) AS d_1_3,
    coalesce((c.duration >= 180 AND c.duration < 300)::int, 0) AS d_3_5,
    coalesce((c.duration >= 300 AND c.duration < 600)::int, 0) AS d_5_10
"""

_AGENT_FILTER = {False: "", True: "AND c.agent_id = %(agent)s"}


def _ranges(lo: str, hi: str, table: str, where: str, columns: str) -> str:
    """Rows of ``table`` whose ``where`` holds, one index range scan per range: a LATERAL
    subquery with OFFSET 0 is run once per range, whatever the statistics of the table say."""
    return f"""
    SELECT x.* FROM unnest(%({lo})s::timestamptz[], %({hi})s::timestamptz[]) AS r(lo, hi)
    CROSS JOIN LATERAL (SELECT {columns} FROM {table} WHERE {where} OFFSET 0) AS x
"""  # noqa: S608 - constant SQL fragments, values are parameters


_IN_RANGE = "AND {t} >= r.lo AND {t} < r.hi"
_QUARTERS = "kalimera_stats_quarter q"
_Q_MEASURES = f"q.bucket AS t, {_MEASURES}"

# An agent's buckets: its own rows where several agents had calls, and the all-agents rows
# where it was the only one (see migration 0006).
_ROLLED = {
    False: _ranges(
        "rlo",
        "rhi",
        _QUARTERS,
        "q.tenant_id = %(tenant)s AND q.agent_id = %(all)s " + _IN_RANGE.format(t="q.bucket"),
        _Q_MEASURES,
    )
    + "UNION ALL"
    + _ranges(
        "hlo",
        "hhi",
        "kalimera_stats_hour h",
        "h.tenant_id = %(tenant)s " + _IN_RANGE.format(t="h.bucket"),
        f"h.bucket AS t, {_MEASURES}",
    ),
    True: _ranges(
        "rlo",
        "rhi",
        _QUARTERS,
        "q.tenant_id = %(tenant)s AND q.agent_id = %(agent)s " + _IN_RANGE.format(t="q.bucket"),
        _Q_MEASURES,
    )
    + "UNION ALL"
    + _ranges(
        "rlo",
        "rhi",
        _QUARTERS,
        "q.tenant_id = %(tenant)s AND q.agent_id = %(all)s "
        + _IN_RANGE.format(t="q.bucket")
        + " AND q.sole_agent = %(agent)s",
        _Q_MEASURES,
    ),
}

_LIVE = {
    agent: _ranges(
        "llo",
        "lhi",
        "kalimera_conversations c",
        f"c.tenant_id = %(tenant)s {_AGENT_FILTER[agent]} " + _IN_RANGE.format(t="c.started_at"),
        f"c.started_at AS t, {_LIVE_MEASURES}",
    )
    for agent in (False, True)
}


def _source(agent: bool) -> str:
    """A CTE ``src(t, measures...)``: rollup buckets of the rolled ranges, then live rows."""
    return f"""
WITH src AS (
    {_ROLLED[agent]}
    UNION ALL
    {_LIVE[agent]}
)
"""


def _sums(*columns: str) -> str:
    return ", ".join(f"sum({c}) AS {c}" for c in columns)


_ALL_SUMS = _sums(*MEASURES)

# Each series sums only what its endpoint shows (the sums are most of a request's cost).
_PERIOD_SUMS = {
    "history": _sums("total", "inbound", "completed", "failed", "duration_sum", "duration_count"),
    "sentiment": _sums("total", "positive", "neutral", "negative"),
}

_BY_PERIOD = {
    (agent, kind): _source(agent)
    + f"""
SELECT date_trunc(%(unit)s, t AT TIME ZONE %(tz)s)::date AS period, {sums}
FROM src GROUP BY 1
"""  # noqa: S608 - constant SQL fragments, values are parameters
    for agent in (False, True)
    for kind, sums in _PERIOD_SUMS.items()
}

# Local weekday and hour need only the count; the other measures are summed once for the whole
# window, without converting every row to local time (about half the cost of one query).
_BY_DOW_HOUR = {
    agent: _source(agent)
    + """
SELECT extract(isodow FROM t AT TIME ZONE %(tz)s)::int - 1 AS dow,
       extract(hour FROM t AT TIME ZONE %(tz)s)::int AS hour, sum(total) AS total
FROM src GROUP BY 1, 2
"""
    for agent in (False, True)
}

# An agent's totals (rolled records count all agents) from its rows, as the series do.
_TOTALS = {True: _source(True) + f"SELECT {_ALL_SUMS} FROM src"}  # noqa: S608

# Tenant-wide totals of a window: whole clean UTC days from their rolled record, the rest (the
# partial days at the edges, dirty days, today) live: the ranges of the language plan.
_DAY_TOTALS = f"""
SELECT {_ALL_SUMS} FROM (
    SELECT x.* FROM unnest(%(dlo)s::date[], %(dhi)s::date[]) AS r(lo, hi)
    CROSS JOIN LATERAL (
        SELECT {_MEASURES} FROM kalimera_stats_rolled d
        WHERE d.tenant_id = %(tenant)s AND d.day >= r.lo AND d.day <= r.hi OFFSET 0
    ) AS x
    UNION ALL
    {
    _ranges(
        "llo",
        "lhi",
        "kalimera_conversations c",
        "c.tenant_id = %(tenant)s " + _IN_RANGE.format(t="c.started_at"),
        _LIVE_MEASURES,
    )
}
) AS s
"""  # noqa: S608 - constant SQL fragments, values are parameters

_DAY_LANGUAGES = {False: "d.languages", True: "d.agent_languages -> %(language_key)s"}

_LANGUAGES = {
    agent: f"""
SELECT language, sum(total) AS total FROM (
    SELECT l.key AS language, l.value::int AS total
    FROM unnest(%(dlo)s::date[], %(dhi)s::date[]) AS r(lo, hi)
    CROSS JOIN LATERAL (
        SELECT {_DAY_LANGUAGES[agent]} AS languages FROM kalimera_stats_rolled d
        WHERE d.tenant_id = %(tenant)s AND d.day >= r.lo AND d.day <= r.hi OFFSET 0
    ) AS d
    CROSS JOIN LATERAL jsonb_each_text(d.languages) AS l
    UNION ALL
    {
        _ranges(
            "llo",
            "lhi",
            "kalimera_conversations c",
            f"c.tenant_id = %(tenant)s {_AGENT_FILTER[agent]} "
            + _IN_RANGE.format(t="c.started_at"),
            "coalesce(c.language, 'unknown') AS language, 1 AS total",
        )
    }
) AS x
GROUP BY language
"""  # noqa: S608 - constant SQL fragments, values are parameters
    for agent in (False, True)
}

_DAYS = """
SELECT day, true AS dirty FROM kalimera_stats_dirty
WHERE tenant_id = %(tenant)s AND day >= %(d0)s AND day <= %(d1)s
UNION ALL
SELECT day, false FROM kalimera_stats_rolled
WHERE tenant_id = %(tenant)s AND day >= %(d0)s AND day <= %(d1)s AND busy AND %(hourly)s
"""

_REALTIME = {
    agent: f"""
SELECT count(*) FILTER (WHERE c.profile_type = 'inbound') AS inbound,
       count(*) FILTER (WHERE c.profile_type = 'outbound') AS outbound,
       now() AS as_of
FROM kalimera_conversations c
WHERE c.tenant_id = %(tenant)s {_AGENT_FILTER[agent]}
  AND c.status = 'Active'
  AND c.last_activity_at >= now() - make_interval(mins => %(idle)s)
"""  # noqa: S608 - constant SQL fragments, values are parameters
    for agent in (False, True)
}

_RECENT = {
    agent: f"""
SELECT c.id, c.agent_id, c.title, c.status, c.profile_type, c.instance_id, c.from_number,
       c.to_number, c.language, c.duration, c.started_at, c.ended_at, c.last_activity_at,
       c.sentiment, c.sentiment_score, c.turn_count, c.created_at, c.updated_at
FROM kalimera_conversations c
WHERE c.tenant_id = %(tenant)s {_AGENT_FILTER[agent]}
ORDER BY c.started_at DESC, c.id DESC
LIMIT %(limit)s
"""  # noqa: S608 - constant SQL fragments, values are parameters
    for agent in (False, True)
}


async def _snapshot(conn: Conn) -> None:
    # One snapshot for the dirty marks and the sums (see the module doc). These statements read
    # a few thousand rows: compiling them (JIT, on by default) would take longer than running.
    # No parallel workers either: starting them costs more than these queries on a small server.
    await conn.execute(
        "SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY; SET LOCAL jit = off;"
        " SET LOCAL max_parallel_workers_per_gather = 0"
    )


async def _plan(
    conn: Conn,
    *,
    tenant_id: uuid.UUID,
    agent_id: uuid.UUID | None,
    window: Window,
    now: datetime | None = None,
) -> Plan:
    cur = await conn.execute(
        _DAYS,
        {
            "tenant": tenant_id,
            "d0": window.ws.date(),
            "d1": window.we.date(),
            # Hour rows count all agents.
            "hourly": window.hourly and agent_id is None,
        },
    )
    rows = await cur.fetchall()
    return plan(
        window,
        dirty=[row["day"] for row in rows if row["dirty"]],
        busy=[row["day"] for row in rows if not row["dirty"]],
        now=now or datetime.now(UTC),
    )


def _params(
    *, tenant_id: uuid.UUID, agent_id: uuid.UUID | None, window: Window, p: Plan
) -> dict[str, Any]:
    return {
        "tenant": tenant_id,
        "agent": agent_id,
        "all": ALL_AGENTS,
        "language_key": str(agent_id) if agent_id else None,
        "tz": window.tz,
        "rlo": [lo for lo, _ in p.rolled],
        "rhi": [hi for _, hi in p.rolled],
        "hlo": [lo for lo, _ in p.hours],
        "hhi": [hi for _, hi in p.hours],
        "llo": [lo for lo, _ in p.live],
        "lhi": [hi for _, hi in p.live],
    }


def periods(window: Window, granularity: Granularity) -> list[date]:
    """The natural first day of every period that intersects the window."""
    if granularity is Granularity.DAY:
        first, step = window.start, None
    elif granularity is Granularity.WEEK:
        first, step = window.start - timedelta(days=window.start.weekday()), None
    else:
        first, step = window.start.replace(day=1), "month"
    out: list[date] = []
    day = first
    while day <= window.end:
        out.append(day)
        if step == "month":
            day = (day.replace(day=28) + timedelta(days=4)).replace(day=1)
        else:
            day += timedelta(days=7 if granularity is Granularity.WEEK else 1)
    return out


@dataclass(frozen=True)
class Sums:
    """The summed measures of a set of conversations (a period, a local hour, a window)."""

    total: int = 0
    inbound: int = 0
    completed: int = 0
    failed: int = 0
    positive: int = 0
    neutral: int = 0
    negative: int = 0
    duration_sum: Decimal = Decimal(0)
    duration_count: int = 0
    d_0_30: int = 0
    d_30_60: int = 0
    d_1_3: int = 0
    d_3_5: int = 0
    d_5_10: int = 0

    @classmethod
    def of(cls, row: dict[str, Any]) -> Sums:
        values: dict[str, Any] = {
            f.name: Decimal(row[f.name]) if f.name == "duration_sum" else int(row[f.name])
            for f in fields(cls)
            if f.name in row
        }
        return cls(**values)

    def __add__(self, other: Sums) -> Sums:
        return Sums(
            **{f.name: getattr(self, f.name) + getattr(other, f.name) for f in fields(self)}
        )

    @property
    def avg_duration(self) -> float | None:
        if not self.duration_count:
            return None
        return float(round1(self.duration_sum / self.duration_count))

    @property
    def unknown_sentiment(self) -> int:
        return self.total - self.positive - self.neutral - self.negative


async def _series(
    conn: Conn,
    *,
    tenant_id: uuid.UUID,
    agent_id: uuid.UUID | None,
    window: Window,
    granularity: Granularity,
    kind: str,
) -> list[tuple[date, Sums]]:
    """Every period that intersects the window with its sums (zeros for an empty one)."""
    await _snapshot(conn)
    p = await _plan(conn, tenant_id=tenant_id, agent_id=agent_id, window=window)
    params = _params(tenant_id=tenant_id, agent_id=agent_id, window=window, p=p)
    params["unit"] = granularity.value
    cur = await conn.execute(_BY_PERIOD[agent_id is not None, kind], params)
    rows = {row["period"]: Sums.of(row) for row in await cur.fetchall()}
    return [(period, rows.get(period, Sums())) for period in periods(window, granularity)]


async def history(
    conn: Conn,
    *,
    tenant_id: uuid.UUID,
    agent_id: uuid.UUID | None,
    window: Window,
    granularity: Granularity,
) -> History:
    series = await _series(
        conn,
        tenant_id=tenant_id,
        agent_id=agent_id,
        window=window,
        granularity=granularity,
        kind="history",
    )
    return History(
        granularity=granularity,
        series=[
            HistoryPoint(
                period_start=period,
                inbound=s.inbound,
                outbound=s.total - s.inbound,
                total=s.total,
                completed=s.completed,
                failed=s.failed,
                total_duration=float(s.duration_sum),
                avg_duration=s.avg_duration,
            )
            for period, s in series
        ],
    )


def _percent(count: int, total: int) -> float:
    return float(round1(Decimal(count * 100) / total)) if total else 0.0


async def sentiment(
    conn: Conn,
    *,
    tenant_id: uuid.UUID,
    agent_id: uuid.UUID | None,
    window: Window,
    granularity: Granularity,
) -> SentimentStatistics:
    series = await _series(
        conn,
        tenant_id=tenant_id,
        agent_id=agent_id,
        window=window,
        granularity=granularity,
        kind="sentiment",
    )
    whole = sum((s for _, s in series), Sums())
    counts = {
        "positive": whole.positive,
        "neutral": whole.neutral,
        "negative": whole.negative,
        "unknown": whole.unknown_sentiment,
    }
    return SentimentStatistics(
        **counts,
        total=whole.total,
        percentages=SentimentPercentages(
            **{key: _percent(n, whole.total) for key, n in counts.items()}
        ),
        series=[
            SentimentPoint(
                period_start=period,
                positive=s.positive,
                neutral=s.neutral,
                negative=s.negative,
                unknown=s.unknown_sentiment,
                total=s.total,
            )
            for period, s in series
        ],
    )


async def call_breakdown(
    conn: Conn, *, tenant_id: uuid.UUID, agent_id: uuid.UUID | None, window: Window
) -> CallBreakdown:
    await _snapshot(conn)
    p = await _plan(conn, tenant_id=tenant_id, agent_id=agent_id, window=window)
    params = _params(tenant_id=tenant_id, agent_id=agent_id, window=window, p=p)
    cur = await conn.execute(_BY_DOW_HOUR[agent_id is not None], params)
    rows = await cur.fetchall()
    if agent_id is not None:
        cur = await conn.execute(_TOTALS[True], params)
        totals = await cur.fetchone()
    params |= {
        "dlo": [lo for lo, _ in p.language_days],
        "dhi": [hi for _, hi in p.language_days],
        "llo": [lo for lo, _ in p.language_live],
        "lhi": [hi for _, hi in p.language_live],
    }
    if agent_id is None:
        cur = await conn.execute(_DAY_TOTALS, params)
        totals = await cur.fetchone()
    assert totals is not None
    cur = await conn.execute(_LANGUAGES[agent_id is not None], params)
    languages = {row["language"]: int(row["total"]) for row in await cur.fetchall()}

    by_hour, by_weekday = [0] * 24, [0] * 7
    for row in rows:
        by_hour[row["hour"]] += int(row["total"])
        by_weekday[row["dow"]] += int(row["total"])
    # An empty window sums to NULLs.
    whole = Sums.of({k: v for k, v in totals.items() if v is not None})
    w = whole
    bucketed = w.d_0_30 + w.d_30_60 + w.d_1_3 + w.d_3_5 + w.d_5_10
    return CallBreakdown(
        by_status=ByStatus(
            Active=w.total - w.completed - w.failed, Completed=w.completed, Failed=w.failed
        ),
        by_profile_type=ByProfileType(inbound=w.inbound, outbound=w.total - w.inbound),
        by_hour=by_hour,
        by_weekday=by_weekday,
        by_duration_bucket=ByDurationBucket(
            d_0_30=w.d_0_30,
            d_30_60=w.d_30_60,
            d_1_3=w.d_1_3,
            d_3_5=w.d_3_5,
            d_5_10=w.d_5_10,
            d_10=w.duration_count - bucketed,
            unknown=w.total - w.duration_count,
        ),
        by_language=languages,
        avg_duration=w.avg_duration,
        total=w.total,
    )


async def realtime(
    conn: Conn, *, tenant_id: uuid.UUID, agent_id: uuid.UUID | None, idle_minutes: int
) -> Realtime:
    cur = await conn.execute(
        _REALTIME[agent_id is not None],
        {"tenant": tenant_id, "agent": agent_id, "idle": idle_minutes},
    )
    row = await cur.fetchone()
    assert row is not None
    return Realtime(
        active_inbound=row["inbound"],
        active_outbound=row["outbound"],
        active_total=row["inbound"] + row["outbound"],
        as_of=row["as_of"],
    )


async def recent_logs(
    conn: Conn, *, tenant_id: uuid.UUID, agent_id: uuid.UUID | None, limit: int
) -> RecentLogs:
    cur = await conn.execute(
        _RECENT[agent_id is not None], {"tenant": tenant_id, "agent": agent_id, "limit": limit}
    )
    return RecentLogs(items=[ConversationLog(**row) for row in await cur.fetchall()])
