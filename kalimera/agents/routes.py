"""HTTP for AI agents: parse, authorise, call the service, shape the answer."""

import re
import uuid
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Body, Path, Query, Response, status
from starlette.types import ASGIApp, Receive, Send
from starlette.types import Scope as ASGIScope

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
from kalimera.auth import Principal, Scope, bearer_token, cached_principal
from kalimera.deps import (
    ETAG_HEADER,
    LOCATION_HEADER,
    AgentsRead,
    AgentsRuntime,
    AgentsWrite,
    IfMatch,
    IfNoneMatch,
    ServicesDep,
)
from kalimera.etags import none_match
from kalimera.problems import problem_responses

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


class AgentAnswer(Response):
    """The agent's 200 with its ETag, or the 304 (its ETag only) when the client's copy is
    current: the status, headers and body Starlette's ``Response`` makes of them, in its order,
    built directly (the hottest answer of the API; ``Response``'s generic building was 3 % of a
    cached read). ``get_agent`` and the cached read in front of FastAPI both answer with it."""

    def __init__(self, rendered: service.Rendered, if_none_match: str | None) -> None:
        self.background = None
        tag = (b"etag", rendered.etag.encode("latin-1"))
        if none_match(if_none_match, rendered.etag):
            self.status_code, self.body, self.raw_headers = 304, b"", [tag]
        else:
            self.status_code, self.body = 200, rendered.body
            self.raw_headers = [
                tag,
                (b"content-length", b"%d" % len(rendered.body)),
                (b"content-type", b"application/json"),
            ]


class CachedAgentReads:
    """Pure ASGI, in front of FastAPI: ``GET /kalimera/ai-agent/{id}`` answered from the caches,
    when the token's principal is in the token cache and the agent in Redis.

    The hottest read of the API. FastAPI's own layers, routing through every route and
    FastAPI's dependency solving cost more than the rest of a cache hit, so a hit is decided
    here, before FastAPI (``Api.serve_in_front``): the same token check (cached only: no I/O),
    the same scope rule and the same answer (``AgentAnswer``) as ``get_agent``. Anything else
    (no or unknown token, a token not looked up yet, a missing scope, an id that is not a UUID
    in its canonical form, a cache miss) passes to the app untouched, and ``get_agent`` answers
    it as documented, errors included. The middleware outside this one (CORS, the gateway
    check, request ids) applies to both alike.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: ASGIScope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "GET":
            match = _AGENT_PATH.fullmatch(scope["path"])
            if match is not None and (read := _cached_read(scope)) is not None:
                principal, if_none_match = read
                rendered = await service.cached(
                    services=scope["app"].state.services,
                    tenant_id=principal.tenant_id,
                    agent_id=match.group(1),
                )
                if rendered is not None:
                    await AgentAnswer(rendered, if_none_match)(scope, receive, send)
                    return
        await self.app(scope, receive, send)


# The id as ``str(uuid)`` writes it, which is its text in the cache key as it stands (the other
# spellings of a UUID go to the route, which parses them).
_CANONICAL_UUID = r"[0-9a-f]{8}(?:-[0-9a-f]{4}){3}-[0-9a-f]{12}"
_AGENT_PATH = re.compile(re.escape(router.prefix) + f"/({_CANONICAL_UUID})")


def _cached_read(scope: ASGIScope) -> tuple[Principal, str | None] | None:
    """The caller's principal, when the token cache holds it and it may read agents, and the
    request's ``If-None-Match``; None when the route must decide."""
    authorization = if_none_match = None
    for name, value in scope["headers"]:  # the first of each, as Request.headers.get reads
        if name == b"authorization" and authorization is None:
            authorization = value.decode("latin-1")
        elif name == b"if-none-match" and if_none_match is None:
            if_none_match = value.decode("latin-1")
    token = bearer_token(authorization)
    if token is None:
        return None
    principal = cached_principal(cache=scope["app"].state.token_cache, token=token)
    if principal is None or not principal.may(Scope.AGENTS_READ):
        return None
    return principal, if_none_match


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
    # A cache hit with a cached token never gets here: CachedAgentReads answers it the same way.
    rendered = await service.read(
        services=services, tenant_id=principal.tenant_id, agent_id=agent_id
    )
    return AgentAnswer(rendered, if_none_match)


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
