"""One batch of the rollup: claim dirty days, fit them to a row budget, recompute them.

Steps 1 to 5 of ``rollup``'s module doc, in one transaction the caller opens. Every statement
compares columns with values handed in as parameters (each claimed day's bounds as timestamptz
values): under row-level security only leakproof conditions go to an index.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

from kalimera.db import Conn, array_literal
from kalimera.statistics.measures import (
    ALL_AGENTS,
    CURRENCY,
    ENDED,
    MEASURES,
    OUTCOME_EXPRESSIONS,
    OUTCOME_MEASURES,
)

BUSY_DAY = 96
"""Conversations in a tenant's UTC day from which the day also gets hour rows."""

Pair = tuple[uuid.UUID, date]
"""A tenant and one of its UTC days."""

# Not the row comparison (tenant_id, day) > (…): it is not leakproof, so under row-level security
# it could not be an index condition and every claim would read all the marks.
_CLAIM = """
SELECT tenant_id, day FROM kalimera_stats_dirty
WHERE tenant_id >= %(after_tenant)s
  AND (tenant_id > %(after_tenant)s OR day > %(after_day)s)
  AND day < %(today)s
ORDER BY tenant_id, day
LIMIT %(limit)s
FOR UPDATE SKIP LOCKED
"""

# How many conversations the claimed days hold, walking them in order and stopping once the
# running count passes the batch's row budget: each day is counted on the (tenant_id,
# started_at) index up to budget + 1 rows, so this statement reads at most about twice the
# budget in index entries however large the days are. One row per day walked: the running count.
# The day's bounds come as timestamptz values (see _PAIRS), looked up in a subquery kept apart
# (OFFSET 0): subscripts written into the condition are not leakproof, so under row-level
# security they were no index condition and each day's count read the whole table.
_SIZE = """
WITH RECURSIVE walk(i, n) AS (
    SELECT 0, 0::bigint
    UNION ALL
    SELECT w.i + 1, w.n + (
        SELECT count(*) FROM (
            SELECT FROM kalimera_conversations c
            WHERE c.tenant_id = p.tenant_id AND c.started_at >= p.start AND c.started_at < p.stop
            LIMIT %(rows)s + 1
        ) AS d
    )
    FROM walk w
    CROSS JOIN LATERAL (
        SELECT (%(tenants)s::uuid[])[w.i + 1] AS tenant_id,
               (%(starts)s::timestamptz[])[w.i + 1] AS start,
               (%(stops)s::timestamptz[])[w.i + 1] AS stop
        OFFSET 0
    ) AS p
    WHERE w.i < cardinality(%(tenants)s::uuid[]) AND w.n <= %(rows)s
)
SELECT n FROM walk WHERE i > 0
"""

# The claimed (tenant, day) pairs with each day's bounds as timestamptz values, so that every
# range condition compares a column with a value: under row-level security only leakproof
# conditions go to an index, and AT TIME ZONE (or adding a day) is not leakproof.
_PAIRS = (
    "unnest(%(tenants)s::uuid[], %(days)s::date[], %(starts)s::timestamptz[],"
    " %(stops)s::timestamptz[]) AS p(tenant_id, day, start, stop)"
)

# The rows of the claimed days, by primary key: the agents come from kalimera_stats_rolled.
_KEYS = f"""
WITH keys AS MATERIALIZED (
    SELECT r.tenant_id, a.agent_id, p.day, p.start, p.stop
    FROM {_PAIRS}
    JOIN kalimera_stats_rolled r ON r.tenant_id = p.tenant_id AND r.day = p.day
    CROSS JOIN LATERAL unnest(r.agent_ids || %(all)s::uuid) AS a(agent_id)
)
"""  # noqa: S608 - constant SQL fragments, values are parameters

_DELETE_QUARTERS = f"""{_KEYS}
DELETE FROM kalimera_stats_quarter q USING keys k
WHERE q.tenant_id = k.tenant_id AND q.agent_id = k.agent_id
  AND q.bucket >= k.start AND q.bucket < k.stop
"""  # noqa: S608 - constant SQL fragments, values are parameters

