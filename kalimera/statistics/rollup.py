"""The statistics rollup: what the timer trigger and ``kalimera stats rollup`` run.

A run first finalises idle ``Active`` conversations, then recomputes every closed UTC day
(before today) that is marked dirty, tenant by tenant, in batches of (tenant, day) pairs. The
marks are written by triggers on ``kalimera_conversations`` (migration 0006) on every insert,
counted update and delete, so late recordings, PATCHes, deletions and the finalisation here all
mark their days without their callers knowing; a day that was never rolled up is dirty since its
first conversation was written. Each batch is one transaction of a few set-based statements:

1. claim the next dirty marks in (tenant, day) order (each batch then reads and writes
   neighbouring index pages), ``FOR UPDATE SKIP LOCKED``: a second run
   at the same time takes other marks (it never waits, so two runs cannot deadlock), and a mark
   that a writer holds is skipped and stays dirty for the next run;
2. keep the leading claimed days whose conversations fit in the batch's row budget (counted
   on the index, at least one day): every statement of a run is sized to the statement timeout
   the run has (``batch_rows``: 30,000 conversations under the default 15 s), never to the size
   of a tenant, so a run over 10 million conversations finishes with the product's settings;
3. delete the kept days' rollup rows (by primary key, through ``kalimera_stats_rolled``);
4. aggregate the kept days' conversations once and insert the 15-minute rows, the hour
   rows of busy days and the ``rolled`` record (agents, languages, the day's totals) from that
   one aggregate;
5. delete their marks.

Work is proportional to the dirty days; running it twice changes nothing (no marks are left);
days missed while the timer was down are still marked, so the next run catches up.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import TYPE_CHECKING

from kalimera.db import Conn, Pool, transaction
from kalimera.statistics.measures import ALL_AGENTS, MEASURES

if TYPE_CHECKING:
    from kalimera.services import Services

logger = logging.getLogger(__name__)

BATCH_PAIRS = 4_000
MIN_CLAIM = 16
ROWS_PER_TIMEOUT_MS = 2
"""Conversations a batch may aggregate per millisecond of the statement timeout. One worker
rolls up about 50 a millisecond on a small server with both cores busy, so a batch takes a
small fraction of the timeout, with room for a slower server, a cold cache or a busy disk."""
MIN_BATCH_ROWS = 100
MAX_BATCH_ROWS = 50_000
BUSY_DAY = 96
"""Conversations in a tenant's UTC day from which the day also gets hour rows."""
FINALISE_BATCH = 5_000

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
    SELECT r.tenant_id, a.agent_id, p.start, p.stop
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

# Every join in a batch is a few thousand keys probing a primary key or (tenant_id, started_at):
# nested loops over index scans, whatever the statistics of tables that are being rewritten say
# (a hash join would read a whole table per batch). JIT compiles for longer than these run;
# the sorts of a batch fit in 64 MB instead of spilling to disk.
_BATCH_SETTINGS = (
    "SET LOCAL enable_hashjoin = off; SET LOCAL enable_mergejoin = off; SET LOCAL jit = off;"
    " SET LOCAL work_mem = '64MB'"
)

_UNMARK = f"""
DELETE FROM kalimera_stats_dirty m USING {_PAIRS}
WHERE m.tenant_id = p.tenant_id AND m.day = p.day
"""  # noqa: S608 - constant SQL fragments, values are parameters

# Idle conversations, oldest activity first, in batches; SKIP LOCKED so that a conversation a
# writer (or another run) holds is left for later instead of waited on.
_FINALISE = """
UPDATE kalimera_conversations c
SET status = 'Completed', ended_at = coalesce(c.ended_at, c.last_activity_at)
FROM (
    SELECT tenant_id, id FROM kalimera_conversations
    WHERE status = 'Active' AND last_activity_at < now() - make_interval(mins => %(idle)s)
    LIMIT %(limit)s
    FOR UPDATE SKIP LOCKED
) AS idle
WHERE c.tenant_id = idle.tenant_id AND c.id = idle.id AND c.status = 'Active'
"""

