"""The analysis outbox's relay: requests written to ``kalimera_analysis_outbox`` in the transaction
of the change that asked for them (migration 0017) go to the ``kalimera-analysis`` queue.

At least once, never lost: a relay claims rows by moving their ``available_at`` a lease on (a
short transaction; none is held while the queue is called), sends one message per conversation,
then deletes the rows it sent. A process that dies between the commit and the send, or between
the send and the delete, leaves rows that become available again when the lease ends, and the
next relay sends them (twice, at worst: the consumer is idempotent).

Two relays run: right after the commit, the code that wrote a request relays that
conversation's rows (or that run's), best effort, so a call is analysed within seconds; and a
sweeper (the ``relay_analysis`` timer every minute on Azure, a dev-runner job locally) relays
whatever the first one left. Plumbing below the domains: the conversations (ingestion, PATCH)
and the analysis domain both relay after their commits.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from typing import TYPE_CHECKING, Any

import orjson

from kalimera.db import transaction

if TYPE_CHECKING:
    from azure.storage.queue.aio import QueueClient

    from kalimera.services import Services

logger = logging.getLogger(__name__)

LEASE_SECONDS = 60
"""How long a claimed row stays invisible to other relays: far longer than a send."""
BATCH = 500
SEND_CONCURRENCY = 16

_CLAIM = """
UPDATE kalimera_analysis_outbox o
SET available_at = now() + make_interval(secs => %(lease)s)
FROM (
    SELECT id FROM kalimera_analysis_outbox
    WHERE available_at <= now() {scope}
    ORDER BY id LIMIT %(limit)s
    FOR UPDATE SKIP LOCKED
) AS claimed
WHERE o.id = claimed.id
RETURNING o.id, o.tenant_id, o.kind, o.conversation_id, o.run_id, o.reason
"""
_SCOPES = {
    None: "",
    "conversation": "AND tenant_id = %(tenant_id)s AND conversation_id = %(scope_id)s",
    "run": "AND tenant_id = %(tenant_id)s AND run_id = %(scope_id)s",
}


def message(row: dict[str, Any]) -> bytes:
    """The queue message of one outbox row (JSON): what ``analyse_conversation`` decodes."""
    body = {
        "kind": row["kind"],
        "tenant_id": str(row["tenant_id"]),
        "reason": row["reason"],
        "conversation_id": None if row["conversation_id"] is None else str(row["conversation_id"]),
        "run_id": None if row["run_id"] is None else str(row["run_id"]),
    }
    return orjson.dumps(body)


def _messages(rows: list[dict[str, Any]]) -> dict[bytes, list[tuple[uuid.UUID, int]]]:
    """One message per distinct request, with the keys of the rows it answers: a conversation
    whose transcript changed three times since the last relay is analysed once (the consumer
    reads the transcript as it is when it runs)."""
    grouped: dict[bytes, list[tuple[uuid.UUID, int]]] = {}
    for row in rows:
        grouped.setdefault(message(row), []).append((row["tenant_id"], row["id"]))
    return grouped


async def relay(
    *,
    services: Services,
    tenant_id: uuid.UUID | None = None,
    conversation_id: uuid.UUID | None = None,
    run_id: uuid.UUID | None = None,
    limit: int = BATCH,
) -> int:
    """Send up to ``limit`` available requests (only one conversation's, or one run's, when
    given) and delete them; the number of rows relayed. A send that fails leaves its rows
    claimed until the lease ends: the sweeper sends them then."""
    kind = "conversation" if conversation_id else "run" if run_id else None
    params = {
        "lease": LEASE_SECONDS,
        "limit": limit,
        "tenant_id": tenant_id,
        "scope_id": conversation_id or run_id,
    }
    async with transaction(await services.db(), system=True) as conn:
        cur = await conn.execute(_CLAIM.format(scope=_SCOPES[kind]), params)  # type: ignore[arg-type]
        rows = await cur.fetchall()
    if not rows:
        return 0
    queue = services.analysis_queue
    sent: list[tuple[uuid.UUID, int]] = []
    gate = asyncio.Semaphore(SEND_CONCURRENCY)

    async def send(body: bytes, keys: list[tuple[uuid.UUID, int]]) -> None:
        async with gate:
            await _send(queue, body.decode())
        sent.extend(keys)

    results = await asyncio.gather(
        *(send(body, keys) for body, keys in _messages(rows).items()), return_exceptions=True
    )
    if sent:
        async with transaction(await services.db(), system=True) as conn:
            await conn.execute(
                "DELETE FROM kalimera_analysis_outbox WHERE (tenant_id, id) IN"
                " (SELECT * FROM unnest(%(tenants)s::uuid[], %(ids)s::bigint[]))",
                {"tenants": [t for t, _ in sent], "ids": [i for _, i in sent]},
            )
    failures = [r for r in results if isinstance(r, BaseException)]
    if failures:
        logger.warning(
            "analysis relay: %d of %d messages not sent (retried after %d s): %r",
            len(failures),
            len(results),
            LEASE_SECONDS,
            failures[0],
        )
    return len(sent)


async def _send(queue: QueueClient, text: str) -> None:
    from azure.core.exceptions import ResourceNotFoundError

    try:
        await queue.send_message(text)
    except ResourceNotFoundError:
        # A local stack's first message (on Azure infra/ creates the queue): create it, once.
        await ensure_queues(queue)
        await queue.send_message(text)


async def ensure_queues(*queues: QueueClient) -> None:
    """Create the queues when missing (Azurite; on Azure ``infra/`` made them)."""
    from azure.core.exceptions import ResourceExistsError

    for queue in queues:
        with contextlib.suppress(ResourceExistsError):
            await queue.create_queue()


async def relay_after_commit(
    *,
    services: Services,
    tenant_id: uuid.UUID,
    conversation_id: uuid.UUID | None = None,
    run_id: uuid.UUID | None = None,
) -> None:
    """Best effort, right after a commit that wrote requests: a failure is logged and left to
    the sweeper (the request is in the outbox, committed), never the caller's error."""
    try:
        await relay(
            services=services, tenant_id=tenant_id, conversation_id=conversation_id, run_id=run_id
        )
    except Exception as exc:  # noqa: BLE001 - the sweeper relays it within a minute
        logger.warning("analysis relay after commit failed, left to the sweeper: %r", exc)


async def sweep(*, services: Services) -> int:
    """Relay every available request, a batch at a time (the timer's and the dev runner's job)."""
    total = 0
    while True:
        done = await relay(services=services)
        total += done
        if done < BATCH:
            if total:
                logger.info("analysis relay: %d requests sent", total)
            return total
