"""``POST /kalimera/ai-agent/{agent_id}/voice``: a multipart upload streamed to Blob Storage.

The body's parts arrive as it streams in (``multipart.Form``, built by the route) and the file
goes to Blob Storage in blocks of ``BLOCK_BYTES`` (stage_block, then one commit_block_list that
also sets the metadata), so memory stays flat whatever the file's size.
The blob's name is fixed when the file part starts, so ``conversation_id``, ``direction`` and
``seq`` must come before ``voice_file`` (as browsers, httpx, requests and ``curl -F`` in argument
order send them); the other fields may come in any order. Checks: the extension and the first
bytes (415), the file's size (413; the whole body's is the body guard's), the seed's messages
for a missing, unnamed or empty file (400). Nothing is committed unless every check passed.

Uploads that race: each upload names its blocks with its own random prefix, so two uploads of
the same recording never commit each other's blocks. Committing a block list discards the
blob's other uncommitted blocks, so when another upload of the same name commits first, this
one's commit finds its blocks gone: a 409 (the stored recording is the other upload's, whole).
"""

from __future__ import annotations

import base64
import hashlib
import logging
import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from kalimera.conversations import audio, seqs
from kalimera.conversations.models import VoiceStored
from kalimera.conversations.multipart import Form, Part, PartEnd
from kalimera.conversations.recording import (
    AUDIO_EXTENSIONS,
    CONTENT_TYPES,
    FIELD_BYTES,
    NAMING_FIELDS,
    RecordingFields,
    RecordingPath,
    write_sidecar,
)
from kalimera.errors import Conflict, DomainError, Malformed, TooLarge, Unsupported, invalid
from kalimera.sizecap import SizeCap

if TYPE_CHECKING:
    from azure.storage.blob.aio import BlobClient

    from kalimera.services import Services

logger = logging.getLogger(__name__)

BLOCK_BYTES = 512 * 1024  # a block being filled: what an upload holds (twice this on the way out)
FORM_OVERHEAD = 1024 * 1024  # what the form may add around the file before it is "too large"
SNIFF_BYTES = 16
FILE_FIELD = "voice_file"
CONTRACT_FIELDS = frozenset(RecordingFields.model_fields)


class _BlockWriter:
    """Stages a blob's blocks as the data arrives; ``commit`` makes them the blob. The block
    ids carry a prefix of this upload's own, so a concurrent upload of the same blob name can
    never slip a block of its own into this one's list.

    The data is copied once, into the block being filled, which is handed to the SDK as a
    memoryview (aiohttp slices a ``bytearray`` into a copy, a ``memoryview`` without one, and
    joins it with the request's headers into one more) and dropped once staged: an upload holds
    a block and its one copy on the way out, twice ``BLOCK_BYTES``."""

    def __init__(self, blob: BlobClient) -> None:
        self.blob = blob
        self.prefix = uuid.uuid4().hex
        self.block_ids: list[str] = []
        self._block = bytearray()

    async def write(self, data: bytes) -> None:
        view = memoryview(data)
        while view:
            room = BLOCK_BYTES - len(self._block)
            self._block += view[:room]
            view = view[room:]
            if len(self._block) == BLOCK_BYTES:
                await self._stage()

    async def _stage(self) -> None:
        if not self._block:
            return
        block, self._block = self._block, bytearray()
        raw = f"{self.prefix}-{len(self.block_ids):08d}"
        block_id = base64.b64encode(raw.encode()).decode()
        await self.blob.stage_block(block_id, memoryview(block), length=len(block))
        self.block_ids.append(block_id)

    async def commit(self, *, metadata: dict[str, str], content_type: str) -> str:
        from azure.core.exceptions import HttpResponseError
        from azure.storage.blob import BlobBlock, ContentSettings

        await self._stage()
        try:
            await self.blob.commit_block_list(
                [BlobBlock(block_id=i) for i in self.block_ids],
                metadata=metadata,
                content_settings=ContentSettings(content_type=content_type),
            )
        except HttpResponseError as exc:
            if getattr(exc, "error_code", None) != "InvalidBlockList":
                raise
            raise Conflict(
                "Another upload of this recording was stored while this one was arriving; "
                "the stored recording is that one. Send this one again to replace it.",
            ) from None
        return self.blob.blob_name


@dataclass(frozen=True, slots=True)
class Received:
    """What an upload made: the answer (None when only reading) and what the request asks for
    (its fields as validated, the file's format and hash: its idempotency fingerprint)."""

    stored: VoiceStored | None
    request: dict[str, Any]