# The tenants with conversations or rollup rows: a loose index scan (one probe per tenant on
# each primary key), not a pass over every row.
_TENANTS = """
WITH RECURSIVE conv(tenant_id) AS (
    (SELECT tenant_id FROM kalimera_conversations ORDER BY tenant_id LIMIT 1)
    UNION ALL
    SELECT (SELECT c.tenant_id FROM kalimera_conversations c
            WHERE c.tenant_id > conv.tenant_id ORDER BY c.tenant_id LIMIT 1)
    FROM conv WHERE conv.tenant_id IS NOT NULL
), rolled(tenant_id) AS (
    (SELECT tenant_id FROM kalimera_stats_rolled ORDER BY tenant_id LIMIT 1)
    UNION ALL
    SELECT (SELECT r.tenant_id FROM kalimera_stats_rolled r
            WHERE r.tenant_id > rolled.tenant_id ORDER BY r.tenant_id LIMIT 1)
    FROM rolled WHERE rolled.tenant_id IS NOT NULL
)
SELECT tenant_id FROM conv WHERE tenant_id IS NOT NULL
UNION
SELECT tenant_id FROM rolled WHERE tenant_id IS NOT NULL
ORDER BY tenant_id
"""

# Mark every day in [since, today) of these tenants that has conversations or rollup rows. The
# days with conversations come from a loose index scan on (tenant_id, started_at): one probe per
# tenant-day that has any (the first conversation from the next midnight on), so the work of a
# statement is its tenants' days, not their rows. The next midnight is carried as a column, so
# the probe compares started_at with a value: under row-level security only leakproof
# conditions go to the index, and AT TIME ZONE is not.
_MARK_SINCE = """
SELECT kalimera_stats_mark(array_agg(tenant_id), array_agg(day))
FROM (
    SELECT t.tenant_id, (d.at AT TIME ZONE 'UTC')::date AS day
    FROM unnest(%(tenants)s::uuid[]) AS t(tenant_id)
    CROSS JOIN LATERAL (
        WITH RECURSIVE walk(at, next) AS (
            SELECT f.at, ((f.at AT TIME ZONE 'UTC')::date + 1)::timestamp AT TIME ZONE 'UTC'
            FROM (
                SELECT (SELECT c.started_at FROM kalimera_conversations c
                        WHERE c.tenant_id = t.tenant_id
                          AND c.started_at >= %(since)s::timestamp AT TIME ZONE 'UTC'
                          AND c.started_at < %(today)s::timestamp AT TIME ZONE 'UTC'
                        ORDER BY c.started_at LIMIT 1) AS at
            ) AS f
            UNION ALL
            SELECT f.at, ((f.at AT TIME ZONE 'UTC')::date + 1)::timestamp AT TIME ZONE 'UTC'
            FROM walk w
            CROSS JOIN LATERAL (
                SELECT (SELECT c.started_at FROM kalimera_conversations c
                        WHERE c.tenant_id = t.tenant_id AND c.started_at >= w.next
                          AND c.started_at < %(today)s::timestamp AT TIME ZONE 'UTC'
                        ORDER BY c.started_at LIMIT 1) AS at
            ) AS f
            WHERE w.at IS NOT NULL
        )
        SELECT at FROM walk WHERE at IS NOT NULL
    ) AS d
    UNION
    SELECT tenant_id, day FROM kalimera_stats_rolled
    WHERE tenant_id = ANY(%(tenants)s::uuid[]) AND day >= %(since)s AND day < %(today)s
) AS t
"""

_WATERMARK = """
UPDATE kalimera_stats_watermark
SET last_run_at = now(), last_run_days = %(days)s,
    rolled_through = CASE
        WHEN EXISTS (SELECT 1 FROM kalimera_stats_dirty WHERE day < %(today)s)
        THEN rolled_through
        ELSE %(today)s::date - 1
    END
"""


@dataclass
class RollupReport:
    """What one run did."""

    finalised: int = 0
    days: int = 0
    batches: int = 0
    conversations: int = 0
    largest_batch: int = 0
    """The most conversations one batch's statements aggregated."""
    tenants: set[uuid.UUID] = field(default_factory=set)


