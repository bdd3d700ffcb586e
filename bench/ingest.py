"""Ingestion throughput: recordings a second, end to end, beside the floor of the same stack.

End to end = a recording already in Azurite becomes a conversation row, a recording row and a
history entity in Table storage (``ingest_blob``, what the blob trigger runs), with the
recordings of many calls in flight at once (as telephony produces them), and, as a worst case,
with the concurrent recordings all from the same call or two (they queue on its row lock).
The floor = the least any ingestion must do: download the blob and INSERT one row. All run in
this one process at the same concurrency, on fresh blobs each round; figures are medians.
Bar (quality-bars.md): >= 50 recordings a second with one process.

    .venv/bin/python bench/ingest.py [--recordings 240] [--rounds 3] [--concurrency 8]
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import os
import secrets
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests" / "conversations"))

from audio_fixtures import wav_bytes  # noqa: E402

from kalimera.conversations.ingest import Outcome, ingest_blob  # noqa: E402
from kalimera.db import transaction  # noqa: E402
from kalimera.localstack import LocalStack, drop_database, ensure_database  # noqa: E402
from kalimera.migrate import migrate  # noqa: E402
from kalimera.services import Services  # noqa: E402
from kalimera.settings import Settings, load_settings  # noqa: E402
from kalimera.storage import ensure_containers  # noqa: E402

ADMIN_URL = os.environ.get("DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
REDIS_URL = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")
TURNS_PER_CALL = 6


@contextlib.contextmanager
def voice_stack() -> Iterator[dict[str, str]]:
    """A throwaway database (migrated) and a private Azurite; yields the settings' environment."""
    import psycopg
    from psycopg.conninfo import conninfo_to_dict, make_conninfo

    with tempfile.TemporaryDirectory() as tmp, LocalStack(Path(tmp)) as stack:
        params = conninfo_to_dict(stack.postgres(ADMIN_URL))
        params["dbname"] = f"kalimera_bench_{secrets.token_hex(4)}"
        url = make_conninfo(**params)  # type: ignore[arg-type]
        ensure_database(url)
        try:
            migrate(url)
            # As the owner: the app's role may write rows, not create tables.
            with psycopg.connect(url, autocommit=True) as conn:
                conn.execute("CREATE TABLE bench_floor (name text PRIMARY KEY, size int)")
            env = {
                "KALIMERA_ENV": "production",
                "DATABASE_URL": url,
                "REDIS_URL": stack.redis(REDIS_URL),
                "KALIMERA_STORAGE": stack.azurite(Path(tmp) / "azurite"),
                "KALIMERA_ENCRYPTION_KEY": base64.b64encode(secrets.token_bytes(32)).decode(),
                "KALIMERA_LOG_LEVEL": "WARNING",
            }
            os.environ.update(env)
            settings = load_settings()
            asyncio.run(_prepare(settings))
            yield env
        finally:
            drop_database(url)


async def _prepare(settings: Settings) -> None:
    services = Services(settings)
    try:
        await ensure_containers(services.blobs, services.tables, settings)
    finally:
        await services.aclose()


async def make_agent(services: Services, tenant_id: uuid.UUID) -> uuid.UUID:
    agent_id = uuid.uuid4()
    async with transaction(await services.db(), tenant_id=tenant_id) as conn:
        await conn.execute(
            "INSERT INTO kalimera_ai_agents (tenant_id, id, name, profile_type)"
            " VALUES (%(t)s, %(a)s, 'bench', 'inbound')",
            {"t": tenant_id, "a": agent_id},
        )
    return agent_id


