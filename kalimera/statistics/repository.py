"""SQL for the statistics reads: rollup rows for clean closed days, live rows for the rest.

``windows.plan`` says which UTC ranges of a window each source answers; the statements here read
both halves, which produce the same columns, and sum them by local period in one statement.
The service runs them in one REPEATABLE READ snapshot together with the read of the dirty marks
(``snapshot``, then ``window_plan``), so a concurrent rollup or write cannot make a day counted
twice or not at all. Every statement is scoped by ``tenant_id``; nothing here commits.

Over 400 lines because each endpoint's read is one long statement (rollup half, live half, local
periods) and they share the plan's halves: kept together so one change to the windows changes
every read alike.
"""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime
from typing import Any, Literal

from psycopg.rows import DictRow, tuple_row

from kalimera.db import Conn, array_literal
from kalimera.statistics.measures import (
    ALL_AGENTS,
    COST_MEASURES,
    COUNTED,
    CURRENCY,
    ENDED,
    MEASURES,
    OUTCOME_EXPRESSIONS,
    Histogram,
    OutcomeSums,
    Sums,
)
from kalimera.statistics.models import Granularity
from kalimera.statistics.windows import (
    QUARTER_SECONDS,
    QUARTERS_A_WEEK,
    Moved,
    PeriodPlan,
    Plan,
    Range,
    Window,
    offsets,
    plan,
    quarter_floor,
)

SeriesKind = Literal["history", "sentiment"]

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
# A tail row (migration 0030) runs from its bucket to the end of its UTC day: a range of the
# plan's tails names the one that starts where the range does.
_AT_START = "AND {t} = r.lo"
_QUARTERS = "kalimera_stats_quarter q"
_Q_MEASURES = f"q.bucket AS t, {_MEASURES}"

