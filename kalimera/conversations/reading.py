"""The ingestion's first stage: read one recording from Blob Storage, before any transaction.

The blob's properties come with its first bytes in one request, the sidecar is read meanwhile,
the audio is probed in a thread (fetching only the ranges the checks touch), and the metadata is
read by the contract (``recording.describe``). Nothing here writes.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from kalimera.conversations import audio, recording, sentiment
from kalimera.conversations.models import Direction

if TYPE_CHECKING:
    from azure.storage.blob.aio import BlobClient

HEAD_BYTES = 64 * 1024
# The Ogg, FLAC and MP3 checks read the end of the file too (the last granule position, the last
# frame, the ID3v1 and APE tags): such a file up to this size is read whole by the first request,
# which saves the second one for most calls' turns (8 kHz speech of up to two minutes in MP3 and
# Ogg, about 45 s in FLAC), at the cost of a bounded read (eight ingestions at once hold 4 MiB).
WHOLE_BYTES = 512 * 1024
READ_TO_THE_END = frozenset({"ogg", "flac", "mp3"})
FETCH_SECONDS = 60.0  # a probe thread waits this long for one range of the blob


class Rejected(Exception):
    """A bad recording; the message is the reason an operator reads."""


@dataclass(frozen=True, slots=True)
class Recording:
    """What was read: the turn's values, ready for the transaction."""

    path: recording.RecordingPath
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
    ended_reason: str | None
    cost: str | None  # the JSON the conversation's cost column takes
    latency_ms: int | None


@dataclass(frozen=True, slots=True)
class Head:
    """What the first request learns: the blob's properties, its whole size and first bytes."""

    props: Any
    size: int
    data: bytes

    @property
    def etag(self) -> str:
        return str(self.props.etag).strip('"')


def first_read(ext: str | None) -> int:
    """How many bytes the first request reads of a blob of extension ``ext``."""
    return WHOLE_BYTES if ext in READ_TO_THE_END else HEAD_BYTES


async def head(blob: BlobClient, length: int = HEAD_BYTES) -> Head:
    """The blob's properties and its first ``length`` bytes, in one request (two for an empty
    blob, which has no range to read)."""
    from azure.core.exceptions import HttpResponseError

    try:
        downloader = await blob.download_blob(offset=0, length=length)
    except HttpResponseError as exc:
        if getattr(exc, "error_code", None) != "InvalidRange":
            raise
        props = await blob.get_blob_properties()
        return Head(props, int(props.size), b"")
    props = downloader.properties
    return Head(props, blob_size(props), await downloader.readall())


def blob_size(props: Any) -> int:
    """The whole blob's size. After a ranged download ``props.size`` is the length of the range;
    the blob's size is the number after the ``/`` of ``Content-Range`` (``bytes 0-65535/320044``).
    """
    content_range = str(getattr(props, "content_range", None) or "")
    total = content_range.rpartition("/")[2]
    return int(total) if total.isdigit() else int(props.size)


async def read(
    blob: BlobClient,
    path: recording.RecordingPath,
    first: Head,
    sidecar_read: Awaitable[tuple[dict[str, Any], str | None]],
) -> Recording:
    """Check the audio and gather the turn's values from the blob, its metadata and sidecar."""
    from azure.core import MatchConditions

    loop = asyncio.get_running_loop()
    props, etag = first.props, first.etag

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

    file = audio.SparseFile(first.size, fetch_blocking, first.data)
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

    try:
        sidecar, sidecar_etag = await sidecar_read
        said = recording.describe(props.metadata or {}, sidecar)
    except recording.OutsideContract as exc:
        raise Rejected(str(exc)) from None
    if said.latency_ms is not None and path.direction is Direction.INPUT:
        raise Rejected(recording.LATENCY_ON_INPUT)
    # Scored here, before the transaction and off the loop: one turn's words, once.
    score = (
        await asyncio.to_thread(sentiment.score_turn, said.transcript or "")
        if path.direction is Direction.INPUT
        else None
    )
    return Recording(
        path=path,
        etag=etag,
        version=etag if sidecar_etag is None else f"{etag}+{sidecar_etag}",
        modified_at=props.last_modified,
        info=info,
        transcript=said.transcript,
        sentiment_score=score,
        language=said.language,
        final=said.final,
        recorded_at=said.recorded_at or props.creation_time or props.last_modified,
        started_at=said.started_at,
        profile_type=said.profile_type,
        from_number=said.from_number,
        to_number=said.to_number,
        ended_reason=None if said.ended_reason is None else said.ended_reason.value,
        cost=None if said.cost is None else said.cost.stored(),
        latency_ms=said.latency_ms,
    )


async def current_etag(blob: BlobClient) -> str | None:
    """The blob's ETag now (None when it is gone), read before the transaction so that no
    network call is made under the conversation's lock."""
    from azure.core.exceptions import ResourceNotFoundError

    try:
        props = await blob.get_blob_properties()
    except ResourceNotFoundError:
        return None
    return str(props.etag).strip('"')


# The probes run here, not on the loop's default executor: a probe may wait for ranges, which
# the loop downloads, and aiohttp itself uses the default executor for every request (it reads
# netrc there), so probes filling the default executor would wait forever for downloads queued
# behind them.
_probes = ThreadPoolExecutor(max_workers=8, thread_name_prefix="kalimera-probe")
