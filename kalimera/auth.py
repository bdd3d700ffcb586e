"""API tokens: random, shown once, stored as SHA-256 hashes, scoped to one tenant.

The hot path checks a token against a short-lived in-process cache (``auth_cache_seconds``, at
most 60 s), so a request costs no Postgres round trip; a revoked token stops working on every
instance once its cache entry ages out. SHA-256 (not a slow hash) is right here: tokens carry 256
random bits, so there is nothing to brute-force.

The token format, like GitHub's: ``klm_`` + 43 base62 characters (256 random bits) + a 6-character
base62 CRC32 of what precedes it. A string that is not a well-formed token (a typo, a truncated
paste, random garbage) is refused without touching the database or the cache. The checksum is not
a signature: someone who knows the format can make well-formed tokens, and each costs one indexed
read (never a write), after which the negative cache answers it. Tokens issued before this format
(``klm_`` + 43 URL-safe base64 characters, no checksum) keep working: a string of exactly that
shape is looked up in the database as before.
"""

import asyncio
import hashlib
import re
import secrets
import string
import time
import uuid
import zlib
from collections import OrderedDict
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from kalimera.db import Conn, Pool, transaction
from kalimera.settings import Settings
from kalimera.singleflight import SingleFlight

TOKEN_PREFIX = "klm_"  # noqa: S105 - a recognisable prefix, not a secret
BASE62 = string.digits + string.ascii_uppercase + string.ascii_lowercase
RANDOM_CHARS = 43  # 62**43 > 2**256
CHECKSUM_CHARS = 6  # 62**6 > 2**32
_TOKEN = re.compile(rf"{TOKEN_PREFIX}[0-9A-Za-z]{{{RANDOM_CHARS + CHECKSUM_CHARS}}}")
_LEGACY_TOKEN = re.compile(rf"{TOKEN_PREFIX}[0-9A-Za-z_-]{{43}}")
LISTED_COLUMNS = (  # what a listing shows of a token (never its hash)
    "id, tenant_id, name, scopes, created_at, last_used_at, revoked_at, expires_at, created_by"
)
# last_used_at is refreshed at most this often per token (it is shown to the minute).
TOUCH_SECONDS = 60


class Scope(StrEnum):
    AGENTS_READ = "agents:read"
    AGENTS_WRITE = "agents:write"
    CONTACTS_READ = "contacts:read"
    CONTACTS_WRITE = "contacts:write"
    CONVERSATIONS_READ = "conversations:read"
    CONVERSATIONS_WRITE = "conversations:write"
    STATISTICS_READ = "statistics:read"
    WEBHOOKS_READ = "webhooks:read"
    WEBHOOKS_WRITE = "webhooks:write"
    AGENTS_RUNTIME = "agents:runtime"
    TOKENS_ADMIN = "tokens:admin"
    SETTINGS_ADMIN = "settings:admin"  # the tenant's settings, such as its retention


# Granted only when asked for by name: the voice runtime's scope, and the administrator's.
EXPLICIT_SCOPES = frozenset({Scope.AGENTS_RUNTIME, Scope.TOKENS_ADMIN, Scope.SETTINGS_ADMIN})
DEFAULT_SCOPES = tuple(s for s in Scope if s not in EXPLICIT_SCOPES)


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling: the token's tenant and what it may do."""

    token_id: uuid.UUID
    tenant_id: uuid.UUID
    scopes: frozenset[str]
    expires_at: datetime | None = None

    def may(self, scope: Scope) -> bool:
        """Whether the token grants ``scope``: the one rule of the routes' dependency and of
        the cached agent read in front of the router."""
        return scope.value in self.scopes


@dataclass(frozen=True, slots=True)
class TokenInfo:
    id: uuid.UUID
    tenant_id: uuid.UUID
    name: str
    scopes: list[str]
    created_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None
    expires_at: datetime | None
    created_by: uuid.UUID | None