async def upload_round(
    services: Services, tenant_id: uuid.UUID, agent_id: uuid.UUID, n: int
) -> list[str]:
    """``n`` recordings (calls of six turns, 1 s WAVs with transcripts), uploaded in parallel."""
    container = services.blobs.get_container_client(services.settings.voice_container)
    data = wav_bytes(1.0)
    names = []
    for i in range(n):
        if i % TURNS_PER_CALL == 0:
            conversation_id = uuid.uuid4()
        seq, direction = i % TURNS_PER_CALL // 2 + 1, ("input", "output")[i % 2]
        names.append(f"{tenant_id}/{agent_id}/{conversation_id}/{seq:06d}-{direction}.wav")
    gate = asyncio.Semaphore(16)

    async def put(name: str) -> None:
        async with gate:
            await container.upload_blob(
                name, data, overwrite=True, metadata={"transcript": "thank%20you%2C%20great"}
            )

    await asyncio.gather(*(put(n) for n in names))
    return names


def interleaved(names: list[str]) -> list[str]:
    """Many calls in progress at once, each one turn at a time (how recordings arrive from
    telephony): turn 1 of every call, then turn 2 of every call, and so on."""
    return [
        names[i + turn]
        for turn in range(TURNS_PER_CALL)
        for i in range(0, len(names), TURNS_PER_CALL)
        if i + turn < len(names)
    ]


async def timed(
    names: list[str], work: Callable[[str], Awaitable[object]], concurrency: int
) -> float:
    """Recordings a second for ``work`` over ``names`` at ``concurrency``."""
    gate = asyncio.Semaphore(concurrency)

    async def one(name: str) -> None:
        async with gate:
            await work(name)

    start = time.perf_counter()
    await asyncio.gather(*(one(n) for n in names))
    return len(names) / (time.perf_counter() - start)


async def run(recordings: int, rounds: int, concurrency: int) -> None:
    services = Services(load_settings())
    try:
        tenant_id = uuid.uuid4()
        agent_id = await make_agent(services, tenant_id)
        container = services.blobs.get_container_client(services.settings.voice_container)
        pool = await services.db()

        async def end_to_end(name: str) -> None:
            result = await ingest_blob(services, name)
            assert result.outcome is Outcome.INGESTED, result

        async def floor(name: str) -> None:
            data = await (await container.get_blob_client(name).download_blob()).readall()
            async with transaction(pool) as conn:
                await conn.execute(
                    "INSERT INTO bench_floor (name, size) VALUES (%(n)s, %(s)s)",
                    {"n": name, "s": len(data)},
                )

        # Warm up: imports, the VADER lexicon, pool connections, the table client.
        await timed(await upload_round(services, tenant_id, agent_id, 12), end_to_end, 4)

        figures: dict[str, list[float]] = {"e2e": [], "e2e one call at a time": [], "floor": []}
        for _ in range(rounds):
            names = await upload_round(services, tenant_id, agent_id, recordings)
            figures["floor"].append(await timed(names, floor, concurrency))
            figures["e2e"].append(await timed(interleaved(names), end_to_end, concurrency))
            # Worst case: the concurrent recordings all belong to one or two calls, whose turns
            # queue on the conversation's row lock.
            names = await upload_round(services, tenant_id, agent_id, recordings)
            figures["e2e one call at a time"].append(await timed(names, end_to_end, concurrency))

        e2e = statistics.median(figures["e2e"])
        worst = statistics.median(figures["e2e one call at a time"])
        flo = statistics.median(figures["floor"])
        print(f"ingestion, {recordings} recordings x {rounds} rounds, concurrency {concurrency}")
        print(f"  end to end, many calls at once:             {e2e:8.1f} recordings/s")
        print(f"  end to end, the turns of one call at once:  {worst:8.1f} recordings/s")
        print(f"  floor (download the blob + one INSERT):     {flo:8.1f} recordings/s")
        print(
            f"  ratio end to end / floor: {e2e / flo:.2f} (one call at a time: {worst / flo:.2f})"
        )
        print(f"  bar >= 50 recordings/s: {'met' if e2e >= 50 else 'NOT met'}")
    finally:
        await services.aclose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--recordings", type=int, default=240)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--concurrency", type=int, default=8)
    args = parser.parse_args()
    with voice_stack():
        asyncio.run(run(args.recordings, args.rounds, args.concurrency))


if __name__ == "__main__":
    main()
