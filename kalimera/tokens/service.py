"""What a tenant's administrator (a token with ``tokens:admin``) may do with its tokens.

No escalation: a token grants only scopes the token making it has, and never outlives it. The
first token of a tenant comes from the CLI (``kalimera token create``), which is the one way to
grant ``tokens:admin`` without already having it.
"""

import math
import uuid
from datetime import UTC, datetime

from kalimera.auth import DEFAULT_SCOPES, Principal, Scope, TokenCache, create_token, revoke_token
from kalimera.db import transaction
from kalimera.errors import Forbidden, NotFound, invalid
from kalimera.services import Services
from kalimera.tokens import repository
from kalimera.tokens.models import TokenCreate, TokenCreated, TokenPage, TokenRead

NOT_FOUND = "Token not found"


def _granted(principal: Principal, body: TokenCreate) -> tuple[Scope, ...]:
    if body.scopes is None:
        scopes = tuple(s for s in DEFAULT_SCOPES if s.value in principal.scopes)
        if not scopes:
            raise invalid(["body", "scopes"], "the making token has none of the default scopes")
        return scopes
    lacking = sorted({s.value for s in body.scopes} - principal.scopes)
    if lacking:
        msg = f"A token cannot grant scopes it lacks: {', '.join(lacking)}"
        raise Forbidden(msg)
    return tuple(dict.fromkeys(body.scopes))


def _expiry(principal: Principal, body: TokenCreate) -> datetime | None:
    if body.expires_at is not None and body.expires_at <= datetime.now(UTC):
        raise invalid(["body", "expires_at"], "must be in the future")
    limit = principal.expires_at
    if limit is None:
        return body.expires_at
    if body.expires_at is None:
        return limit
    if body.expires_at > limit:
        msg = f"A token cannot outlive the token making it (it expires at {limit.isoformat()})"
        raise Forbidden(msg)
    return body.expires_at


async def create(*, services: Services, principal: Principal, body: TokenCreate) -> TokenCreated:
    scopes = _granted(principal, body)
    expires_at = _expiry(principal, body)
    async with transaction(await services.db()) as conn:
        token_id, token = await create_token(
            conn=conn,
            tenant_id=principal.tenant_id,
            name=body.name,
            scopes=scopes,
            expires_at=expires_at,
            created_by=principal.token_id,
        )
        row = await repository.get(conn=conn, tenant_id=principal.tenant_id, token_id=token_id)
    return TokenCreated.model_validate({**(row or {}), "token": token})


async def list_page(
    *, services: Services, tenant_id: uuid.UUID, page: int, per_page: int
) -> TokenPage:
    async with transaction(await services.db()) as conn:
        found = await repository.page(
            conn=conn, tenant_id=tenant_id, limit=per_page, offset=(page - 1) * per_page
        )
    return TokenPage(
        tokens=[TokenRead.model_validate(row) for row in found.rows],
        total=found.total,
        pages=math.ceil(found.total / per_page),
        current_page=page,
    )


async def get(*, services: Services, tenant_id: uuid.UUID, token_id: uuid.UUID) -> TokenRead:
    async with transaction(await services.db()) as conn:
        row = await repository.get(conn=conn, tenant_id=tenant_id, token_id=token_id)
    if row is None:
        raise NotFound(NOT_FOUND)
    return TokenRead.model_validate(row)


async def revoke(
    *, services: Services, cache: TokenCache, tenant_id: uuid.UUID, token_id: uuid.UUID
) -> None:
    """Revoke a live token of the tenant. This instance forgets it at once; every other one
    within its auth cache's lifetime (at most 60 s)."""
    async with transaction(await services.db()) as conn:
        key = await revoke_token(conn=conn, token_id=token_id)
    if key is None:
        raise NotFound(NOT_FOUND)
    cache.evict(key)
