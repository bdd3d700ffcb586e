"""The outboxes' relay: rows written in the transaction of the change that asked for them go to
their Storage queue. Two outboxes share it: the analysis requests (``kalimera_analysis_outbox``,
migration 0017, to ``kalimera-analysis``) and the webhook deliveries
(``kalimera_webhook_outbox``, 0023, to ``kalimera-webhooks``, each message with its visibility
delay: a retry waits in the queue, not in a worker).

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
import math
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import orjson

from kalimera.db import Conn, transaction

if TYPE_CHECKING:
    from azure.storage.queue.aio import QueueClient

    from kalimera.services import Services

logger = logging.getLogger(__name__)

LEASE_SECONDS = 60
"""How long a claimed row stays invisible to other relays: far longer than a send."""
BATCH = 500
SEND_CONCURRENCY = 16

_CLAIM = """
UPDATE {table} o
SET available_at = now() + make_interval(secs => %(lease)s)
FROM (
    SELECT id, tenant_id FROM {table}
    WHERE available_at <= now() {scope}
    ORDER BY id LIMIT %(limit)s
    FOR UPDATE SKIP LOCKED
) AS claimed
WHERE o.tenant_id = claimed.tenant_id AND o.id = claimed.id
RETURNING {columns}
"""


@dataclass(frozen=True, slots=True)
class Outbox:
    """One outbox: its table, the columns a message is made of, its queue, and the scopes a
    relay after a commit may narrow itself to (the rows that commit wrote)."""

    name: str
    table: str
    columns: str
    message: Callable[[dict[str, Any]], bytes]
    queue: Callable[[Services], QueueClient]
    scopes: dict[str | None, str] = field(default_factory=dict)
    delay: Callable[[dict[str, Any]], int] = lambda _row: 0


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


def _messages(
    outbox: Outbox, rows: list[dict[str, Any]]
) -> dict[tuple[bytes, int], list[tuple[uuid.UUID, int]]]:
    """One message per distinct request (and delay), with the keys of the rows it answers: a
    conversation whose transcript changed three times since the last relay is analysed once
    (the consumer reads the transcript as it is when it runs)."""
    grouped: dict[tuple[bytes, int], list[tuple[uuid.UUID, int]]] = {}
    for row in rows:
        key = (outbox.message(row), outbox.delay(row))
        grouped.setdefault(key, []).append((row["tenant_id"], row["id"]))
    return grouped


async def relay(
    *,
    services: Services,
    outbox: Outbox | None = None,
    tenant_id: uuid.UUID | None = None,
    conversation_id: uuid.UUID | None = None,
    run_id: uuid.UUID | None = None,
    limit: int = BATCH,
) -> int:
    """Send up to ``limit`` available rows of ``outbox`` (the analysis one by default; only one
    conversation's, one run's, or one tenant's when given) and delete them; the number of rows
    relayed. A send that fails leaves its rows claimed until the lease ends: the sweeper sends
    them then."""
    outbox = outbox or ANALYSIS
    kind = (
        "conversation"
        if conversation_id
        else "run"
        if run_id
        else "tenant"
        if tenant_id and "tenant" in outbox.scopes
        else None
    )
    params = {
        "lease": LEASE_SECONDS,
        "limit": limit,
        "tenant_id": tenant_id,
        "scope_id": conversation_id or run_id,
    }
    claim = _CLAIM.format(
        table=outbox.table, columns=outbox.columns, scope=outbox.scopes.get(kind, "")
    )
    async with transaction(await services.db(), system=True) as conn:
        cur = await conn.execute(claim, params)  # type: ignore[arg-type]
        rows = await cur.fetchall()
    if not rows:
        return 0
    queue = outbox.queue(services)
    sent: list[tuple[uuid.UUID, int]] = []
    gate = asyncio.Semaphore(SEND_CONCURRENCY)

    async def send(body: bytes, delay: int, keys: list[tuple[uuid.UUID, int]]) -> None:
        async with gate:
            await _send(queue, body.decode(), delay)
        sent.extend(keys)

    results = await asyncio.gather(
        *(send(body, delay, keys) for (body, delay), keys in _messages(outbox, rows).items()),
        return_exceptions=True,
    )
    if sent:
        async with transaction(await services.db(), system=True) as conn:
            await conn.execute(
                f"DELETE FROM {outbox.table} WHERE (tenant_id, id) IN"  # noqa: S608 - a fixed name
                " (SELECT * FROM unnest(%(tenants)s::uuid[], %(ids)s::bigint[]))",  # type: ignore[arg-type]
                {"tenants": [t for t, _ in sent], "ids": [i for _, i in sent]},
            )
    failures = [r for r in results if isinstance(r, BaseException)]
    if failures:
        logger.warning(
            "%s relay: %d of %d messages not sent (retried after %d s): %r",
            outbox.name,
            len(failures),
            len(results),
            LEASE_SECONDS,
            failures[0],
        )
    return len(sent)


async def _send(queue: QueueClient, text: str, delay: int) -> None:
    from azure.core.exceptions import ResourceNotFoundError

    try:
        await queue.send_message(text, visibility_timeout=delay or None)
    except ResourceNotFoundError:
        # A local stack's first message (on Azure infra/ creates the queue): create it, once.
        await ensure_queues(queue)
        await queue.send_message(text, visibility_timeout=delay or None)


async def ensure_queues(*queues: QueueClient) -> None:
    """Create the queues when missing (Azurite; on Azure ``infra/`` made them)."""
    from azure.core.exceptions import ResourceExistsError

    for queue in queues:
        with contextlib.suppress(ResourceExistsError):
            await queue.create_queue()


@dataclass(frozen=True, slots=True)
class Queued:
    """Which outboxes the current transaction has written rows to (so far)."""

    analysis: bool
    webhooks: bool


NOTHING_QUEUED = Queued(analysis=False, webhooks=False)


async def queued(conn: Conn) -> Queued:
    """Which outboxes this transaction wrote to: the flags migration 0027's functions set. Read
    before the commit, so that the code committing relays only an outbox it wrote to (a relay
    is a transaction of its own; most ingested turns write to neither)."""
    cur = await conn.execute(
        "SELECT coalesce(current_setting('kalimera.queued_analysis', true) = 'on', false)"
        " AS analysis, coalesce(current_setting('kalimera.queued_webhooks', true) = 'on', false)"
        " AS webhooks"
    )
    row = await cur.fetchone()
    assert row is not None
    return Queued(analysis=row["analysis"], webhooks=row["webhooks"])


async def relay_after_commit(
    *,
    services: Services,
    tenant_id: uuid.UUID,
    conversation_id: uuid.UUID | None = None,
    run_id: uuid.UUID | None = None,
    outbox: Outbox | None = None,
) -> None:
    """Best effort, right after a commit that wrote requests: a failure is logged and left to
    the sweeper (the request is in the outbox, committed), never the caller's error."""
    try:
        await relay(
            services=services,
            outbox=outbox,
            tenant_id=tenant_id,
            conversation_id=conversation_id,
            run_id=run_id,
        )
    except Exception as exc:  # noqa: BLE001 - the sweeper relays it within a minute
        logger.warning("relay after commit failed, left to the sweeper: %r", exc)


async def sweep(*, services: Services, outbox: Outbox | None = None) -> int:
    """Relay every available row, a batch at a time (the timer's and the dev runner's job)."""
    outbox = outbox or ANALYSIS
    total = 0
    while True:
        done = await relay(services=services, outbox=outbox)
        total += done
        if done < BATCH:
            if total:
                logger.info("%s relay: %d messages sent", outbox.name, total)
            return total


def _webhook_message(row: dict[str, Any]) -> bytes:
    """What ``deliver_webhook`` decodes: the delivery, and the generation this message is for."""
    body = {
        "tenant_id": str(row["tenant_id"]),
        "delivery_id": str(row["delivery_id"]),
        "generation": row["generation"],
    }
    return orjson.dumps(body)


def _remaining(delay_seconds: int, since: datetime) -> int:
    """What is left of a delay: a row relayed late (by the sweeper) is not held twice."""
    waited = (datetime.now(UTC) - since).total_seconds()
    return max(0, math.ceil(delay_seconds - waited))


ANALYSIS = Outbox(
    name="analysis",
    table="kalimera_analysis_outbox",
    columns="o.id, o.tenant_id, o.kind, o.conversation_id, o.run_id, o.reason",
    message=message,
    queue=lambda services: services.analysis_queue,
    scopes={
        "conversation": "AND tenant_id = %(tenant_id)s AND conversation_id = %(scope_id)s",
        "run": "AND tenant_id = %(tenant_id)s AND run_id = %(scope_id)s",
    },
)
WEBHOOKS = Outbox(
    name="webhooks",
    table="kalimera_webhook_outbox",
    columns="o.id, o.tenant_id, o.delivery_id, o.generation, o.delay_seconds, o.created_at",
    message=_webhook_message,
    queue=lambda services: services.webhooks_queue,
    scopes={"tenant": "AND tenant_id = %(tenant_id)s"},
    delay=lambda row: _remaining(row["delay_seconds"], row["created_at"]),
)
