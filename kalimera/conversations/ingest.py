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

Nothing is held across the network: the blob is probed and read (and its current ETag asked)
before the transaction, which is short and makes no network call; the history entity in Table
storage is written after the commit, from the turn as committed, by an idempotent upsert that a
redelivery (a ``DUPLICATE``) repeats, so a crash between the commit and the Table write is
repaired by the host's retry.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import uuid
import weakref
from collections.abc import Awaitable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote

from kalimera.conversations import attempts, audio, paths, repository, sentiment
from kalimera.db import Conn, transaction
from kalimera.profiles import ProfileType

if TYPE_CHECKING:
    from azure.data.tables.aio import TableClient
    from azure.storage.blob.aio import BlobClient, ContainerClient

    from kalimera.services import Services

logger = logging.getLogger(__name__)

HEAD_BYTES = 64 * 1024
FETCH_SECONDS = 60.0  # a probe thread waits this long for one range of the blob
TRANSCRIPT_ENTITY_CHARS = 30_000  # a Table string property holds 64 KiB of UTF-16
PROFILE_TYPES = frozenset(p.value for p in ProfileType)
EARLIEST, LATEST = 1970, 2200  # years a recording's times may name


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


class Rejected(Exception):
    """A bad recording; the message is the reason an operator reads."""


@dataclass(frozen=True, slots=True)
class _Recording:
    path: paths.RecordingPath
    etag: str  # the audio blob's
    version: str  # what was read: the audio's ETag, plus the sidecar's when there is one
    modified_at: datetime
    info: audio.AudioInfo
    transcript: str | None
    sentiment_score: float | None  # of this turn's words; caller turns only
    language: str | None
    final: bool
    recorded_at: datetime
    started_at: datetime | None
    profile_type: str | None
    from_number: str | None
    to_number: str | None


async def ingest_blob(services: Services, blob_name: str) -> IngestResult:
    """Process one blob of the recordings container (its name within the container; a leading
    ``{container}/`` is accepted)."""
    from azure.core.exceptions import ResourceModifiedError, ResourceNotFoundError

    settings = services.settings
    name = paths.strip_container(blob_name, settings.voice_container)
    container, _ = storage_clients(services)
    blob = container.get_blob_client(name)
    try:
        path: paths.RecordingPath | None = paths.parse(name)
        bad_path = ""
    except paths.BadPath as exc:
        path, bad_path = None, str(exc)
    # The sidecar is read while the head downloads: two requests, one wait.
    sidecar = (
        asyncio.create_task(_sidecar(container, path))
        if path is not None and not path.is_sidecar
        else None
    )
    try:
        try:
            head = await _head(blob)
        except ResourceNotFoundError:
            return IngestResult(name, Outcome.IGNORED, "the blob no longer exists")
        etag = head.etag
        if path is None:
            return await _reject(services, name, etag, None, bad_path)
        if sidecar is None:
            return await _ingest_sidecar(services, container, path)
        try:
            recording = await _read(blob, path, head, sidecar)
            current = await _current_etag(blob)
            async with transaction(await services.db(), tenant_id=path.tenant_id) as conn:
                outcome = await _write(services, conn, recording, container.url, current)
            if outcome in (Outcome.INGESTED, Outcome.DUPLICATE):
                # After the commit, outside the row lock; a duplicate delivery writes it again,
                # so a crash between the commit and this write is repaired by the redelivery.
                await _write_history(services, path)
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
        logger.info("ingested %r (%s s)", name, recording.info.duration)
    return IngestResult(name, outcome, conversation_id=path.conversation_id)


async def _ingest_sidecar(
    services: Services, container: Any, path: paths.RecordingPath
) -> IngestResult:
    """A sidecar written (or rewritten) after its recording: ingest the recording again, as a
    new version (its key includes the sidecar's ETag), so the sidecar's values win."""
    result = IngestResult(path.blob_name, Outcome.IGNORED, "no recording for this sidecar yet")
    async for blob in container.list_blobs(name_starts_with=f"{path.stem}."):
        if blob.name != path.blob_name:
            result = await ingest_blob(services, blob.name)
    return result


