"""``/kalimera/statistics/*``: six read-only endpoints, scope ``statistics:read``."""

from __future__ import annotations

import uuid
from datetime import date
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Response

from kalimera.deps import ServicesDep, StatisticsRead, TzQuery
from kalimera.problems import problem_responses
from kalimera.statistics import service
from kalimera.statistics.models import (
    CallBreakdown,
    Granularity,
    History,
    OutcomeStatistics,
    Realtime,
    RecentLogs,
    SentimentStatistics,
)
from kalimera.statistics.windows import Window

router = APIRouter(
    prefix="/kalimera/statistics",
    tags=["statistics"],
    responses=problem_responses(401, 403, 422, 503),
)

AgentQuery = Annotated[
    uuid.UUID | None, Query(description="Only this agent's conversations (default: all)")
]
StartQuery = Annotated[
    date | None, Query(description="First local date, inclusive (default: 29 days before end)")
]
EndQuery = Annotated[date | None, Query(description="Last local date, inclusive (default: today)")]
GranularityQuery = Annotated[Granularity, Query(description="day, week (ISO) or month")]


def window(start: StartQuery = None, end: EndQuery = None, tz: TzQuery = "UTC") -> Window:
    """The window the query names (see ``service.window``)."""
    return service.window(tz=tz, start=start, end=end)


WindowDep = Annotated[Window, Depends(window)]


@router.get("/realtime", response_model=Realtime)
async def get_statistics_realtime(
    principal: StatisticsRead,
    services: ServicesDep,
    agent_id: AgentQuery = None,
    tz: TzQuery = "UTC",
) -> Realtime:
    """Active conversations heard from within ``KALIMERA_IDLE_MINUTES``, by direction (live)."""
    return await service.realtime(
        services=services, tenant_id=principal.tenant_id, agent_id=agent_id, tz=tz
    )


@router.get("/history", response_model=History)
async def get_statistics_history(
    principal: StatisticsRead,
    services: ServicesDep,
    w: WindowDep,
    granularity: GranularityQuery = Granularity.DAY,
    agent_id: AgentQuery = None,
) -> History:
    """Conversations per local day, ISO week or month: directions, outcomes, durations."""
    return await service.history(
        services=services,
        tenant_id=principal.tenant_id,
        agent_id=agent_id,
        window=w,
        granularity=granularity,
    )


@router.get("/sentiment", response_model=SentimentStatistics)
async def get_statistics_sentiment(
    principal: StatisticsRead,
    services: ServicesDep,
    w: WindowDep,
    granularity: GranularityQuery = Granularity.DAY,
    agent_id: AgentQuery = None,
) -> SentimentStatistics:
    """Caller sentiment counts and percentages over the range, and per period."""
    return await service.sentiment(
        services=services,
        tenant_id=principal.tenant_id,
        agent_id=agent_id,
        window=w,
        granularity=granularity,
    )


@router.get("/call-breakdown", response_model=CallBreakdown)
async def get_statistics_call_breakdown(
    principal: StatisticsRead,
    services: ServicesDep,
    w: WindowDep,
    agent_id: AgentQuery = None,
) -> CallBreakdown:
    """Conversations by status, direction, local hour and weekday, duration and language."""
    return await service.call_breakdown(
        services=services, tenant_id=principal.tenant_id, agent_id=agent_id, window=w
    )


@router.get("/outcomes", response_model=OutcomeStatistics)
async def get_statistics_outcomes(
    principal: StatisticsRead,
    services: ServicesDep,
    w: WindowDep,
    granularity: GranularityQuery = Granularity.DAY,
    agent_id: AgentQuery = None,
) -> Response:
    """What the ended conversations (Completed or Failed, by local start) came to, per local
    day, ISO week or month and in total: `ended`; `analysed` (analysis done);
    `success_evaluated` / `success_pass` (pass_fail verdicts) and `success_rate` (one decimal,
    half away from zero); `avg_score` (score_1_10 verdicts, two decimals); `by_ended_reason`
    (every reason, no reason counted as `unknown`); costs (telephony's components plus the
    analysis cost) as `cost_total` / `cost_avg` in `currency` when one currency occurs, and
    per currency in `cost_by_currency`; `latency_p50_ms` / `latency_p90_ms`, percentile_disc
    over the output turns' latencies rounded down to 10 ms."""
    document = await service.outcomes(
        services=services,
        tenant_id=principal.tenant_id,
        agent_id=agent_id,
        window=w,
        granularity=granularity,
    )
    return Response(document, media_type="application/json")


@router.get("/recent-logs", response_model=RecentLogs)
async def get_statistics_recent_logs(
    principal: StatisticsRead,
    services: ServicesDep,
    limit: Annotated[int, Query(ge=1, le=100)] = 10,
    agent_id: AgentQuery = None,
    tz: TzQuery = "UTC",
) -> RecentLogs:
    """The newest conversations by start time (live)."""
    return await service.recent_logs(
        services=services, tenant_id=principal.tenant_id, agent_id=agent_id, limit=limit, tz=tz
    )
