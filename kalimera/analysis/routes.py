"""HTTP for analysis plans: parse, authorise, call the service, shape the answer.

Included in the app before the agents' router: ``PUT /kalimera/ai-agent/{agent_id}/{section}``
would otherwise take ``analysis-plan`` for a section name.
"""

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Header, Query, Response

from kalimera.analysis import service
from kalimera.analysis.models import AnalysisPlan, AnalysisPlanPage, AnalysisPlanRead
from kalimera.deps import AgentsRead, AgentsWrite, ServicesDep
from kalimera.problems import problem_responses

router = APIRouter(prefix="/kalimera/ai-agent/{agent_id}/analysis-plan", tags=["analysis"])

IfMatch = Annotated[
    str | None,
    Header(description="An ETag from a GET: answer 412 if the plan changed since."),
]
ETAG: dict[int | str, dict[str, Any]] = {200: {"headers": {"ETag": {"schema": {"type": "string"}}}}}


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
