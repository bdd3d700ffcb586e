"""Ingestion of real recordings: recordings a second through the product's path, beside its floor.

The recordings are what telephony sends: 8 kHz mono speech of 10 to 120 s in all six encodings
of the corpus (WAV, FLAC, MP3 CBR and VBR, Ogg Vorbis, Ogg Opus), made by the real encoders
(``tests/support/corpus.py``), written straight to Blob Storage (Azurite) with a transcript in
their metadata, as calls of six turns.

The product's path: the dev runner's stand-in for the blob trigger (``kalimera.dev.poller.
ingest_blobs``: ``ingest_blob`` for each blob, as many at once as ``host.json`` lets the host
run), with the default settings, the recordings of many calls in flight at once (turn 1 of every
call, then turn 2, ... as telephony produces them). Each becomes a conversation row, a
recording row and a history entity in Table storage.

The floor: the fastest this machine does the same I/O with no framework at all. The same blobs
read with one ranged GET each of what the product's first request reads
(``reading.first_read``: their properties and metadata come with it) by plain aiohttp with a
SAS (no Azure SDK), each one's history entity PUT the same way, and the same rows (the version
key, the recording, the conversation) written with one COPY per table in one transaction by
psycopg into tables like the product's (no triggers, no row-level security). It does not probe
the audio, score the words or guard against redelivery; the product must. Both at concurrency 8
(``host.json``'s ``maxDegreeOfParallelism``), in the same rounds, fresh blobs each round, until
each has run ``--seconds``; medians. Bars (issue 17): >= 200 recordings/s with one process,
>= 0.6x the floor.

    .venv/bin/python -m bench.ingest [--recordings 240] [--seconds 30] [--no-floor]

``--no-floor`` runs the product's rounds only (to profile them: ``py-spy record -- python -m
bench.ingest --no-floor``).
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
from collections.abc import Awaitable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench._bars import bar  # noqa: E402
from bench._stack import ensure_storage  # noqa: E402
from kalimera.conversations.reading import first_read  # noqa: E402
from kalimera.db import transaction  # noqa: E402
from kalimera.dev.localstack import LocalStack, drop_database, ensure_database  # noqa: E402
from kalimera.dev.poller import BLOB_PARALLELISM, ingest_blobs  # noqa: E402
from kalimera.migrate import migrate  # noqa: E402
from kalimera.services import Services  # noqa: E402
from kalimera.settings import Settings, load_settings  # noqa: E402
from tests.support.corpus import FORMATS, Recording, make_all  # noqa: E402

ADMIN_URL = os.environ.get("DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
REDIS_URL = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")
TURNS_PER_CALL = 6
REAL_SECONDS = (10, 15, 20, 30, 45, 60, 90, 120)
TRANSCRIPT = "thank you, great"
BAR_RATE, BAR_RATIO = 200.0, 0.6
QUALITY_RATE = 50.0  # quality-bars.md's first bar

# The floor's tables: the product's columns and keys, none of its triggers or policies.
FLOOR_TABLES = {
    "bench_floor_processed": "kalimera_processed_recordings",
    "bench_floor_recordings": "kalimera_recordings",
    "bench_floor_conversations": "kalimera_conversations",
}


@dataclass(frozen=True, slots=True)
class Blob:
    name: str
    tenant_id: uuid.UUID
    agent_id: uuid.UUID
    conversation_id: uuid.UUID
    seq: int
    direction: str

    @property
    def ext(self) -> str:
        return self.name.rsplit(".", 1)[1]


@contextlib.contextmanager
def voice_stack() -> Iterator[str]:
    """A throwaway database (migrated, with the floor's tables) and a private Azurite; sets the
    settings' environment and yields the database's URL (its owner's)."""
    import psycopg
    from psycopg.conninfo import conninfo_to_dict, make_conninfo

    with tempfile.TemporaryDirectory() as tmp, LocalStack(Path(tmp)) as stack:
        params = conninfo_to_dict(stack.postgres(ADMIN_URL))
        params["dbname"] = f"kalimera_bench_{secrets.token_hex(4)}"
        url = make_conninfo(**params)  # type: ignore[arg-type]
        ensure_database(url)
        try:
            migrate(url)
            with psycopg.connect(url, autocommit=True) as conn:
                for floor, like in FLOOR_TABLES.items():
                    conn.execute(
                        f"CREATE TABLE {floor} (LIKE {like} INCLUDING DEFAULTS"  # type: ignore[arg-type]
                        " INCLUDING CONSTRAINTS INCLUDING INDEXES INCLUDING GENERATED)"
                    )
            os.environ.update(
                {
                    "KALIMERA_ENV": "production",
                    "DATABASE_URL": url,
                    "REDIS_URL": stack.redis(REDIS_URL),
                    "KALIMERA_STORAGE": stack.azurite(Path(tmp) / "azurite"),
                    "KALIMERA_ENCRYPTION_KEY": base64.b64encode(secrets.token_bytes(32)).decode(),
                    "KALIMERA_LOG_LEVEL": "WARNING",
                }
            )
            asyncio.run(ensure_storage(load_settings()))
            yield url
        finally:
            drop_database(url)


def corpus() -> list[tuple[str, bytes]]:
    """(extension, bytes) of every real recording: each length in each format."""
    made = make_all(Recording(s, 8000, f) for s in REAL_SECONDS for f in FORMATS)
    return [(rec.ext, path.read_bytes()) for rec, path in made.items()]


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
    services: Services,
    tenant_id: uuid.UUID,
    agent_id: uuid.UUID,
    n: int,
    files: list[tuple[str, bytes]],
) -> list[Blob]:
    """``n`` recordings (calls of six turns), cycling through ``files``, uploaded in parallel;
    listed as telephony produces them: turn 1 of every call, then turn 2, and so on."""
    container = services.recordings
    cycle = itertools.cycle(files)
    made: list[tuple[Blob, bytes]] = []
    for i in range(n):
        if i % TURNS_PER_CALL == 0:
            conversation_id = uuid.uuid4()
        seq, direction = i % TURNS_PER_CALL // 2 + 1, ("input", "output")[i % 2]
        ext, data = next(cycle)
        name = f"{tenant_id}/{agent_id}/{conversation_id}/{seq:06d}-{direction}.{ext}"
        made.append((Blob(name, tenant_id, agent_id, conversation_id, seq, direction), data))
    gate = asyncio.Semaphore(16)

    async def put(blob: Blob, data: bytes) -> None:
        async with gate:
            await container.upload_blob(
                blob.name, data, overwrite=True, metadata={"transcript": "thank%20you%2C%20great"}
            )

    await asyncio.gather(*(put(blob, data) for blob, data in made))
    blobs = [blob for blob, _ in made]
    return [
        blobs[i + turn]
        for turn in range(TURNS_PER_CALL)
        for i in range(0, n, TURNS_PER_CALL)
        if i + turn < n
    ]


async def product(services: Services, blobs: list[Blob]) -> float:
    """Recordings a second through the dev runner's stand-in for the blob trigger."""
    names = [blob.name for blob in blobs]
    started = time.perf_counter()
    done = await ingest_blobs(services, names)
    seconds = time.perf_counter() - started
    assert len(done) == len(names), f"{len(names) - len(done)} recordings failed"
    return len(names) / seconds


async def with_cpu(work: Awaitable[float], n: int) -> tuple[float, float]:
    """``work``'s rate, and this process's CPU time per recording (ms, every thread) while it
    ran: what the load average does not change much, unlike the rate."""
    before = time.process_time()
    rate = await work
    return rate, (time.process_time() - before) * 1000 / n


class Floor:
    """The same I/O with no framework: aiohttp with SAS URLs, psycopg's COPY."""

    def __init__(self, settings: Settings, database_url: str) -> None:
        from azure.core.credentials import AzureNamedKeyCredential
        from azure.data.tables import TableSasPermissions, generate_table_sas
        from azure.storage.blob import ContainerSasPermissions, generate_container_sas

        assert settings.storage_connection_string is not None
        connection_string = settings.storage_connection_string.get_secret_value()
        container, table = settings.voice_container, settings.turns_table
        parts = dict(p.split("=", 1) for p in connection_string.split(";") if p)
        account, key = parts["AccountName"], parts["AccountKey"]
        expiry = datetime.now(UTC) + timedelta(hours=2)
        container_sas = generate_container_sas(
            account,
            container,
            account_key=key,
            permission=ContainerSasPermissions(read=True),
            expiry=expiry,
        )
        table_sas = generate_table_sas(
            AzureNamedKeyCredential(account, key),
            table,
            permission=TableSasPermissions(add=True, update=True),
            expiry=expiry,
        )
        self.blob_url = f"{parts['BlobEndpoint']}/{container}/{{name}}?{container_sas}"
        self.entity_url = (
            f"{parts['TableEndpoint']}/{table}(PartitionKey='{{pk}}',RowKey='{{rk}}')?{table_sas}"
        )
        self.database_url = database_url

    async def run(self, blobs: list[Blob]) -> float:
        import aiohttp
        import orjson
        import psycopg

        read: dict[str, dict[str, Any]] = {}
        gate = asyncio.Semaphore(BLOB_PARALLELISM)
        headers = {"x-ms-version": "2021-12-02"}
        entity_headers = {
            "x-ms-version": "2019-02-02",
            "Content-Type": "application/json",
            "Accept": "application/json;odata=nometadata",
        }

        async def one(session: aiohttp.ClientSession, blob: Blob) -> None:
            async with gate:
                async with session.get(
                    self.blob_url.format(name=blob.name),
                    headers={**headers, "Range": f"bytes=0-{first_read(blob.ext) - 1}"},
                ) as response:
                    response.raise_for_status()
                    await response.read()
                    etag = response.headers["ETag"].strip('"')
                    modified = response.headers["Last-Modified"]
                turn = f"{blob.seq:06d}-{blob.direction}"
                entity = {"Seq": blob.seq, "Direction": blob.direction, "BlobName": blob.name}
                async with session.put(
                    self.entity_url.format(pk=f"{blob.tenant_id}_{blob.conversation_id}", rk=turn),
                    data=orjson.dumps(entity),
                    headers=entity_headers,
                ) as response:
                    response.raise_for_status()
                read[blob.name] = {"etag": etag, "modified": modified}

        started = time.perf_counter()
        connector = aiohttp.TCPConnector(limit=BLOB_PARALLELISM * 2)
        async with aiohttp.ClientSession(connector=connector) as session:
            await asyncio.gather(*(one(session, blob) for blob in blobs))
        now = datetime.now(UTC)
        async with await psycopg.AsyncConnection.connect(self.database_url) as conn:
            cur = conn.cursor()
            async with cur.copy(
                "COPY bench_floor_processed (tenant_id, blob_name, etag) FROM STDIN"
            ) as copy:
                for blob in blobs:
                    await copy.write_row((blob.tenant_id, blob.name, read[blob.name]["etag"]))
            async with cur.copy(
                "COPY bench_floor_recordings (tenant_id, conversation_id, seq, direction,"
                " blob_name, etag, blob_modified_at, duration, transcript, sentiment_score,"
                " final, recorded_at) FROM STDIN"
            ) as copy:
                for blob in blobs:
                    await copy.write_row(
                        (
                            blob.tenant_id,
                            blob.conversation_id,
                            blob.seq,
                            blob.direction,
                            blob.name,
                            read[blob.name]["etag"],
                            now,
                            60,
                            TRANSCRIPT,
                            0.5,
                            False,
                            now,
                        )
                    )
            calls = {blob.conversation_id: blob for blob in blobs}
            async with cur.copy(
                "COPY bench_floor_conversations (tenant_id, id, agent_id, profile_type,"
                " started_at, last_activity_at, duration, turn_count) FROM STDIN"
            ) as copy:
                for blob in calls.values():
                    row = (blob.tenant_id, blob.conversation_id, blob.agent_id, "inbound")
                    await copy.write_row((*row, now, now, 360, TURNS_PER_CALL))
        return len(blobs) / (time.perf_counter() - started)


async def run(database_url: str, recordings: int, seconds: float, with_floor: bool) -> None:
    files = corpus()
    settings = load_settings()
    services = Services(settings)
    try:
        tenant_id = uuid.uuid4()
        agent_id = await make_agent(services, tenant_id)
        floor = Floor(settings, database_url)
        # Warm up: imports, the VADER lexicon, pool connections, the clients.
        warm = await upload_round(services, tenant_id, agent_id, 48, files)
        await product(services, warm)
        if with_floor:
            await floor.run(await upload_round(services, tenant_id, agent_id, 48, files))

        rates: dict[str, list[float]] = {"product": [], "floor": []}
        cpu: dict[str, list[float]] = {"product": [], "floor": []}
        loads: list[float] = []
        spent = 0.0
        while len(rates["product"]) < 3 or spent < seconds:
            blobs = await upload_round(services, tenant_id, agent_id, recordings, files)
            rate, ms = await with_cpu(product(services, blobs), recordings)
            rates["product"].append(rate)
            cpu["product"].append(ms)
            spent += recordings / rate
            if with_floor:
                blobs = await upload_round(services, tenant_id, agent_id, recordings, files)
                rate, ms = await with_cpu(floor.run(blobs), recordings)
                rates["floor"].append(rate)
                cpu["floor"].append(ms)
            loads.append(os.getloadavg()[0])
    finally:
        await services.aclose()

    rate = statistics.median(rates["product"])
    size = sum(len(data) for _, data in files) / len(files)
    print(
        f"ingestion of real recordings, {recordings} a round, {len(rates['product'])} rounds, "
        f"concurrency {BLOB_PARALLELISM}, default settings; medians"
    )
    print(
        f"  recordings: 8 kHz mono speech {REAL_SECONDS[0]}-{REAL_SECONDS[-1]} s in "
        f"{', '.join(FORMATS)} ({len(files)} files, {size / 1024:,.0f} KiB on average)"
    )
    product_cpu = statistics.median(cpu["product"])
    print(
        f"  product (dev runner's blob trigger) {rate:8.1f} recordings/s"
        f"  ({product_cpu:.1f} ms CPU each)"
    )
    if with_floor:
        low = statistics.median(rates["floor"])
        floor_cpu = statistics.median(cpu["floor"])
        print(
            f"  floor (aiohttp + COPY)              {low:8.1f} recordings/s"
            f"  ({floor_cpu:.1f} ms CPU each)"
        )
        print(f"  ratio product / floor               {rate / low:8.2f}x")
    print(
        f"  load average while measuring: {statistics.median(loads):.1f} "
        f"(median of the rounds) on {os.cpu_count()} cores"
    )
    measure = "ingestion of real recordings, one process"
    bar(measure, f"{rate:.1f} recordings/s", f">= {BAR_RATE:.0f}/s (issue 17)", rate >= BAR_RATE)
    bar(
        measure,
        f"{rate:.1f} recordings/s",
        f">= {QUALITY_RATE:.0f}/s (quality-bars)",
        rate >= QUALITY_RATE,
    )
    if with_floor:
        ratio = rate / statistics.median(rates["floor"])
        bar(
            f"{measure}, vs its floor",
            f"{ratio:.2f}x",
            f">= {BAR_RATIO}x (issue 17)",
            ratio >= BAR_RATIO,
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--recordings", type=int, default=240)
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--no-floor", action="store_true", help="the product's rounds only")
    args = parser.parse_args()
    with voice_stack() as url:
        asyncio.run(run(url, args.recordings, args.seconds, not args.no_floor))


if __name__ == "__main__":
    main()
