"""What the statistics domain answers: six reads of one tenant's conversations.

Each read is one unit of work (one transaction). The four over a window of local dates run in
one REPEATABLE READ snapshot, the dirty marks read with the sums (see ``repository``); the rules
on a window (a known zone, start before end, at most ``MAX_RANGE_DAYS``) live here.
"""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import orjson

from kalimera.days import zone
from kalimera.db import transaction
from kalimera.errors import Invalid, invalid
from kalimera.services import Services
from kalimera.statistics import repository
from kalimera.statistics.measures import (
    HUNDREDTH,
    MILLIONTH,
    REASON_COLUMNS,
    OutcomeSums,
    Sums,
    percentiles_disc,
    round1,
    round_to,
)
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
from kalimera.statistics.windows import Window, period_plan, periods

MAX_RANGE_DAYS = 1_096
DEFAULT_RANGE_DAYS = 30


def _invalid(field: str, msg: str) -> Invalid:
    # The message is the detail too: the one thing wrong with a statistics query.
    return invalid(("query", field), msg, detail=msg)


def window(*, tz: str, start: date | None, end: date | None) -> Window:
    """The local dates ``start``..``end`` in ``tz`` (default: the 30 days ending today), or
    ``Invalid``."""
    today = datetime.now(UTC).astimezone(zone(tz)).date()
    end = end or (today if start is None or start <= today else start)
    start = start or end - timedelta(days=DEFAULT_RANGE_DAYS - 1)
    if start > end:
        raise _invalid("start", "start is after end")
    if (end - start).days + 1 > MAX_RANGE_DAYS:
        raise _invalid("end", f"the range is longer than {MAX_RANGE_DAYS} days")
    try:
        return Window.of(tz, start, end)
    except OverflowError:
        raise _invalid("end", "the range is out of bounds") from None


async def realtime(
    *, services: Services, tenant_id: uuid.UUID, agent_id: uuid.UUID | None, tz: str
) -> Realtime:
    """Active conversations heard from within ``KALIMERA_IDLE_MINUTES``, by direction (live);
    ``tz`` is checked, as on every statistics read, though no local time is shown."""
    zone(tz)
    async with transaction(await services.db()) as conn:
        row = await repository.realtime(
            conn,
            tenant_id=tenant_id,
            agent_id=agent_id,
            idle_minutes=services.settings.idle_minutes,
        )
    return Realtime(
        active_inbound=row["inbound"],
        active_outbound=row["outbound"],
        active_total=row["inbound"] + row["outbound"],
        as_of=row["as_of"],
    )


async def _series(
    *,
    services: Services,
    tenant_id: uuid.UUID,
    agent_id: uuid.UUID | None,
    window: Window,
    granularity: Granularity,
    kind: repository.SeriesKind,
) -> list[tuple[date, Sums]]:
    """Every period that intersects the window with its sums (zeros for an empty one)."""
    async with transaction(await services.db()) as conn:
        await repository.snapshot(conn)
        p = await repository.window_plan(
            conn, tenant_id=tenant_id, agent_id=agent_id, window=window
        )
        sums = await repository.period_sums(
            conn,
            tenant_id=tenant_id,
            agent_id=agent_id,
            window=window,
            # An agent's rows have no day grain (kalimera_stats_rolled counts all agents).
            p=period_plan(window, granularity, p, day_rows=agent_id is None),
            granularity=granularity,
            kind=kind,
        )
    return [(period, sums.get(period, Sums())) for period in periods(window, granularity)]


