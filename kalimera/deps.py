"""FastAPI dependencies, as ``Annotated`` aliases the routes use, and the HTTP half of
``Idempotency-Key`` (the header, and a stored answer replayed as a response)."""

from typing import Annotated, Any, TypeVar

from fastapi import Depends, Header, Query, Request, Security
from fastapi.responses import JSONResponse, Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from kalimera.auth import Principal, Scope, authenticate, bearer_token
from kalimera.db import Pool, act_for_tenant
from kalimera.etags import none_match
from kalimera.idempotency import Replay
from kalimera.limits import PRINCIPAL_KEY
from kalimera.problems import Problem
from kalimera.services import Services

# For the OpenAPI document (an HTTP bearer scheme); the check reads the header itself, since a
# bare token without ``Bearer `` is accepted too.
_bearer = HTTPBearer(
    scheme_name="BearerAuth",
    auto_error=False,
    description="`Authorization: Bearer <token>`: a token made by `kalimera token create` or "
    "`POST /kalimera/tokens`",
)


async def get_services(request: Request) -> Services:
    # async: FastAPI runs a plain `def` dependency in a worker thread, on every request.
    return request.app.state.services  # type: ignore[no-any-return]


ServicesDep = Annotated[Services, Depends(get_services)]


async def get_pool(services: ServicesDep) -> Pool:
    return await services.db()


PoolDep = Annotated[Pool, Depends(get_pool)]


def unauthorized() -> Problem:
    return Problem(
        401,
        "A valid API token is required (Authorization: Bearer <token>)",
        headers={"WWW-Authenticate": "Bearer"},
    )


async def principal_for(app: Any, header: str | None) -> Principal:
    """The principal of an ``Authorization`` header, or ``unauthorized()`` raised: the one
    check both the routes and the body guard (``kalimera.limits``) run."""
    token = bearer_token(header)
    principal = None
    if token is not None:
        services: Services = app.state.services
        principal = await authenticate(
            pool=await services.db(), cache=app.state.token_cache, token=token
        )
    if principal is None:
        raise unauthorized()
    return principal


def require(scope: Scope | None):  # type: ignore[no-untyped-def]
    """A dependency that admits a token carrying ``scope`` (any valid token when None): 401
    without a valid token, 403 with a valid one that lacks the scope."""

    async def dependency(
        request: Request,
        services: ServicesDep,
        _: Annotated[HTTPAuthorizationCredentials | None, Security(_bearer)],
    ) -> Principal:
        # A request with a body was authenticated by the body guard before it was read.
        principal = request.scope.get(PRINCIPAL_KEY)
        if principal is None:
            principal = await principal_for(request.app, request.headers.get("authorization"))
        if scope is not None and not principal.may(scope):
            raise Problem(403, f"This token lacks the {scope.value!r} scope")
        act_for_tenant(principal.tenant_id)  # the request's transactions see only its rows
        return principal

    return dependency


Authenticated = Annotated[Principal, Depends(require(None))]
AgentsRead = Annotated[Principal, Depends(require(Scope.AGENTS_READ))]
AgentsWrite = Annotated[Principal, Depends(require(Scope.AGENTS_WRITE))]
AgentsRuntime = Annotated[Principal, Depends(require(Scope.AGENTS_RUNTIME))]
ContactsRead = Annotated[Principal, Depends(require(Scope.CONTACTS_READ))]
ContactsWrite = Annotated[Principal, Depends(require(Scope.CONTACTS_WRITE))]
ConversationsRead = Annotated[Principal, Depends(require(Scope.CONVERSATIONS_READ))]
ConversationsWrite = Annotated[Principal, Depends(require(Scope.CONVERSATIONS_WRITE))]
StatisticsRead = Annotated[Principal, Depends(require(Scope.STATISTICS_READ))]
WebhooksRead = Annotated[Principal, Depends(require(Scope.WEBHOOKS_READ))]
WebhooksWrite = Annotated[Principal, Depends(require(Scope.WEBHOOKS_WRITE))]
SettingsAdmin = Annotated[Principal, Depends(require(Scope.SETTINGS_ADMIN))]
TokensAdmin = Annotated[Principal, Depends(require(Scope.TOKENS_ADMIN))]


IfMatch = Annotated[
    str | None,
    Header(description="An ETag from a read: answer 412 if the resource changed since"),
]
IfNoneMatch = Annotated[
    str | None,
    Header(description="ETags the client holds: answer 304, without a body, if one is current"),
]


# The response headers the OpenAPI document declares, the same wherever they are sent.
ETAG_HEADER: dict[str, Any] = {
    "ETag": {
        "description": "The resource's version: If-Match on a change, If-None-Match on a read",
        "schema": {"type": "string"},
    }
}
LOCATION_HEADER: dict[str, Any] = {
    "Location": {"description": "The path of what was made", "schema": {"type": "string"}}
}


def not_modified(if_none_match: str | None, tag: str) -> Response | None:
    """The 304 a read answers when the client's copy (``If-None-Match``) is current."""
    if none_match(if_none_match, tag):
        return Response(status_code=304, headers={"ETag": tag})
    return None


TzQuery = Annotated[
    str,
    Query(
        max_length=64,
        description="IANA time zone that decides the local day and hour (default UTC)",
        examples=["Europe/Athens"],
    ),
]

IdempotencyKey = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        min_length=1,
        max_length=255,
        pattern=r"^[\x21-\x7e]+$",
        description="Any unique string (a UUID is good): a retry with the same key (within 24 h) "
        "answers as the first request did and does nothing twice",
    ),
]

T = TypeVar("T")


def answer(result: T | Replay) -> T | JSONResponse:
    """What a route answers for a service that runs once per ``Idempotency-Key``: its own
    result, or the first request's answer replayed as it was (``Idempotent-Replayed: true``)."""
    if isinstance(result, Replay):
        return JSONResponse(
            result.body, status_code=result.status, headers={"Idempotent-Replayed": "true"}
        )
    return result
