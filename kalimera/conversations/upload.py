"""``POST /kalimera/ai-agent/{agent_id}/voice``: a multipart upload streamed to Blob Storage.

The body is parsed as it arrives (python-multipart's push parser over ``request.stream()``) and
the file goes to Blob Storage in blocks of ``BLOCK_BYTES`` (stage_block, then one
commit_block_list that also sets the metadata), so memory stays flat whatever the file's size.
The blob's name is fixed when the file part starts, so ``conversation_id``, ``direction`` and
``seq`` must come before ``voice_file`` (as browsers, httpx, requests and ``curl -F`` in argument
order send them); the other fields may come in any order. Checks: the extension and the first
bytes (415), the size as it streams and the Content-Length up front (413), the seed's messages
for a missing, unnamed or empty file (400). Nothing is committed unless every check passed.
"""

from __future__ import annotations

import base64
import contextlib
import json
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from kalimera.agents.models import ProfileType
from kalimera.conversations import audio, paths
from kalimera.conversations.ingest import storage_clients
from kalimera.conversations.models import VoiceStored
from kalimera.errors import Problem

if TYPE_CHECKING:
    from azure.storage.blob.aio import BlobClient, ContainerClient

    from kalimera.services import Services

BLOCK_BYTES = 2 * 1024 * 1024
FIELD_BYTES = 64 * 1024  # any form field but the file (a long transcript goes to the sidecar)
FORM_OVERHEAD = 1024 * 1024  # what the form may add around the file before it is "too large"
DRAIN_LIMIT = 64 * 1024 * 1024  # read and drop at most this much after refusing a body
METADATA_TRANSCRIPT_BYTES = 4096  # Azure allows 8 KiB of metadata in all; longer: sidecar
SNIFF_BYTES = 16
FILE_FIELD = "voice_file"
NAMING_FIELDS = ("conversation_id", "direction", "seq")
TEXT_FIELDS = {"language": 50, "profile_type": 16, "from_number": 32, "to_number": 32}
CONTENT_TYPES = {"mp3": "audio/mpeg", "wav": "audio/wav", "ogg": "audio/ogg", "flac": "audio/flac"}

REQUEST_BODY: dict[str, Any] = {
    "required": True,
    "content": {
        "multipart/form-data": {
            "schema": {
                "type": "object",
                "required": [FILE_FIELD],
                "properties": {
                    FILE_FIELD: {
                        "type": "string",
                        "format": "binary",
                        "description": "mp3, wav, ogg or flac; at most 25 MiB",
                    },
                    "conversation_id": {"type": "string", "format": "uuid"},
                    "direction": {"type": "string", "enum": ["input", "output"]},
                    "seq": {"type": "integer", "minimum": 1, "maximum": 999999},
                    "language": {"type": "string", "maxLength": 50},
                    "transcript": {"type": "string"},
                    "profile_type": {"type": "string", "enum": ["inbound", "outbound"]},
                    "from_number": {"type": "string", "maxLength": 32},
                    "to_number": {"type": "string", "maxLength": 32},
                    "final": {"type": "boolean"},
                },
            },
            "encoding": {FILE_FIELD: {"contentType": ", ".join(CONTENT_TYPES.values())}},
        }
    },
}


def _invalid(name: str, msg: str) -> Problem:
    return Problem(422, "The request is not valid", errors=[{"loc": ["body", name], "msg": msg}])