async def history(
    *,
    services: Services,
    tenant_id: uuid.UUID,
    agent_id: uuid.UUID | None,
    window: Window,
    granularity: Granularity,
) -> History:
    """Conversations per local day, ISO week or month: directions, outcomes, durations."""
    series = await _series(
        services=services,
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
    *,
    services: Services,
    tenant_id: uuid.UUID,
    agent_id: uuid.UUID | None,
    window: Window,
    granularity: Granularity,
) -> SentimentStatistics:
    """Caller sentiment counts and percentages over the range, and per period."""
    series = await _series(
        services=services,
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
    *, services: Services, tenant_id: uuid.UUID, agent_id: uuid.UUID | None, window: Window
) -> CallBreakdown:
    """Conversations by status, direction, local hour and weekday, duration and language."""
    async with transaction(await services.db()) as conn:
        await repository.snapshot(conn)
        p = await repository.window_plan(
            conn, tenant_id=tenant_id, agent_id=agent_id, window=window
        )
        rows = await repository.dow_hour_counts(
            conn, tenant_id=tenant_id, agent_id=agent_id, window=window, p=p
        )
        w = await repository.window_sums(
            conn, tenant_id=tenant_id, agent_id=agent_id, window=window, p=p
        )
        languages = await repository.language_counts(
            conn, tenant_id=tenant_id, agent_id=agent_id, window=window, p=p
        )

    by_hour, by_weekday = [0] * 24, [0] * 7
    by_weekday_hour = [[0] * 24 for _ in range(7)]
    for dow, hour, total in rows:
        by_hour[hour] += total
        by_weekday[dow] += total
        by_weekday_hour[dow][hour] += total
    bucketed = w.d_0_30 + w.d_30_60 + w.d_1_3 + w.d_3_5 + w.d_5_10
    return CallBreakdown(
        by_status=ByStatus(
            Active=w.total - w.completed - w.failed, Completed=w.completed, Failed=w.failed
        ),
        by_profile_type=ByProfileType(inbound=w.inbound, outbound=w.total - w.inbound),
        by_hour=by_hour,
        by_weekday=by_weekday,
        by_weekday_hour=by_weekday_hour,
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


async def recent_logs(
    *,
    services: Services,
    tenant_id: uuid.UUID,
    agent_id: uuid.UUID | None,
    limit: int,
    tz: str,
) -> RecentLogs:
    """The newest conversations by start time (live); ``tz`` is checked as on every read."""
    zone(tz)
    async with transaction(await services.db()) as conn:
        rows = await repository.recent(conn, tenant_id=tenant_id, agent_id=agent_id, limit=limit)
    return RecentLogs(items=[ConversationLog(**row) for row in rows])


def _outcome_fields(s: OutcomeSums) -> dict[str, Any]:
    """The fields of an outcome point (statistics.md, "Outcome statistics") from its sums."""
    n = s.named_counts()
    left = s.costs
    costs = {
        currency or "unknown": {
            "total": float(total),
            "avg": float(round_to(total / count, MILLIONTH)),
            "conversations": count,
        }
        for currency, (total, count) in sorted(left.items())
    }
    one = next(iter(left.items())) if len(left) == 1 else None
    p50, p90 = percentiles_disc(s.latencies, (0.5, 0.9))
    return {
        "ended": n["ended"],
        "analysed": n["analysed"],
        "success_evaluated": n["evaluated"],
        "success_pass": n["passed"],
        "success_rate": float(round1(Decimal(n["passed"] * 100) / n["evaluated"]))
        if n["evaluated"]
        else None,
        "avg_score": float(round_to(Decimal(n["score_sum"]) / n["score_count"], HUNDREDTH))
        if n["score_count"]
        else None,
        "by_ended_reason": {reason: n[column] for reason, column in REASON_COLUMNS.items()},
        "cost_total": 0.0 if not left else float(one[1][0]) if one else None,
        "cost_avg": costs[one[0] or "unknown"]["avg"] if one else None,
        "currency": one[0] or None if one else None,
        "cost_by_currency": costs,
        "latency_p50_ms": p50,
        "latency_p90_ms": p90,
    }


async def outcomes(
    *,
    services: Services,
    tenant_id: uuid.UUID,
    agent_id: uuid.UUID | None,
    window: Window,
    granularity: Granularity,
) -> bytes:
    """What the ended conversations came to, per local day, ISO week or month and over the
    window: analysis verdicts, ended reasons, costs and the agent's answer latency.

    The ``OutcomeStatistics`` document as JSON bytes, built from plain dicts: a year by day is
    366 points of some twenty fields, and building them as models to be dumped, re-validated
    and dumped again by FastAPI cost more than the queries (its shape is held to the model by
    the contract tests)."""
    async with transaction(await services.db()) as conn:
        await repository.snapshot(conn, bitmap_scans=False)
        p = await repository.window_plan(
            conn, tenant_id=tenant_id, agent_id=agent_id, window=window
        )
        sums, latencies = await repository.outcome_sums(
            conn,
            tenant_id=tenant_id,
            agent_id=agent_id,
            window=window,
            # Outcome tail rows are all agents' (migration 0030).
            p=period_plan(window, granularity, p, busy_rows="tails" if agent_id is None else None),
            granularity=granularity,
        )
    series = [(period, sums.get(period, OutcomeSums())) for period in periods(window, granularity)]
    whole = OutcomeSums(latencies=latencies)
    for _, s in series:
        whole.add_counts(s)
    return orjson.dumps(
        {
            "granularity": granularity,
            "series": [{"period_start": period, **_outcome_fields(s)} for period, s in series],
            "totals": _outcome_fields(whole),
        }
    )