@dataclass(frozen=True, slots=True)
class _Head:
    """What the first request learns: the blob's properties, its whole size and first bytes."""

    props: Any
    size: int
    data: bytes

    @property
    def etag(self) -> str:
        return str(self.props.etag).strip('"')


async def _head(blob: BlobClient) -> _Head:
    """The blob's properties and its first bytes, in one request (two for an empty blob, which
    has no range to read)."""
    from azure.core.exceptions import HttpResponseError

    try:
        downloader = await blob.download_blob(offset=0, length=HEAD_BYTES)
    except HttpResponseError as exc:
        if getattr(exc, "error_code", None) != "InvalidRange":
            raise
        props = await blob.get_blob_properties()
        return _Head(props, int(props.size), b"")
    props = downloader.properties
    return _Head(props, blob_size(props), await downloader.readall())


def blob_size(props: Any) -> int:
    """The whole blob's size. After a ranged download ``props.size`` is the length of the range;
    the blob's size is the number after the ``/`` of ``Content-Range`` (``bytes 0-65535/320044``).
    """
    content_range = str(getattr(props, "content_range", None) or "")
    total = content_range.rpartition("/")[2]
    return int(total) if total.isdigit() else int(props.size)


async def _reject(
    services: Services, name: str, etag: str, tenant_id: uuid.UUID | None, reason: str
) -> IngestResult:
    logger.warning("rejected recording %r: %s", name, reason, extra={"blob": name})
    async with transaction(await services.db(), system=True) as conn:
        await repository.record_rejection(
            conn=conn, blob_name=name, etag=etag, tenant_id=tenant_id, reason=reason
        )
    return IngestResult(name, Outcome.REJECTED, reason)


async def _read(
    blob: BlobClient,
    path: paths.RecordingPath,
    head: _Head,
    sidecar_read: Awaitable[tuple[dict[str, Any], str | None]],
) -> _Recording:
    """Check the audio and gather the turn's values from the blob, its metadata and sidecar."""
    from azure.core import MatchConditions

    loop = asyncio.get_running_loop()
    props, etag = head.props, head.etag

    async def fetch(start: int, end: int) -> bytes:
        stream = await blob.download_blob(
            offset=start,
            length=end - start,
            etag=props.etag,
            match_condition=MatchConditions.IfNotModified,
        )
        return await stream.readall()

    def fetch_blocking(start: int, end: int) -> bytes:
        return asyncio.run_coroutine_threadsafe(fetch(start, end), loop).result(FETCH_SECONDS)

    file = audio.SparseFile(head.size, fetch_blocking, head.data)
    try:
        tail = file.tail_to_fetch(path.ext)
        if tail is not None:  # the Ogg and FLAC checks read the end: fetch it on the loop
            file.add(tail, await fetch(tail, file.size))
        # Every probe runs in a thread, whatever the size: even one bounded in work takes tens
        # of milliseconds on a crafted file, which the event loop (and /kalimera/health) must
        # not wait for. Ranges beyond the head and tail are fetched by the loop meanwhile.
        info = await loop.run_in_executor(_probes, audio.probe, path.ext, file)
    except audio.BadAudio as exc:
        raise Rejected(str(exc)) from None

    # Metadata values travel as HTTP headers (ASCII): the upload URL-encodes them all.
    meta: dict[str, Any] = {k.lower(): unquote(v) for k, v in (props.metadata or {}).items()}
    sidecar, sidecar_etag = await sidecar_read
    meta.update(sidecar)

    recorded_at = _time(meta, "recorded_at") or props.creation_time or props.last_modified
    profile_type = meta.get("profile_type") or None
    if profile_type is not None and profile_type not in PROFILE_TYPES:
        raise Rejected(f"profile_type must be inbound or outbound, not {profile_type!r}")
    transcript = str(meta.get("transcript") or "").replace("\x00", "").strip()
    # Scored here, before the transaction and off the loop: one turn's words, once.
    score = (
        await asyncio.to_thread(sentiment.score_turn, transcript)
        if path.direction is paths.Direction.INPUT
        else None
    )
    return _Recording(
        path=path,
        etag=etag,
        version=etag if sidecar_etag is None else f"{etag}+{sidecar_etag}",
        modified_at=props.last_modified,
        info=info,
        transcript=transcript or None,
        sentiment_score=score,
        language=_text(meta, "language", 50),
        final=str(meta.get("final", "")).strip().lower() in ("true", "1", "yes"),
        recorded_at=recorded_at,
        started_at=_time(meta, "started_at"),
        profile_type=profile_type,
        from_number=_text(meta, "from_number", 32),
        to_number=_text(meta, "to_number", 32),
    )