def hash_token(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


def _checksum(text: str) -> str:
    value = zlib.crc32(text.encode())
    digits = []
    for _ in range(CHECKSUM_CHARS):
        value, digit = divmod(value, 62)
        digits.append(BASE62[digit])
    return "".join(reversed(digits))


def new_token() -> str:
    """A token in the current format: prefix, 256 random bits in base62, CRC32 checksum."""
    body = TOKEN_PREFIX + "".join(secrets.choice(BASE62) for _ in range(RANDOM_CHARS))
    return body + _checksum(body)


def well_formed(token: str) -> bool:
    """Whether ``token`` could be one we issued: the current format with a matching checksum,
    or the earlier format (which has no checksum). Costs no I/O."""
    if _TOKEN.fullmatch(token):
        return _checksum(token[:-CHECKSUM_CHARS]) == token[-CHECKSUM_CHARS:]
    return _LEGACY_TOKEN.fullmatch(token) is not None


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
    *,
    conn: Conn,
    tenant_id: uuid.UUID,
    name: str,
    scopes: tuple[Scope, ...],
    expires_at: datetime | None = None,
    created_by: uuid.UUID | None = None,
) -> tuple[uuid.UUID, str]:
    """Store a new token's hash; the token itself is returned once and never again."""
    token_id = uuid.uuid4()
    token = new_token()
    await conn.execute(
        "INSERT INTO kalimera_api_tokens"
        " (id, tenant_id, name, token_hash, scopes, expires_at, created_by)"
        " VALUES (%(id)s, %(tenant_id)s, %(name)s, %(hash)s, %(scopes)s, %(expires_at)s,"
        " %(created_by)s)",
        {
            "id": token_id,
            "tenant_id": tenant_id,
            "name": name,
            "hash": hash_token(token),
            "scopes": [s.value for s in scopes],
            "expires_at": expires_at,
            "created_by": created_by,
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
        f"SELECT {LISTED_COLUMNS} FROM kalimera_api_tokens"  # noqa: S608 - fixed names
        " WHERE %(tenant_id)s::uuid IS NULL OR tenant_id = %(tenant_id)s"
        " ORDER BY tenant_id, created_at",
        {"tenant_id": tenant_id},
    )
    return [TokenInfo(**row) for row in await cur.fetchall()]


async def revoke_token(*, conn: Conn, token_id: uuid.UUID) -> bytes | None:
    """Revoke a token; its hash (the cache's key), or None when no live token has that id."""
    cur = await conn.execute(
        "UPDATE kalimera_api_tokens SET revoked_at = now()"
        " WHERE id = %(id)s AND revoked_at IS NULL RETURNING token_hash",
        {"id": token_id},
    )
    row = await cur.fetchone()
    return None if row is None else bytes(row["token_hash"])


async def revoke_tokens_named(*, conn: Conn, tenant_id: uuid.UUID, name: str) -> int:
    """Revoke every live token of the tenant with that name (a process that issues itself a
    fresh token each start, like the dev runner, so they do not pile up); how many."""
    cur = await conn.execute(
        "UPDATE kalimera_api_tokens SET revoked_at = now()"
        " WHERE tenant_id = %(tenant_id)s AND name = %(name)s AND revoked_at IS NULL",
        {"tenant_id": tenant_id, "name": name},
    )
    return cur.rowcount


class TokenCache:
    """token hash → principal (or unknown) until an expiry, kept per process.

    Two bounded LRU maps: known tokens, and unknown ones, so a flood of unknown tokens evicts
    the least recently seen unknown tokens and never a real client's entry (nor clears either
    map, which would send every real client to the database at once).
    """

    MAX_KNOWN = 10_000
    MAX_UNKNOWN = 10_000

    def __init__(self, ttl_seconds: float) -> None:
        self.ttl = ttl_seconds
        self._known: OrderedDict[bytes, tuple[Principal, float]] = OrderedDict()
        self._unknown: OrderedDict[bytes, float] = OrderedDict()

    def get(self, key: bytes) -> tuple[bool, Principal | None]:
        now = time.monotonic()
        known = self._known.get(key)
        if known is not None and known[1] >= now:
            self._known.move_to_end(key)
            return True, known[0]
        expiry = self._unknown.get(key)
        if expiry is not None and expiry >= now:
            self._unknown.move_to_end(key)
            return True, None
        return False, None

    def put(self, key: bytes, principal: Principal | None) -> None:
        expiry = time.monotonic() + self.ttl
        if principal is not None and principal.expires_at is not None:
            # An expiring token is not served from the cache past its expiry.
            left = (principal.expires_at - datetime.now(UTC)).total_seconds()
            expiry = min(expiry, time.monotonic() + left)
        if principal is None:
            self._known.pop(key, None)
            _put(self._unknown, key, expiry, self.MAX_UNKNOWN)
        else:
            self._unknown.pop(key, None)
            _put(self._known, key, (principal, expiry), self.MAX_KNOWN)

    def evict(self, key: bytes) -> None:
        """Forget a token (revoked here): this instance stops accepting it at once."""
        self._known.pop(key, None)

    def __len__(self) -> int:
        return len(self._known) + len(self._unknown)


def _put(entries: OrderedDict[bytes, Any], key: bytes, value: Any, most: int) -> None:
    entries[key] = value
    entries.move_to_end(key)
    while len(entries) > most:
        entries.popitem(last=False)


_lookups: SingleFlight[Principal | None] = SingleFlight()


def cached_principal(*, cache: TokenCache, token: str) -> Principal | None:
    """The principal ``cache`` holds for ``token``, without any I/O; None when it holds none
    (malformed, unknown, expired, or not looked up yet): then ``authenticate`` decides.

    No format check: ``authenticate`` is the only writer of the cache and admits a token to it
    only once it is well formed, so a malformed one is never found (the check, a regex and a
    CRC in Python, was most of a cached read's token check)."""
    return cache.get(hash_token(token))[1]


async def authenticate(*, pool: Pool, cache: TokenCache, token: str) -> Principal | None:
    """The principal a token stands for, or None when it is unknown or revoked."""
    if not well_formed(token):
        return None
    key = hash_token(token)
    hit, principal = cache.get(key)
    if hit:
        return principal

    async def lookup() -> Principal | None:
        async with transaction(pool, system=True) as conn:  # by hash: the tenant is unknown
            found = await _lookup(conn, key)
        cache.put(key, found)
        return found

    # When a busy token's entry expires, the requests in flight share one lookup instead of
    # each querying the same row (and queueing for the pool).
    return await _lookups.do(key.hex(), lookup)


async def _lookup(conn: Conn, key: bytes) -> Principal | None:
    """A read; the one write, ``last_used_at``, only for a known token not touched within
    ``TOUCH_SECONDS``: an unknown token never costs a write."""
    cur = await conn.execute(
        "SELECT id, tenant_id, scopes, expires_at,"
        " coalesce(last_used_at < now() - make_interval(secs => %(touch)s), true) AS stale"
        " FROM kalimera_api_tokens WHERE token_hash = %(hash)s AND revoked_at IS NULL"
        " AND (expires_at IS NULL OR expires_at > now())",
        {"hash": key, "touch": TOUCH_SECONDS},
    )
    row: dict[str, Any] | None = await cur.fetchone()
    if row is None:
        return None
    if row["stale"]:
        await conn.execute(
            "UPDATE kalimera_api_tokens SET last_used_at = now() WHERE id = %(id)s",
            {"id": row["id"]},
        )
    return Principal(
        token_id=row["id"],
        tenant_id=row["tenant_id"],
        scopes=frozenset(row["scopes"]),
        expires_at=row["expires_at"],
    )


def bearer_token(header: str | None) -> str | None:
    """The token from ``Authorization: Bearer T`` or the bare ``Authorization: T``."""
    if not header:
        return None
    scheme, _, rest = header.strip().partition(" ")
    if rest and scheme.lower() == "bearer":
        return rest.strip() or None
    return header.strip() if not rest else None