# Outcome rows: their agents are among the day's (kalimera_stats_rolled), so the same keys.
_DELETE_OUTCOME_QUARTERS = f"""{_KEYS}
DELETE FROM kalimera_stats_outcome_quarter q USING keys k
WHERE q.tenant_id = k.tenant_id AND q.agent_id = k.agent_id
  AND q.bucket >= k.start AND q.bucket < k.stop
"""  # noqa: S608 - constant SQL fragments, values are parameters

_DELETE_OUTCOME_DAYS = f"""{_KEYS}
DELETE FROM kalimera_stats_outcome_day d USING keys k
WHERE d.tenant_id = k.tenant_id AND d.agent_id = k.agent_id AND d.day = k.day
"""  # noqa: S608 - constant SQL fragments, values are parameters

_DELETE_HOURS = f"""
DELETE FROM kalimera_stats_hour h USING {_PAIRS}
WHERE h.tenant_id = p.tenant_id
  AND h.bucket >= p.start AND h.bucket < p.stop
"""  # noqa: S608 - constant SQL fragments, values are parameters

_DELETE_ROLLED = f"""
DELETE FROM kalimera_stats_rolled r USING {_PAIRS}
WHERE r.tenant_id = p.tenant_id AND r.day = p.day
"""  # noqa: S608 - constant SQL fragments, values are parameters

_DAY_COLUMNS = ", ".join(MEASURES)
_DAY_SUMS = ", ".join(f"sum({m}) AS {m}" for m in MEASURES)
_ALL_AGENTS_SUMS = ", ".join(f"sum({m}) FILTER (WHERE agent = 'all')" for m in MEASURES)

