"""One batch of the rollup: claim dirty days, fit them to a row budget, recompute them.

Steps 1 to 5 of ``rollup``'s module doc, in one transaction the caller opens. Every statement
compares columns with values handed in as parameters (each claimed day's bounds as timestamptz
values): under row-level security only leakproof conditions go to an index.
"""

from __future__ import annotations

import time as clock
import uuid
from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from psycopg import AsyncCursor
from psycopg.rows import DictRow

from kalimera.db import Conn, array_literal
from kalimera.statistics.measures import (
    ALL_AGENTS,
    ENDED,
    MEASURES,
    OUTCOME_EXPRESSIONS,
    OUTCOME_MEASURES,
)
from kalimera.statistics.windows import utc_day_start

BUSY_DAY = 96
"""Conversations in a tenant's UTC day from which the day also gets hour and tail rows."""

Pair = tuple[uuid.UUID, date]
"""A tenant and one of its UTC days."""

Seconds = defaultdict[str, float]
"""Seconds by kind of statement (``Statements``)."""

# Not the row comparison (tenant_id, day) > (…): it is not leakproof, so under row-level security
# it could not be an index condition and every claim would read all the marks. The closed days
# (the nightly run) or one day (an intraday run): a lower bound on day beside the upper one made
# the planner leave the tenant order, 160 ms a claim at 10M instead of 6. An intraday run leaves
# out a day already rolled up to its quarter with nothing changed below it since (a run retried,
# or run again, within the same quarter: recomputing it would write the same rows).
_CLAIM = """
SELECT tenant_id, day FROM kalimera_stats_dirty
WHERE tenant_id >= %(after_tenant)s
  AND (tenant_id > %(after_tenant)s OR day > %(after_day)s)
  AND {days}
ORDER BY tenant_id, day
LIMIT %(limit)s
FOR UPDATE SKIP LOCKED
"""
_CLAIMS = {
    False: _CLAIM.format(days="day < %(today)s"),
    True: _CLAIM.format(
        days="day = %(first)s"
        " AND (rolled_to IS NULL OR rolled_to < %(through)s OR changed_from IS NOT NULL)"
    ),
}

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

# The claimed days' rollup rows, all five tables, and their marks, in one statement (each
# statement of a batch parses the four arrays again: six statements cost a full rollup of 10M
# about 13 worker-seconds on tables still empty). The quarter and outcome rows by primary key:
# their agents come from kalimera_stats_rolled, which the same statement empties; every part of a
# statement sees one snapshot, so keys reads the rows as they were. The nightly run deletes the
# marks; an intraday run keeps them (the day is not over) and records how far its rows go:
# nothing below that has changed since, as the mark is held FOR UPDATE from the claim on
# (migration 0028).
_MARKS = {
    False: "DELETE FROM kalimera_stats_dirty m USING {pairs}",
    True: "UPDATE kalimera_stats_dirty m SET rolled_to = p.stop, changed_from = NULL FROM {pairs}",
}
_DELETE = """
WITH keys AS MATERIALIZED (
    SELECT r.tenant_id, a.agent_id, p.day, p.start, p.stop
    FROM {pairs}
    JOIN kalimera_stats_rolled r ON r.tenant_id = p.tenant_id AND r.day = p.day
    CROSS JOIN LATERAL unnest(r.agent_ids || %(all)s::uuid) AS a(agent_id)
),
quarters AS (
    DELETE FROM kalimera_stats_quarter q USING keys k
    WHERE q.tenant_id = k.tenant_id AND q.agent_id = k.agent_id
      AND q.bucket >= k.start AND q.bucket < k.stop
),
outcome_quarters AS (
    DELETE FROM kalimera_stats_outcome_quarter q USING keys k
    WHERE q.tenant_id = k.tenant_id AND q.agent_id = k.agent_id
      AND q.bucket >= k.start AND q.bucket < k.stop
),
outcome_days AS (
    DELETE FROM kalimera_stats_outcome_day d USING keys k
    WHERE d.tenant_id = k.tenant_id AND d.agent_id = k.agent_id AND d.day = k.day
),
hours AS (
    DELETE FROM kalimera_stats_hour h USING {pairs}
    WHERE h.tenant_id = p.tenant_id AND h.bucket >= p.start AND h.bucket < p.stop
),
outcome_tails AS (
    DELETE FROM kalimera_stats_outcome_tail h USING {pairs}
    WHERE h.tenant_id = p.tenant_id AND h.bucket >= p.start AND h.bucket < p.stop
),
marks AS (
    {marks}
    WHERE m.tenant_id = p.tenant_id AND m.day = p.day
)
DELETE FROM kalimera_stats_rolled r USING {pairs}
WHERE r.tenant_id = p.tenant_id AND r.day = p.day
"""
_DELETES = {
    intraday: _DELETE.format(pairs=_PAIRS, marks=marks.format(pairs=_PAIRS))
    for intraday, marks in _MARKS.items()
}

