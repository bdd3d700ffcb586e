"""HTTP for a tenant's tokens: parse, authorise (``tokens:admin``), call the service."""

import uuid
from typing import Annotated

from fastapi import APIRouter, Query, Request, Response, status

from kalimera.deps import LOCATION_HEADER, Authenticated, ServicesDep, TokensAdmin
from kalimera.problems import problem_responses
from kalimera.tokens import service
from kalimera.tokens.models import TokenCreate, TokenCreated, TokenPage, TokenRead, TokenRevoked

router = APIRouter(prefix="/kalimera/tokens", tags=["tokens"])


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    response_model=TokenCreated,
    responses={201: {"headers": LOCATION_HEADER}, **problem_responses(400, 401, 403, 413, 422)},
)
async def create_token(
    body: TokenCreate, principal: TokensAdmin, services: ServicesDep, response: Response
) -> TokenCreated:
    """Make a token of this tenant; the answer is the one time the token is shown."""
    created = await service.create(services=services, principal=principal, body=body)
    response.headers["Location"] = f"{router.prefix}/{created.id}"
    return created


@router.get("", response_model=TokenPage, responses=problem_responses(401, 403, 422))
async def list_tokens(
    principal: TokensAdmin,
    services: ServicesDep,
    page: Annotated[int, Query(ge=1, le=1_000_000)] = 1,
    per_page: Annotated[int, Query(ge=1, le=100)] = 20,
) -> TokenPage:
    """The tenant's tokens, newest first, revoked and expired ones too (never a token itself)."""
    return await service.list_page(
        services=services, tenant_id=principal.tenant_id, page=page, per_page=per_page
    )


@router.get("/current", response_model=TokenRead, responses=problem_responses(401))
async def get_current_token(principal: Authenticated, services: ServicesDep) -> TokenRead:
    """The calling token itself, with its scopes: any valid token may read it, so that a client
    (the console) shows only what the token can use instead of failing on a 403."""
    return await service.get(
        services=services, tenant_id=principal.tenant_id, token_id=principal.token_id
    )


@router.get(
    "/{token_id}", response_model=TokenRead, responses=problem_responses(401, 403, 404, 422)
)
async def get_token(
    token_id: uuid.UUID, principal: TokensAdmin, services: ServicesDep
) -> TokenRead:
    return await service.get(services=services, tenant_id=principal.tenant_id, token_id=token_id)


@router.delete(
    "/{token_id}", response_model=TokenRevoked, responses=problem_responses(401, 403, 404, 422)
)
async def revoke_token(
    token_id: uuid.UUID, principal: TokensAdmin, services: ServicesDep, request: Request
) -> TokenRevoked:
    """Revoke a live token of the tenant (the calling one too): 401 on this instance at once,
    on every instance within 60 s. A token already revoked, or another tenant's, is 404."""
    await service.revoke(
        services=services,
        cache=request.app.state.token_cache,
        tenant_id=principal.tenant_id,
        token_id=token_id,
    )
    return TokenRevoked()