# One pass over the claimed days' conversations (an index range scan on (tenant_id, started_at)
# per day), grouped by agent, language and bucket; both inserts read that aggregate.
_RECOMPUTE = f"""
WITH base AS MATERIALIZED (
    SELECT c.tenant_id, c.agent_id, p.day,
           coalesce(c.language, 'unknown') AS language,
           date_bin('15 minutes', c.started_at, timestamptz '2000-01-01 00:00+00') AS bucket,
           count(*)::int AS total,
           count(*) FILTER (WHERE c.profile_type = 'inbound')::int AS inbound,
           count(*) FILTER (WHERE c.status = 'Completed')::int AS completed,
           count(*) FILTER (WHERE c.status = 'Failed')::int AS failed,
           count(*) FILTER (WHERE c.sentiment = 'positive')::int AS positive,
           count(*) FILTER (WHERE c.sentiment = 'neutral')::int AS neutral,
           count(*) FILTER (WHERE c.sentiment = 'negative')::int AS negative,
           coalesce(sum(c.duration), 0) AS duration_sum,
           count(c.duration)::int AS duration_count,
           count(*) FILTER (WHERE c.duration < 30)::int AS d_0_30,
           count(*) FILTER (WHERE c.duration >= 30 AND c.duration < 60)::int AS d_30_60,
           count(*) FILTER (WHERE c.duration >= 60 AND c.duration < 180)::int AS d_1_3,
           count(*) FILTER (WHERE c.duration >= 180 AND c.duration < 300)::int AS d_3_5,
           count(*) FILTER (WHERE c.duration >= 300 AND c.duration < 600)::int AS d_5_10
    FROM {_PAIRS}
    JOIN kalimera_conversations c
      ON c.tenant_id = p.tenant_id
     AND c.started_at >= p.start AND c.started_at < p.stop
    GROUP BY 1, 2, 3, 4, 5
),
per_agent AS MATERIALIZED (
    SELECT *, count(*) OVER (PARTITION BY tenant_id, bucket) AS agents FROM (
        SELECT tenant_id, agent_id, bucket, sum(total)::int AS total,
               sum(inbound)::int AS inbound, sum(completed)::int AS completed,
               sum(failed)::int AS failed, sum(positive)::int AS positive,
               sum(neutral)::int AS neutral, sum(negative)::int AS negative,
               sum(duration_sum) AS duration_sum, sum(duration_count)::int AS duration_count,
               sum(d_0_30)::int AS d_0_30, sum(d_30_60)::int AS d_30_60, sum(d_1_3)::int AS d_1_3,
               sum(d_3_5)::int AS d_3_5, sum(d_5_10)::int AS d_5_10
        FROM base GROUP BY tenant_id, agent_id, bucket
    ) AS a
),
quarters AS (
    INSERT INTO kalimera_stats_quarter (
        tenant_id, agent_id, bucket, sole_agent, total, inbound, completed, failed, positive,
        neutral, negative, duration_sum, duration_count, d_0_30, d_30_60, d_1_3, d_3_5, d_5_10)
    SELECT tenant_id, %(all)s, bucket,
           CASE WHEN max(agents) = 1 THEN (array_agg(agent_id))[1] END,
           sum(total), sum(inbound), sum(completed), sum(failed), sum(positive), sum(neutral),
           sum(negative), sum(duration_sum), sum(duration_count), sum(d_0_30), sum(d_30_60),
           sum(d_1_3), sum(d_3_5), sum(d_5_10)
    FROM per_agent GROUP BY tenant_id, bucket
    UNION ALL
    SELECT tenant_id, agent_id, bucket, NULL, total, inbound, completed, failed, positive,
           neutral, negative, duration_sum, duration_count, d_0_30, d_30_60, d_1_3, d_3_5,
           d_5_10
    FROM per_agent WHERE agents > 1
),
hours AS (
    INSERT INTO kalimera_stats_hour (
        tenant_id, bucket, total, inbound, completed, failed, positive, neutral, negative,
        duration_sum, duration_count, d_0_30, d_30_60, d_1_3, d_3_5, d_5_10)
    SELECT tenant_id, hour, sum(total), sum(inbound), sum(completed), sum(failed),
           sum(positive), sum(neutral), sum(negative), sum(duration_sum), sum(duration_count),
           sum(d_0_30), sum(d_30_60), sum(d_1_3), sum(d_3_5), sum(d_5_10)
    FROM (
        SELECT *, date_bin('1 hour', bucket, timestamptz '2000-01-01 00:00+00') AS hour,
               sum(total) OVER (PARTITION BY tenant_id, day) AS day_total
        FROM base
    ) AS b
    WHERE day_total >= %(busy)s
    GROUP BY tenant_id, hour
),
languages AS (
    SELECT tenant_id, day, coalesce(agent_id::text, 'all') AS agent, language, sum(total)::int AS n,
           {_DAY_SUMS}
    FROM base
    GROUP BY GROUPING SETS ((tenant_id, day, agent_id, language), (tenant_id, day, language))
),
language_maps AS (
    SELECT tenant_id, day, agent, jsonb_object_agg(language, n) AS languages, {_DAY_SUMS}
    FROM languages GROUP BY tenant_id, day, agent
)
INSERT INTO kalimera_stats_rolled (
    tenant_id, day, agent_ids, languages, agent_languages, busy, {_DAY_COLUMNS}, rolled_at)
SELECT tenant_id, day, array_agg(agent::uuid) FILTER (WHERE agent <> 'all'),
       (array_agg(languages) FILTER (WHERE agent = 'all'))[1],
       jsonb_object_agg(agent, languages) FILTER (WHERE agent <> 'all'),
       sum(total) FILTER (WHERE agent = 'all') >= %(busy)s,
       {_ALL_AGENTS_SUMS},
       now()
FROM language_maps
GROUP BY tenant_id, day
RETURNING total
"""  # noqa: S608 - constant SQL fragments, values are parameters

_OUTCOME_COLUMNS = ", ".join(OUTCOME_MEASURES)

