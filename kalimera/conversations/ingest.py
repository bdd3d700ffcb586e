"""Ingestion: one blob of the recordings container becomes one turn of a conversation.

``ingest_blob`` is the one code path: the blob trigger calls it on Azure, the dev runner's
poller calls it locally, the tests call it directly, ``kalimera ingest replay`` re-runs it.

Exactly once under at-least-once delivery: the blob version's key (name + ETag) is inserted as
the first statement of the transaction that writes the turn and recomputes the conversation
from its turns, with the conversation row locked. A second delivery of the same version finds
the key taken (a concurrent one waits for the first to commit, then finds it) and writes
nothing. Bad recordings are rejections (recorded, logged, not raised); transient faults raise,
so the host retries, and leave nothing half-written (one transaction). An error nobody expected
raises too, but only a few times per blob version; then it is a rejection (``attempts``).

Nothing is held across the network: the blob is probed and read before the transaction, which
is short and makes no network call (when the turn is held by another version of the blob, the
blob's current ETag decides, and is asked with the transaction rolled back, which then runs
again); the history entity in Table storage is written after the commit, from the turn as
committed, by an idempotent upsert that a redelivery (a ``DUPLICATE``) repeats, so a crash
between the commit and the Table write is repaired by the host's retry. The outboxes are relayed
after the commit only when the transaction wrote to them (migration 0027).

The stages: ``reading`` (the blob, its sidecar and metadata, the probe), the transaction here,
then ``history`` (the Table entity).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from kalimera import events, outbox
from kalimera.conversations import attempts, history, reading, recording, repository, sentiment
from kalimera.conversations.reading import Recording, Rejected
from kalimera.db import Conn, transaction
from kalimera.phones import e164_or_none

if TYPE_CHECKING:
    from azure.storage.blob.aio import BlobClient

    from kalimera.services import Services

logger = logging.getLogger(__name__)


class Outcome(StrEnum):
    INGESTED = "ingested"  # the turn was written
    DUPLICATE = "duplicate"  # this blob version was processed before: nothing changed
    SUPERSEDED = "superseded"  # a newer version of the blob holds the turn: nothing changed
    REJECTED = "rejected"  # a bad recording: recorded with the reason, nothing else changed
    IGNORED = "ignored"  # a sidecar, or a blob that no longer exists


@dataclass(frozen=True, slots=True)
class IngestResult:
    blob_name: str
    outcome: Outcome
    reason: str = ""
    conversation_id: uuid.UUID | None = None


async def ingest_blob(*, services: Services, blob_name: str) -> IngestResult:
    """Process one blob of the recordings container (its name within the container; a leading
    ``{container}/`` is accepted)."""
    from azure.core.exceptions import ResourceModifiedError, ResourceNotFoundError

    name = recording.strip_container(blob_name, services.settings.voice_container)
    container = services.recordings
    blob = container.get_blob_client(name)
    try:
        path: recording.RecordingPath | None = recording.parse(name)
        bad_path = ""
    except recording.OutsideContract as exc:
        path, bad_path = None, str(exc)
    # The sidecar is read while the head downloads: two requests, one wait.
    sidecar = (
        asyncio.create_task(recording.read_sidecar(container, path))
        if path is not None and not path.is_sidecar
        else None
    )
    try:
        try:
            head = await reading.head(blob, reading.first_read(path.ext if path else None))
        except ResourceNotFoundError:
            return IngestResult(name, Outcome.IGNORED, "the blob no longer exists")
        etag = head.etag
        if path is None:
            return await _reject(services, name, etag, None, bad_path)
        if sidecar is None:
            return await _ingest_sidecar(services, path)
        try:
            read = await reading.read(blob, path, head, sidecar)
            written = await _transact(services, blob, read, container.url)
            outcome = written.outcome
            if outcome in (Outcome.INGESTED, Outcome.DUPLICATE):
                # After the commit, outside the row lock; a duplicate delivery writes it again,
                # so a crash between the commit and this write is repaired by the redelivery.
                await history.write(
                    services=services, path=path, turn=written.turn, first=written.first
                )
            # The analysis the turn asked for (a final turn, or words after the end) and the
            # events it wrote (0023's trigger: the call started or ended) are in the outboxes:
            # send them now rather than at the sweeper's next minute. Only an outbox the
            # transaction wrote to (0027's flags): most turns wrote to neither.
            if written.queued.analysis:
                await outbox.relay_after_commit(
                    services=services,
                    tenant_id=path.tenant_id,
                    conversation_id=path.conversation_id,
                )
            if written.queued.webhooks:
                await events.relay_after_commit(services=services, tenant_id=path.tenant_id)
        except Rejected as exc:
            return await _reject(services, name, etag, path.tenant_id, str(exc))
        except (ResourceModifiedError, ResourceNotFoundError):  # overwritten or deleted meanwhile
            return IngestResult(name, Outcome.SUPERSEDED, "the blob changed while it was read")
        except Exception as exc:
            if attempts.is_transient(exc):
                raise
            error = attempts.reason(exc)
            async with transaction(await services.db()) as conn:
                failed = await attempts.count_failure(
                    conn=conn, blob_name=name, etag=etag, error=error
                )
            if failed < attempts.MAX_ATTEMPTS:
                logger.warning("ingesting %r failed (attempt %d): %s", name, failed, error)
                raise
            logger.error("giving up on %r after %d attempts", name, failed, exc_info=exc)
            return await _reject(services, name, etag, path.tenant_id, error)
    finally:
        if sidecar is not None:
            sidecar.cancel()
            with contextlib.suppress(BaseException):
                await sidecar
    if outcome is Outcome.INGESTED:
        logger.info("ingested %r (%s s)", name, read.info.duration)
    return IngestResult(name, outcome, conversation_id=path.conversation_id)


async def _ingest_sidecar(services: Services, path: recording.RecordingPath) -> IngestResult:
    """A sidecar written (or rewritten) after its recording: ingest the recording again, as a
    new version (its key includes the sidecar's ETag), so the sidecar's values win."""
    result = IngestResult(path.blob_name, Outcome.IGNORED, "no recording for this sidecar yet")
    async for blob in services.recordings.list_blobs(name_starts_with=f"{path.stem}."):
        if blob.name != path.blob_name:
            result = await ingest_blob(services=services, blob_name=blob.name)
    return result


async def _reject(
    services: Services, name: str, etag: str, tenant_id: uuid.UUID | None, reason: str
) -> IngestResult:
    logger.warning("rejected recording %r: %s", name, reason, extra={"blob": name})
    event = None
    async with transaction(await services.db(), system=True) as conn:
        first = await repository.record_rejection(
            conn=conn, blob_name=name, etag=etag, tenant_id=tenant_id, reason=reason
        )
        if first and tenant_id is not None:  # a path with no valid tenant has no one to tell
            data = {"blob_name": name, "reason": reason, "updated_at": _now()}
            event = await events.emit(
                conn, tenant_id=tenant_id, event_type="recording.rejected", data=data
            )
    if event is not None and tenant_id is not None:  # None: the tenant has no endpoint
        await events.relay_after_commit(services=services, tenant_id=tenant_id)
    return IngestResult(name, Outcome.REJECTED, reason)


def _now() -> str:
    return datetime.now(UTC).isoformat()


class _CurrentEtagNeeded(Exception):
    """The turn is held by another version of the blob: whether this one may replace it depends
    on the blob's current ETag, which is asked outside the transaction (then it runs again)."""


UNREAD = "unread"
"""``current`` before the blob's current ETag was asked (an ETag is never this word)."""


@dataclass(frozen=True, slots=True)
class _Written:
    """What the transaction did: its outcome, the turn as committed (None unless it wrote one),
    whether that is the turn's first version (no version held it before), and the outboxes it
    wrote to."""

    outcome: Outcome
    turn: Any = None
    first: bool = False
    queued: outbox.Queued = outbox.NOTHING_QUEUED


async def _transact(
    services: Services, blob: BlobClient, rec: Recording, container_url: str
) -> _Written:
    """Run the turn's transaction. The blob's current ETag is only asked when the turn is held
    by another version (``_stale``): then the transaction is rolled back, the ETag asked with no
    transaction open, and the transaction run again with it; a first turn, the common case,
    costs no such request."""
    current = UNREAD
    while True:
        try:
            async with transaction(await services.db(), tenant_id=rec.path.tenant_id) as conn:
                return await _write(services, conn, rec, container_url, current)
        except _CurrentEtagNeeded:
            current = await reading.current_etag(blob) or ""


async def _write(
    services: Services, conn: Conn, rec: Recording, container_url: str, current: str
) -> _Written:
    """The turn and the conversation, in one short transaction that makes no network call (the
    history entity is written after the commit). A ``Rejected`` raised here rolls all of it
    back, the idempotency key included. ``current``: the blob's current ETag ("" when it is
    gone), or ``UNREAD``."""
    p = rec.path
    if not await repository.claim_version(
        conn=conn, tenant_id=p.tenant_id, blob_name=p.blob_name, etag=rec.version
    ):
        return _Written(Outcome.DUPLICATE)
    duration = rec.info.duration
    region = services.settings.default_phone_region
    from_e164, to_e164 = (e164_or_none(n, region) for n in (rec.from_number, rec.to_number))
    if from_e164 or to_e164:  # it may find its contact: before the row lock (migration 0025)
        await repository.share_contact_numbers(conn=conn, tenant_id=p.tenant_id)
    # Created Active by its first turn unless telephony's start report made it first, and
    # locked: the turns of one conversation are serialised, so the totals below (later
    # statements, later snapshots) see every committed turn.
    conversation = await repository.lock_conversation_for_turn(
        conn=conn,
        tenant_id=p.tenant_id,
        conversation_id=p.conversation_id,
        agent_id=p.agent_id,
        profile_type=rec.profile_type,
        started_at=rec.started_at or rec.recorded_at - timedelta(seconds=float(duration)),
    )
    if conversation is None:
        raise Rejected(f"unknown agent {p.agent_id} for tenant {p.tenant_id}")
    # After the lock: an erasure that held the row has committed, and its pending row is seen.
    context = await repository.turn_context(
        conn=conn,
        tenant_id=p.tenant_id,
        conversation_id=p.conversation_id,
        seq=p.seq,
        direction=p.direction.value,
    )
    if context["erased"]:
        raise Rejected(f"conversation {p.conversation_id} was erased")
    if conversation["agent_id"] != p.agent_id:
        msg = f"conversation {p.conversation_id} belongs to agent {conversation['agent_id']}"
        raise Rejected(msg)
    held = context if context["blob_name"] is not None else None
    if await _stale(services, rec, held, current):
        return _Written(Outcome.SUPERSEDED)
    written = await repository.upsert_recording(
        conn=conn,
        tenant_id=p.tenant_id,
        conversation_id=p.conversation_id,
        seq=p.seq,
        direction=p.direction.value,
        blob_name=p.blob_name,
        etag=rec.etag,
        blob_modified_at=rec.modified_at,
        duration=duration,
        transcript=rec.transcript,
        sentiment_score=rec.sentiment_score,
        language=rec.language,
        final=rec.final,
        recorded_at=rec.recorded_at,
        latency_ms=rec.latency_ms,
    )
    if written is None:
        return _Written(Outcome.SUPERSEDED)
    if context["unscored"]:
        await _score_unscored_turns(conn, p)
    await repository.recompute_conversation(
        conn=conn,
        tenant_id=p.tenant_id,
        conversation_id=p.conversation_id,
        blob_name=p.blob_name,
        blob_base_url=container_url.rstrip("/") + "/",
        from_number=rec.from_number,
        to_number=rec.to_number,
        from_e164=from_e164,
        to_e164=to_e164,
        ended_reason=rec.ended_reason,
        cost=rec.cost,
        transcript_changed=bool(rec.transcript and rec.transcript.strip()),
    )
    return _Written(Outcome.INGESTED, written, held is None, await outbox.queued(conn))


async def _score_unscored_turns(conn: Conn, p: recording.RecordingPath) -> None:
    """Score the caller turns ingested before scores were kept per turn, once: this runs in the
    transaction, but only for a conversation that has such turns (``turn_context`` says), and
    only the first time."""
    unscored = await repository.unscored_input_turns(
        conn=conn, tenant_id=p.tenant_id, conversation_id=p.conversation_id
    )
    scores = await asyncio.to_thread(
        lambda: {row["seq"]: sentiment.score_turn(row["transcript"]) for row in unscored}
    )
    await repository.score_input_turns(
        conn=conn, tenant_id=p.tenant_id, conversation_id=p.conversation_id, scores=scores
    )


async def _stale(services: Services, rec: Recording, held: Any, current: str) -> bool:
    """Whether a newer version of this blob exists while another version holds the turn.

    Last-modified times have a resolution of one second, too coarse to order two uploads of
    one turn. So when the turn is held by another version, this version may only replace it
    while it is still the blob's current version: ``current``, read with no transaction open
    (``UNREAD``: not yet, then ``_CurrentEtagNeeded`` has it read and the transaction run
    again). A holder written after that read is newer: it was modified later (the upsert's own
    guard refuses us) or in the same second, the one case where the blob is asked again, under
    the lock (two uploads of one turn within a second, racing their ingestions).
    """
    p = rec.path
    if held is None or (held["blob_name"], held["etag"]) == (p.blob_name, rec.etag):
        return False
    if current == UNREAD:
        raise _CurrentEtagNeeded
    if current != rec.etag:
        return True
    if held["blob_modified_at"] != rec.modified_at:
        return False
    blob = services.recordings.get_blob_client(p.blob_name)
    return await reading.current_etag(blob) != rec.etag
