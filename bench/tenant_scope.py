"""What row-level security costs a database-backed read, side by side in one run.

    .venv/bin/python -m bench.tenant_scope [--reads 2000] [--rounds 5] [--clients 16]

One throwaway database (migrated) with 1,000 contacts for each of 20 tenants. The same read, the
contacts repository's ``get`` (what ``GET /kalimera/contact/{id}`` runs in its transaction),
three ways, on three pools of 8 connections to the same server:
- ``before``: the transaction as it was before row-level security: psycopg's ``BEGIN``, the
  query, ``COMMIT``, as the connecting user (a superuser here: no policy applies);
- ``rls``: ``kalimera.db.transaction(tenant_id=...)``: ``BEGIN`` and the ``SET LOCAL`` of the
  role, the statement timeout and the scope in one round trip, the query under the policy, as
  ``kalimera_app``;
- ``rls, own round trip``: the setting as a statement of its own (``SELECT set_config(...)``
  after psycopg's ``BEGIN``), what the scope would cost without sharing ``BEGIN``'s round trip.
One client reads each key all three ways in turn (the machine is shared and its load moves:
this way it falls on each alike) and the latency per read is printed as median and p10 (the
cost with the least interference); ``--clients`` concurrent clients measure throughput, the ways
alternating round by round (medians of rounds). Each figure with its ratio to ``before``. A
cached agent read (``bench/agent_read.py``) opens no transaction and pays nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import psycopg
from psycopg.rows import dict_row
from psycopg_pool import AsyncConnectionPool

from bench._stack import ADMIN_URL
from kalimera.contacts import repository
from kalimera.db import Conn, Pool, create_pool, transaction
from kalimera.dev.localstack import LocalStack, drop_database, ensure_database
from kalimera.migrate import migrate

TENANTS = 20
CONTACTS = 1_000
POOL = 8

Read = Callable[[uuid.UUID, int], Awaitable[Any]]


def seed(url: str) -> list[tuple[uuid.UUID, int]]:
    """The contacts, written as the owner; (tenant, id) of each."""
    tenants = [uuid.uuid4() for _ in range(TENANTS)]
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO kalimera_contacts (tenant_id, first_name, last_name, contact_no)"
            " SELECT t, 'Bench', 'Contact ' || n, '+3021' || lpad(n::text, 8, '0')"
            " FROM unnest(%(t)s::uuid[]) AS t, generate_series(1, %(n)s) AS n",
            {"t": tenants, "n": CONTACTS},
        )
        return [(r[0], r[1]) for r in conn.execute("SELECT tenant_id, id FROM kalimera_contacts")]


def reads(
    before: AsyncConnectionPool[Conn], rls: Pool, own: AsyncConnectionPool[Conn]
) -> dict[str, Read]:
    async def read_before(tenant: uuid.UUID, contact: int) -> Any:
        async with before.connection() as conn:
            return await repository.get(conn=conn, tenant_id=tenant, contact_id=contact)

    async def read_rls(tenant: uuid.UUID, contact: int) -> Any:
        async with transaction(rls, tenant_id=tenant) as conn:
            return await repository.get(conn=conn, tenant_id=tenant, contact_id=contact)

    async def read_own_round_trip(tenant: uuid.UUID, contact: int) -> Any:
        async with own.connection() as conn:
            await conn.execute(
                "SELECT set_config('kalimera.tenant_id', %(t)s, true)", {"t": str(tenant)}
            )
            return await repository.get(conn=conn, tenant_id=tenant, contact_id=contact)

    return {"before": read_before, "rls": read_rls, "rls, own round trip": read_own_round_trip}


async def latencies(
    variants: dict[str, Read], keys: list[tuple[uuid.UUID, int]]
) -> dict[str, list[float]]:
    """One client: each key read every way in turn, so that the machine's load (shared, noisy)
    falls on every way alike."""
    out: dict[str, list[float]] = {name: [] for name in variants}
    for tenant, contact in keys:
        for name, read in variants.items():
            started = time.perf_counter()
            row = await read(tenant, contact)
            out[name].append(time.perf_counter() - started)
            assert row is not None
    return out


async def throughput(read: Read, keys: list[tuple[uuid.UUID, int]], clients: int) -> float:
    share = len(keys) // clients

    async def client(part: list[tuple[uuid.UUID, int]]) -> None:
        for tenant, contact in part:
            assert await read(tenant, contact) is not None

    started = time.perf_counter()
    await asyncio.gather(*(client(keys[i * share : (i + 1) * share]) for i in range(clients)))
    return share * clients / (time.perf_counter() - started)


def plain_pool(url: str, role: str | None) -> AsyncConnectionPool[Conn]:
    """A pool like the one before row-level security: ``kalimera.db.create_pool`` as it was
    (psycopg starts each transaction; a check of the connection when it is handed out)."""

    async def configure(conn: Conn) -> None:
        if role is not None:
            await conn.execute("SELECT set_config('role', %(r)s, false)", {"r": role})
        await conn.commit()

    return AsyncConnectionPool(
        url,
        min_size=POOL,
        max_size=POOL,
        open=False,
        kwargs={"row_factory": dict_row},
        configure=configure,
        check=AsyncConnectionPool.check_connection,
    )


async def run(url: str, keys: list[tuple[uuid.UUID, int]], args: argparse.Namespace) -> None:
    before, own = plain_pool(url, None), plain_pool(url, "kalimera_app")
    rls = create_pool(
        url,
        min_size=POOL,
        max_size=POOL,
        timeout=5,
        statement_timeout_ms=15_000,
        role="kalimera_app",
    )
    for pool in (before, own, rls):
        await pool.open(wait=True)
    try:
        variants = reads(before, rls, own)
        rng = random.Random(1)
        await latencies(variants, rng.sample(keys, 200))  # warm up: connections, prepared plans
        lat: dict[str, list[float]] = {name: [] for name in variants}
        tput: dict[str, list[float]] = {name: [] for name in variants}
        for r in range(args.rounds):
            for name, seconds in (await latencies(variants, rng.sample(keys, args.reads))).items():
                lat[name] += seconds
            for name, read in variants.items():
                tput[name].append(
                    await throughput(read, rng.sample(keys, args.reads), args.clients)
                )
            print(
                f"round {r + 1}: "
                + ", ".join(f"{name} {tput[name][-1]:.0f}" for name in variants)
                + f" reads/s with {args.clients} clients",
                flush=True,
            )
        print()

        def quantile(name: str, q: float) -> float:
            ordered = sorted(lat[name])
            return ordered[int(len(ordered) * q)] * 1e6

        base = quantile("before", 0.5), quantile("before", 0.1), statistics.median(tput["before"])
        for name in variants:
            median, p10, rate = (
                quantile(name, 0.5),
                quantile(name, 0.1),
                statistics.median(tput[name]),
            )
            print(
                f"{name:20s} one client: median {median:5.0f} us (x{median / base[0]:.2f}),"
                f" p10 {p10:5.0f} us (x{p10 / base[1]:.2f});"
                f" {args.clients} clients: {rate:5.0f} reads/s (x{rate / base[2]:.2f})"
            )
    finally:
        for pool in (before, own, rls):
            await pool.close()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--reads", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--clients", type=int, default=16)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp, LocalStack(Path(tmp)) as stack:
        url = (
            stack.postgres(ADMIN_URL).rsplit("/", 1)[0] + f"/kalimera_bench_{uuid.uuid4().hex[:8]}"
        )
        ensure_database(url)
        try:
            migrate(url)
            keys = seed(url)
            print(
                f"{TENANTS} tenants x {CONTACTS} contacts; {args.reads} reads per round and way,"
                f" {args.rounds} rounds; pools of {POOL}\n"
            )
            asyncio.run(run(url, keys, args))
        finally:
            drop_database(url)


if __name__ == "__main__":
    main()