class _BlockWriter:
    """Stages a blob's blocks as the data arrives; ``commit`` makes them the blob."""

    def __init__(self, blob: BlobClient) -> None:
        self.blob = blob
        self.block_ids: list[str] = []
        self._pending: list[bytes] = []
        self._pending_bytes = 0

    async def write(self, data: bytes) -> None:
        self._pending.append(data)
        self._pending_bytes += len(data)
        if self._pending_bytes >= BLOCK_BYTES:
            await self._stage()

    async def _stage(self) -> None:
        if not self._pending:
            return
        data = b"".join(self._pending)
        self._pending.clear()
        self._pending_bytes = 0
        block_id = base64.b64encode(f"{len(self.block_ids):08d}".encode()).decode()
        await self.blob.stage_block(block_id, data, length=len(data))
        self.block_ids.append(block_id)

    async def commit(self, *, metadata: dict[str, str], content_type: str) -> str:
        from azure.storage.blob import BlobBlock, ContentSettings

        await self._stage()
        await self.blob.commit_block_list(
            [BlobBlock(block_id=i) for i in self.block_ids],
            metadata=metadata,
            content_settings=ContentSettings(content_type=content_type),
        )
        return self.blob.blob_name


@dataclass
class _Form:
    """What the parser has seen so far."""

    fields: dict[str, bytearray] = field(default_factory=dict)
    events: list[tuple[str, Any]] = field(default_factory=list)
    header_field: bytearray = field(default_factory=bytearray)
    header_value: bytearray = field(default_factory=bytearray)
    headers: dict[str, bytes] = field(default_factory=dict)

    def callbacks(self) -> dict[str, Any]:
        def on_part_begin() -> None:
            self.headers = {}

        def on_header_field(data: bytes, start: int, end: int) -> None:
            self.header_field += data[start:end]

        def on_header_value(data: bytes, start: int, end: int) -> None:
            self.header_value += data[start:end]

        def on_header_end() -> None:
            self.headers[self.header_field.decode("latin-1").lower()] = bytes(self.header_value)
            self.header_field.clear()
            self.header_value.clear()

        def on_headers_finished() -> None:
            self.events.append(("part", dict(self.headers)))

        def on_part_data(data: bytes, start: int, end: int) -> None:
            self.events.append(("data", data[start:end]))

        def on_part_end() -> None:
            self.events.append(("end", None))

        return {
            "on_part_begin": on_part_begin,
            "on_header_field": on_header_field,
            "on_header_value": on_header_value,
            "on_header_end": on_header_end,
            "on_headers_finished": on_headers_finished,
            "on_part_data": on_part_data,
            "on_part_end": on_part_end,
        }


