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
``BEGIN; SET LOCAL ROLE …; SET LOCAL statement_timeout = …; SET LOCAL kalimera.tenant_id = '…';
SET LOCAL kalimera.scope = '…'`` (what psycopg's own ``BEGIN`` cost before). The commit or
rollback at the end is psycopg's pool's, as before.

No session state (docs/performance.md, "Connection budget"). Every setting a transaction relies
on is ``SET LOCAL`` and ends with it, so the app works unchanged behind a pooler in transaction
mode (Azure's built-in PgBouncer, port 6432), where each transaction may run on a different
server connection and the next client's transaction runs on this one: nothing is set for the
session (not even on connect: a ``configure`` callback would reach one server connection and
leave it changed for whoever gets it next), advisory locks are ``pg_advisory_xact_lock``,
temporary tables are ``ON COMMIT DROP``, there is no ``LISTEN``, no ``WITH HOLD`` cursor. Behind
such a pooler (``transaction_pooling``) psycopg also prepares nothing: a statement it prepares
after five runs lives on one server connection, which the next run may not get. Only the
migrations hold a session (an advisory lock for the whole run) and connect to Postgres directly
(``kalimera.migrate``).

The pool switches every transaction to the app's role (``KALIMERA_DB_APP_ROLE``, default
``kalimera_app``; ``SET LOCAL ROLE``): it may read and write rows but owns nothing and cannot
change the schema, and it is not a superuser, so the policies apply to it. Migrations run as the
configured user (the owner) on a connection of their own (``kalimera.migrate``). The settings are
a guard against a query that forgets its tenant, not against arbitrary SQL: code that can run any
statement can also change them (or ``RESET ROLE`` where the login role is more than the app role).
"""

import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from contextlib import asynccontextmanager
from contextvars import ContextVar
from datetime import date
from typing import Any

import psycopg
from psycopg import AsyncConnection, sql
from psycopg.conninfo import conninfo_to_dict
from psycopg.rows import DictRow, dict_row
from psycopg_pool import AsyncConnectionPool

Conn = AsyncConnection[DictRow]

SYSTEM = "system"  # the value of kalimera.scope that the policies let see every tenant
PGBOUNCER_PORT = 6432  # Azure's built-in PgBouncer (transaction mode), beside Postgres on 5432

# The tenant the current request acts for (None: no tenant rows).
_tenant_of_context: ContextVar[uuid.UUID | None] = ContextVar("kalimera_tenant", default=None)


class DatabaseUnavailable(RuntimeError):
    """Postgres did not answer in time; the caller should retry later (503)."""


class Pool(AsyncConnectionPool[Conn]):
    """psycopg's pool, plus what every transaction on it starts with (see ``begin``)."""

    def __init__(self, conninfo: str, *, local_settings: bytes, **kwargs: Any) -> None:
        super().__init__(conninfo, **kwargs)
        # The role and the statement timeout, as SET LOCAL statements: per transaction, never
        # per connection (a pooler in transaction mode would spread a session's settings).
        self._local_settings = local_settings
        self._begin_system = self._statement(b"", SYSTEM.encode())
        self._begin_nobody = self._statement(b"", b"")

    def begin(self, scope: uuid.UUID | str | None) -> bytes:
        """The statement that opens a transaction in ``scope``: a simple-protocol query (several
        statements, no parameters), so BEGIN and the settings travel in one round trip. A UUID's
        text is 32 hex digits and dashes, safe as a literal."""
        if scope is None:
            return self._begin_nobody
        if scope == SYSTEM:
            return self._begin_system
        return self._statement(str(scope).encode(), b"")

    def _statement(self, tenant: bytes, scope: bytes) -> bytes:
        return b"".join(
            (
                b"BEGIN; ",
                self._local_settings,
                b" SET LOCAL kalimera.tenant_id = '",
                tenant,
                b"'; SET LOCAL kalimera.scope = '",
                scope,
                b"'",
            )
        )


def transaction_pooling(conninfo: str, setting: bool | None) -> bool:
    """Whether ``conninfo`` reaches Postgres through a pooler in transaction mode: ``setting``
    (``KALIMERA_DB_TRANSACTION_POOLING``) when given, else whether the port is PgBouncer's 6432
    (Azure's built-in PgBouncer, which pools by transaction)."""
    if setting is not None:
        return setting
    return str(conninfo_to_dict(conninfo).get("port", "")) == str(PGBOUNCER_PORT)


def create_pool(
    conninfo: str,
    *,
    min_size: int,
    max_size: int,
    timeout: float,
    statement_timeout_ms: int,
    password: Callable[[], Awaitable[str]] | None = None,
    role: str | None = None,
    transaction_pooling: bool = False,
) -> Pool:
    """A pool, not yet open. ``password`` (an Entra access token) is asked for on every new
    connection, so a token that expires is replaced without a restart. ``role``: every
    transaction runs as that role (``SET LOCAL ROLE``); None keeps the login role.
    ``transaction_pooling``: a pooler in transaction mode is in between, so nothing is prepared
    on the server."""
    local = sql.SQL("SET LOCAL statement_timeout = {};").format(sql.Literal(statement_timeout_ms))
    if role is not None:
        local = sql.SQL("SET LOCAL ROLE {}; {}").format(sql.Identifier(role), local)

    async def connect_kwargs() -> dict[str, Any]:
        kwargs: dict[str, Any] = {
            "row_factory": dict_row,
            "connect_timeout": max(1, round(timeout)),
            # transaction() sends BEGIN itself, together with the settings.
            "autocommit": True,
        }
        if transaction_pooling:
            kwargs["prepare_threshold"] = None
        if password is not None:
            kwargs["password"] = await password()
        return kwargs

    return Pool(
        conninfo,
        local_settings=local.as_bytes(None),
        min_size=min_size,
        max_size=max_size,
        timeout=timeout,
        open=False,
        kwargs=connect_kwargs,
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
            await conn.execute(pool.begin(scope))
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
