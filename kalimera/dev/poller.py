"""``kalimera run``'s stand-ins for the Functions host's triggers: poll the recordings container
and ingest what changed (Event Grid's blob trigger), and consume the analysis and webhooks queues
(the queue triggers ``analyse_conversation`` and ``deliver_webhook``).

Azurite emits no Event Grid events, so ``kalimera run`` lists the container every
``POLL_SECONDS`` and calls the same ``ingest_blob`` the blob trigger calls for every blob that is
new or has a new ETag, as many at once as the host would (``host.json``). A transient fault
leaves the blob unmarked, so the next round retries it.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from kalimera.analysis.pipeline import MAX_DEQUEUE, handle
from kalimera.conversations.ingest import ingest_blob
from kalimera.webhooks import delivery

if TYPE_CHECKING:
    from azure.storage.queue import QueueMessage
    from azure.storage.queue.aio import QueueClient

    from kalimera.services import Services

logger = logging.getLogger(__name__)

POLL_SECONDS = 0.5
BLOB_PARALLELISM = 8  # host.json extensions.blobs.maxDegreeOfParallelism


async def poll_once(services: Services, seen: dict[str, str]) -> int:
    """One round: ingest every blob whose ETag differs from ``seen`` (updated in place)."""
    container = services.recordings
    changed = {
        blob.name: str(blob.etag)
        async for blob in container.list_blobs()
        if seen.get(blob.name) != str(blob.etag)
    }
    for name in await ingest_blobs(services, list(changed)):
        seen[name] = changed[name]
    return len(changed)


async def ingest_blobs(services: Services, names: list[str]) -> list[str]:
    """Run the blob trigger's function for each of ``names``, at most ``BLOB_PARALLELISM`` at
    once, as the host runs it; the names done (a transient fault leaves a name out: retried on
    the next round)."""
    gate = asyncio.Semaphore(BLOB_PARALLELISM)
    done: list[str] = []

    async def one(name: str) -> None:
        async with gate:
            try:
                await ingest_blob(services=services, blob_name=name)
            except Exception as exc:  # noqa: BLE001 - a transient fault: retried on the next round
                logger.warning("ingesting %r failed, will retry: %r", name, exc)
                return
        done.append(name)

    await asyncio.gather(*(one(name) for name in names))
    return done


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


# ---- the queues ---------------------------------------------------------------------------------
# The Functions host runs ``analyse_conversation`` (``deliver_webhook``) for each message of its
# queue; here this consumer does, with host.json's settings: ``batchSize`` messages fetched at
# once, the next batch when no more than ``newBatchThreshold`` are in progress (so at most their
# sum at once), a failed message visible again after ``visibilityTimeout``, moved to the poison
# queue after ``maxDequeueCount`` tries.

QUEUE_BATCH = 8  # host.json extensions.queues.batchSize
NEW_BATCH_THRESHOLD = 4  # newBatchThreshold
RETRY_SECONDS = 30  # visibilityTimeout: how long a failed message waits before its next try
HOLD_SECONDS = 600  # a message being processed stays invisible this long (functionTimeout)
QUEUE_POLL_SECONDS = 0.5


@dataclass(frozen=True, slots=True)
class QueueJob:
    """A queue trigger: its queue, its poison queue, and the function it runs per message."""

    name: str
    queue: Callable[[Services], QueueClient]
    poison: Callable[[Services], QueueClient]
    work: Callable[[Services, QueueMessage], Awaitable[object]]


ANALYSIS = QueueJob(
    "analysis",
    lambda services: services.analysis_queue,
    lambda services: services.analysis_poison_queue,
    lambda services, message: handle(
        services=services, body=message.content, dequeue_count=message.dequeue_count or 1
    ),
)
WEBHOOKS = QueueJob(
    "webhooks",
    lambda services: services.webhooks_queue,
    lambda services: services.webhooks_poison_queue,
    lambda services, message: delivery.handle(services=services, body=message.content),
)


async def consume_message(
    services: Services,
    message: QueueMessage,
    *,
    retry_seconds: int = RETRY_SECONDS,
    job: QueueJob = ANALYSIS,
) -> bool:
    """Process one message as the queue trigger would; True when it was deleted (done, or moved
    to the poison queue), False when it was left for redelivery in ``retry_seconds``."""
    queue = job.queue(services)
    try:
        await job.work(services, message)
    except Exception as exc:  # noqa: BLE001 - the queue's retry, as the Functions host does it
        if message.dequeue_count is not None and message.dequeue_count >= MAX_DEQUEUE:
            logger.error("%s message failed %d times, poisoned: %r", job.name, MAX_DEQUEUE, exc)
            await job.poison(services).send_message(message.content)
            await queue.delete_message(message)
            return True
        logger.warning("%s message failed, retried in %d s: %r", job.name, retry_seconds, exc)
        await queue.update_message(message, visibility_timeout=retry_seconds)
        return False
    await queue.delete_message(message)
    return True


async def receive(services: Services, count: int, job: QueueJob = ANALYSIS) -> list[QueueMessage]:
    pages = job.queue(services).receive_messages(
        max_messages=count, messages_per_page=count, visibility_timeout=HOLD_SECONDS
    )
    return [message async for message in pages]


async def run_consumer(
    services: Services,
    *,
    batch: int = QUEUE_BATCH,
    threshold: int = NEW_BATCH_THRESHOLD,
    job: QueueJob = ANALYSIS,
) -> None:
    """Consume a queue until cancelled (a ``BACKGROUND_JOBS`` entry): ``batch`` messages
    fetched whenever no more than ``threshold`` are in progress, as Functions does."""
    running: set[asyncio.Task[bool]] = set()
    try:
        while True:
            if len(running) <= threshold:
                try:
                    messages = await receive(services, batch, job)
                except Exception as exc:  # noqa: BLE001 - Azurite not up yet: try again
                    logger.warning("receiving from the %s queue failed: %r", job.name, exc)
                    messages = []
                running |= {
                    asyncio.create_task(consume_message(services, m, job=job)) for m in messages
                }
            if not running:
                await asyncio.sleep(QUEUE_POLL_SECONDS)
                continue
            done, running = await asyncio.wait(
                running, timeout=QUEUE_POLL_SECONDS, return_when=asyncio.FIRST_COMPLETED
            )
            for task in done:
                if task.exception() is not None:  # the queue itself failed: logged, redelivered
                    logger.warning("%s message not settled: %r", job.name, task.exception())
    finally:
        for task in running:
            task.cancel()
        await asyncio.gather(*running, return_exceptions=True)
