"""Erasure and retention: conversations deleted on request or by age, with everything they left.

A conversation lives in three stores: Postgres (its row, turns, search terms, analysis results,
analysis requests), Blob Storage (its recordings and their JSON sidecars, under
``{tenant}/{agent}/{conversation}/``) and Table storage (its history partition). No transaction
spans the three, so an erasure goes in this order:

1. **One Postgres transaction** (``kalimera_erase_conversations``, migration 0024): the rows go
   (the statistics triggers mark their days dirty, so the rollups stay equal to the ground truth)
   and a *pending* row per conversation names the storage left to delete, with the erasure's log
   entry. From its commit on, nothing in Postgres points at the blobs: the API answers 404 and
   lists no longer show the call, whatever happens next.
2. **The storage** (``clean``): the blobs (by their recorded names, their sidecars, and whatever
   else is under the conversation's prefix) and the history entities. A DELETE does this at once;
   a failure is logged and left to step 3 (the answer is still 204: the call is gone).
3. **The sweeper** (``sweep``, on the timer): takes pending rows whose time has come (leased, so
   two sweepers never clean one conversation at once) and cleans again, backing off after a
   failure. A pending row goes only when a pass at or after its settle time (ten minutes after
   the erasure) finds nothing failing: a turn whose ingestion committed just before the erasure
   may write its history entity just after the first pass, and the last pass deletes it. While
   the row exists the ingestion refuses recordings of that conversation, so a late recording
   cannot bring the call back; one arriving after is a new call (and the retention's again).

So a failure between the steps leaves storage that is deleted later, never a row pointing at
deleted blobs. The log (``kalimera_erasure_log``) holds counts, the reason and the token: no
numbers, names or words.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from kalimera.conversations import erasure_repository as repository
from kalimera.conversations.erasure_repository import Erased
from kalimera.conversations.history import partition_key
from kalimera.conversations.models import ErasureLog, RetentionRead, RetentionUpdate
from kalimera.conversations.recording import SIDECAR_EXTENSION, conversation_prefix
from kalimera.db import Conn, transaction
from kalimera.errors import NotFound

if TYPE_CHECKING:
    from kalimera.services import Services

logger = logging.getLogger(__name__)

INLINE_SECONDS = 10  # a DELETE waits this long for storage, then leaves it to the sweeper
SWEEP_BATCH = 100  # pending conversations a sweep cleans
SWEEP_ROUNDS = 20  # sweeps a timer run makes at most (each takes rows the others did not)
SWEEP_LEASE = timedelta(minutes=5)  # a sweeper that dies frees its rows after this
RETENTION_BATCH = 200  # conversations one retention transaction erases
RETENTION_BATCHES = 25  # batches per tenant per run: a run stays bounded, the next continues


class Reason(StrEnum):
    """Why calls were erased, as the log says (the contacts domain writes CONTACT itself)."""

    API = "api"
    CONTACT = "contact"
    RETENTION = "retention"


async def erase_conversation(
    *,
    services: Services,
    tenant_id: uuid.UUID,
    conversation_id: uuid.UUID,
    token_id: uuid.UUID | None,
) -> Erased:
    """Erase one conversation of the tenant (404 when it has none such: another tenant's, or
    erased already), then its storage at once, for at most ``INLINE_SECONDS``."""
    async with transaction(await services.db(), tenant_id=tenant_id) as conn:
        erased = await repository.erase(
            conn=conn,
            tenant_id=tenant_id,
            conversation_ids=[conversation_id],
            reason=Reason.API,
            token_id=token_id,
        )
        if erased.conversations == 0:
            raise NotFound("Conversation not found")
        left = await repository.pending(
            conn=conn, tenant_id=tenant_id, conversation_ids=[conversation_id]
        )
    try:
        async with asyncio.timeout(INLINE_SECONDS):
            await clean_all(services=services, rows=left)
    except TimeoutError:  # storage hangs: the call is gone; the sweeper deletes the rest
        logger.warning("erasing the storage of %s timed out; left to the sweeper", conversation_id)
    return erased


async def clean_all(*, services: Services, rows: Sequence[Any]) -> int:
    """Clean the storage of these pending rows; how many failed (left to the sweeper)."""
    return sum([not await clean(services=services, row=row) for row in rows])


async def clean(*, services: Services, row: Any) -> bool:
    """Delete one erased conversation's blobs and history entities, then drop its pending row
    if the settle time has passed (else the sweeper looks once more then). False when storage
    failed: the row is kept, to be tried again with a backoff."""
    tenant_id, conversation_id = row["tenant_id"], row["conversation_id"]
    try:
        await _delete_blobs(services, row)
        await _delete_history(services, tenant_id, conversation_id)
    except Exception as exc:  # noqa: BLE001 - any storage failure is retried by the sweeper
        error = f"{type(exc).__name__}: {str(exc)[:500]}"
        logger.warning("erasing the storage of %s failed: %s", conversation_id, error)
        async with transaction(await services.db(), tenant_id=tenant_id) as conn:
            await repository.retry_later(
                conn=conn,
                tenant_id=tenant_id,
                conversation_id=conversation_id,
                error=error,
                after=_backoff(row),
            )
        return False
    async with transaction(await services.db(), tenant_id=tenant_id) as conn:
        await repository.settled(conn=conn, tenant_id=tenant_id, conversation_id=conversation_id)
        await repository.retry_later(
            conn=conn, tenant_id=tenant_id, conversation_id=conversation_id, error=None, after=None
        )
    return True


def _backoff(row: Any) -> timedelta:
    """1, 2, 4 … minutes after each failure, at most an hour."""
    return timedelta(minutes=min(2 ** int(row.get("attempts", 0) or 0), 60))


async def _delete_blobs(services: Services, row: Any) -> None:
    from azure.core.exceptions import ResourceNotFoundError

    container = services.recordings
    names = set()
    for name in row["blob_names"]:
        names.add(name)
        names.add(f"{name.rsplit('.', 1)[0]}.{SIDECAR_EXTENSION}")
    # What no turn names (a rejected upload, a sidecar alone), under the canonical prefix and
    # under its upper-case spelling (telephony may write the ids so; the ingestion accepts it).
    prefix = conversation_prefix(row["tenant_id"], row["agent_id"], row["conversation_id"])
    for spelling in (prefix, prefix.upper()):
        async for blob in container.list_blobs(name_starts_with=spelling):
            names.add(blob.name)
    for name in sorted(names):
        try:
            await container.delete_blob(name, delete_snapshots="include")
        except ResourceNotFoundError:
            continue  # never written (a sidecar), or deleted by an earlier pass


async def _delete_history(
    services: Services, tenant_id: uuid.UUID, conversation_id: uuid.UUID
) -> None:
    from azure.core.exceptions import ResourceNotFoundError

    table = services.turns
    partition = partition_key(tenant_id, conversation_id)
    keys = [
        e["RowKey"]
        async for e in table.query_entities(
            "PartitionKey eq @pk", parameters={"pk": partition}, select=["RowKey"]
        )
    ]
    for key in keys:
        try:
            await table.delete_entity(partition_key=partition, row_key=key)
        except ResourceNotFoundError:
            continue


async def sweep(*, services: Services, limit: int = SWEEP_BATCH) -> int:
    """Clean the leftovers whose time has come (every tenant's); how many were taken."""
    async with transaction(await services.db(), system=True) as conn:
        rows = await repository.claim_pending(conn=conn, limit=limit, lease=SWEEP_LEASE)
    failed = await clean_all(services=services, rows=rows)
    if failed:
        logger.warning("the erasure sweeper left %d of %d calls to a later try", failed, len(rows))
    return len(rows)


async def retention(*, services: Services, tenant_id: uuid.UUID) -> RetentionRead:
    """The tenant's retention, with how many conversations it would erase now."""
    async with transaction(await services.db(), tenant_id=tenant_id) as conn:
        row = await repository.get_retention(conn=conn, tenant_id=tenant_id)
        return await _read(conn, tenant_id, row)


async def set_retention(
    *,
    services: Services,
    tenant_id: uuid.UUID,
    token_id: uuid.UUID | None,
    body: RetentionUpdate,
    dry_run: bool = False,
) -> RetentionRead:
    """Set the tenant's retention (or remove it: ``days`` null); with ``dry_run``, only say how
    many conversations it would erase, and change nothing. The timer enforces it."""
    async with transaction(await services.db(), tenant_id=tenant_id) as conn:
        if not dry_run:
            row = await repository.set_retention(
                conn=conn, tenant_id=tenant_id, days=body.days, token_id=token_id
            )
            return await _read(conn, tenant_id, row)
        current = await repository.get_retention(conn=conn, tenant_id=tenant_id)
        due = await _due(conn, tenant_id, body.days)
        return RetentionRead(
            days=body.days, updated_at=current["updated_at"] if current else None, due=due
        )


async def _read(conn: Conn, tenant_id: uuid.UUID, row: Any) -> RetentionRead:
    days = row["days"] if row else None
    updated_at = row["updated_at"] if row else None
    return RetentionRead(days=days, updated_at=updated_at, due=await _due(conn, tenant_id, days))


async def _due(conn: Conn, tenant_id: uuid.UUID, days: int | None) -> int:
    if days is None:
        return 0
    return await repository.count_older(conn=conn, tenant_id=tenant_id, days=days)


async def erasures(*, services: Services, tenant_id: uuid.UUID, limit: int) -> ErasureLog:
    """The tenant's latest erasures, newest first."""
    async with transaction(await services.db(), tenant_id=tenant_id) as conn:
        found = await repository.log(conn=conn, tenant_id=tenant_id, limit=limit)
    return ErasureLog.model_validate({"items": found})


@dataclass(frozen=True, slots=True)
class RetentionRun:
    """One tenant's retention in one run: its days, and how many conversations (and their
    recordings) went, or with a dry run would go."""

    tenant_id: uuid.UUID
    days: int
    conversations: int
    recordings: int = 0


async def enforce_retention(
    *,
    services: Services,
    dry_run: bool = False,
    tenant_id: uuid.UUID | None = None,
    batch: int = RETENTION_BATCH,
    batches: int = RETENTION_BATCHES,
) -> list[RetentionRun]:
    """Erase every tenant's conversations older than its retention, ``batch`` a transaction and
    at most ``batches`` a tenant per run (the timer comes back for the rest); with ``dry_run``,
    only count them. Their storage is left to the sweeper, which runs after."""
    async with transaction(await services.db(), system=True) as conn:
        retentions = await repository.retentions(conn=conn, tenant_id=tenant_id)
    runs = []
    for setting in retentions:
        tenant, days = setting["tenant_id"], setting["days"]
        if dry_run:
            async with transaction(await services.db(), tenant_id=tenant) as conn:
                due = await repository.count_older(conn=conn, tenant_id=tenant, days=days)
            runs.append(RetentionRun(tenant, days, due))
            continue
        total = Erased(0, 0)
        for _ in range(batches):
            async with transaction(await services.db(), tenant_id=tenant) as conn:
                ids = await repository.oldest(conn=conn, tenant_id=tenant, days=days, limit=batch)
                erased = await repository.erase(
                    conn=conn,
                    tenant_id=tenant,
                    conversation_ids=ids,
                    reason=Reason.RETENTION,
                    token_id=None,
                )
            total = Erased(
                total.conversations + erased.conversations, total.recordings + erased.recordings
            )
            if len(ids) < batch:
                break
        if total.conversations:
            logger.info("retention erased %d conversations of %s", total.conversations, tenant)
        runs.append(RetentionRun(tenant, days, total.conversations, total.recordings))
    return runs


async def retention_timer(*, services: Services) -> None:
    """The timer's work: enforce the retentions, then clean what erasures left (theirs, and any
    earlier erasure's whose storage failed)."""
    try:
        await enforce_retention(services=services)
    finally:  # a failed retention run does not keep leftovers waiting
        for _ in range(SWEEP_ROUNDS):
            if await sweep(services=services) < SWEEP_BATCH:
                break