# An agent's buckets: its own rows where several agents had calls, and the all-agents rows
# where it was the only one (see migration 0006).
_ROLLED = {
    False: _ranges(
        "rlo",
        "rhi",
        _QUARTERS,
        "q.tenant_id = %(tenant_id)s AND q.agent_id = %(all)s " + _IN_RANGE.format(t="q.bucket"),
        _Q_MEASURES,
    )
    + "UNION ALL"
    + _ranges(
        "hlo",
        "hhi",
        "kalimera_stats_hour h",
        "h.tenant_id = %(tenant_id)s " + _IN_RANGE.format(t="h.bucket"),
        f"h.bucket AS t, {_MEASURES}",
    ),
    True: _ranges(
        "rlo",
        "rhi",
        _QUARTERS,
        "q.tenant_id = %(tenant_id)s AND q.agent_id = %(agent)s " + _IN_RANGE.format(t="q.bucket"),
        _Q_MEASURES,
    )
    + "UNION ALL"
    + _ranges(
        "rlo",
        "rhi",
        _QUARTERS,
        "q.tenant_id = %(tenant_id)s AND q.agent_id = %(all)s "
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
        f"c.tenant_id = %(tenant_id)s {_AGENT_FILTER[agent]} " + _IN_RANGE.format(t="c.started_at"),
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
_PERIOD_COLUMNS = {
    "history": ("total", "inbound", "completed", "failed", "duration_sum", "duration_count"),
    "sentiment": ("total", "positive", "neutral", "negative"),
}

_LOCAL_PERIOD = "date_trunc(%(unit)s, {t} AT TIME ZONE %(tz)s)::date"


# ``windows.Moved`` ranges, sent as epoch seconds. Kept apart (OFFSET 0): to_timestamp is not
# leakproof, and written into the range condition it would keep that from the index under
# row-level security.
_MOVED_RANGES = """(
    SELECT to_timestamp(lo) AS lo, to_timestamp(hi) AS hi, period, kept
    FROM unnest(%({lo})s::bigint[], %({hi})s::bigint[], %({lo}_period)s::date[],
                %({lo}_kept)s::boolean[]) AS m(lo, hi, period, kept)
    OFFSET 0
) AS m"""


def _moved_rows(lo: str, hi: str, table: str, where: str, *, tails: bool = False) -> str:
    """The rollup rows (alias ``q``) of ``windows.Moved`` ranges (alias ``m``) where ``where``
    holds, one index scan per range: those in the range, or (``tails``) the tail row that
    starts where it does."""
    match = "q.bucket = m.lo" if tails else "q.bucket >= m.lo AND q.bucket < m.hi"
    return f"""{_MOVED_RANGES.format(lo=lo, hi=hi)}
    CROSS JOIN LATERAL (
        SELECT * FROM {table} q
        WHERE q.tenant_id = %(tenant_id)s {where} AND {match}
        OFFSET 0
    ) AS q"""  # noqa: S608 - constant SQL fragments, values are parameters


def _moved(lo: str, hi: str, table: str, where: str, columns: str) -> str:
    """Rollup rows (alias ``q``) of ``windows.Moved`` ranges where ``where`` holds, each taken out
    of the plan's period and, when kept, added to its own: ``period``, ``sign`` (-1 or +1),
    ``whole`` (whether it counts in the window's totals: a kept row is added and taken away
    within the window) and ``columns``."""
    return f"""
    SELECT s.period, s.sign, NOT m.kept AS whole, {columns}
    FROM {_moved_rows(lo, hi, table, where)}
    CROSS JOIN LATERAL (
        VALUES (m.period, -1), ({_LOCAL_PERIOD.format(t="q.bucket")}, 1)
    ) AS s(period, sign)
    WHERE s.sign < 0 OR m.kept"""  # noqa: S608 - constant SQL fragments, values are parameters


def _by_period(agent: bool, columns: tuple[str, ...]) -> str:
    """Sums of ``columns`` by local period: the plan's rows as they lie, and (all agents) its
    whole days from their rolled record, less the moved rows, which count in their own period
    (``windows.PeriodPlan``)."""
    cols = ", ".join(columns)
    qcols = ", ".join(f"q.{c}" for c in columns)
    signed = ", ".join(f"sum(sign * {c}) AS {c}" for c in columns)
    whole_days = f"""
    UNION ALL
    SELECT r.period, 1, {cols}
    FROM unnest(%(dlo)s::date[], %(dhi)s::date[], %(dperiod)s::date[]) AS r(lo, hi, period)
    CROSS JOIN LATERAL (
        SELECT {cols} FROM kalimera_stats_rolled d
        WHERE d.tenant_id = %(tenant_id)s AND d.day >= r.lo AND d.day <= r.hi OFFSET 0
    ) AS d
    UNION ALL
    SELECT period, sign, {cols} FROM (
        {_moved("mlo", "mhi", "kalimera_stats_quarter", "AND q.agent_id = %(all)s", qcols)}
        UNION ALL
        {_moved("mhlo", "mhhi", "kalimera_stats_hour", "", qcols)}
    ) AS m"""  # noqa: S608 - constant SQL fragments, values are parameters
    sums = f"""
SELECT period, {signed} FROM (
    SELECT {_LOCAL_PERIOD.format(t="t")} AS period, 1 AS sign, {cols} FROM src
    {"" if agent else whole_days}
) AS x
GROUP BY period
"""  # noqa: S608 - constant SQL fragments, values are parameters
    return _source(agent) + sums


_BY_PERIOD = {
    (agent, kind): _by_period(agent, columns)
    for agent in (False, True)
    for kind, columns in _PERIOD_COLUMNS.items()
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

# Where every offset of the window is a multiple of 15 minutes: counts by the stretch of the
# window with one offset (``seg``, from ``windows.offsets``) and the UTC quarter of the week
# (``w``, 0 at Thursday 00:00 UTC, the epoch's), in integer arithmetic; ``dow_hour_counts`` turns
# them into local weekdays and hours. Converting every row to local time (AT TIME ZONE, extract)
# cost three times as much: 35,000 quarter rows a year in a half-hour zone.
_BY_QUARTER_OF_WEEK = {
    agent: _source(agent)
    + """
SELECT width_bucket(t, %(segments)s::timestamptz[]) AS seg,
       mod(mod(floor(date_part('epoch', t) / 900)::bigint, 672) + 672, 672)::int AS w,
       sum(total)::bigint AS total
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
        WHERE d.tenant_id = %(tenant_id)s AND d.day >= r.lo AND d.day <= r.hi OFFSET 0
    ) AS x
    UNION ALL
    {
    _ranges(
        "llo",
        "lhi",
        "kalimera_conversations c",
        "c.tenant_id = %(tenant_id)s " + _IN_RANGE.format(t="c.started_at"),
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
        WHERE d.tenant_id = %(tenant_id)s AND d.day >= r.lo AND d.day <= r.hi OFFSET 0
    ) AS d
    CROSS JOIN LATERAL jsonb_each_text(d.languages) AS l
    UNION ALL
    {
        _ranges(
            "llo",
            "lhi",
            "kalimera_conversations c",
            f"c.tenant_id = %(tenant_id)s {_AGENT_FILTER[agent]} "
            + _IN_RANGE.format(t="c.started_at"),
            "coalesce(c.language, 'unknown') AS language, 1 AS total",
        )
    }
) AS x
GROUP BY language
"""  # noqa: S608 - constant SQL fragments, values are parameters
    for agent in (False, True)
}

# The dirty days (with how far an intraday run's rows are current: migration 0028) and the busy
# clean ones.
_DAYS = """
SELECT day, true AS dirty,
       CASE WHEN rolled_to IS NOT NULL THEN least(rolled_to, changed_from) END AS rolled_to
FROM kalimera_stats_dirty
WHERE tenant_id = %(tenant_id)s AND day >= %(d0)s AND day <= %(d1)s
UNION ALL
SELECT day, false, NULL FROM kalimera_stats_rolled
WHERE tenant_id = %(tenant_id)s AND day >= %(d0)s AND day <= %(d1)s AND busy AND %(all_agents)s
"""

_REALTIME = {
    agent: f"""
SELECT count(*) FILTER (WHERE c.profile_type = 'inbound') AS inbound,
       count(*) FILTER (WHERE c.profile_type = 'outbound') AS outbound,
       now() AS as_of
FROM kalimera_conversations c
WHERE c.tenant_id = %(tenant_id)s {_AGENT_FILTER[agent]}
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
WHERE c.tenant_id = %(tenant_id)s {_AGENT_FILTER[agent]}
ORDER BY c.started_at DESC, c.id DESC
LIMIT %(limit)s
"""  # noqa: S608 - constant SQL fragments, values are parameters
    for agent in (False, True)
}


# --- outcome statistics (migration 0018) ---------------------------------------------------

# An agent's outcome rows: its own where several agents share the row, the all-agents rows
# where it was the only one (as for kalimera_stats_quarter).
_OUTCOME_AGENT = {
    False: ("{a}.agent_id = %(all)s",),
    True: ("{a}.agent_id = %(agent)s", "{a}.agent_id = %(all)s AND {a}.sole_agent = %(agent)s"),
}


def _outcome_buckets(
    table: str,
    ranges: tuple[str, str],
    moved: tuple[str, str],
    where: str,
    columns: str,
    *,
    tails: bool = False,
) -> list[str]:
    """Outcome rows of a bucket table (quarters, or tails: migration 0030) where ``where`` (on
    alias ``q``) holds, as ``_outcome_rolled``'s parts: those of the plan's ``ranges`` as they
    lie (``period`` the local one) and those of its ``moved`` ranges (``_outcome_moved``);
    ``tails``: a range names the tail row that starts with it (``_moved_rows``)."""
    rows = _ranges(
        *ranges,
        f"{table} q",
        f"q.tenant_id = %(tenant_id)s {where} "
        + (_AT_START if tails else _IN_RANGE).format(t="q.bucket"),
        "q.*",
    )
    period = _LOCAL_PERIOD.format(t="x.bucket")
    return [
        f"SELECT {period} AS period, 1, true, NULL::date, {columns.format(x='x')}"  # noqa: S608
        f" FROM ({rows}) AS x",
        f"""
    SELECT m.period, -1, NOT m.kept AS whole,
           CASE WHEN m.kept THEN {_LOCAL_PERIOD.format(t="q.bucket")} END,
           {columns.format(x="q")}
    FROM {_moved_rows(*moved, table, where, tails=tails)}""",  # noqa: S608 - constant SQL
    ]


def _outcome_rolled(agent: bool, columns: str) -> str:
    """Outcome rollup rows of the plan's whole days (``period`` from the plan), its quarters and
    tails (``period`` the local one) and its moved quarters and tails (taken out of the plan's
    period, added to their own, ``also``, when kept): ``period``, ``sign`` (+1 or -1), ``whole``
    (whether the row counts in the window's totals: a kept moved row is added and taken away
    within the window), ``also`` (NULL but for kept moved rows) and ``columns`` (on alias
    ``x``). Tail rows are all agents': an agent's plan has none."""
    tails = ("hlo", "hhi"), ("mhlo", "mhhi")
    parts = (
        []
        if agent
        else _outcome_buckets("kalimera_stats_outcome_tail", *tails, "", columns, tails=True)
    )
    for who in _OUTCOME_AGENT[agent]:
        parts.append(f"""
    SELECT r.period, 1 AS sign, true AS whole, NULL::date AS also, {columns.format(x="d")}
    FROM unnest(%(dlo)s::date[], %(dhi)s::date[], %(dperiod)s::date[]) AS r(lo, hi, period)
    CROSS JOIN LATERAL (
        SELECT * FROM kalimera_stats_outcome_day d
        WHERE d.tenant_id = %(tenant_id)s AND {who.format(a="d")}
          AND d.day >= r.lo AND d.day <= r.hi OFFSET 0
    ) AS d""")  # noqa: S608 - constant SQL fragments, values are parameters
        parts += _outcome_buckets(
            "kalimera_stats_outcome_quarter",
            ("rlo", "rhi"),
            ("mlo", "mhi"),
            f"AND {who.format(a='q')}",
            columns,
        )
    return "\nUNION ALL\n".join(parts)


_OUTCOME_LIVE_ROWS = {
    agent: _ranges(
        "llo",
        "lhi",
        "kalimera_conversations c",
        f"c.tenant_id = %(tenant_id)s {_AGENT_FILTER[agent]} AND {ENDED} "
        + _IN_RANGE.format(t="c.started_at"),
        "{columns}",
    )
    for agent in (False, True)
}

_OUTCOME_ORDER = (*COUNTED, *COST_MEASURES)
_OUTCOME_NULLS = ", ".join(
    f"NULL::{'numeric' if m == 'cost_sum' else 'integer'}" for m in _OUTCOME_ORDER
)

# One statement, one read of the live conversations (today's, at the least) for both halves of
# the answer. The rollup rows come as they are stored, counts and latency histogram together (a
# period's rows are added up in Python, which costs less than PostgreSQL grouping them again);
# the live rows are summed per period and currency, and their turns made into one histogram per
# period the rollup's way, each in rows of their own (the other half's columns NULL).
_OUTCOMES = {
    agent: f"""
WITH live AS MATERIALIZED (
    {
        _OUTCOME_LIVE_ROWS[agent].format(
            columns=f"{_LOCAL_PERIOD.format(t='c.started_at')} AS period,"
            f" {CURRENCY} AS currency, c.latency_rounded_ms, "
            + ", ".join(f"{OUTCOME_EXPRESSIONS[m]} AS {m}" for m in _OUTCOME_ORDER)
        )
    }
)
{
        _outcome_rolled(
            agent,
            "{x}.currency, "
            + ", ".join(f"{{x}}.{m}" for m in _OUTCOME_ORDER)
            + ", {x}.lat_values, {x}.lat_cum",
        )
    }
UNION ALL
SELECT period, 1, true, NULL, currency, {_sums(*_OUTCOME_ORDER)}, NULL::bytea, NULL::bytea
FROM live GROUP BY period, currency
UNION ALL
SELECT period, 1, true, NULL, NULL, {_OUTCOME_NULLS},
       string_agg(int4send(v), ''::bytea ORDER BY v),
       string_agg(int4send(cum::int), ''::bytea ORDER BY v)
FROM (
    SELECT period, v, sum(n) OVER (PARTITION BY period ORDER BY v) AS cum FROM (
        SELECT l.period, t.v, count(*) AS n
        FROM live l CROSS JOIN LATERAL unnest(l.latency_rounded_ms) AS t(v)
        GROUP BY 1, 2
    ) AS n
) AS h
GROUP BY period
"""  # noqa: S608 - constant SQL fragments, values are parameters
    for agent in (False, True)
}


async def outcome_sums(
    conn: Conn,
    *,
    tenant_id: uuid.UUID,
    agent_id: uuid.UUID | None,
    window: Window,
    p: PeriodPlan,
    granularity: Granularity,
) -> tuple[dict[date, OutcomeSums], list[Histogram]]:
    """The outcome measures and latency histograms by local period start (an empty period has
    no entry), and the histograms of the whole window (without the moved rows that are taken
    from one of its periods and added to another)."""
    params = _period_params(tenant_id, agent_id, window, p, granularity)
    out: dict[date, OutcomeSums] = {}
    whole: list[Histogram] = []
    counted = len(COUNTED)
    async with conn.cursor(row_factory=tuple_row) as cur:
        await cur.execute(_OUTCOMES[agent_id is not None], params, binary=True)
        rows = await cur.fetchall()
        for period, sign, in_whole, also, currency, *measures, values, cumulative in rows:
            histogram = Histogram.of(values, cumulative, sign) if values else None
            if in_whole and histogram:
                whole.append(histogram)
            # A kept moved row: out of the plan's period, into its own.
            for into, way in ((period, sign),) if also is None else ((period, -1), (also, 1)):
                sums = out.get(into) or out.setdefault(into, OutcomeSums())
                if currency is not None:
                    sums.add_row(currency, measures[:counted], measures[-2], measures[-1], way)
                if histogram:
                    sums.latencies.append(
                        histogram if way == sign else histogram._replace(sign=way)
                    )
    return out, whole


async def snapshot(conn: Conn, *, bitmap_scans: bool = True) -> None:
    """The first statement of a read: one snapshot for the dirty marks and the sums.
    ``bitmap_scans=False`` for a read whose every lookup is a few rows by primary key (the
    outcomes': a tail row by its start, once per day of the window). Without statistics on the
    table, before autovacuum has analysed it (or where it is off), the planner takes a bitmap
    scan for each, which cost a year of Europe/Athens 2-3 ms more than index scans."""
    # These statements read a few thousand rows: compiling them (JIT, on by default) would take
    # longer than running. No parallel workers either: starting them costs more than these
    # queries on a small server.
    await conn.execute(
        "SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY; SET LOCAL jit = off;"
        " SET LOCAL max_parallel_workers_per_gather = 0"
        + ("" if bitmap_scans else "; SET LOCAL enable_bitmapscan = off")
    )


async def window_plan(
    conn: Conn,
    *,
    tenant_id: uuid.UUID,
    agent_id: uuid.UUID | None,
    window: Window,
    now: datetime | None = None,
) -> Plan:
    """The window's plan, from the tenant's dirty marks and busy days within it."""
    cur = await conn.execute(
        _DAYS,
        {
            "tenant_id": tenant_id,
            "d0": window.ws.date(),
            "d1": window.we.date(),
            # Hour rows count all agents.
            "all_agents": agent_id is None,
        },
    )
    rows = await cur.fetchall()
    return plan(
        window,
        dirty=[row["day"] for row in rows if row["dirty"]],
        busy=[row["day"] for row in rows if not row["dirty"]],
        now=now or datetime.now(UTC),
        # A change inside a quarter makes that whole quarter's row stale.
        rolled_to={row["day"]: quarter_floor(row["rolled_to"]) for row in rows if row["rolled_to"]},
    )


def _params(
    *, tenant_id: uuid.UUID, agent_id: uuid.UUID | None, window: Window, p: Plan
) -> dict[str, Any]:
    return {
        "tenant_id": tenant_id,
        "agent": agent_id,
        "all": ALL_AGENTS,
        "language_key": str(agent_id) if agent_id else None,
        "tz": window.tz,
        "rlo": array_literal(lo for lo, _ in p.rolled),
        "rhi": array_literal(hi for _, hi in p.rolled),
        "hlo": array_literal(lo for lo, _ in p.hours),
        "hhi": array_literal(hi for _, hi in p.hours),
        "llo": array_literal(lo for lo, _ in p.live),
        "lhi": array_literal(hi for _, hi in p.live),
    }


def _language_params(params: dict[str, Any], p: Plan) -> dict[str, Any]:
    """``params`` with the whole rolled UTC days and the live ranges of the language plan."""
    return params | {
        "dlo": array_literal(lo for lo, _ in p.language_days),
        "dhi": array_literal(hi for _, hi in p.language_days),
        "llo": array_literal(lo for lo, _ in p.language_live),
        "lhi": array_literal(hi for _, hi in p.language_live),
    }


async def period_sums(
    conn: Conn,
    *,
    tenant_id: uuid.UUID,
    agent_id: uuid.UUID | None,
    window: Window,
    p: PeriodPlan,
    granularity: Granularity,
    kind: SeriesKind,
) -> dict[date, Sums]:
    """The sums of ``kind``'s measures by local period start; an empty period has no entry."""
    params = _period_params(tenant_id, agent_id, window, p, granularity)
    cur = await conn.execute(_BY_PERIOD[agent_id is not None, kind], params)
    return {row["period"]: Sums.of(row) for row in await cur.fetchall()}


def _period_params(
    tenant_id: uuid.UUID,
    agent_id: uuid.UUID | None,
    window: Window,
    p: PeriodPlan,
    granularity: Granularity,
) -> dict[str, Any]:
    """What the reads by local period take: the plan's parts as arrays (``windows.PeriodPlan``)."""
    return {
        "tenant_id": tenant_id,
        "agent": agent_id,
        "all": ALL_AGENTS,
        "tz": window.tz,
        "unit": granularity.value,
        **_ranges_params("rlo", "rhi", p.quarters),
        **_ranges_params("hlo", "hhi", p.hours),
        **_ranges_params("llo", "lhi", p.live),
        **_days_params(p),
        **_moved_params("mlo", "mhi", p.moved_quarters),
        **_moved_params("mhlo", "mhhi", p.moved_hours),
    }


def _ranges_params(lo: str, hi: str, ranges: list[Range]) -> dict[str, str]:
    return {lo: array_literal(a for a, _ in ranges), hi: array_literal(b for _, b in ranges)}


def _days_params(p: PeriodPlan) -> dict[str, str]:
    """The plan's whole days: ``dlo``, ``dhi``, ``dperiod``."""
    return {
        "dlo": array_literal(lo for lo, _, _ in p.days),
        "dhi": array_literal(hi for _, hi, _ in p.days),
        "dperiod": array_literal(period for _, _, period in p.days),
    }


def _moved_params(lo: str, hi: str, moved: list[Moved]) -> dict[str, str]:
    """``moved`` as the four arrays ``_moved`` reads."""
    return {
        lo: array_literal(m.lo for m in moved),
        hi: array_literal(m.hi for m in moved),
        f"{lo}_period": array_literal(m.period for m in moved),
        f"{lo}_kept": array_literal(m.kept for m in moved),
    }


async def dow_hour_counts(
    conn: Conn, *, tenant_id: uuid.UUID, agent_id: uuid.UUID | None, window: Window, p: Plan
) -> list[tuple[int, int, int]]:
    """Conversations by local ISO weekday (Monday 0) and hour: (dow, hour, total) rows."""
    params = _params(tenant_id=tenant_id, agent_id=agent_id, window=window, p=p)
    if not window.aligned:
        cur = await conn.execute(_BY_DOW_HOUR[agent_id is not None], params)
        return [(row["dow"], row["hour"], int(row["total"])) for row in await cur.fetchall()]
    segments = offsets(window)
    params["segments"] = array_literal(start for start, _ in segments)
    async with conn.cursor(row_factory=tuple_row) as quarters:
        await quarters.execute(_BY_QUARTER_OF_WEEK[agent_id is not None], params)
        rows = await quarters.fetchall()
    out = []
    for seg, w, total in rows:
        local = (w + segments[seg - 1][1] // QUARTER_SECONDS) % QUARTERS_A_WEEK
        # Quarter 0 of the epoch's week is a Thursday (ISO weekday 3, Monday 0).
        out.append(((3 + local // 96) % 7, local % 96 // 4, int(total)))
    return out


async def window_sums(
    conn: Conn, *, tenant_id: uuid.UUID, agent_id: uuid.UUID | None, window: Window, p: Plan
) -> Sums:
    """Every measure summed over the whole window."""
    params = _params(tenant_id=tenant_id, agent_id=agent_id, window=window, p=p)
    if agent_id is not None:
        cur = await conn.execute(_TOTALS[True], params)
    else:
        cur = await conn.execute(_DAY_TOTALS, _language_params(params, p))
    totals = await cur.fetchone()
    assert totals is not None
    # An empty window sums to NULLs.
    return Sums.of({k: v for k, v in totals.items() if v is not None})


async def language_counts(
    conn: Conn, *, tenant_id: uuid.UUID, agent_id: uuid.UUID | None, window: Window, p: Plan
) -> dict[str, int]:
    """Conversations by language over the window (a null language counts as ``unknown``)."""
    params = _params(tenant_id=tenant_id, agent_id=agent_id, window=window, p=p)
    cur = await conn.execute(_LANGUAGES[agent_id is not None], _language_params(params, p))
    return {row["language"]: int(row["total"]) for row in await cur.fetchall()}


async def realtime(
    conn: Conn, *, tenant_id: uuid.UUID, agent_id: uuid.UUID | None, idle_minutes: int
) -> DictRow:
    """Active conversations heard from within ``idle_minutes``: ``inbound``, ``outbound``,
    ``as_of`` (the database's clock)."""
    cur = await conn.execute(
        _REALTIME[agent_id is not None],
        {"tenant_id": tenant_id, "agent": agent_id, "idle": idle_minutes},
    )
    row = await cur.fetchone()
    assert row is not None
    return row


async def recent(
    conn: Conn, *, tenant_id: uuid.UUID, agent_id: uuid.UUID | None, limit: int
) -> list[DictRow]:
    """The newest ``limit`` conversations by start time."""
    cur = await conn.execute(
        _RECENT[agent_id is not None],
        {"tenant_id": tenant_id, "agent": agent_id, "limit": limit},
    )
    return await cur.fetchall()