class _Receiver:
    """Consumes the parser's events: fields into memory (bounded), the file into blocks."""

    def __init__(
        self,
        *,
        services: Services,
        container: ContainerClient,
        tenant_id: uuid.UUID,
        agent_id: uuid.UUID,
    ) -> None:
        self.services = services
        self.container = container
        self.tenant_id = tenant_id
        self.agent_id = agent_id
        self.limit = services.settings.max_upload_bytes
        self.fields: dict[str, str] = {}
        self.part: str | None = None  # the form name of the current part
        self.value = bytearray()
        self.file_seen = False
        self.file_done = False
        self.file_bytes = 0
        self.head = bytearray()
        self.sniffed = False
        self.ext = ""
        self.path: paths.RecordingPath | None = None
        self.writer: _BlockWriter | None = None

    async def handle(self, kind: str, payload: Any) -> None:
        if kind == "part":
            await self._begin(payload)
        elif kind == "data":
            await self._data(payload)
        else:
            await self._end()

    async def _begin(self, headers: dict[str, bytes]) -> None:
        from python_multipart.multipart import parse_options_header

        _, options = parse_options_header(headers.get("content-disposition", b""))
        name = options.get(b"name", b"").decode("utf-8", "replace")
        self.part = name
        self.value.clear()
        if name != FILE_FIELD:
            if name in NAMING_FIELDS and self.file_seen:
                raise _invalid(name, f"{', '.join(NAMING_FIELDS)} must come before {FILE_FIELD}")
            return
        if self.file_seen:
            raise _invalid(FILE_FIELD, "only one file per upload")
        self.file_seen = True
        filename = options.get(b"filename", b"").decode("utf-8", "replace").strip()
        if not filename:
            raise Problem(400, "No selected file")
        ext = filename.rsplit(".", 1)[-1].lower() if "." in filename else ""
        if ext not in paths.AUDIO_EXTENSIONS:
            raise Problem(415, f"Only {', '.join(paths.AUDIO_EXTENSIONS)} files are accepted")
        self.ext = ext
        self.metadata()  # refuse bad fields sent so far before a byte of the file is stored
        self.path = await self._path(ext)
        self.writer = _BlockWriter(self.container.get_blob_client(self.path.blob_name))

    async def _data(self, data: bytes) -> None:
        if self.part != FILE_FIELD:
            self.value += data
            if len(self.value) > FIELD_BYTES:
                raise Problem(413, f"The field {self.part!r} is larger than {FIELD_BYTES} bytes")
            return
        assert self.writer is not None
        self.file_bytes += len(data)
        if self.file_bytes > self.limit:
            raise Problem(413, f"The file is larger than {self.limit} bytes")
        if not self.sniffed:
            self.head += data[: SNIFF_BYTES - len(self.head)]
            if len(self.head) >= SNIFF_BYTES:
                self._sniff()
        await self.writer.write(data)

    async def _end(self) -> None:
        if self.part == FILE_FIELD:
            if self.file_bytes == 0:
                raise Problem(400, "Empty file")
            if not self.sniffed:
                self._sniff()
            self.file_done = True
        elif self.part:
            try:
                text = self.value.decode("utf-8")
            except UnicodeDecodeError:
                raise _invalid(self.part, "not UTF-8 text") from None
            if "\x00" in text:
                raise _invalid(self.part, "must not contain NUL characters")
            self.fields[self.part] = text
        self.part = None

    def _sniff(self) -> None:
        self.sniffed = True
        try:
            audio.sniff(self.ext, bytes(self.head))
        except audio.BadAudio as exc:
            raise Problem(415, f"The file's content does not match .{self.ext}: {exc}") from None

    async def _path(self, ext: str) -> paths.RecordingPath:
        raw = self.fields.get("conversation_id", "").strip()
        try:
            conversation_id = uuid.UUID(raw) if raw else uuid.uuid4()
        except ValueError:
            raise _invalid("conversation_id", "not a UUID") from None
        raw = self.fields.get("direction", "").strip() or "input"
        try:
            direction = paths.Direction(raw)
        except ValueError:
            raise _invalid("direction", "must be input or output") from None
        raw = self.fields.get("seq", "").strip()
        if raw:
            if not raw.isdigit() or not 1 <= int(raw) <= 999_999:
                raise _invalid("seq", "must be an integer from 1 to 999999")
            seq = int(raw)
        else:
            seq = await self._next_seq(conversation_id, direction)
        return paths.build(
            tenant_id=self.tenant_id,
            agent_id=self.agent_id,
            conversation_id=conversation_id,
            seq=seq,
            direction=direction,
            ext=ext,
        )

    async def _next_seq(self, conversation_id: uuid.UUID, direction: paths.Direction) -> int:
        """One more than the highest seq of this conversation and direction in Blob Storage."""
        prefix = paths.conversation_prefix(self.tenant_id, self.agent_id, conversation_id)
        highest = 0
        async for blob in self.container.list_blobs(name_starts_with=prefix):
            try:
                found = paths.parse(blob.name)
            except paths.BadPath:
                continue
            if found.direction is direction and not found.is_sidecar:
                highest = max(highest, found.seq)
        return highest + 1

    def metadata(self) -> tuple[dict[str, str], str | None]:
        """The blob's metadata (URL-encoded values) and a transcript too long for it."""
        meta: dict[str, str] = {"language": "en"}
        for name, limit in TEXT_FIELDS.items():
            value = self.fields.get(name, "").strip()
            if len(value) > limit:
                raise _invalid(name, f"at most {limit} characters")
            if value:
                meta[name] = value
        if "profile_type" in meta and meta["profile_type"] not in tuple(ProfileType):
            raise _invalid("profile_type", "must be inbound or outbound")
        final = self.fields.get("final", "").strip().lower()
        if final not in ("", "true", "false", "1", "0", "yes", "no"):
            raise _invalid("final", "must be true or false")
        if final in ("true", "1", "yes"):
            meta["final"] = "true"
        encoded = {k: quote(v, safe="") for k, v in meta.items()}
        transcript = self.fields.get("transcript", "").strip()
        long_transcript = None
        if transcript:
            quoted = quote(transcript, safe="")
            if len(quoted) <= METADATA_TRANSCRIPT_BYTES:
                encoded["transcript"] = quoted
            else:
                long_transcript = transcript
        return encoded, long_transcript

    async def finish(self) -> VoiceStored:
        if not self.file_seen:
            raise Problem(400, "No file part")
        if not self.file_done or self.writer is None or self.path is None:
            raise Problem(400, "The multipart body ended inside the file part")
        metadata, long_transcript = self.metadata()
        await self._sidecar(self.path, long_transcript)
        blob = await self.writer.commit(metadata=metadata, content_type=CONTENT_TYPES[self.ext])
        return VoiceStored(conversation_id=self.path.conversation_id, blob=blob)

    async def _sidecar(self, path: paths.RecordingPath, transcript: str | None) -> None:
        """A long transcript goes to the JSON sidecar, written before the audio so the trigger
        finds it; otherwise a sidecar left by an earlier upload of this turn must not win."""
        from azure.core.exceptions import ResourceNotFoundError
        from azure.storage.blob import ContentSettings

        sidecar = self.container.get_blob_client(path.sidecar_name)
        if transcript is not None:
            await sidecar.upload_blob(
                json.dumps({"transcript": transcript}, ensure_ascii=False).encode(),
                overwrite=True,
                content_settings=ContentSettings(content_type="application/json"),
            )
            return
        with contextlib.suppress(ResourceNotFoundError):
            await sidecar.delete_blob()