Progress = Callable[[int, int], None]
"""Called after each batch with (pairs done, pairs dirty when the run started)."""


def utc_today() -> date:
    return datetime.now(UTC).date()


def batch_rows(statement_timeout_ms: int) -> int:
    """The conversations one batch may aggregate under this statement timeout (0: none).

    ``ROWS_PER_TIMEOUT_MS`` per millisecond of the timeout, between ``MIN_BATCH_ROWS`` and
    ``MAX_BATCH_ROWS``: the default 15 s gives 30,000."""
    if statement_timeout_ms <= 0:
        return MAX_BATCH_ROWS
    return max(MIN_BATCH_ROWS, min(MAX_BATCH_ROWS, statement_timeout_ms * ROWS_PER_TIMEOUT_MS))


async def rollup_statistics(
    services: Services,
    *,
    since: date | None = None,
    workers: int = 2,
    progress: Progress | None = None,
) -> RollupReport:
    """One run as the product runs it (the timer trigger, ``kalimera stats rollup``, the dev
    runner): the services' pool and settings, batches sized to their statement timeout."""
    settings = services.settings
    return await run_rollup(
        await services.db(),
        idle_minutes=settings.idle_minutes,
        batch_rows=batch_rows(settings.db_statement_timeout_ms),
        since=since,
        workers=workers,
        progress=progress,
    )


async def run_rollup(
    pool: Pool,
    *,
    idle_minutes: int,
    batch_rows: int = MAX_BATCH_ROWS,
    since: date | None = None,
    today: date | None = None,
    batch_pairs: int = BATCH_PAIRS,
    workers: int = 2,
    progress: Progress | None = None,
) -> RollupReport:
    """Finalise idle conversations, then roll up every closed dirty day (see the module doc).

    ``batch_rows`` bounds the conversations one batch aggregates (a single tenant-day larger
    than that is a batch of its own), ``batch_pairs`` the tenant-days it claims;
    ``since`` first marks every day from that date on as dirty (to rebuild after a change of
    definitions); ``today`` is the first day that is not closed (default: today in UTC);
    ``workers`` batches run at once, each on its own connection (a large catch-up uses both
    cores of a small server).
    """
    today = today or utc_today()
    report = RollupReport()
    report.finalised = await finalise_idle(
        pool, idle_minutes=idle_minutes, limit=min(FINALISE_BATCH, batch_rows)
    )
    if since is not None:
        await mark_since(pool, since=since, today=today, probes=batch_rows)
    total = await _dirty_closed(pool, today=today)

    async def worker() -> None:
        # Each worker walks the marks in (tenant, day) order; SKIP LOCKED makes the workers
        # (and any other run) leapfrog each other's batches. A batch claims at most twice the
        # days the last one could take, so that a run through a large tenant's days does not
        # lock thousands of marks to use a dozen.
        after: tuple[uuid.UUID, date] = (ALL_AGENTS, date.min)
        limit = batch_pairs
        while True:
            async with transaction(pool, system=True) as conn:
                await conn.execute(_BATCH_SETTINGS)
                claimed = await _claim(conn, today=today, after=after, limit=limit)
                if not claimed:
                    return
                pairs = await _fit(conn, claimed, batch_rows)
                rows = await _recompute(conn, pairs)
            after = pairs[-1]
            limit = min(batch_pairs, max(MIN_CLAIM, 2 * len(pairs)))
            report.days += len(pairs)
            report.batches += 1
            report.conversations += rows
            report.largest_batch = max(report.largest_batch, rows)
            report.tenants.update(tenant for tenant, _ in pairs)
            if progress is not None:
                progress(report.days, max(total, report.days))

    await asyncio.gather(*(worker() for _ in range(workers)))
    async with transaction(pool, system=True) as conn:
        await conn.execute(_WATERMARK, {"days": report.days, "today": today})
    logger.info(
        "statistics rollup: %d days of %d tenants (%d conversations) in %d batches,"
        " %d idle conversations finalised",
        report.days,
        len(report.tenants),
        report.conversations,
        report.batches,
        report.finalised,
    )
    return report