# The outcome rows of the claimed days (migration 0018), from their ended conversations: the
# measures summed per conversation and the latencies counted per output turn, at four grains
# (g: 0 agent and quarter, 1 agent and day, 2 quarter, 3 day), in one stream ordered by latency
# within each grain row, from which each row takes its sums and its histogram. The per-agent
# grains only where several agents share the quarter or the day (the all-agents row names the
# one agent otherwise, sole_agent): most quarters and days of most tenants have one, and the
# turns grouped are most of the statement's work. string_agg has no ORDER BY of its own (in
# PostgreSQL 15 each group would sort apart): it reads the rows in the window's order, the grain
# then the latency, which the grouping keeps.
_GRAIN = "g, day, bucket, agent_id, currency, tenant_id"
_OUTCOME_GRAINS = (
    # (agent, bucket, g, where, group by: {v} adds the latency)
    (
        "NULL::uuid",
        "bucket",
        "2 + GROUPING(bucket)",
        "true",
        "GROUPING SETS ((tenant_id, day, bucket, currency{v}), (tenant_id, day, currency{v}))",
    ),
    ("agent_id", "bucket", "0", "shared_quarter", "tenant_id, agent_id, day, bucket, currency{v}"),
    ("agent_id", "NULL::timestamptz", "1", "shared_day", "tenant_id, agent_id, day, currency{v}"),
)
_OUTCOME_SUMS_ARRAY = ", ".join(f"sum({m})" for m in OUTCOME_MEASURES)
_STREAM = "\n    UNION ALL\n".join(
    f"""
    SELECT tenant_id, {agent} AS agent_id, day, {bucket} AS bucket, currency, {g} AS g,
           NULL::int AS v, 0::bigint AS n,
           ARRAY[min(agent_id::text), max(agent_id::text)] AS agents,
           ARRAY[{_OUTCOME_SUMS_ARRAY}]::numeric[] AS sums
    FROM ended WHERE {where}
    GROUP BY {group.format(v="")}
    UNION ALL
    SELECT tenant_id, {agent}, day, {bucket}, currency, {g}, t.v, count(*), NULL, NULL
    FROM ended CROSS JOIN LATERAL unnest(ended.latency_rounded_ms) AS t(v)
    WHERE {where}
    GROUP BY {group.format(v=", v")}"""  # noqa: S608 - constant SQL fragments
    for agent, bucket, g, where, group in _OUTCOME_GRAINS
)

_SUMS_OF_M = ", ".join(f"m[{i}]" for i in range(1, len(OUTCOME_MEASURES) + 1))

_RECOMPUTE_OUTCOMES = f"""
WITH ended AS (
    SELECT *,
           min(agent_id::text) OVER quarter <> max(agent_id::text) OVER quarter AS shared_quarter,
           min(agent_id::text) OVER whole_day <> max(agent_id::text) OVER whole_day AS shared_day
    FROM (
        SELECT c.*, p.day FROM {_PAIRS}
        -- One index range scan per day, whatever the planner thinks of the table (OFFSET 0).
        CROSS JOIN LATERAL (
            SELECT c.tenant_id, c.agent_id,
                   date_bin('15 minutes', c.started_at, timestamptz '2000-01-01 00:00+00')
                       AS bucket,
                   {CURRENCY} COLLATE "C" AS currency, c.latency_rounded_ms,
                   {", ".join(f"{e} AS {m}" for m, e in OUTCOME_EXPRESSIONS.items())}
            FROM kalimera_conversations c
            WHERE c.tenant_id = p.tenant_id AND c.started_at >= p.start
              AND c.started_at < p.stop AND {ENDED}
            OFFSET 0
        ) AS c
    ) AS e
    WINDOW quarter AS (PARTITION BY tenant_id, bucket, currency),
           whole_day AS (PARTITION BY tenant_id, day, currency)
),
stream AS ({_STREAM}
),
running AS (
    SELECT *, sum(n) OVER (PARTITION BY {_GRAIN} ORDER BY v) AS cum FROM stream
),
rows AS MATERIALIZED (
    SELECT {_GRAIN},
           CASE WHEN g >= 2 AND max(agents[1]) = max(agents[2]) THEN max(agents[1])::uuid END
               AS sole_agent,
           max(sums) AS m,
           coalesce(string_agg(int4send(v), ''::bytea) FILTER (WHERE v IS NOT NULL), ''::bytea)
               AS lat_values,
           coalesce(string_agg(int4send(cum::int), ''::bytea) FILTER (WHERE v IS NOT NULL),
                    ''::bytea) AS lat_cum
    FROM running
    GROUP BY {_GRAIN}
),
quarters AS (
    INSERT INTO kalimera_stats_outcome_quarter (
        tenant_id, agent_id, bucket, currency, sole_agent, {_OUTCOME_COLUMNS}, lat_values,
        lat_cum)
    SELECT tenant_id, coalesce(agent_id, %(all)s), bucket, currency, sole_agent, {_SUMS_OF_M},
           lat_values, lat_cum
    FROM rows WHERE g IN (0, 2)
)
INSERT INTO kalimera_stats_outcome_day (
    tenant_id, agent_id, day, currency, sole_agent, {_OUTCOME_COLUMNS}, lat_values, lat_cum)
SELECT tenant_id, coalesce(agent_id, %(all)s), day, currency, sole_agent, {_SUMS_OF_M},
       lat_values, lat_cum
FROM rows WHERE g IN (1, 3)
"""  # noqa: S608 - constant SQL fragments, values are parameters

