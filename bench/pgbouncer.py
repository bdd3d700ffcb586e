"""What PgBouncer in transaction mode costs, and saves, the app's database access, side by side.

    .venv/bin/python -m bench.pgbouncer [--rounds 5] [--n 200]

One throwaway migrated database, reached two ways: directly, and through a private PgBouncer in
transaction mode (``LocalStack.pgbouncer``, as the API suite and Azure's built-in one run). Each
round measures both ways one after the other (the machine is shared and its load moves); the
figures are medians of the rounds' medians, with the ratio PgBouncer / direct:
- ``connect``: a new connection and its first transaction, what every new pool connection costs
  (directly, Postgres forks and authenticates a backend; through PgBouncer, a handshake with it
  and a server connection it already has);
- ``transaction``: one ``kalimera.db.transaction()`` with a point read on an open pool, what
  every request pays (through PgBouncer, one more hop each way for each round trip);
- ``no session state``: what that transaction pays, directly, for being safe behind a pooler:
  the role and the statement timeout as ``SET LOCAL`` in every ``BEGIN`` (``kalimera.db``) against
  the same read on a pool that set them once per connection (as ``kalimera.db`` did before),
  here in place of the two ways.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from functools import partial
from pathlib import Path

import psycopg
from psycopg.rows import dict_row
from psycopg_pool import AsyncConnectionPool

from bench._stack import ADMIN_URL
from kalimera.db import Pool, create_pool, transaction
from kalimera.dev.localstack import LocalStack, drop_database, ensure_database
from kalimera.migrate import migrate

READ = "SELECT count(*) FROM kalimera_contacts WHERE tenant_id = %(t)s"


async def median_us(step: Callable[[], Awaitable[object]], n: int) -> float:
    times = []
    for _ in range(n):
        started = time.perf_counter()
        await step()
        times.append(time.perf_counter() - started)
    return statistics.median(times) * 1e6


async def connect_once(url: str) -> None:
    async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
        await conn.execute("BEGIN")
        await conn.execute(READ, {"t": uuid.uuid4()})
        await conn.execute("COMMIT")


def session_pool(url: str) -> AsyncConnectionPool[psycopg.AsyncConnection[dict[str, object]]]:
    """A pool that sets the role and the statement timeout once per connection (session state,
    which a transaction pooler would hand to other clients): the cost without SET LOCAL."""

    async def configure(conn: psycopg.AsyncConnection[dict[str, object]]) -> None:
        await conn.execute(
            "SELECT set_config('statement_timeout', '15000', false),"
            " set_config('role', 'kalimera_app', false)"
        )

    return AsyncConnectionPool(
        url,
        min_size=1,
        max_size=1,
        open=False,
        kwargs={"row_factory": dict_row, "autocommit": True, "prepare_threshold": None},
        configure=configure,
        check=AsyncConnectionPool.check_connection,
    )


async def session_read(
    pool: AsyncConnectionPool[psycopg.AsyncConnection[dict[str, object]]],
) -> None:
    tenant = uuid.uuid4()
    async with pool.connection() as conn:
        await conn.execute(
            b"BEGIN; SET LOCAL kalimera.tenant_id = '%s'; SET LOCAL kalimera.scope = ''"
            % str(tenant).encode()
        )
        await conn.execute(READ, {"t": tenant})


async def read_on(pool: Pool) -> None:
    tenant = uuid.uuid4()
    async with transaction(pool, tenant_id=tenant) as conn:
        await conn.execute(READ, {"t": tenant})


async def measure(urls: dict[str, str], rounds: int, n: int) -> dict[str, dict[str, list[float]]]:
    pools = {
        way: create_pool(
            url,
            min_size=1,
            max_size=1,
            timeout=5,
            statement_timeout_ms=15_000,
            role="kalimera_app",
            transaction_pooling=True,
        )
        for way, url in urls.items()
    }
    session = session_pool(urls["direct"])
    for pool in (*pools.values(), session):
        await pool.open(wait=True)
    figures: dict[str, dict[str, list[float]]] = {
        "connect": {way: [] for way in urls},
        "transaction": {way: [] for way in urls},
        "no session state": {way: [] for way in urls},
    }
    try:
        for _ in range(rounds):
            for way, url in urls.items():
                figures["connect"][way].append(await median_us(partial(connect_once, url), n))
                figures["transaction"][way].append(
                    await median_us(partial(read_on, pools[way]), n * 5)
                )
            # "direct" here is the pool with session state, "pgbouncer" kalimera.db's own pool;
            # both reach Postgres directly.
            figures["no session state"]["direct"].append(
                await median_us(partial(session_read, session), n * 5)
            )
            figures["no session state"]["pgbouncer"].append(
                await median_us(partial(read_on, pools["direct"]), n * 5)
            )
    finally:
        for pool in (*pools.values(), session):
            await pool.close()
    return figures


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--n", type=int, default=200)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp, LocalStack(Path(tmp)) as stack:
        server = stack.postgres(ADMIN_URL)
        url = server.rsplit("/", 1)[0] + f"/kalimera_bench_{uuid.uuid4().hex[:8]}"
        ensure_database(url)
        try:
            migrate(url)
            urls = {"direct": url, "pgbouncer": stack.pgbouncer(url)}
            figures = asyncio.run(measure(urls, args.rounds, args.n))
        finally:
            drop_database(url)
    print(f"{args.rounds} rounds of {args.n} connects and {args.n * 5} transactions each way")
    print(f"load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    for what, ways in figures.items():
        before, after = (statistics.median(ways[w]) for w in ("direct", "pgbouncer"))
        names = ("direct", "through PgBouncer")
        if what == "no session state":
            names = ("role and timeout per connection", "SET LOCAL in BEGIN")
        print(
            f"{what:16s} {names[0]} {before:5.0f} us, {names[1]} {after:5.0f} us"
            f" (x{after / before:.2f})"
        )


if __name__ == "__main__":
    main()