class _Receiver:
    """Consumes the parser's events: the recording's fields into memory (bounded), the file
    into blocks. With ``store=False`` it only reads and hashes (an idempotent replay's check).

    A field's fault (too long, not UTF-8) is held until the file part starts or the body ends:
    a body without a ``voice_file`` part is "No file part" whatever else it holds. Parts the
    contract does not name (another file, the seed's extra fields) are read and dropped."""

    def __init__(
        self,
        *,
        services: Services,
        tenant_id: uuid.UUID,
        agent_id: uuid.UUID,
        store: bool,
    ) -> None:
        self.services = services
        self.tenant_id = tenant_id
        self.agent_id = agent_id
        self.store = store
        self.fields: dict[str, str] = {}
        self.fault: DomainError | None = None
        self.part: str | None = None  # the form name of the current part
        self.value = bytearray()
        self.file_seen = False
        self.file_done = False
        limit = services.settings.max_upload_bytes
        self.file_cap = SizeCap(limit=limit, detail=f"The file is larger than {limit} bytes")
        self.file_hash = hashlib.sha256()
        self.head = bytearray()
        self.sniffed = False
        self.ext = ""
        self.path: RecordingPath | None = None
        self.allocated = False
        self.writer: _BlockWriter | None = None

    async def handle(self, event: Part | bytes | PartEnd) -> None:
        if isinstance(event, Part):
            await self._begin(event)
        elif isinstance(event, bytes):
            await self._data(event)
        else:
            self._end()

    async def _begin(self, part: Part) -> None:
        name = part.name
        self.part = name
        self.value.clear()
        if name != FILE_FIELD:
            if name in NAMING_FIELDS and self.file_seen:
                msg = f"{', '.join(NAMING_FIELDS)} must come before {FILE_FIELD}"
                raise invalid(["body", name], msg)
            return
        if self.file_seen:
            raise invalid(["body", FILE_FIELD], "only one file per upload")
        self.file_seen = True
        if self.fault is not None:
            raise self.fault
        filename = part.filename.strip()
        if not filename:
            raise Malformed("No selected file")
        ext = filename.rsplit(".", 1)[-1].lower() if "." in filename else ""
        if ext not in AUDIO_EXTENSIONS:
            raise Unsupported(f"Only {', '.join(AUDIO_EXTENSIONS)} files are accepted")
        self.ext = ext
        fields = RecordingFields.parse(self.fields)  # refuse bad fields before storing a byte
        if not self.store:
            return
        self.path, self.allocated = await seqs.resolve_path(
            services=self.services,
            tenant_id=self.tenant_id,
            agent_id=self.agent_id,
            fields=fields,
            ext=ext,
        )
        self.writer = _BlockWriter(self.services.recordings.get_blob_client(self.path.blob_name))

    async def _data(self, data: bytes) -> None:
        if self.part != FILE_FIELD:
            if self.part not in CONTRACT_FIELDS or self.fault is not None:
                return
            self.value += data
            if len(self.value) > FIELD_BYTES:
                self.fault = TooLarge(f"The field {self.part!r} is larger than {FIELD_BYTES} bytes")
                if self.file_seen:
                    raise self.fault
            return
        self.file_cap.take(data)
        if not self.sniffed:
            self.head += data[: SNIFF_BYTES - len(self.head)]
            if len(self.head) >= SNIFF_BYTES:
                self._sniff()
        self.file_hash.update(data)
        if self.writer is not None:
            await self.writer.write(data)

    def _end(self) -> None:
        if self.part == FILE_FIELD:
            if self.file_cap.seen == 0:
                raise Malformed("Empty file")
            if not self.sniffed:
                self._sniff()
            self.file_done = True
        elif self.part in CONTRACT_FIELDS and self.fault is None:
            try:
                self.fields[self.part] = self.value.decode("utf-8")
            except UnicodeDecodeError:
                self.fault = invalid(["body", self.part], "not UTF-8 text")
                if self.file_seen:
                    raise self.fault from None
        self.part = None

    def _sniff(self) -> None:
        self.sniffed = True
        try:
            audio.sniff(self.ext, bytes(self.head))
        except audio.BadAudio as exc:
            raise Unsupported(f"The file's content does not match .{self.ext}: {exc}") from None

    def request(self, fields: RecordingFields) -> dict[str, Any]:
        """What this request asks for: its fields as validated, the file's format and hash."""
        return {
            "fields": fields.model_dump(mode="json"),
            "ext": self.ext,
            "file": self.file_hash.hexdigest(),
        }

    async def finish(self) -> Received:
        if not self.file_seen:
            raise Malformed("No file part")
        if self.fault is not None:
            raise self.fault
        if not self.file_done:
            raise Malformed("The multipart body ended inside the file part")
        fields = RecordingFields.parse(self.fields)
        request = self.request(fields)
        if self.writer is None or self.path is None:
            return Received(stored=None, request=request)
        metadata, long_transcript = fields.metadata()
        await write_sidecar(self.services.recordings, self.path, long_transcript)
        blob = await self.writer.commit(metadata=metadata, content_type=CONTENT_TYPES[self.ext])
        self.allocated = False  # the recording holds its seq now
        stored = VoiceStored(conversation_id=self.path.conversation_id, blob=blob)
        return Received(stored=stored, request=request)

    async def give_back_seq(self) -> None:
        """After a failed upload: the error being answered matters more than the seq, so a
        fault here is logged, not raised (at worst the exchange numbers have a gap)."""
        if not self.allocated or self.path is None:
            return
        self.allocated = False
        try:
            await seqs.release_seq(services=self.services, path=self.path)
        except Exception:  # noqa: BLE001 - see the docstring
            logger.warning("could not give back seq %r of %r", self.path.seq, self.path.stem)


async def receive(
    *,
    services: Services,
    form: Form,
    tenant_id: uuid.UUID,
    agent_id: uuid.UUID,
    store: bool = True,
) -> Received:
    """Read the multipart body as it streams in and store the file (with ``store=False``, only
    validate it and say what it asks for); raises the domain's errors. The body's size
    (Content-Length up front, a chunked body as it streams) is the app's body guard's
    (kalimera/limits.py): it answers 413 before this runs or as the body outgrows it."""
    if not form.is_multipart:
        raise Malformed("No file part")
    receiver = _Receiver(services=services, tenant_id=tenant_id, agent_id=agent_id, store=store)
    events = form.events()
    try:
        try:
            async for event in events:
                await receiver.handle(event)
        except DomainError:
            await events.aclose()
            await form.drain()
            raise
        return await receiver.finish()
    finally:
        await receiver.give_back_seq()
