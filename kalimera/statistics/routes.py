"""``/kalimera/statistics/*``: five read-only endpoints, scope ``statistics:read``."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, timedelta
from functools import lru_cache
from typing import Annotated
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from fastapi import APIRouter, Depends, Query

from kalimera.db import transaction
from kalimera.deps import PoolDep, ServicesDep, StatisticsRead
from kalimera.problems import Problem, problem_responses
from kalimera.statistics import queries
from kalimera.statistics.models import (
    CallBreakdown,
    Granularity,
    History,
    Realtime,
    RecentLogs,
    SentimentStatistics,
)

router = APIRouter(
    prefix="/kalimera/statistics",
    tags=["statistics"],
    responses=problem_responses(401, 403, 422, 503),
)

MAX_RANGE_DAYS = 1_096
DEFAULT_RANGE_DAYS = 30

AgentQuery = Annotated[
    uuid.UUID | None, Query(description="Only this agent's conversations (default: all)")
]
TzQuery = Annotated[
    str,
    Query(
        max_length=64,
        description="IANA time zone that decides the local day and hour (default UTC)",
    ),
]
StartQuery = Annotated[
    date | None, Query(description="First local date, inclusive (default: 29 days before end)")
]
EndQuery = Annotated[date | None, Query(description="Last local date, inclusive (default: today)")]
GranularityQuery = Annotated[Granularity, Query(description="day, week (ISO) or month")]


def _invalid(field: str, msg: str) -> Problem:
    return Problem(422, msg, errors=[{"loc": ["query", field], "msg": msg}])


@lru_cache(maxsize=1)
def _zone_names() -> frozenset[str]:
    # The names of the system tz database, which PostgreSQL reads too (checked: it accepts every
    # one): a name outside it never reaches the database.
    return frozenset(available_timezones())


def zone(tz: str) -> ZoneInfo:
    """The zone named ``tz``, or 422."""
    if tz not in _zone_names():
        raise _invalid("tz", f"unknown time zone {tz!r}")
    try:
        return ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError):
        raise _invalid("tz", f"unknown time zone {tz!r}") from None


def window(start: StartQuery = None, end: EndQuery = None, tz: TzQuery = "UTC") -> queries.Window:
    """The local dates ``start``..``end`` in ``tz`` (default: the 30 days ending today), or 422."""
    today = datetime.now(UTC).astimezone(zone(tz)).date()
    end = end or (today if start is None or start <= today else start)
    start = start or end - timedelta(days=DEFAULT_RANGE_DAYS - 1)
    if start > end:
        raise _invalid("start", "start is after end")
    if (end - start).days + 1 > MAX_RANGE_DAYS:
        raise _invalid("end", f"the range is longer than {MAX_RANGE_DAYS} days")
    try:
        return queries.Window.of(tz, start, end)
    except OverflowError:
        raise _invalid("end", "the range is out of bounds") from None


WindowDep = Annotated[queries.Window, Depends(window)]


@router.get("/realtime", response_model=Realtime)
async def get_statistics_realtime(
    principal: StatisticsRead,
    pool: PoolDep,
    services: ServicesDep,
    agent_id: AgentQuery = None,
    tz: TzQuery = "UTC",
) -> Realtime:
    """Active conversations heard from within ``KALIMERA_IDLE_MINUTES``, by direction (live)."""
    zone(tz)
    async with transaction(pool) as conn:
        return await queries.realtime(
            conn,
            tenant_id=principal.tenant_id,
            agent_id=agent_id,
            idle_minutes=services.settings.idle_minutes,
        )


@router.get("/history", response_model=History)
async def get_statistics_history(
    principal: StatisticsRead,
    pool: PoolDep,
    w: WindowDep,
    granularity: GranularityQuery = Granularity.DAY,
    agent_id: AgentQuery = None,
) -> History:
    """Conversations per local day, ISO week or month: directions, outcomes, durations."""
    async with transaction(pool) as conn:
        return await queries.history(
            conn,
            tenant_id=principal.tenant_id,
            agent_id=agent_id,
            window=w,
            granularity=granularity,
        )


@router.get("/sentiment", response_model=SentimentStatistics)
async def get_statistics_sentiment(
    principal: StatisticsRead,
    pool: PoolDep,
    w: WindowDep,
    granularity: GranularityQuery = Granularity.DAY,
    agent_id: AgentQuery = None,
) -> SentimentStatistics:
    """Caller sentiment counts and percentages over the range, and per period."""
    async with transaction(pool) as conn:
        return await queries.sentiment(
            conn,
            tenant_id=principal.tenant_id,
            agent_id=agent_id,
            window=w,
            granularity=granularity,
        )


@router.get("/call-breakdown", response_model=CallBreakdown)
async def get_statistics_call_breakdown(
    principal: StatisticsRead,
    pool: PoolDep,
    w: WindowDep,
    agent_id: AgentQuery = None,
) -> CallBreakdown:
    """Conversations by status, direction, local hour and weekday, duration and language."""
    async with transaction(pool) as conn:
        return await queries.call_breakdown(
            conn, tenant_id=principal.tenant_id, agent_id=agent_id, window=w
        )


@router.get("/recent-logs", response_model=RecentLogs)
async def get_statistics_recent_logs(
    principal: StatisticsRead,
    pool: PoolDep,
    limit: Annotated[int, Query(ge=1, le=100)] = 10,
    agent_id: AgentQuery = None,
    tz: TzQuery = "UTC",
) -> RecentLogs:
    """The newest conversations by start time (live)."""
    zone(tz)
    async with transaction(pool) as conn:
        return await queries.recent_logs(
            conn, tenant_id=principal.tenant_id, agent_id=agent_id, limit=limit
        )
