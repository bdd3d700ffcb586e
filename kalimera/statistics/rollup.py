"""The statistics rollup: what the timer trigger and ``kalimera stats rollup`` run.

A run first finalises idle ``Active`` conversations, then recomputes every closed UTC day
(before today) that is marked dirty, tenant by tenant, in batches of (tenant, day) pairs. The
marks are written by triggers on ``kalimera_conversations`` (migration 0006) on every insert,
counted update and delete, so late recordings, PATCHes, deletions and the finalisation here all
mark their days without their callers knowing; a day that was never rolled up is dirty since its
first conversation was written. Each batch (``rollup_batch``) is one transaction of a few
set-based statements:

1. claim the next dirty marks in (tenant, day) order (each batch then reads and writes
   neighbouring index pages), ``FOR UPDATE SKIP LOCKED``: a second run
   at the same time takes other marks (it never waits, so two runs cannot deadlock), and a mark
   that a writer holds is skipped and stays dirty for the next run;
2. keep the leading claimed days whose conversations fit in the batch's row budget (counted
   on the index, at least one day): every statement of a run is sized to the statement timeout
   the run has (``batch_rows``: 30,000 conversations under the default 15 s), never to the size
   of a tenant, so a run over 10 million conversations finishes with the product's settings;
3. delete the kept days' rollup rows (by primary key, through ``kalimera_stats_rolled``) and
   their marks, in one statement;
4. aggregate the kept days' conversations once and insert the 15-minute rows, the hour
   rows of busy days and the ``rolled`` record (agents, languages, the day's totals) from that
   one aggregate;
5. the same for the outcome rows (their ended conversations and turns).

Work is proportional to the dirty days; running it twice changes nothing (no marks are left);
days missed while the timer was down are still marked, so the next run catches up.

The intraday run (``rollup_today``, every quarter hour) is the same batches over today's marks,
each day up to the last closed quarter, and step 3 keeps the marks, recording how far the rows
go (``rollup_batch.Scope``; docs/statistics.md, "Today").
"""

from __future__ import annotations

import asyncio
import logging
import time as clock
import uuid
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import TYPE_CHECKING

from kalimera.db import Pool, transaction
from kalimera.statistics import rollup_batch
from kalimera.statistics.rollup_batch import Pair, Scope, Seconds
from kalimera.statistics.windows import quarter_floor, utc_day_start

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
FINALISE_BATCH = 1_000
"""Idle conversations finalised per statement. Each one rewrites its row (ten indexes) and
fires the triggers that mark its day, request its analysis and queue its webhook events: on a
cold copy of the 10M seed a statement of 5,000 ran past the 15 s statement timeout and failed
the whole rollup."""

# Idle conversations, oldest activity first, in batches; SKIP LOCKED so that a conversation a
# writer (or another run) holds is left for later instead of waited on.
_FINALISE = """
UPDATE kalimera_conversations c
SET status = 'Completed', ended_at = coalesce(c.ended_at, c.last_activity_at),
    ended_reason = coalesce(c.ended_reason, 'idle-timeout')
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
    seconds: Seconds = field(default_factory=lambda: defaultdict(float))
    """Each kind of batch statement's time, summed over the workers (see ``Statements``), and
    the run's steps before the batches (finalising idle conversations, marking ``since``)."""


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
    *,
    services: Services,
    since: date | None = None,
    through: datetime | None = None,
    workers: int = 2,
    progress: Progress | None = None,
) -> RollupReport:
    """One run as the product runs it (the timer triggers, ``kalimera stats rollup``, the dev
    runner): the services' pool and settings, batches sized to their statement timeout; the
    nightly run, or with ``through`` the intraday one (``run_rollup``)."""
    settings = services.settings
    return await run_rollup(
        await services.db(),
        idle_minutes=settings.idle_minutes,
        batch_rows=batch_rows(settings.db_statement_timeout_ms),
        since=since,
        through=through,
        workers=workers,
        progress=progress,
    )