async def _sidecar(container: Any, path: paths.RecordingPath) -> tuple[dict[str, Any], str | None]:
    """The sidecar's keys and its ETag; ({}, None) when there is none."""
    from azure.core.exceptions import ResourceNotFoundError

    try:
        stream = await container.get_blob_client(path.sidecar_name).download_blob()
        raw = await stream.readall()
    except ResourceNotFoundError:
        return {}, None
    etag = str(stream.properties.etag).strip('"')
    try:
        data = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        raise Rejected(f"the sidecar {path.sidecar_name} is not valid JSON") from None
    if not isinstance(data, dict):
        raise Rejected(f"the sidecar {path.sidecar_name} is not a JSON object")
    return {str(k).lower(): v for k, v in data.items() if v is not None}, etag


def _time(meta: dict[str, Any], key: str) -> datetime | None:
    value = meta.get(key)
    if value in (None, ""):
        return None
    try:
        parsed = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        raise Rejected(f"{key} is not an ISO 8601 time: {value!r}") from None
    if parsed.tzinfo is None:
        raise Rejected(f"{key} has no time zone: {value!r}")
    if not EARLIEST <= parsed.year <= LATEST:
        raise Rejected(f"{key} is not a plausible time: {value!r}")
    return parsed


def _text(meta: dict[str, Any], key: str, limit: int) -> str | None:
    value = meta.get(key)
    if value in (None, ""):
        return None
    text = str(value).replace("\x00", "").strip()
    if len(text) > limit:
        raise Rejected(f"{key} is longer than {limit} characters")
    return text


async def _current_etag(blob: BlobClient) -> str | None:
    """The blob's ETag now (None when it is gone), read before the transaction so that no
    network call is made under the conversation's lock."""
    from azure.core.exceptions import ResourceNotFoundError

    try:
        props = await blob.get_blob_properties()
    except ResourceNotFoundError:
        return None
    return str(props.etag).strip('"')


async def _write(
    services: Services, conn: Conn, rec: _Recording, container_url: str, current: str | None
) -> Outcome:
    """The turn and the conversation, in one short transaction that makes no network call (the
    history entity is written after the commit). A ``Rejected`` raised here rolls all of it
    back, the idempotency key included."""
    p = rec.path
    if not await repository.claim_version(
        conn=conn, tenant_id=p.tenant_id, blob_name=p.blob_name, etag=rec.version
    ):
        return Outcome.DUPLICATE
    duration = rec.info.duration
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
    if conversation["agent_id"] != p.agent_id:
        msg = f"conversation {p.conversation_id} belongs to agent {conversation['agent_id']}"
        raise Rejected(msg)
    held = await _held_turn(conn, p)
    if await _stale(services, rec, held, current):
        return Outcome.SUPERSEDED
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
    )
    if written is None:
        return Outcome.SUPERSEDED
    await _score_unscored_turns(conn, p)
    await repository.recompute_conversation(
        conn=conn,
        tenant_id=p.tenant_id,
        conversation_id=p.conversation_id,
        blob_name=p.blob_name,
        blob_base_url=container_url.rstrip("/") + "/",
        from_number=rec.from_number,
        to_number=rec.to_number,
    )
    return Outcome.INGESTED


async def _score_unscored_turns(conn: Conn, p: paths.RecordingPath) -> None:
    """Score the caller turns ingested before scores were kept per turn, once: this runs in the
    transaction, but only for a conversation that has such turns, and only the first time."""
    unscored = await repository.unscored_input_turns(
        conn=conn, tenant_id=p.tenant_id, conversation_id=p.conversation_id
    )
    if not unscored:
        return
    scores = await asyncio.to_thread(
        lambda: {row["seq"]: sentiment.score_turn(row["transcript"]) for row in unscored}
    )
    await repository.score_input_turns(
        conn=conn, tenant_id=p.tenant_id, conversation_id=p.conversation_id, scores=scores
    )


