"""The PostgreSQL pool and the transaction boundary.

The pool is small (a Flex Consumption instance serves a handful of concurrent requests and many
instances share one server), checks a connection before handing it out (so service resumes by
itself when Postgres comes back) and waits at most ``db_timeout_seconds`` for one, so a database
outage answers 503 quickly instead of hanging.
"""

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import psycopg
from psycopg import AsyncConnection
from psycopg.rows import DictRow, dict_row
from psycopg_pool import AsyncConnectionPool

Conn = AsyncConnection[DictRow]
Pool = AsyncConnectionPool[Conn]


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
) -> Pool:
    """A pool, not yet open. ``password`` (an Entra access token) is asked for on every new
    connection, so a token that expires is replaced without a restart."""

    async def configure(conn: Conn) -> None:
        await conn.execute(
            "SELECT set_config('statement_timeout', %(ms)s, false)",
            {"ms": str(statement_timeout_ms)},
        )
        await conn.commit()

    async def connect_kwargs() -> dict[str, Any]:
        kwargs: dict[str, Any] = {
            "row_factory": dict_row,
            "connect_timeout": max(1, round(timeout)),
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


@asynccontextmanager
async def transaction(pool: Pool) -> AsyncIterator[Conn]:
    """One unit of work: commits when the block ends, rolls back when it raises.

    A pool timeout or a lost connection becomes ``DatabaseUnavailable`` (answered as 503).
    """
    try:
        async with pool.connection() as conn:
            yield conn
    except psycopg.OperationalError as exc:
        raise DatabaseUnavailable(type(exc).__name__) from exc