async def rollup_today(
    *,
    services: Services,
    now: datetime | None = None,
    workers: int = 2,
    progress: Progress | None = None,
) -> RollupReport:
    """The intraday run (the ``rollup_today`` timer, ``kalimera stats rollup --today``): today's
    dirty days up to the last quarter boundary before ``now``, so that reads take the day's
    closed quarters from the rollups and only what came after (or changed since) live."""
    return await rollup_statistics(
        services=services,
        through=quarter_floor(now or datetime.now(UTC)),
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
    through: datetime | None = None,
    batch_pairs: int = BATCH_PAIRS,
    workers: int = 2,
    progress: Progress | None = None,
) -> RollupReport:
    """Finalise idle conversations, then roll up every closed dirty day (see the module doc).

    ``batch_rows`` bounds the conversations one batch aggregates (a single tenant-day larger
    than that is a batch of its own), ``batch_pairs`` the tenant-days it claims;
    ``since`` first marks every day from that date on as dirty (to rebuild after a change of
    definitions); ``today`` is the first day that is not closed (default: today in UTC);
    ``through`` (a quarter boundary) makes it an intraday run instead: the dirty days of that
    instant's UTC day, up to it (``Scope``); ``workers`` batches run at once, each on its own
    connection (a large catch-up uses both cores of a small server).
    """
    today = today or utc_today()
    scope = Scope(today=today) if through is None else Scope.today_through(through)
    report = RollupReport()
    started = clock.perf_counter()
    # As many finalising loops as workers: SKIP LOCKED keeps their rows apart, and on a cold
    # cache their page reads overlap (22,340 idle calls of the 10M seed: 720-750 rows a second
    # on one connection, 860-1,240 on two).
    finalised = await asyncio.gather(
        *(
            finalise_idle(pool, idle_minutes=idle_minutes, limit=min(FINALISE_BATCH, batch_rows))
            for _ in range(workers)
        )
    )
    report.finalised = sum(finalised)
    report.seconds["finalise"] = clock.perf_counter() - started
    if since is not None:
        started = clock.perf_counter()
        await mark_since(pool, since=since, today=today, probes=batch_rows)
        report.seconds["mark since"] = clock.perf_counter() - started
    total = await _dirty(pool, scope)

    async def worker() -> None:
        # Each worker walks the marks in (tenant, day) order; SKIP LOCKED makes the workers
        # (and any other run) leapfrog each other's batches. A batch claims at most twice the
        # days the last one could take, so that a run through a large tenant's days does not
        # lock thousands of marks to use a dozen.
        after: Pair = (uuid.UUID(int=0), date.min)  # before every (tenant, day)
        limit = batch_pairs
        while True:
            async with transaction(pool, system=True) as conn:
                batch = await rollup_batch.roll_up(
                    conn,
                    scope=scope,
                    after=after,
                    limit=limit,
                    budget=batch_rows,
                    seconds=report.seconds,
                )
            if batch is None:
                return
            pairs, rows = batch.pairs, batch.conversations
            after = pairs[-1]
            limit = min(batch_pairs, max(MIN_CLAIM, 2 * len(pairs)))
            report.days += len(pairs)
            report.batches += 1
            report.conversations += rows
            report.largest_batch = max(report.largest_batch, rows)
            report.tenants.update(tenant for tenant, _ in pairs)
            if progress is not None:
                progress(report.days, max(total, report.days))

    if scope.through is None or scope.through > utc_day_start(scope.first):
        await asyncio.gather(*(worker() for _ in range(workers)))
    if scope.through is None:
        async with transaction(pool, system=True) as conn:
            await conn.execute(_WATERMARK, {"days": report.days, "today": today})
    logger.info(
        "statistics rollup%s: %d days of %d tenants (%d conversations) in %d batches,"
        " %d idle conversations finalised",
        f" through {scope.through:%Y-%m-%d %H:%M}" if scope.through else "",
        report.days,
        len(report.tenants),
        report.conversations,
        report.batches,
        report.finalised,
    )
    return report


async def finalise_idle(pool: Pool, *, idle_minutes: int, limit: int = FINALISE_BATCH) -> int:
    """Mark ``Active`` conversations idle for longer than ``idle_minutes`` as ``Completed``,
    ending them when they were last heard from (``ended_at = last_activity_at``) with the
    ended reason ``idle-timeout`` unless telephony gave one, ``limit`` a statement. Their days
    are marked dirty by the trigger."""
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


async def _dirty(pool: Pool, scope: Scope) -> int:
    async with transaction(pool, system=True) as conn:
        cur = await conn.execute(
            "SELECT count(*) AS n FROM kalimera_stats_dirty"
            " WHERE day >= %(first)s AND day < %(today)s",
            {"first": scope.first, "today": scope.today},
        )
        row = await cur.fetchone()
    assert row is not None
    return int(row["n"])
