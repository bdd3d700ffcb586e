"""API tokens: random, shown once, stored as SHA-256 hashes, scoped to one tenant.

The hot path checks a token against a short-lived in-process cache (``auth_cache_seconds``, at
most 60 s), so a request costs no Postgres round trip; a revoked token stops working on every
instance once its cache entry ages out. SHA-256 (not a slow hash) is right here: tokens carry 256
random bits, so there is nothing to brute-force.
"""

import asyncio
import hashlib
import secrets
import time
import uuid
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from kalimera.db import Conn, Pool, transaction
from kalimera.settings import Settings
from kalimera.singleflight import SingleFlight

TOKEN_PREFIX = "klm_"  # noqa: S105 - a recognisable prefix, not a secret


class Scope(StrEnum):
    AGENTS_READ = "agents:read"
    AGENTS_WRITE = "agents:write"
    CONTACTS_READ = "contacts:read"
    CONTACTS_WRITE = "contacts:write"
    CONVERSATIONS_READ = "conversations:read"
    CONVERSATIONS_WRITE = "conversations:write"
    STATISTICS_READ = "statistics:read"
    AGENTS_RUNTIME = "agents:runtime"


DEFAULT_SCOPES = tuple(s for s in Scope if s is not Scope.AGENTS_RUNTIME)


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling: the token's tenant and what it may do."""

    token_id: uuid.UUID
    tenant_id: uuid.UUID
    scopes: frozenset[str]


@dataclass(frozen=True, slots=True)
class TokenInfo:
    id: uuid.UUID
    tenant_id: uuid.UUID
    name: str
    scopes: list[str]
    created_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None


def hash_token(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


def parse_scopes(text: str | None) -> tuple[Scope, ...]:
    """Comma-separated scope names, or the default set when empty; unknown names raise."""
    if not text:
        return DEFAULT_SCOPES
    names = [part.strip() for part in text.split(",") if part.strip()]
    try:
        return tuple(dict.fromkeys(Scope(name) for name in names))
    except ValueError:
        known = ", ".join(s.value for s in Scope)
        msg = f"unknown scope in {text!r}; known scopes: {known}"
        raise ValueError(msg) from None


async def create_token(
    *, conn: Conn, tenant_id: uuid.UUID, name: str, scopes: tuple[Scope, ...]
) -> tuple[uuid.UUID, str]:
    """Store a new token's hash; the token itself is returned once and never again."""
    token_id = uuid.uuid4()
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    await conn.execute(
        "INSERT INTO kalimera_api_tokens (id, tenant_id, name, token_hash, scopes)"
        " VALUES (%(id)s, %(tenant)s, %(name)s, %(hash)s, %(scopes)s)",
        {
            "id": token_id,
            "tenant": tenant_id,
            "name": name,
            "hash": hash_token(token),
            "scopes": [s.value for s in scopes],
        },
    )
    return token_id, token


def issue_token(
    settings: Settings,
    *,
    tenant_id: uuid.UUID,
    name: str,
    scopes: tuple[Scope, ...] = DEFAULT_SCOPES,
) -> tuple[uuid.UUID, str]:
    """Create a token outside a request, on its own event loop: the CLI, tests, benchmarks."""
    from kalimera.services import Services

    async def work() -> tuple[uuid.UUID, str]:
        services = Services(settings)
        try:
            async with transaction(await services.db(), tenant_id=tenant_id) as conn:
                return await create_token(conn=conn, tenant_id=tenant_id, name=name, scopes=scopes)
        finally:
            await services.aclose()

    return asyncio.run(work())


async def list_tokens(*, conn: Conn, tenant_id: uuid.UUID | None = None) -> list[TokenInfo]:
    cur = await conn.execute(
        "SELECT id, tenant_id, name, scopes, created_at, last_used_at, revoked_at"
        " FROM kalimera_api_tokens"
        " WHERE %(tenant)s::uuid IS NULL OR tenant_id = %(tenant)s"
        " ORDER BY tenant_id, created_at",
        {"tenant": tenant_id},
    )
    return [TokenInfo(**row) for row in await cur.fetchall()]


async def revoke_token(*, conn: Conn, token_id: uuid.UUID) -> bool:
    """Revoke a token; False when no live token has that id."""
    cur = await conn.execute(
        "UPDATE kalimera_api_tokens SET revoked_at = now()"
        " WHERE id = %(id)s AND revoked_at IS NULL",
        {"id": token_id},
    )
    return cur.rowcount == 1


class TokenCache:
    """token hash → (principal or None, expiry), kept per process.

    Unknown tokens are cached too (briefly), so a client hammering with a bad token does not
    reach Postgres on every request either. The cache is bounded: it is cleared when full.
    """

    MAX_ENTRIES = 10_000

    def __init__(self, ttl_seconds: float) -> None:
        self.ttl = ttl_seconds
        self._entries: dict[bytes, tuple[Principal | None, float]] = {}

    def get(self, key: bytes) -> tuple[bool, Principal | None]:
        hit = self._entries.get(key)
        if hit is None or hit[1] < time.monotonic():
            return False, None
        return True, hit[0]

    def put(self, key: bytes, principal: Principal | None) -> None:
        if len(self._entries) >= self.MAX_ENTRIES:
            self._entries.clear()
        self._entries[key] = (principal, time.monotonic() + self.ttl)


_lookups: SingleFlight[Principal | None] = SingleFlight()


async def authenticate(*, pool: Pool, cache: TokenCache, token: str) -> Principal | None:
    """The principal a token stands for, or None when it is unknown or revoked."""
    key = hash_token(token)
    hit, principal = cache.get(key)
    if hit:
        return principal

    async def lookup() -> Principal | None:
        async with transaction(pool, system=True) as conn:  # by hash: the tenant is unknown
            found = await _lookup_and_touch(conn, key)
        cache.put(key, found)
        return found

    # When a busy token's entry expires, the requests in flight share one lookup instead of
    # each updating the same row (and queueing for the pool).
    return await _lookups.do(key.hex(), lookup)


async def _lookup_and_touch(conn: Conn, key: bytes) -> Principal | None:
    # last_used_at is refreshed on cache misses only: at most once per cache lifetime.
    cur = await conn.execute(
        "UPDATE kalimera_api_tokens SET last_used_at = now()"
        " WHERE token_hash = %(hash)s AND revoked_at IS NULL"
        " RETURNING id, tenant_id, scopes",
        {"hash": key},
    )
    row: dict[str, Any] | None = await cur.fetchone()
    if row is None:
        return None
    return Principal(
        token_id=row["id"], tenant_id=row["tenant_id"], scopes=frozenset(row["scopes"])
    )


def bearer_token(header: str | None) -> str | None:
    """The token from ``Authorization: Bearer T`` or the bare ``Authorization: T``."""
    if not header:
        return None
    scheme, _, rest = header.strip().partition(" ")
    if rest and scheme.lower() == "bearer":
        return rest.strip() or None
    return header.strip() if not rest else None