# Every join in a batch is a few thousand keys probing a primary key or (tenant_id, started_at):
# nested loops over index scans, whatever the statistics of tables that are being rewritten say
# (a hash join would read a whole table per batch). JIT compiles for longer than these run;
# the sorts of a batch fit in 64 MB instead of spilling to disk.
_SETTINGS = (
    "SET LOCAL enable_hashjoin = off; SET LOCAL enable_mergejoin = off; SET LOCAL jit = off;"
    " SET LOCAL work_mem = '64MB'"
)

_UNMARK = f"""
DELETE FROM kalimera_stats_dirty m USING {_PAIRS}
WHERE m.tenant_id = p.tenant_id AND m.day = p.day
"""  # noqa: S608 - constant SQL fragments, values are parameters


@dataclass(frozen=True)
class Batch:
    """What one batch rolled up: its (tenant, day) pairs, in order, and their conversations."""

    pairs: list[Pair]
    conversations: int


async def roll_up(conn: Conn, *, today: date, after: Pair, limit: int, budget: int) -> Batch | None:
    """Claim up to ``limit`` dirty days before ``today`` after ``after``, keep those that fit in
    ``budget`` conversations and recompute them; None when no day is left to claim."""
    await conn.execute(_SETTINGS)
    claimed = await _claim(conn, today=today, after=after, limit=limit)
    if not claimed:
        return None
    pairs = await _fit(conn, claimed, budget)
    return Batch(pairs=pairs, conversations=await _recompute(conn, pairs))


async def _claim(conn: Conn, *, today: date, after: Pair, limit: int) -> list[Pair]:
    cur = await conn.execute(
        _CLAIM, {"today": today, "after_tenant": after[0], "after_day": after[1], "limit": limit}
    )
    return [(row["tenant_id"], row["day"]) for row in await cur.fetchall()]


async def _fit(conn: Conn, claimed: list[Pair], budget: int) -> list[Pair]:
    """The leading claimed days whose conversations fit in ``budget`` (at least one day). The
    days left out stay locked until the batch commits and are claimed again by the next batch."""
    cur = await conn.execute(_SIZE, {**pair_arrays(claimed), "rows": budget})
    running = [int(row["n"]) for row in await cur.fetchall()]
    return claimed[: max(1, sum(1 for n in running if n <= budget))]


def pair_arrays(pairs: list[Pair]) -> dict[str, str]:
    """The pairs as the four arrays every statement of a batch reads (``_PAIRS``): tenants,
    days and each day's UTC bounds, made once a batch (``array_literal``: a batch of 4,000 days
    sent four lists to nine statements, about half a second of the worker's CPU in psycopg's
    adaptation, on the cores the database needs)."""
    return {
        "tenants": array_literal(tenant for tenant, _ in pairs),
        "days": array_literal(day for _, day in pairs),
        "starts": array_literal(_midnight(day) for _, day in pairs),
        "stops": array_literal(_midnight(day + timedelta(days=1)) for _, day in pairs),
    }


def _midnight(day: date) -> datetime:
    return datetime.combine(day, time(), UTC)


async def _recompute(conn: Conn, pairs: list[Pair]) -> int:
    """Recompute these days; returns how many conversations they hold."""
    params = {
        **pair_arrays(pairs),
        "all": ALL_AGENTS,
        "busy": BUSY_DAY,
    }
    await conn.execute(_DELETE_QUARTERS, params)
    await conn.execute(_DELETE_OUTCOME_QUARTERS, params)
    await conn.execute(_DELETE_OUTCOME_DAYS, params)
    await conn.execute(_DELETE_HOURS, params)
    await conn.execute(_DELETE_ROLLED, params)
    cur = await conn.execute(_RECOMPUTE, params)
    rows = sum(int(row["total"]) for row in await cur.fetchall())
    await conn.execute(_RECOMPUTE_OUTCOMES, params)
    await conn.execute(_UNMARK, params)
    return rows
