"""The sweep: recordings whose trigger event never came are ingested anyway.

Event Grid can lose a delivery (dead-lettered after its retries, a subscription briefly gone),
and ``kalimera run``'s poller can miss a blob written while it was down. So the statistics timer
(and the dev runner's schedule) also sweeps the recordings container: every audio blob last
modified more than ``KALIMERA_SWEEP_MINUTES`` ago (default 10: well after a normal trigger has
run) that has neither a processed version (a turn, or a version a newer one superseded) nor a
rejection for its current ETag goes through ``ingest_blob``, the trigger's own code path, so
all its guarantees hold (exactly once, bounded retries: a blob that crashes the ingestion every
time becomes ``internal error: …`` after ``attempts.MAX_ATTEMPTS`` sweeps).

Cost, and why: blob names carry no time, and Blob Storage lists by name prefix only, so a sweep
cannot ask for "blobs since T". It lists names and properties (no content), one request per
5,000 blobs, and keeps a watermark in Postgres (``kalimera_ingest_sweep``): the newest
last-modified time up to which every blob is accounted for. Blobs at or before the watermark
are skipped without a database query; those after it are checked against Postgres in one query
per listing page, and only the missing ones cost an ingestion. On Azure the timer runs nightly,
so 1,000,000 recordings cost 200 list requests a night; locally the container is small.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from kalimera.conversations import attempts, recording
from kalimera.conversations.ingest import IngestResult, ingest_blob
from kalimera.db import Conn, transaction

if TYPE_CHECKING:
    from kalimera.services import Services

logger = logging.getLogger(__name__)

PAGE = 5000  # blobs per list request (the service's maximum)
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(slots=True)
class SweepReport:
    listed: int = 0  # blobs seen in the listing
    checked: int = 0  # newer than the watermark and old enough: looked up in Postgres
    ingested: list[IngestResult] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)  # raised: retried by the next sweep
    watermark: datetime = EPOCH


async def sweep(*, services: Services, now: datetime | None = None) -> SweepReport:
    """One sweep: ingest every blob older than the grace period with neither a processed version
    nor a rejection; move the watermark up to the oldest blob still failing (or the cutoff)."""
    cutoff = (now or datetime.now(UTC)) - timedelta(minutes=services.settings.sweep_minutes)
    async with transaction(await services.db(), system=True) as conn:
        watermark = await _watermark(conn)
    report = SweepReport(watermark=watermark)
    oldest_failure: datetime | None = None
    pages = services.recordings.list_blobs(results_per_page=PAGE).by_page()
    async for page in pages:
        batch: list[tuple[str, str, datetime]] = []
        async for blob in page:
            report.listed += 1
            modified = blob.last_modified
            if modified <= watermark or modified > cutoff or _is_sidecar(blob.name):
                continue
            batch.append((blob.name, str(blob.etag).strip('"'), modified))
        report.checked += len(batch)
        for name, modified in await _unaccounted(services, batch):
            try:
                report.ingested.append(await ingest_blob(services=services, blob_name=name))
            except Exception as exc:  # noqa: BLE001 - counted by attempts; the next sweep retries
                kind = "transient" if attempts.is_transient(exc) else "unexpected"
                logger.warning("the sweep could not ingest %r (%s): %r", name, kind, exc)
                report.failed.append(name)
                oldest_failure = min(oldest_failure or modified, modified)
    new_mark = cutoff if oldest_failure is None else oldest_failure - timedelta(microseconds=1)
    if new_mark > watermark:
        async with transaction(await services.db(), system=True) as conn:
            await _set_watermark(conn, new_mark)
        report.watermark = new_mark
    if report.ingested or report.failed:
        logger.warning(
            "sweep: %d recordings without a trigger ingested, %d failed",
            len(report.ingested),
            len(report.failed),
        )
    return report


def _is_sidecar(name: str) -> bool:
    return name.endswith(f".{recording.SIDECAR_EXTENSION}")


def _tenant_of(name: str) -> uuid.UUID | None:
    try:
        return recording.parse(name).tenant_id
    except recording.OutsideContract:
        return None


async def _unaccounted(
    services: Services, batch: list[tuple[str, str, datetime]]
) -> list[tuple[str, datetime]]:
    """The blobs of ``batch`` whose current version has neither a processed version (its key is
    the audio's ETag, or the ETag and the sidecar's) nor a rejection."""
    if not batch:
        return []
    async with transaction(await services.db(), system=True) as conn:
        cur = await conn.execute(
            """
            SELECT b.name FROM unnest(%(names)s::text[], %(etags)s::text[], %(tenants)s::uuid[])
                AS b(name, etag, tenant_id)
            WHERE NOT EXISTS (
                SELECT 1 FROM kalimera_processed_recordings p
                WHERE p.tenant_id = b.tenant_id AND p.blob_name = b.name
                  AND (p.etag = b.etag OR left(p.etag, length(b.etag) + 1) = b.etag || '+'))
              AND NOT EXISTS (
                SELECT 1 FROM kalimera_ingest_rejections r
                WHERE r.blob_name = b.name AND r.etag = b.etag)
            """,
            {
                "names": [name for name, _, _ in batch],
                "etags": [etag for _, etag, _ in batch],
                "tenants": [_tenant_of(name) for name, _, _ in batch],
            },
        )
        missing = {row["name"] for row in await cur.fetchall()}
    return [(name, modified) for name, _, modified in batch if name in missing]


async def _watermark(conn: Conn) -> datetime:
    cur = await conn.execute("SELECT watermark FROM kalimera_ingest_sweep")
    row: Any = await cur.fetchone()
    return EPOCH if row is None else row["watermark"]


async def _set_watermark(conn: Conn, watermark: datetime) -> None:
    await conn.execute(
        """
        INSERT INTO kalimera_ingest_sweep (id, watermark) VALUES (true, %(w)s)
        ON CONFLICT (id) DO UPDATE SET
            watermark = greatest(kalimera_ingest_sweep.watermark, EXCLUDED.watermark),
            swept_at = now()
        """,
        {"w": watermark},
    )
