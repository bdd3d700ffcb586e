"""The PostgreSQL pool and the transaction boundary, and whose rows a transaction may touch.

The pool is small (a Flex Consumption instance serves a handful of concurrent requests and many
instances share one server), checks a connection before handing it out (so service resumes by
itself when Postgres comes back) and waits at most ``db_timeout_seconds`` for one, so a database
outage answers 503 quickly instead of hanging.

Row-level security (defence in depth; migration ``0011_row_level_security``). Every table with a
``tenant_id`` column has a policy that shows, and accepts, only the rows of the tenant named by
the transaction-local setting ``kalimera.tenant_id``, or every row when ``kalimera.scope`` is
``system``. ``transaction()`` sets both at its start, from (first match wins):

- its arguments: ``transaction(pool, tenant_id=t)`` (ingestion, from the blob's path; the CLI's
  ``--tenant``) or ``transaction(pool, system=True)`` (work that crosses tenants by design: token
  lookup by hash, the statistics rollup and idle sweep, the rejections list, the demo seed);
- else the tenant of the current context, set by ``act_for_tenant(t)``, which the auth
  dependency calls for every authenticated request (uvicorn and the Functions worker run each
  request in a task of its own, whose context ends with it).

With neither, the transaction sees no tenant rows and can write none: a query that forgets its
``WHERE tenant_id = …`` finds nothing of another tenant instead of everything. Cross-tenant
access is therefore always spelled out at the call site, never a default.

The settings cost no extra round trip: pool connections are in autocommit mode and
``transaction()`` opens the transaction itself with one simple-protocol query,
``BEGIN; SET LOCAL kalimera.tenant_id = '…'; SET LOCAL kalimera.scope = '…'`` (what psycopg's own
``BEGIN`` cost before). ``SET LOCAL`` ends with the transaction, so nothing leaks to the next
user of a pooled connection. The commit or rollback at the end is psycopg's pool's, as before.

The pool also switches every connection to the app's role (``KALIMERA_DB_APP_ROLE``, default
``kalimera_app``; ``SET ROLE``): it may read and write rows but owns nothing and cannot change the
schema, and it is not a superuser, so the policies apply to it. Migrations run as the configured
user (the owner) on a connection of their own (``kalimera.migrate``). The settings are a guard
against a query that forgets its tenant, not against arbitrary SQL: code that can run any
statement can also change them (or ``RESET ROLE`` where the login role is more than the app role).
"""

import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from contextlib import asynccontextmanager
from contextvars import ContextVar
from datetime import date
from typing import Any

import psycopg
from psycopg import AsyncConnection
from psycopg.rows import DictRow, dict_row
from psycopg_pool import AsyncConnectionPool

Conn = AsyncConnection[DictRow]
Pool = AsyncConnectionPool[Conn]

SYSTEM = "system"  # the value of kalimera.scope that the policies let see every tenant

# The tenant the current request acts for (None: no tenant rows).
_tenant_of_context: ContextVar[uuid.UUID | None] = ContextVar("kalimera_tenant", default=None)


class DatabaseUnavailable(RuntimeError):
    """Postgres did not answer in time; the caller should retry later (503)."""


