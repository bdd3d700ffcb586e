"""``kalimera run``'s stand-in for Event Grid: poll the recordings container, ingest what changed.

Azurite emits no Event Grid events, so ``kalimera run`` lists the container every
``POLL_SECONDS`` and calls the same ``ingest_blob`` the blob trigger calls for every blob that is
new or has a new ETag. A transient fault leaves the blob unmarked, so the next round retries it.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING

from kalimera.conversations.ingest import ingest_blob

if TYPE_CHECKING:
    from kalimera.services import Services

logger = logging.getLogger(__name__)

POLL_SECONDS = 0.5


async def poll_once(services: Services, seen: dict[str, str]) -> int:
    """One round: ingest every blob whose ETag differs from ``seen`` (updated in place)."""
    container = services.recordings
    changed = [
        (blob.name, str(blob.etag))
        async for blob in container.list_blobs()
        if seen.get(blob.name) != str(blob.etag)
    ]
    for name, etag in changed:
        try:
            await ingest_blob(services=services, blob_name=name)
        except Exception as exc:  # noqa: BLE001 - a transient fault: retried on the next round
            logger.warning("ingesting %r failed, will retry: %r", name, exc)
            continue
        seen[name] = etag
    return len(changed)


async def run_poller(services: Services, *, seen: dict[str, str] | None = None) -> None:
    """Poll until cancelled (a ``BACKGROUND_JOBS`` entry of the dev runner). ``seen``: the blobs
    a caller has already had ingested (by ``poll_once``), so the first round does not redo them."""
    seen = {} if seen is None else seen
    while True:
        try:
            await poll_once(services, seen)
        except Exception as exc:  # noqa: BLE001 - storage not reachable yet: try again shortly
            logger.warning("listing the recordings container failed: %r", exc)
        await asyncio.sleep(POLL_SECONDS)
