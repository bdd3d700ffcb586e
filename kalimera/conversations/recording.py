"""The recording contract both ways of uploading share: which fields name a recording, what
they may hold, the blob name and metadata they make, and the sidecar for a long transcript.

``POST …/voice`` (multipart, the app stores the file) and ``POST …/voice/upload-url`` (JSON, the
client PUTs the file to Blob Storage with a create-only SAS) validate with ``RecordingFields``
and name the blob with ``resolve_path``, so a recording is the same whichever way it came.
"""

from __future__ import annotations

import contextlib
import json
import uuid
from typing import TYPE_CHECKING, Annotated, Any, Literal
from urllib.parse import quote

from pydantic import (
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
)

from kalimera.conversations import paths, repository
from kalimera.conversations.models import ConversationBase
from kalimera.db import transaction
from kalimera.problems import Problem
from kalimera.profiles import ProfileType

if TYPE_CHECKING:
    from azure.storage.blob.aio import ContainerClient

    from kalimera.services import Services

FIELD_BYTES = 64 * 1024  # the most any field may hold (a long transcript goes to the sidecar)
METADATA_TRANSCRIPT_BYTES = 4096  # Azure allows 8 KiB of metadata in all; longer: sidecar
CONTENT_TYPES = {"mp3": "audio/mpeg", "wav": "audio/wav", "ogg": "audio/ogg", "flac": "audio/flac"}
NAMING_FIELDS = ("conversation_id", "direction", "seq")
Extension = Literal["mp3", "wav", "ogg", "flac"]
Phone = Annotated[str, Field(max_length=32)]


class RecordingFields(ConversationBase):
    """What names and describes one recording. Unknown fields are ignored (the seed's clients
    send more than this), empty values count as absent (as HTML forms send them)."""

    model_config = ConfigDict(extra="ignore", str_strip_whitespace=True)

    conversation_id: uuid.UUID | None = Field(None, description="Default: a new conversation")
    direction: paths.Direction = Field(
        paths.Direction.INPUT, description="input = the caller, output = the agent"
    )
    seq: Annotated[int, Field(ge=1, le=999_999)] | None = Field(
        None,
        description="The exchange number from 1; default: one more than the highest seq of "
        "this conversation and direction stored or handed out",
    )
    language: Annotated[str, Field(max_length=50)] | None = Field(None, description="Default en")
    transcript: Annotated[str, Field(max_length=FIELD_BYTES)] | None = Field(
        None, description="Over 4 KiB URL-encoded it travels in the JSON sidecar"
    )
    profile_type: ProfileType | None = None
    from_number: Phone | None = None
    to_number: Phone | None = None
    final: bool = Field(False, description="true on the call's last turn: the call ends")

    @field_validator("*", mode="before")
    @classmethod
    def _empty_is_absent(cls, value: Any, info: ValidationInfo) -> Any:
        field = cls.model_fields.get(info.field_name or "")
        if isinstance(value, str) and not value.strip() and field and not field.is_required():
            return field.default
        return value

    @classmethod
    def parse(cls, fields: dict[str, str]) -> RecordingFields:
        """Validate multipart fields; a bad one is a 422 naming it, as a JSON body's would be."""
        try:
            return cls.model_validate(fields)
        except ValidationError as exc:
            errors = [{"loc": ["body", *map(str, e["loc"])], "msg": e["msg"]} for e in exc.errors()]
            raise Problem(422, "The request is not valid", errors=errors) from None

    def metadata(self) -> tuple[dict[str, str], str | None]:
        """The blob's metadata (values URL-encoded, so any text fits a header) and a transcript
        too long for it, which goes to the sidecar instead."""
        meta = {"language": self.language or "en"}
        for name in ("profile_type", "from_number", "to_number"):
            value = getattr(self, name)
            if value:
                meta[name] = str(value)
        if self.final:
            meta["final"] = "true"
        encoded = {k: quote(v, safe="") for k, v in meta.items()}
        if self.transcript:
            quoted = quote(self.transcript, safe="")
            if len(quoted) <= METADATA_TRANSCRIPT_BYTES:
                encoded["transcript"] = quoted
            else:
                return encoded, self.transcript
        return encoded, None


class UploadUrlRequest(RecordingFields):
    """``POST …/voice/upload-url``: the recording's fields and the file's extension."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    ext: Extension = Field(description="The file's extension: its format")


async def resolve_path(
    services: Services,
    container: ContainerClient,
    *,
    tenant_id: uuid.UUID,
    agent_id: uuid.UUID,
    fields: RecordingFields,
    ext: str,
) -> tuple[paths.RecordingPath, bool]:
    """The blob name, and whether its seq was allocated here (then ``release_seq`` gives it
    back if the upload fails). A seq, given or allocated, is recorded in Postgres in one upsert,
    so two uploads at once never get the same one."""
    conversation_id = fields.conversation_id or uuid.uuid4()
    allocated = fields.seq is None
    highest = 0
    if allocated:
        highest = await _highest_stored_seq(
            container, tenant_id, agent_id, conversation_id, fields.direction
        )
    async with transaction(await services.db()) as conn:
        seq = await repository.take_seq(
            conn=conn,
            tenant_id=tenant_id,
            conversation_id=conversation_id,
            direction=fields.direction.value,
            seq=fields.seq,
            highest_stored=highest,
        )
    path = paths.build(
        tenant_id=tenant_id,
        agent_id=agent_id,
        conversation_id=conversation_id,
        seq=seq,
        direction=fields.direction,
        ext=ext,
    )
    return path, allocated


async def release_seq(services: Services, path: paths.RecordingPath) -> None:
    """Give back an allocated seq that no recording used, if none was handed out after it, so
    a failed upload retried does not leave a gap in the exchange numbers."""
    async with transaction(await services.db()) as conn:
        await repository.release_seq(
            conn=conn,
            tenant_id=path.tenant_id,
            conversation_id=path.conversation_id,
            direction=path.direction.value,
            seq=path.seq,
        )


async def _highest_stored_seq(
    container: ContainerClient,
    tenant_id: uuid.UUID,
    agent_id: uuid.UUID,
    conversation_id: uuid.UUID,
    direction: paths.Direction,
) -> int:
    """The highest seq of this conversation and direction in Blob Storage (telephony writes
    there directly, without asking for a seq)."""
    prefix = paths.conversation_prefix(tenant_id, agent_id, conversation_id)
    highest = 0
    async for blob in container.list_blobs(name_starts_with=prefix):
        try:
            found = paths.parse(blob.name)
        except paths.BadPath:
            continue
        if found.direction is direction and not found.is_sidecar:
            highest = max(highest, found.seq)
    return highest


async def write_sidecar(
    container: ContainerClient, path: paths.RecordingPath, transcript: str | None
) -> None:
    """A long transcript goes to the JSON sidecar, written before the audio so the trigger
    finds it; otherwise a sidecar left by an earlier upload of this turn must not win."""
    from azure.core.exceptions import ResourceNotFoundError
    from azure.storage.blob import ContentSettings

    sidecar = container.get_blob_client(path.sidecar_name)
    if transcript is not None:
        await sidecar.upload_blob(
            json.dumps({"transcript": transcript}, ensure_ascii=False).encode(),
            overwrite=True,
            content_settings=ContentSettings(content_type="application/json"),
        )
        return
    with contextlib.suppress(ResourceNotFoundError):
        await sidecar.delete_blob()
