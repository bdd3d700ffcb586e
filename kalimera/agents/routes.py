"""HTTP for AI agents: parse, authorise, call the service, shape the answer."""

import uuid
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Body, Path, Query, Request, Response, status
from fastapi.exceptions import RequestValidationError

from kalimera.agents import service
from kalimera.agents.models import (
    AgentCreate,
    AgentCreated,
    AgentDeleted,
    AgentPage,
    AgentRead,
    AgentUpdate,
    AgentUpdated,
    SectionDocument,
    SectionUpdated,
    Text,
)
from kalimera.agents.sections import KEYS, NAMES
from kalimera.auth import Scope
from kalimera.deps import (
    ETAG_HEADER,
    LOCATION_HEADER,
    AgentsRead,
    AgentsRuntime,
    AgentsWrite,
    IfMatch,
    IfNoneMatch,
    ServicesDep,
    not_modified,
    require,
)
from kalimera.problems import problem_responses
from kalimera.services import Services

router = APIRouter(prefix="/kalimera/ai-agent", tags=["ai-agents"])

JSON = "application/json"


def _link(operation_id: str) -> dict[str, Any]:
    return {"operationId": operation_id, "parameters": {"agent_id": "$response.body#/id"}}


# OpenAPI links: what a client (or a stateful fuzzer) can do with the id a create returns.
CREATED_LINKS = {
    "GetAgent": _link("getAgent"),
    "UpdateAgent": _link("updateAgent"),
    "UpdateSection": _link("updateAgentSection"),
    "DeleteAgent": _link("deleteAgent"),
    "RuntimeConfig": _link("getAgentRuntimeConfig"),
}


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    response_model=AgentCreated,
    responses={
        201: {"links": CREATED_LINKS, "headers": LOCATION_HEADER},
        **problem_responses(400, 401, 403, 413, 422),
    },
)
async def create_agent(
    body: AgentCreate, principal: AgentsWrite, services: ServicesDep, response: Response
) -> AgentCreated:
    """Create an agent; sections may be keyed by snake_case key or section name."""
    agent_id = await service.create(services=services, tenant_id=principal.tenant_id, body=body)
    response.headers["Location"] = f"{router.prefix}/{agent_id}"
    return AgentCreated(id=agent_id)


@router.get(
    "",
    response_model=AgentPage,
    responses=problem_responses(401, 403, 422),
)
async def list_agents(
    principal: AgentsRead,
    services: ServicesDep,
    search: Annotated[Text | None, Query(max_length=255)] = None,
    page: Annotated[int, Query(ge=1, le=1_000_000)] = 1,
    limit: Annotated[int, Query(ge=1, le=100)] = 10,
) -> Response:
    """The tenant's agents, newest first; ``search`` matches name, description or type."""
    body = await service.list_page(
        services=services, tenant_id=principal.tenant_id, search=search, page=page, limit=limit
    )
    return Response(body, media_type=JSON)


async def _read(
    services: Services, tenant_id: uuid.UUID, agent_id: uuid.UUID, if_none_match: str | None
) -> Response:
    rendered = await service.read(services=services, tenant_id=tenant_id, agent_id=agent_id)
    unchanged = not_modified(if_none_match, rendered.etag)
    if unchanged is not None:
        return unchanged
    return Response(rendered.body, media_type=JSON, headers={"ETag": rendered.etag})


_agents_read = require(Scope.AGENTS_READ)


async def _get_agent_hot(request: Request) -> Response:
    """``GET /{agent_id}`` as a plain Starlette endpoint: the hottest read of the API.

    FastAPI's dependency solving costs about as much as the rest of a cache hit, so this path
    runs the same auth dependency and the same UUID rule by hand, then answers the cached bytes
    as they are. The FastAPI route below it is the documented contract (and is shadowed).
    """
    services: Services = request.app.state.services
    principal = await _agents_read(request, services, None)  # it reads Authorization itself
    try:
        agent_id = uuid.UUID(request.path_params["agent_id"])
    except ValueError:
        raise RequestValidationError(
            [{"loc": ("path", "agent_id"), "msg": "Input should be a valid UUID", "type": "uuid"}]
        ) from None
    return await _read(
        services, principal.tenant_id, agent_id, request.headers.get("if-none-match")
    )


router.add_route(
    f"{router.prefix}/{{agent_id}}", _get_agent_hot, methods=["GET"], include_in_schema=False
)


@router.get(
    "/{agent_id}",
    response_model=AgentRead,
    responses={
        200: {"headers": ETAG_HEADER},
        304: {"description": "Not Modified"},
        **problem_responses(401, 403, 404, 422),
    },
)
async def get_agent(
    agent_id: uuid.UUID,
    principal: AgentsRead,
    services: ServicesDep,
    if_none_match: IfNoneMatch = None,
) -> Response:
    """One agent, secrets masked; its ``ETag`` serves ``If-Match`` on updates and
    ``If-None-Match`` here (304 while it is unchanged)."""
    return await _read(services, principal.tenant_id, agent_id, if_none_match)


@router.put(
    "/{agent_id}",
    response_model=AgentUpdated,
    responses=problem_responses(400, 401, 403, 404, 412, 413, 422),
)
async def update_agent(
    agent_id: uuid.UUID,
    body: AgentUpdate,
    principal: AgentsWrite,
    services: ServicesDep,
    if_match: IfMatch = None,
) -> AgentUpdated:
    """Change the fields given; the sections given replace those sections, others stay."""
    await service.update(
        services=services,
        tenant_id=principal.tenant_id,
        agent_id=agent_id,
        body=body,
        if_match=if_match,
    )
    return AgentUpdated(id=agent_id)


@router.put(
    "/{agent_id}/{section}",
    response_model=SectionUpdated,
    responses=problem_responses(400, 401, 403, 404, 412, 413, 422),
)
async def update_agent_section(
    agent_id: uuid.UUID,
    section: Annotated[
        str, Path(description=f"A section name ({', '.join(NAMES)}) or its key ({', '.join(KEYS)})")
    ],
    body: Annotated[SectionDocument, Body()],
    principal: AgentsWrite,
    services: ServicesDep,
    response: Response,
    if_match: IfMatch = None,
) -> SectionUpdated:
    """Replace one section, atomically: concurrent writes to other sections are never lost."""
    tag, configuration = await service.update_section(
        services=services,
        tenant_id=principal.tenant_id,
        agent_id=agent_id,
        section=section,
        value=body,
        if_match=if_match,
    )
    response.headers["ETag"] = tag
    return SectionUpdated(configuration=configuration)


@router.delete(
    "/{agent_id}",
    response_model=AgentDeleted,
    responses=problem_responses(401, 403, 404, 422),
)
async def delete_agent(
    agent_id: uuid.UUID, principal: AgentsWrite, services: ServicesDep
) -> AgentDeleted:
    await service.delete(services=services, tenant_id=principal.tenant_id, agent_id=agent_id)
    return AgentDeleted()


@router.get(
    "/{agent_id}/runtime-config",
    response_model=dict[str, Any],
    responses=problem_responses(401, 403, 404, 422),
)
async def get_agent_runtime_config(
    agent_id: uuid.UUID, principal: AgentsRuntime, services: ServicesDep
) -> Response:
    """The configuration as the voice runtime's appsettings.json, secrets decrypted
    (``agents:runtime`` tokens only; never cached)."""
    configuration = await service.runtime_config(
        services=services, tenant_id=principal.tenant_id, agent_id=agent_id
    )
    return Response(
        orjson.dumps(configuration), media_type=JSON, headers={"Cache-Control": "no-store"}
    )