def create_pool(
    conninfo: str,
    *,
    min_size: int,
    max_size: int,
    timeout: float,
    statement_timeout_ms: int,
    password: Callable[[], Awaitable[str]] | None = None,
    role: str | None = None,
) -> Pool:
    """A pool, not yet open. ``password`` (an Entra access token) is asked for on every new
    connection, so a token that expires is replaced without a restart. ``role``: every
    connection runs as that role (``SET ROLE``); None keeps the login role."""

    async def configure(conn: Conn) -> None:
        # One statement, one round trip per new connection; set_config('role') is SET ROLE.
        await conn.execute(
            "SELECT set_config('statement_timeout', %(ms)s, false),"
            " CASE WHEN %(role)s::text IS NOT NULL THEN set_config('role', %(role)s, false) END",
            {"ms": str(statement_timeout_ms), "role": role},
        )

    async def connect_kwargs() -> dict[str, Any]:
        kwargs: dict[str, Any] = {
            "row_factory": dict_row,
            "connect_timeout": max(1, round(timeout)),
            # transaction() sends BEGIN itself, together with the scope settings.
            "autocommit": True,
        }
        if password is not None:
            kwargs["password"] = await password()
        return kwargs

    return AsyncConnectionPool(
        conninfo,
        min_size=min_size,
        max_size=max_size,
        timeout=timeout,
        open=False,
        kwargs=connect_kwargs,
        configure=configure,
        check=AsyncConnectionPool.check_connection,
        reconnect_timeout=0,
    )


def act_for_tenant(tenant_id: uuid.UUID) -> None:
    """From now on in this context (an HTTP request's task), transactions act for ``tenant_id``."""
    _tenant_of_context.set(_tenant(tenant_id))


def _tenant(tenant_id: uuid.UUID) -> uuid.UUID:
    # Checked here because its text goes into a statement (below) as a literal.
    if not isinstance(tenant_id, uuid.UUID):
        msg = f"a tenant id must be a UUID, not {type(tenant_id).__name__}"
        raise TypeError(msg)
    return tenant_id


_BEGIN_SYSTEM = b"BEGIN; SET LOCAL kalimera.tenant_id = ''; SET LOCAL kalimera.scope = 'system'"
_BEGIN_NOBODY = b"BEGIN; SET LOCAL kalimera.tenant_id = ''; SET LOCAL kalimera.scope = ''"


def _begin(scope: uuid.UUID | str | None) -> bytes:
    """The statement that opens a transaction in ``scope``: a simple-protocol query (several
    statements, no parameters), so BEGIN and the settings travel in one round trip. A UUID's
    text is 32 hex digits and dashes, safe as a literal."""
    if scope is None:
        return _BEGIN_NOBODY
    if scope == SYSTEM:
        return _BEGIN_SYSTEM
    return b"BEGIN; SET LOCAL kalimera.tenant_id = '%s'; SET LOCAL kalimera.scope = ''" % (
        str(scope).encode()
    )


@asynccontextmanager
async def transaction(
    pool: Pool, *, tenant_id: uuid.UUID | None = None, system: bool = False
) -> AsyncIterator[Conn]:
    """One unit of work: commits when the block ends, rolls back when it raises.

    It acts for ``tenant_id``, or for every tenant with ``system=True``, or else for the tenant
    of the current context (see the module doc); with none of them it sees no tenant rows.
    A pool timeout or a lost connection becomes ``DatabaseUnavailable`` (answered as 503).
    """
    if tenant_id is not None and system:
        msg = "a transaction acts for one tenant or for the system, not both"
        raise ValueError(msg)
    scope: uuid.UUID | str | None = SYSTEM
    if not system:
        scope = _tenant(tenant_id) if tenant_id is not None else _tenant_of_context.get()
    try:
        async with pool.connection() as conn:
            await conn.execute(_begin(scope))
            yield conn
    except psycopg.OperationalError as exc:
        raise DatabaseUnavailable(type(exc).__name__) from exc


def array_literal(values: Iterable[uuid.UUID | date | int]) -> str:
    """``values`` as a PostgreSQL array literal (``{a,b,c}``), for a parameter the SQL casts
    (``%(x)s::timestamptz[]``).

    For the arrays a statement of the statistics sends by the hundred or thousand: psycopg adapts
    a list parameter element by element in Python (10 to 20 microseconds an element, C extension
    included), where this is one join. Only for values whose text has no comma, brace, quote or
    space (uuids, dates, aware datetimes in ISO format, integers), which need no quoting."""
    return "{" + ",".join(v.isoformat() if isinstance(v, date) else str(v) for v in values) + "}"
