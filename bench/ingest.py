"""Ingestion throughput: recordings a second, end to end, beside the floor of the same stack.

Two kinds of recording, measured side by side in the same rounds:

* tiny: 1 s WAVs of 16 KB (parsing and bookkeeping alone);
* real: 8 kHz mono speech of 10 to 120 s as telephony sends it, in all six encodings of the
  corpus (WAV, FLAC, MP3 CBR and VBR, Ogg Vorbis, Ogg Opus), made by the real encoders
  (``tests/support/corpus.py``) and written straight to Blob Storage.

End to end = a recording already in Azurite becomes a conversation row, a recording row and a
history entity in Table storage through ``ingest_blob`` (what the blob trigger runs) with the
default settings, the recordings of many calls in flight at once (as telephony produces them),
and, as a worst case, the concurrent recordings all from the same call or two (they queue on its
row lock). The floor = the least any ingestion must do: download the whole blob and INSERT one
row. Concurrency 8 is the host's (``host.json``: ``maxDegreeOfParallelism``). Rounds go on until
each end-to-end figure has been measured for ``--seconds``; fresh blobs each round; medians.
Bar (quality-bars.md): >= 50 recordings a second on real files, with one process.

    .venv/bin/python -m bench.ingest [--recordings 240] [--seconds 60] [--concurrency 8]
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import itertools
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

from bench._stack import ensure_storage  # noqa: E402
from kalimera.conversations.ingest import Outcome, ingest_blob  # noqa: E402
from kalimera.db import transaction  # noqa: E402
from kalimera.dev.localstack import LocalStack, drop_database, ensure_database  # noqa: E402
from kalimera.migrate import migrate  # noqa: E402
from kalimera.services import Services  # noqa: E402
from kalimera.settings import load_settings  # noqa: E402
from tests.support.audio_fixtures import wav_bytes  # noqa: E402
from tests.support.corpus import FORMATS, Recording, make_all  # noqa: E402

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
            asyncio.run(ensure_storage(settings))
            yield env
        finally:
            drop_database(url)


async def make_agent(services: Services, tenant_id: uuid.UUID) -> uuid.UUID:
    agent_id = uuid.uuid4()
    async with transaction(await services.db(), tenant_id=tenant_id) as conn:
        await conn.execute(
            "INSERT INTO kalimera_ai_agents (tenant_id, id, name, profile_type)"
            " VALUES (%(t)s, %(a)s, 'bench', 'inbound')",
            {"t": tenant_id, "a": agent_id},
        )
    return agent_id


REAL_SECONDS = (10, 15, 20, 30, 45, 60, 90, 120)


def samples() -> dict[str, list[tuple[str, bytes]]]:
    """(extension, bytes) of each kind's recordings: the tiny WAV; the real corpus files."""
    real = make_all(Recording(s, 8000, f) for s in REAL_SECONDS for f in FORMATS)
    return {
        "tiny": [("wav", wav_bytes(1.0))],
        "real": [(rec.ext, path.read_bytes()) for rec, path in real.items()],
    }


async def upload_round(
    services: Services,
    tenant_id: uuid.UUID,
    agent_id: uuid.UUID,
    n: int,
    kind: list[tuple[str, bytes]],
) -> list[str]:
    """``n`` recordings (calls of six turns, with transcripts), cycling through ``kind``'s
    files, uploaded in parallel."""
    container = services.blobs.get_container_client(services.settings.voice_container)
    files = itertools.cycle(kind)
    blobs = []
    for i in range(n):
        if i % TURNS_PER_CALL == 0:
            conversation_id = uuid.uuid4()
        seq, direction = i % TURNS_PER_CALL // 2 + 1, ("input", "output")[i % 2]
        ext, data = next(files)
        name = f"{tenant_id}/{agent_id}/{conversation_id}/{seq:06d}-{direction}.{ext}"
        blobs.append((name, data))
    gate = asyncio.Semaphore(16)

    async def put(name: str, data: bytes) -> None:
        async with gate:
            await container.upload_blob(
                name, data, overwrite=True, metadata={"transcript": "thank%20you%2C%20great"}
            )

    await asyncio.gather(*(put(name, data) for name, data in blobs))
    return [name for name, _ in blobs]


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


