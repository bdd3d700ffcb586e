"""HTTP for analysis plans and re-runs: parse, authorise, call the service, shape the answer.

Included in the app before the agents' router: ``PUT /kalimera/ai-agent/{agent_id}/{section}``
would otherwise take ``analysis-plan`` for a section name.
"""

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Query, Response, status

from kalimera.analysis import runs, service
from kalimera.analysis.models import (
    AnalysisPlan,
    AnalysisPlanPage,
    AnalysisPlanRead,
    AnalysisRequested,
    AnalysisRunCreate,
    AnalysisRunCreated,
    AnalysisRunRead,
)
from kalimera.deps import (
    ETAG_HEADER,
    LOCATION_HEADER,
    AgentsRead,
    AgentsWrite,
    ConversationsWrite,
    IfMatch,
    ServicesDep,
)
from kalimera.problems import problem_responses

router = APIRouter(prefix="/kalimera/ai-agent/{agent_id}/analysis-plan", tags=["analysis"])

ETAG: dict[int | str, dict[str, Any]] = {200: {"headers": ETAG_HEADER}}


@router.get(
    "", response_model=AnalysisPlanRead, responses={**ETAG, **problem_responses(401, 403, 404, 422)}
)
async def get_analysis_plan(
    agent_id: uuid.UUID, principal: AgentsRead, services: ServicesDep, response: Response
) -> AnalysisPlanRead:
    """The agent's current plan and its ``version`` (0: the default plan); the ``ETag`` serves
    ``If-Match`` on the next ``PUT``."""
    current = await service.current(
        services=services, tenant_id=principal.tenant_id, agent_id=agent_id
    )
    response.headers["ETag"] = current.etag
    return current.plan


@router.put(
    "",
    response_model=AnalysisPlanRead,
    responses={**ETAG, **problem_responses(400, 401, 403, 404, 409, 412, 413, 422)},
)
async def update_analysis_plan(
    agent_id: uuid.UUID,
    body: AnalysisPlan,
    principal: AgentsWrite,
    services: ServicesDep,
    response: Response,
    if_match: IfMatch = None,
) -> AnalysisPlanRead:
    """Replace the plan: it becomes version n+1 (a part left out takes its default)."""
    written = await service.replace(
        services=services,
        tenant_id=principal.tenant_id,
        agent_id=agent_id,
        plan=body,
        if_match=if_match,
    )
    response.headers["ETag"] = written.etag
    return written.plan


@router.get(
    "/versions", response_model=AnalysisPlanPage, responses=problem_responses(401, 403, 404, 422)
)
async def list_analysis_plan_versions(
    agent_id: uuid.UUID,
    principal: AgentsRead,
    services: ServicesDep,
    page: Annotated[int, Query(ge=1, le=1_000_000)] = 1,
    limit: Annotated[int, Query(ge=1, le=100)] = 10,
) -> AnalysisPlanPage:
    """The plan's written versions, newest first."""
    return await service.versions(
        services=services, tenant_id=principal.tenant_id, agent_id=agent_id, page=page, limit=limit
    )


# ---- re-runs (docs/analysis.md, "Re-runs") -----------------------------------------------------

runs_router = APIRouter(prefix="/kalimera", tags=["analysis"])


@runs_router.post(
    "/conversations/{conversation_id}/analysis",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=AnalysisRequested,
    responses=problem_responses(401, 403, 404, 409, 422, 503),
)
async def rerun_conversation_analysis(
    conversation_id: uuid.UUID, principal: ConversationsWrite, services: ServicesDep
) -> AnalysisRequested:
    """Analyse the conversation again with its agent's current plan; it shows ``pending``
    until the result is in. 409 while the call is still Active."""
    await runs.request_one(
        services=services, tenant_id=principal.tenant_id, conversation_id=conversation_id
    )
    return AnalysisRequested(conversation_id=conversation_id)


@runs_router.post(
    "/ai-agent/{agent_id}/analysis-runs",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=AnalysisRunCreated,
    responses={
        202: {"headers": LOCATION_HEADER},
        **problem_responses(400, 401, 403, 404, 413, 422, 503),
    },
)
async def create_analysis_run(
    agent_id: uuid.UUID,
    body: AnalysisRunCreate,
    principal: AgentsWrite,
    services: ServicesDep,
    response: Response,
) -> AnalysisRunCreated:
    """Re-run the analysis over the agent's conversations that ended from ``since`` to
    ``until`` (UTC days) and have no result for ``plan_version`` (default: the current plan).
    Follow it with ``GET /kalimera/analysis-runs/{id}`` (its ``Location``)."""
    run = await runs.start_run(
        services=services,
        tenant_id=principal.tenant_id,
        agent_id=agent_id,
        since=body.since,
        until=body.until,
        plan_version=body.plan_version,
    )
    response.headers["Location"] = f"{runs_router.prefix}/analysis-runs/{run.id}"
    return run


@runs_router.get(
    "/analysis-runs/{run_id}",
    response_model=AnalysisRunRead,
    responses=problem_responses(401, 403, 404, 422, 503),
)
async def get_analysis_run(
    run_id: uuid.UUID, principal: AgentsRead, services: ServicesDep
) -> AnalysisRunRead:
    """A run's progress."""
    return await runs.get_run(services=services, tenant_id=principal.tenant_id, run_id=run_id)


@runs_router.delete(
    "/analysis-runs/{run_id}",
    response_model=AnalysisRunRead,
    responses=problem_responses(401, 403, 404, 422, 503),
)
async def cancel_analysis_run(
    run_id: uuid.UUID, principal: AgentsWrite, services: ServicesDep
) -> AnalysisRunRead:
    """Cancel what has not started; what has started finishes and is counted."""
    return await runs.cancel_run(services=services, tenant_id=principal.tenant_id, run_id=run_id)