_DAY_COLUMNS = ", ".join(MEASURES)
_DAY_SUMS = ", ".join(f"sum({m}) AS {m}" for m in MEASURES)
_ALL_AGENTS_SUMS = ", ".join(f"sum({m}) FILTER (WHERE agent = 'all')" for m in MEASURES)

# One pass over the claimed days' conversations (an index range scan on (tenant_id, started_at)
# per day), grouped by agent, language and bucket; both inserts read that aggregate.
#
# A bucket that one agent holds takes that agent's row as its all-agents row; only the buckets
# that several share are summed again (per_agent: the agent rows, grouped from one sort of base
# that the window reads too). The language maps keep the day's sums per agent and language,
# though only the all-agents row's are read: agent_ids is array_agg over the maps in the order
# of their hash aggregate, that order is part of the row written, and it depends on the plan.
# Taking the day's sums from base apart (70 ms less CPU on a batch of 4,000 small days) put the
# agents of 3,899 of the 1M rollup's 295,201 days in another order.
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
        FROM (SELECT * FROM base ORDER BY tenant_id, bucket, agent_id OFFSET 0) AS b
        GROUP BY tenant_id, bucket, agent_id
    ) AS a
),
quarters AS (
    INSERT INTO kalimera_stats_quarter (
        tenant_id, agent_id, bucket, sole_agent, total, inbound, completed, failed, positive,
        neutral, negative, duration_sum, duration_count, d_0_30, d_30_60, d_1_3, d_3_5, d_5_10)
    SELECT tenant_id, %(all)s, bucket, agent_id, {_DAY_COLUMNS} FROM per_agent WHERE agents = 1
    UNION ALL
    SELECT tenant_id, %(all)s, bucket, NULL, {_DAY_SUMS}
    FROM per_agent WHERE agents > 1 GROUP BY tenant_id, bucket
    UNION ALL
    SELECT tenant_id, agent_id, bucket, NULL, {_DAY_COLUMNS} FROM per_agent WHERE agents > 1
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
# Summed as int (cost_sum is numeric): the days and the shared rows sum these sums again, and the
# sum of bigints is a numeric, slower to add (as the running counts of _histograms found).
_OUTCOME_SUMS = ", ".join(
    f"sum({m}) AS {m}" if m == "cost_sum" else f"sum({m})::int AS {m}" for m in OUTCOME_MEASURES
)

# The outcome rows of the claimed days (migrations 0018 and 0030), from their ended
# conversations: the measures summed per conversation and the latencies counted per output turn,
# at five grains (agent and quarter, quarter, agent and day, day, and the tails of a busy day).
# The per-agent grains only where several agents share the quarter or the day (the all-agents row
# names the one agent otherwise, sole_agent): most quarters and days of most tenants have one.
# Tail rows are all-agents only, and only for the days that kalimera_stats_hour has hour rows
# for (busy in kalimera_stats_rolled, which _RECOMPUTE has just written): summed per half hour,
# then each half hour into the tails of every half hour up to its own (_tails; the turn counts
# by _tail_counts).
#
# A quarter is named by one bigint, kq = (i * 128 + q) * 32768 + currency code, with i the
# claimed day's place in the batch, q its quarter (0 to 95) and the currency as a number ('' 0,
# the three letters of an ISO code, which migration 0015's check guarantees, in base 27); its
# day by the same number with q = 0, its half hour (and the tail from that half hour) with q
# rounded down to an even number.
#
# The sums are taken per agent and quarter, then per agent and day from those, each row with the
# number of agents of its quarter or day: where that is one the row is also the all-agents row,
# where it is more the rows are summed again. Each grain's histograms come from one sort of its
# turns (the ORDER BY … OFFSET 0 below), which the count per latency, the running count (a window)
# and string_agg then read in that order: string_agg has no ORDER BY of its own (in PostgreSQL 15
# each group would sort apart), it reads the rows in the window's order, which the grouping keeps.
# The histogram of a quarter or day that one agent holds is that agent's. Sorted rather than
# hashed, which the planner would choose (it takes each CTE for about one row a day): the hash
# tables (tens of MB, whose fresh pages the kernel zeroes) and a second sort of the grouped turns
# for the running counts cost a batch of 4,000 small days about 200 ms more backend CPU.
_CODES = 32_768
_DAY_STEP = 128 * _CODES
_CURRENCY_CODE = (
    "CASE WHEN c.cost IS NULL THEN 0 ELSE"
    " (ascii(substr(c.cost->>'currency', 1, 1)) - 64) * 729"
    " + (ascii(substr(c.cost->>'currency', 2, 1)) - 64) * 27"
    " + ascii(substr(c.cost->>'currency', 3, 1)) - 64 END"
)
_CURRENCY_OF_KEY = (
    f"CASE WHEN mod(s.key, {_CODES}) = 0 THEN '' ELSE"
    f" chr(64 + (mod(s.key, {_CODES}) / 729)::int)"
    f" || chr(64 + mod(mod(s.key, {_CODES}) / 27, 27)::int)"
    f" || chr(64 + mod(mod(s.key, {_CODES}), 27)::int) END"
)


def _day_of(kq: str) -> str:
    """A quarter's key to its day's."""
    return f"{kq} - mod({kq} / {_CODES}, 128) * {_CODES}"


def _half_hour_of(kq: str) -> str:
    """A quarter's key to its half hour's: the half hour's first quarter (128 is even)."""
    return f"{kq} - mod({kq} / {_CODES}, 2) * {_CODES}"


def _busy(key: str) -> str:
    """The condition that ``key`` (of a quarter, a half hour or a day) is of a day with tail
    rows."""
    return f"{key} / {_DAY_STEP} IN (SELECT i FROM busy)"  # noqa: S608 - constant SQL


def _sums(key: str, rows: str) -> str:
    """The sums of ``rows`` by ``key`` and agent, sorted once, with the number of agents of the
    key."""
    return f"""
    SELECT *, count(*) OVER (PARTITION BY key) AS agents FROM (
        SELECT key, agent_id, {_OUTCOME_SUMS}
        FROM (
            SELECT {key} AS key, agent_id, {_OUTCOME_COLUMNS} FROM {rows}
            ORDER BY 1, 2 OFFSET 0
        ) AS r
        GROUP BY key, agent_id
    ) AS s"""  # noqa: S608 - constant SQL fragments, values are parameters


def _shared(key: str, grain: str) -> str:
    """The condition that ``key`` is one that several agents share in ``grain``."""
    return f"{key} IN (SELECT key FROM {grain} WHERE agents > 1)"  # noqa: S608 - constant SQL


def _turn_counts(key: str, *, per_agent: bool, only: str | None = None) -> str:
    """(key[, agent_id], v, n): how many turns of ``ended`` answered in ``v`` ms, by ``key`` (an
    expression of kq) and, ``per_agent``, agent, only where ``only`` holds if given; sorted once
    and grouped in that order. unnest in the select list: in FROM (a lateral function scan) it
    stores each call's rows apart, 5-9 % of the statement."""
    by = "key, agent_id" if per_agent else "key"
    where = f" WHERE {only}" if only else ""
    return f"""
            SELECT {by}, v, count(*)::int AS n
            FROM (
                SELECT {key} AS key{", agent_id" if per_agent else ""}, unnest(lat) AS v
                FROM ended{where}
                ORDER BY {by}, v OFFSET 0
            ) AS t
            GROUP BY {by}, v"""  # noqa: S608 - constant SQL fragments


def _histograms(counts: str, *, per_agent: bool) -> str:
    """The latency histograms of one grain as (key, agent, lat_values, lat_cum) from its
    ``counts`` (``_turn_counts``' columns, in their order), per agent or (else) as the
    all-agents uuid's. The running counts are int: the running sum of bigints is a numeric,
    which cost a batch of 4,000 small days about 170 ms of backend CPU."""
    by = "key, agent_id" if per_agent else "key"
    return f"""
    SELECT key, {"agent_id" if per_agent else "%(all)s"} AS agent,
           string_agg(int4send(v), ''::bytea) AS lat_values,
           string_agg(int4send(cum::int), ''::bytea) AS lat_cum
    FROM (
        SELECT *, sum(n) OVER (PARTITION BY {by} ORDER BY v) AS cum
        FROM ({counts}
        ) AS c
    ) AS h
    GROUP BY {by}"""  # noqa: S608 - constant SQL fragments, values are parameters


def _grain_histograms(key: str, *, per_agent: bool, only: str | None = None) -> str:
    """``_histograms`` of the turn counts by ``key`` (``_turn_counts``)."""
    counts = _turn_counts(key, per_agent=per_agent, only=only)
    return _histograms(counts, per_agent=per_agent)


def _tail_counts(half_hour_counts: str) -> str:
    """(key, v, n) of the tails of each day from its half hours' turn counts (``_turn_counts``
    by half hour): a tail holds the turns of latency v of every half hour from its start on,
    which are those of the first such half hour that has any and every one after it. So each
    (half hour, v) row, with its count from there to the end of the day, stands for the tails
    that start after v's previous half hour and up to its own: every output row made once,
    where counting each half hour into every tail up to it (as ``_tails`` does for the sums)
    would group a dozen or more rows into each output row on a busy day."""
    day = _day_of("key")
    half = f"mod(key / {_CODES}, 128) / 2"
    return f"""
    SELECT {_day_of("c.key")} + t * {2 * _CODES} AS key, c.v, c.n
    FROM (
        SELECT key, v, {half} AS half, lag({half}, 1, 0) OVER w AS previous,
               (sum(n) OVER (PARTITION BY {day}, v) - sum(n) OVER w + n)::int AS n
        FROM ({half_hour_counts}
        ) AS h
        WINDOW w AS (PARTITION BY {day}, v ORDER BY key)
    ) AS c
    CROSS JOIN generate_series(c.previous + 1, c.half) AS t"""  # noqa: S608 - constant SQL


def _tails(rows: str, by: str, columns: str, sums: str) -> str:
    """Rows keyed by half hour (``rows``: a table, or a query in parentheses) summed into the
    tails of their day (``sums`` of ``columns`` by ``by``, which starts with the key): a half
    hour counts in the tail of every half hour after midnight up to and including its own, the
    tail keyed by its first quarter (the half hour's key, q = 2 * half hour)."""
    return f"""
    SELECT {by}, {sums}
    FROM (
        SELECT {_day_of("h.key")} + t * {2 * _CODES} AS key, {columns}
        FROM {rows} AS h
        CROSS JOIN generate_series(1, 47) AS t
        WHERE t <= mod(h.key / {_CODES}, 128) / 2
        ORDER BY {by} OFFSET 0
    ) AS x
    GROUP BY {by}"""  # noqa: S608 - constant SQL fragments


def _outcome_rows(table: str, column: str, value: str, grain: str) -> str:
    """The insert of one table's rows from ``grain`` (quarters or days, whose key is ``key``)
    and ``grain``'s histograms, ``column`` (bucket or day) being ``value``."""
    return f"""
    INSERT INTO {table} (
        tenant_id, agent_id, {column}, currency, sole_agent, {_OUTCOME_COLUMNS}, lat_values,
        lat_cum)
    SELECT p.tenant_id, s.agent, {value}, {_CURRENCY_OF_KEY} COLLATE "C", s.sole_agent,
           {_OUTCOME_COLUMNS}, coalesce(h.lat_values, ''::bytea),
           coalesce(h.lat_cum, ''::bytea)
    FROM (
        SELECT key, agent_id AS agent, NULL::uuid AS sole_agent, agent_id AS histogram,
               {_OUTCOME_COLUMNS}
        FROM {grain} WHERE agents > 1
        UNION ALL
        SELECT key, %(all)s, agent_id, agent_id, {_OUTCOME_COLUMNS} FROM {grain} WHERE agents = 1
        UNION ALL
        SELECT key, %(all)s, NULL, %(all)s, {_OUTCOME_SUMS}
        FROM {grain} WHERE agents > 1 GROUP BY key
    ) AS s
    JOIN unnest(%(tenants)s::uuid[], %(days)s::date[], %(starts)s::timestamptz[])
         WITH ORDINALITY AS p(tenant_id, day, start, i) ON p.i = s.key / {_DAY_STEP}
    LEFT JOIN {grain}_histograms h ON h.key = s.key AND h.agent = s.histogram
"""  # noqa: S608 - constant SQL fragments, values are parameters


_BUCKET = f"p.start + mod(s.key / {_CODES}, 128) * interval '15 minutes'"

_RECOMPUTE_OUTCOMES = f"""
WITH ended AS MATERIALIZED (
    SELECT c.agent_id, c.lat, (p.i * 128 + c.q) * {_CODES} + c.code AS kq,
           {", ".join(f"c.{m}" for m in OUTCOME_MEASURES)}
    FROM unnest(%(tenants)s::uuid[], %(starts)s::timestamptz[], %(stops)s::timestamptz[])
         WITH ORDINALITY AS p(tenant_id, start, stop, i)
    -- One index range scan per day, whatever the planner thinks of the table (OFFSET 0).
    CROSS JOIN LATERAL (
        SELECT c.agent_id,
               floor(extract(epoch FROM c.started_at - p.start) / 900)::bigint AS q,
               {_CURRENCY_CODE} AS code, c.latency_rounded_ms AS lat,
               {", ".join(f"{e} AS {m}" for m, e in OUTCOME_EXPRESSIONS.items())}
        FROM kalimera_conversations c
        WHERE c.tenant_id = p.tenant_id AND c.started_at >= p.start
          AND c.started_at < p.stop AND {ENDED}
        OFFSET 0
    ) AS c
),
-- The claimed days that get tail rows: busy in the rows _RECOMPUTE has just written.
busy AS MATERIALIZED (
    SELECT p.i
    FROM unnest(%(tenants)s::uuid[], %(days)s::date[]) WITH ORDINALITY AS p(tenant_id, day, i)
    JOIN kalimera_stats_rolled r ON r.tenant_id = p.tenant_id AND r.day = p.day
    WHERE r.busy
),
quarters AS MATERIALIZED ({_sums("kq", "ended")}
),
days AS MATERIALIZED ({_sums(_day_of("key"), "quarters")}
),
half_hours AS MATERIALIZED (
    SELECT key, {_OUTCOME_SUMS}
    FROM (
        SELECT {_half_hour_of("key")} AS key, {_OUTCOME_COLUMNS} FROM quarters
        WHERE {_busy("key")}
        ORDER BY 1 OFFSET 0
    ) AS q
    GROUP BY key
),
tails AS MATERIALIZED ({_tails("half_hours", "key", _OUTCOME_COLUMNS, _OUTCOME_SUMS)}
),
quarters_histograms AS ({_grain_histograms("kq", per_agent=True)}
    UNION ALL{_grain_histograms("kq", per_agent=False, only=_shared("kq", "quarters"))}
),
days_histograms AS ({_grain_histograms(_day_of("kq"), per_agent=True)}
    UNION ALL{
    _grain_histograms(_day_of("kq"), per_agent=False, only=_shared(_day_of("kq"), "days"))
}
),
tails_histograms AS ({
    _histograms(
        _tail_counts(_turn_counts(_half_hour_of("kq"), per_agent=False, only=_busy("kq"))),
        per_agent=False,
    )
}
),
quarter_rows AS ({_outcome_rows("kalimera_stats_outcome_quarter", "bucket", _BUCKET, "quarters")}
),
tail_rows AS (
    INSERT INTO kalimera_stats_outcome_tail (
        tenant_id, bucket, currency, {_OUTCOME_COLUMNS}, lat_values, lat_cum)
    SELECT p.tenant_id, {_BUCKET}, {_CURRENCY_OF_KEY} COLLATE "C", {_OUTCOME_COLUMNS},
           coalesce(h.lat_values, ''::bytea), coalesce(h.lat_cum, ''::bytea)
    FROM tails s
    JOIN unnest(%(tenants)s::uuid[], %(starts)s::timestamptz[])
         WITH ORDINALITY AS p(tenant_id, start, i) ON p.i = s.key / {_DAY_STEP}
    LEFT JOIN tails_histograms h ON h.key = s.key
)
{_outcome_rows("kalimera_stats_outcome_day", "day", "p.day", "days")}
"""  # noqa: S608 - constant SQL fragments, values are parameters

# Every join in a batch is a few thousand keys probing a primary key or (tenant_id, started_at):
# nested loops over index scans, whatever the statistics of tables that are being rewritten say
# (a hash join would read a whole table per batch). JIT compiles for longer than these run;
# the sorts of a batch fit in 64 MB instead of spilling to disk.
_SETTINGS = (
    "SET LOCAL enable_hashjoin = off; SET LOCAL enable_mergejoin = off; SET LOCAL jit = off;"
    " SET LOCAL work_mem = '64MB'"
)


@dataclass(frozen=True)
class Batch:
    """What one batch rolled up: its (tenant, day) pairs, in order, and their conversations."""

    pairs: list[Pair]
    conversations: int


@dataclass(frozen=True)
class Scope:
    """Which dirty marks a run rolls up, and how much of their days.

    The nightly run (the default): every closed day before ``today``, whole, its mark deleted.
    An intraday run (``today_through``): today's marks only, each day up to ``through`` (a
    quarter boundary), its mark kept and its ``rolled_to`` set (migration 0028), so that reads
    take today's closed quarters from the rollups."""

    today: date
    first: date = date.min
    through: datetime | None = None

    @classmethod
    def today_through(cls, through: datetime) -> Scope:
        day = through.astimezone(UTC).date()
        return cls(today=day + timedelta(days=1), first=day, through=through)


class Statements:
    """A batch's statements, each timed: the seconds a run's workers waited on each kind, summed
    (``kalimera stats rollup --profile`` prints them: where a run's time goes, measured on the
    path that serves users)."""

    def __init__(self, conn: Conn, seconds: Seconds) -> None:
        self.conn = conn
        self.seconds = seconds

    async def run(
        self, name: str, query: str, params: dict[str, Any] | None = None
    ) -> AsyncCursor[DictRow]:
        started = clock.perf_counter()
        try:
            return await self.conn.execute(query, params)
        finally:
            self.seconds[name] += clock.perf_counter() - started


async def roll_up(
    conn: Conn,
    *,
    scope: Scope,
    after: Pair,
    limit: int,
    budget: int,
    seconds: Seconds,
) -> Batch | None:
    """Claim up to ``limit`` of the ``scope``'s dirty days after ``after``, keep those that fit
    in ``budget`` conversations and recompute them; None when no day is left to claim. The time
    of each statement is added to ``seconds``."""
    sql = Statements(conn, seconds)
    await sql.run("settings", _SETTINGS)
    claimed = await _claim(sql, scope=scope, after=after, limit=limit)
    if not claimed:
        return None
    pairs = await _fit(sql, claimed, budget, scope.through)
    return Batch(pairs=pairs, conversations=await _recompute(sql, pairs, scope.through))


async def _claim(sql: Statements, *, scope: Scope, after: Pair, limit: int) -> list[Pair]:
    cur = await sql.run(
        "claim",
        _CLAIMS[scope.through is not None],
        {
            "first": scope.first,
            "today": scope.today,
            "through": scope.through,
            "after_tenant": after[0],
            "after_day": after[1],
            "limit": limit,
        },
    )
    return [(row["tenant_id"], row["day"]) for row in await cur.fetchall()]


async def _fit(
    sql: Statements, claimed: list[Pair], budget: int, through: datetime | None
) -> list[Pair]:
    """The leading claimed days whose conversations fit in ``budget`` (at least one day). The
    days left out stay locked until the batch commits and are claimed again by the next batch."""
    cur = await sql.run("size", _SIZE, {**pair_arrays(claimed, through), "rows": budget})
    running = [int(row["n"]) for row in await cur.fetchall()]
    return claimed[: max(1, sum(1 for n in running if n <= budget))]


def pair_arrays(pairs: list[Pair], through: datetime | None = None) -> dict[str, str]:
    """The pairs as the four arrays every statement of a batch reads (``_PAIRS``): tenants,
    days and each day's UTC bounds (its end no later than ``through``), made once a batch
    (``array_literal``: a batch of 4,000 days sent four lists to nine statements, about half a
    second of the worker's CPU in psycopg's adaptation, on the cores the database needs)."""
    stops = (utc_day_start(day + timedelta(days=1)) for _, day in pairs)
    return {
        "tenants": array_literal(tenant for tenant, _ in pairs),
        "days": array_literal(day for _, day in pairs),
        "starts": array_literal(utc_day_start(day) for _, day in pairs),
        "stops": array_literal(stops if through is None else (min(s, through) for s in stops)),
    }


async def _recompute(sql: Statements, pairs: list[Pair], through: datetime | None) -> int:
    """Recompute these days (up to ``through``); returns how many conversations they hold."""
    params = {
        **pair_arrays(pairs, through),
        "all": ALL_AGENTS,
        "busy": BUSY_DAY,
    }
    await sql.run("delete", _DELETES[through is not None], params)
    cur = await sql.run("recompute", _RECOMPUTE, params)
    rows = sum(int(row["total"]) for row in await cur.fetchall())
    # The outcome statement joins its own small aggregates (by hash: a nested loop over them
    # would be quadratic); its only table read is the lateral index scan, which a hash join
    # cannot replace. Last in the batch, so the setting holds for it alone.
    await sql.run("settings", "SET LOCAL enable_hashjoin = on")
    await sql.run("recompute outcomes", _RECOMPUTE_OUTCOMES, params)
    return rows