async def run(recordings: int, seconds: float, concurrency: int) -> None:
    kinds = samples()
    services = Services(load_settings())
    try:
        tenant_id = uuid.uuid4()
        agent_id = await make_agent(services, tenant_id)
        container = services.blobs.get_container_client(services.settings.voice_container)
        pool = await services.db()

        async def end_to_end(name: str) -> None:
            result = await ingest_blob(services=services, blob_name=name)
            assert result.outcome is Outcome.INGESTED, result

        async def floor(name: str) -> None:
            data = await (await container.get_blob_client(name).download_blob()).readall()
            async with transaction(pool) as conn:
                await conn.execute(
                    "INSERT INTO bench_floor (name, size) VALUES (%(n)s, %(s)s)",
                    {"n": name, "s": len(data)},
                )

        # Warm up: imports, the VADER lexicon, pool connections, the table client.
        for kind in kinds.values():
            names = await upload_round(services, tenant_id, agent_id, 24, kind)
            await timed(names, end_to_end, 4)

        rates: dict[str, list[float]] = {}
        spent = {"tiny": 0.0, "real": 0.0}
        rounds = 0
        while rounds < 3 or min(spent.values()) < seconds:
            rounds += 1
            for label, kind in kinds.items():
                names = await upload_round(services, tenant_id, agent_id, recordings, kind)
                rates.setdefault(f"{label} floor", []).append(
                    await timed(names, floor, concurrency)
                )
                rate = await timed(interleaved(names), end_to_end, concurrency)
                rates.setdefault(f"{label} e2e", []).append(rate)
                spent[label] += recordings / rate
                # Worst case: the concurrent recordings all belong to one or two calls, whose
                # turns queue on the conversation's row lock.
                names = await upload_round(services, tenant_id, agent_id, recordings, kind)
                rate = await timed(names, end_to_end, concurrency)
                rates.setdefault(f"{label} e2e one call", []).append(rate)
                spent[label] += recordings / rate

        median = {key: statistics.median(values) for key, values in rates.items()}
        real_bytes = sum(len(data) for _, data in kinds["real"]) / len(kinds["real"])
        print(
            f"ingestion, {recordings} recordings a round, {rounds} rounds "
            f"({spent['tiny']:.0f} s tiny, {spent['real']:.0f} s real end to end), "
            f"concurrency {concurrency}, default settings; medians"
        )
        print(
            f"  tiny: 1 s WAV ({len(kinds['tiny'][0][1]):,} B); real: 8 kHz mono speech "
            f"{REAL_SECONDS[0]}-{REAL_SECONDS[-1]} s in {', '.join(FORMATS)} "
            f"({len(kinds['real'])} files, {real_bytes / 1024:,.0f} KiB on average)"
        )
        print(f"  {'recordings/s':30} {'tiny':>8} {'real':>8}  real/tiny")
        for what, key in (
            ("end to end, many calls at once", "e2e"),
            ("end to end, one call at a time", "e2e one call"),
            ("floor (download + one INSERT)", "floor"),
        ):
            tiny, real = median[f"tiny {key}"], median[f"real {key}"]
            print(f"  {what:30} {tiny:8.1f} {real:8.1f}  {real / tiny:9.2f}")
        for label in kinds:
            ratio = median[f"{label} e2e"] / median[f"{label} floor"]
            worst = median[f"{label} e2e one call"] / median[f"{label} floor"]
            print(
                f"  ratio end to end / floor, {label}: {ratio:.2f}"
                f" (one call at a time: {worst:.2f})"
            )
        print(f"  load average while measuring: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
        real = median["real e2e"]
        print(
            f"  bar >= 50 recordings/s on real files: {'met' if real >= 50 else 'NOT met'}"
            f" ({real:.1f})"
        )
    finally:
        await services.aclose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--recordings", type=int, default=240)
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--concurrency", type=int, default=8)
    args = parser.parse_args()
    with voice_stack():
        asyncio.run(run(args.recordings, args.seconds, args.concurrency))


if __name__ == "__main__":
    main()