async def finalise_idle(pool: Pool, *, idle_minutes: int, limit: int = FINALISE_BATCH) -> int:
    """Mark ``Active`` conversations idle for longer than ``idle_minutes`` as ``Completed``,
    ending them when they were last heard from (``ended_at = last_activity_at``), ``limit`` a
    statement. Their days are marked dirty by the trigger."""
    done = 0
    while True:
        async with transaction(pool, system=True) as conn:
            cur = await conn.execute(_FINALISE, {"idle": idle_minutes, "limit": limit})
            count = cur.rowcount
        done += count
        if count < limit:
            return done


async def mark_since(pool: Pool, *, since: date, today: date, probes: int) -> None:
    """Mark every day in [``since``, ``today``) that has conversations or rollup rows dirty,
    a few tenants a statement: about ``probes`` tenant-days each."""
    async with transaction(pool, system=True) as conn:
        cur = await conn.execute(_TENANTS)
        tenants = [row["tenant_id"] for row in await cur.fetchall()]
    step = max(1, probes // max(1, (today - since).days))
    for i in range(0, len(tenants), step):
        async with transaction(pool, system=True) as conn:
            await conn.execute(
                _MARK_SINCE, {"tenants": tenants[i : i + step], "since": since, "today": today}
            )


async def _dirty_closed(pool: Pool, *, today: date) -> int:
    async with transaction(pool, system=True) as conn:
        cur = await conn.execute(
            "SELECT count(*) AS n FROM kalimera_stats_dirty WHERE day < %(today)s",
            {"today": today},
        )
        row = await cur.fetchone()
    assert row is not None
    return int(row["n"])


async def _claim(
    conn: Conn, *, today: date, after: tuple[uuid.UUID, date], limit: int
) -> list[tuple[uuid.UUID, date]]:
    cur = await conn.execute(
        _CLAIM, {"today": today, "after_tenant": after[0], "after_day": after[1], "limit": limit}
    )
    return [(row["tenant_id"], row["day"]) for row in await cur.fetchall()]


async def _fit(
    conn: Conn, claimed: list[tuple[uuid.UUID, date]], budget: int
) -> list[tuple[uuid.UUID, date]]:
    """The leading claimed days whose conversations fit in ``budget`` (at least one day). The
    days left out stay locked until the batch commits and are claimed again by the next batch."""
    cur = await conn.execute(
        _SIZE,
        {
            "tenants": [tenant for tenant, _ in claimed],
            "starts": [_midnight(day) for _, day in claimed],
            "stops": [_midnight(day + timedelta(days=1)) for _, day in claimed],
            "rows": budget,
        },
    )
    running = [int(row["n"]) for row in await cur.fetchall()]
    return claimed[: max(1, sum(1 for n in running if n <= budget))]


def _midnight(day: date) -> datetime:
    return datetime.combine(day, time(), UTC)


async def _recompute(conn: Conn, pairs: list[tuple[uuid.UUID, date]]) -> int:
    """Recompute these days; returns how many conversations they hold."""
    params = {
        "tenants": [tenant for tenant, _ in pairs],
        "days": [day for _, day in pairs],
        "starts": [_midnight(day) for _, day in pairs],
        "stops": [_midnight(day + timedelta(days=1)) for _, day in pairs],
        "all": ALL_AGENTS,
        "busy": BUSY_DAY,
    }
    await conn.execute(_DELETE_QUARTERS, params)
    await conn.execute(_DELETE_HOURS, params)
    await conn.execute(_DELETE_ROLLED, params)
    cur = await conn.execute(_RECOMPUTE, params)
    rows = sum(int(row["total"]) for row in await cur.fetchall())
    await conn.execute(_UNMARK, params)
    return rows


DEV_INTERVAL_SECONDS = 300


async def keep_current(services: Services) -> None:
    """The dev runner's stand-in for the timer: a run at start, then every five minutes."""
    while True:
        try:
            await rollup_statistics(services)
        except Exception:  # noqa: BLE001 - a failed run (Postgres down) is retried next time
            logger.warning("statistics rollup failed; retrying in %ds", DEV_INTERVAL_SECONDS)
        await asyncio.sleep(DEV_INTERVAL_SECONDS)