async def receive(
    *,
    services: Services,
    stream: AsyncIterator[bytes],
    content_type: str | None,
    content_length: str | None,
    tenant_id: uuid.UUID,
    agent_id: uuid.UUID,
) -> VoiceStored:
    """Parse the multipart body as it streams in and store the file; raises ``Problem``."""
    from python_multipart.exceptions import MultipartParseError
    from python_multipart.multipart import MultipartParser, parse_options_header

    limit = services.settings.max_upload_bytes
    if content_length and content_length.isdigit() and int(content_length) > limit + FORM_OVERHEAD:
        raise Problem(413, f"The body is larger than {limit} bytes")
    media_type, options = parse_options_header(content_type or "")
    boundary = options.get(b"boundary")
    if media_type != b"multipart/form-data" or not boundary:
        raise Problem(400, "No file part")

    form = _Form()
    parser = MultipartParser(boundary, form.callbacks())  # type: ignore[arg-type]  # a TypedDict
    container, _ = storage_clients(services)
    receiver = _Receiver(
        services=services, container=container, tenant_id=tenant_id, agent_id=agent_id
    )
    received = 0
    try:
        async for chunk in stream:
            received += len(chunk)
            if received > limit + FORM_OVERHEAD:
                raise Problem(413, f"The body is larger than {limit} bytes")
            parser.write(chunk)
            events, form.events = form.events, []
            for kind, payload in events:
                await receiver.handle(kind, payload)
        parser.finalize()
    except MultipartParseError:
        await _drain(stream)
        raise Problem(400, "The multipart body is malformed") from None
    except Problem:
        await _drain(stream)
        raise
    return await receiver.finish()


async def _drain(stream: AsyncIterator[bytes]) -> None:
    """Read and drop what the client is still sending (up to a bound), so that it reads the
    error instead of a reset connection."""
    dropped = 0
    try:
        async for chunk in stream:
            dropped += len(chunk)
            if dropped > DRAIN_LIMIT:
                return
    except Exception:  # noqa: BLE001 - the stream may be consumed or cut already; the error stands
        return