async def _held_turn(conn: Conn, p: paths.RecordingPath) -> Any:
    """The turn of ``p`` as stored (the version holding it and its values), or None."""
    return await repository.turn(
        conn=conn,
        tenant_id=p.tenant_id,
        conversation_id=p.conversation_id,
        seq=p.seq,
        direction=p.direction.value,
    )


async def _stale(services: Services, rec: _Recording, held: Any, current: str | None) -> bool:
    """Whether a newer version of this blob exists while another version holds the turn.

    Last-modified times have a resolution of one second, too coarse to order two uploads of
    one turn. So when the turn is held by another version, this version may only replace it
    while it is still the blob's current version: ``current`` was read just before the
    transaction. A holder written after that read is newer: it was modified later (the upsert's
    own guard refuses us) or in the same second, the one case where the blob is asked again,
    under the lock (two uploads of one turn within a second, racing their ingestions).
    """
    p = rec.path
    if held is None or (held["blob_name"], held["etag"]) == (p.blob_name, rec.etag):
        return False
    if current != rec.etag:
        return True
    if held["blob_modified_at"] != rec.modified_at:
        return False
    blob = storage_clients(services)[0].get_blob_client(p.blob_name)
    return await _current_etag(blob) != rec.etag


# The probes run here, not on the loop's default executor: a probe may wait for ranges, which
# the loop downloads, and aiohttp itself uses the default executor for every request (it reads
# netrc there), so probes filling the default executor would wait forever for downloads queued
# behind them.
_probes = ThreadPoolExecutor(max_workers=8, thread_name_prefix="kalimera-probe")

_clients: weakref.WeakKeyDictionary[Services, tuple[Any, Any]] = weakref.WeakKeyDictionary()


def storage_clients(services: Services) -> tuple[ContainerClient, TableClient]:
    """The recordings container and the turns table of ``services``, built once: each client
    costs a few hundred microseconds to build, which adds up at tens of recordings a second."""
    clients = _clients.get(services)
    if clients is None:
        settings = services.settings
        clients = (
            services.blobs.get_container_client(settings.voice_container),
            services.tables.get_table_client(settings.turns_table),
        )
        _clients[services] = clients
    return clients


def partition_key(tenant_id: uuid.UUID, conversation_id: uuid.UUID) -> str:
    """The history partition of one conversation, qualified by tenant so that two tenants can
    never share one (conversation ids come from clients too)."""
    return f"{tenant_id}_{conversation_id}"


HISTORY_ROUNDS = 3


async def _write_history(services: Services, p: paths.RecordingPath) -> None:
    """Write the turn's history entity from the turn as Postgres holds it, outside any
    transaction (an idempotent upsert). Two versions of one turn racing here could leave the
    older one's entity last; so the holder is read again after the write, and the entity
    rewritten from it when it changed meanwhile."""
    from azure.data.tables import UpdateMode

    _, table = storage_clients(services)
    written: tuple[str, str] | None = None
    for _ in range(HISTORY_ROUNDS):
        async with transaction(await services.db(), tenant_id=p.tenant_id) as conn:
            row = await _held_turn(conn, p)
        if row is None or (row["blob_name"], row["etag"]) == written:
            return
        transcript = row["transcript"]
        entity = {
            "PartitionKey": partition_key(p.tenant_id, p.conversation_id),
            "RowKey": p.turn_key,
            "TenantId": str(p.tenant_id),
            "ConversationId": str(p.conversation_id),
            "AgentId": str(p.agent_id),
            "Seq": p.seq,
            "Direction": p.direction.value,
            "RecordedAt": row["recorded_at"],
            "Duration": str(row["duration"]),
            "Transcript": transcript[:TRANSCRIPT_ENTITY_CHARS] if transcript else None,
            "BlobName": row["blob_name"],
            "ETag": row["etag"],
            "Language": row["language"],
        }
        await table.upsert_entity(
            {k: v for k, v in entity.items() if v is not None}, UpdateMode.REPLACE
        )
        written = (row["blob_name"], row["etag"])
