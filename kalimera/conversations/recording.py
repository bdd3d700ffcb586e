"""The recording contract: the blob's name, its metadata, what ``final`` means, the sidecar.

Telephony writes recordings to the container by this contract, and so do both uploads of the
API (``POST …/voice``, where the app stores the file, and ``POST …/voice/upload-url``, where the
client PUTs it with a create-only SAS); the ingestion reads them by it. Each rule is here once,
used by both sides:

- the name: ``{tenant_id}/{agent_id}/{conversation_id}/{seq:06d}-{direction}.{ext}``;
- the metadata, values URL-encoded (a header holds ASCII only): ``language``, ``profile_type``,
  ``from_number``, ``to_number``, ``transcript``, ``final``, and from telephony ``recorded_at``
  and ``started_at``; limits are the conversation columns' (``models``);
- ``final`` marks the call's last turn: its ingestion completes an Active conversation. The
  upload writes ``true``; the ingestion also reads ``1`` and ``yes``, in any case;
- the sidecar, a JSON object at the same name ending ``.json``: a transcript too long for the
  metadata travels there; its keys win over the metadata's;
- the outcomes (``TurnOutcomes``): ``ended_reason`` and ``cost`` (a JSON object), which telephony
  sends with the final turn and which replace the conversation's, and ``latency_ms``, an output
  turn's. The upload refuses a bad one (422 naming it), the ingestion rejects the recording.

Over 400 lines on purpose: it is the contract, and both of its sides (writing and reading) stay
in one module so that neither can drift from the other.
"""

from __future__ import annotations

import contextlib
import json
import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Annotated, Any, Literal
from urllib.parse import quote, unquote

from pydantic import (
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
)

from kalimera.conversations.models import (
    LANGUAGE_CHARS,
    PHONE_CHARS,
    CallCost,
    ConversationBase,
    Direction,
    EndedReason,
    Language,
    LatencyMs,
    Phone,
    ReportedEndedReason,
)
from kalimera.errors import invalid, invalid_fields
from kalimera.profiles import ProfileType

if TYPE_CHECKING:
    from azure.storage.blob.aio import ContainerClient

AUDIO_EXTENSIONS = ("mp3", "wav", "ogg", "flac")
SIDECAR_EXTENSION = "json"
CONTENT_TYPES = {"mp3": "audio/mpeg", "wav": "audio/wav", "ogg": "audio/ogg", "flac": "audio/flac"}
Extension = Literal["mp3", "wav", "ogg", "flac"]
NAMING_FIELDS = ("conversation_id", "direction", "seq")
FIELD_BYTES = 64 * 1024  # the most an uploaded field may hold (a long transcript: the sidecar)
METADATA_TRANSCRIPT_BYTES = 4096  # Azure allows 8 KiB of metadata in all; longer: sidecar
FINAL = "true"
FINAL_VALUES = frozenset({FINAL, "1", "yes"})
PROFILE_TYPES = frozenset(p.value for p in ProfileType)
EARLIEST, LATEST = 1970, 2200  # years a recording's times may name

_NAME = re.compile(
    r"^(?P<tenant>[0-9a-fA-F-]{36})/(?P<agent>[0-9a-fA-F-]{36})/(?P<conversation>[0-9a-fA-F-]{36})"
    r"/(?P<seq>[0-9]{6})-(?P<direction>input|output)\.(?P<ext>[a-z0-9]+)$"
)
# The last part of a name close to the contract, to say what is wrong with it.
_LAST_PART = re.compile(r"/(?P<seq>[0-9]+)-(?P<direction>[A-Za-z]+)\.(?P<ext>[A-Za-z0-9]+)$")
CONTRACT = "{tenant_id}/{agent_id}/{conversation_id}/{seq:06d}-{input|output}.{ext}"


class OutsideContract(ValueError):
    """A blob name, metadata value or sidecar outside the contract; the message says what is
    wrong (the reason an operator reads)."""


@dataclass(frozen=True, slots=True)
class RecordingPath:
    """A parsed blob name. ``blob_name`` is the name exactly as it was written (a UUID in upper
    case stays so): every read of the blob, its sidecar and its URLs uses it, never a name rebuilt
    from the parsed parts, which would name another blob. The ids are parsed UUIDs, so the
    conversation is the same whichever case its name's UUIDs were written in."""

    tenant_id: uuid.UUID
    agent_id: uuid.UUID
    conversation_id: uuid.UUID
    seq: int
    direction: Direction
    ext: str
    blob_name: str

    @property
    def stem(self) -> str:
        """The name as written, without its extension."""
        return self.blob_name.rsplit(".", 1)[0]

    @property
    def sidecar_name(self) -> str:
        return f"{self.stem}.{SIDECAR_EXTENSION}"

    @property
    def is_sidecar(self) -> bool:
        return self.ext == SIDECAR_EXTENSION

    @property
    def turn_key(self) -> str:
        """The turn's RowKey in the history table: zero-padded, so keys sort as turns do."""
        return f"{self.seq:06d}-{self.direction.value}"


def conversation_prefix(
    tenant_id: uuid.UUID, agent_id: uuid.UUID, conversation_id: uuid.UUID
) -> str:
    return f"{tenant_id}/{agent_id}/{conversation_id}/"


def strip_container(name: str, container: str) -> str:
    """The name within the container; a leading ``{container}/`` (as the trigger's path or an
    operator may give it) is dropped."""
    prefix = f"{container}/"
    return name[len(prefix) :] if name.startswith(prefix) else name


def parse(name: str) -> RecordingPath:
    """Parse a blob name (within the container), or raise ``OutsideContract`` saying why."""
    match = _NAME.match(name)
    if match is None:
        raise OutsideContract(_why(name))
    ids = {}
    for part in ("tenant", "agent", "conversation"):
        try:
            ids[part] = uuid.UUID(match[part])
        except ValueError:
            raise OutsideContract(f"{part} id is not a UUID: {match[part]!r}") from None
    ext = match["ext"]
    if ext not in (*AUDIO_EXTENSIONS, SIDECAR_EXTENSION):
        raise OutsideContract(
            f"unsupported extension .{ext} (expected one of {', '.join(AUDIO_EXTENSIONS)})"
        )
    seq = int(match["seq"])
    if seq < 1:
        raise OutsideContract("seq starts at 000001")
    return RecordingPath(
        tenant_id=ids["tenant"],
        agent_id=ids["agent"],
        conversation_id=ids["conversation"],
        seq=seq,
        direction=Direction(match["direction"]),
        ext=ext,
        blob_name=name,
    )


def _why(name: str) -> str:
    """What keeps ``name`` out of the contract, as precisely as can be said. Upper-case hex in
    the ids is accepted (the name is kept as written); the rest of the name is case-sensitive."""
    last = _LAST_PART.search(name)
    if last is not None and name.count("/") == 3:
        seq, direction, ext = last["seq"], last["direction"], last["ext"]
        if len(seq) != 6:
            return f"seq must be six digits, zero-padded (000001), not {seq!r}"
        if direction.lower() in set(Direction) and direction not in set(Direction):
            return f"direction must be lower case (input or output), not {direction!r}"
        if direction not in set(Direction):
            return f"direction must be input or output, not {direction!r}"
        if ext != ext.lower():
            return f"the extension must be lower case (.{ext.lower()}), not .{ext}"
    return f"path outside the naming contract {CONTRACT}"


def build(
    *,
    tenant_id: uuid.UUID,
    agent_id: uuid.UUID,
    conversation_id: uuid.UUID,
    seq: int,
    direction: Direction,
    ext: str,
) -> RecordingPath:
    """The canonical name of a recording (lower-case UUIDs), as the upload writes it."""
    name = f"{tenant_id}/{agent_id}/{conversation_id}/{seq:06d}-{direction.value}.{ext}"
    return RecordingPath(tenant_id, agent_id, conversation_id, seq, direction, ext, name)


OUTCOME_FIELDS = ("ended_reason", "cost", "latency_ms")
LATENCY_ON_INPUT = "latency_ms is an output turn's (the agent's answer), not a caller turn's"


class TurnOutcomes(ConversationBase):
    """What telephony reports with a turn besides its words: why the call ended and what it
    cost (with the final turn), how fast the agent answered (with an output turn)."""

    model_config = ConfigDict(extra="ignore")

    ended_reason: ReportedEndedReason | None = None
    cost: CallCost | None = Field(None, description="A JSON object; replaces the conversation's")
    latency_ms: LatencyMs | None = Field(
        None,
        description="Output turns: from the end of the caller's speech to the agent's first "
        "audio, in milliseconds",
    )

    @field_validator("cost", mode="before")
    @classmethod
    def _cost_from_text(cls, value: Any) -> Any:
        # A form field or a blob's metadata carries the object as JSON text.
        if isinstance(value, str) and value.strip():
            try:
                return json.loads(value)
            except ValueError:
                msg = "not a JSON object"
                raise ValueError(msg) from None
        return value

    def outcome_metadata(self) -> dict[str, str]:
        """These values as the blob's metadata (not yet URL-encoded)."""
        meta = {}
        if self.ended_reason is not None:
            meta["ended_reason"] = self.ended_reason.value
        if self.cost is not None:
            meta["cost"] = self.cost.stored()
        if self.latency_ms is not None:
            meta["latency_ms"] = str(self.latency_ms)
        return meta


class RecordingFields(TurnOutcomes):
    """What names and describes one uploaded recording. Unknown fields are ignored (the seed's
    clients send more than this), empty values count as absent (as HTML forms send them)."""

    model_config = ConfigDict(extra="ignore", str_strip_whitespace=True)

    conversation_id: uuid.UUID | None = Field(None, description="Default: a new conversation")
    direction: Direction = Field(
        Direction.INPUT, description="input = the caller, output = the agent"
    )
    seq: Annotated[int, Field(ge=1, le=999_999)] | None = Field(
        None,
        description="The exchange number from 1; default: one more than the highest seq of "
        "this conversation and direction stored or handed out",
    )
    language: Language | None = Field(None, description="Default en")
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

    def check_direction(self) -> None:
        """A latency belongs to an output turn: on a caller turn it is ``Invalid``, naming it."""
        if self.latency_ms is not None and self.direction is not Direction.OUTPUT:
            raise invalid(["body", "latency_ms"], LATENCY_ON_INPUT)

    @classmethod
    def parse(cls, fields: dict[str, str]) -> RecordingFields:
        """Validate multipart fields; a bad one is ``Invalid`` naming it, as a JSON body's
        would be (pydantic may find several at once, so this is ``Invalid`` with a list)."""
        try:
            parsed = cls.model_validate(fields)
        except ValidationError as exc:
            raise invalid_fields(exc) from None
        parsed.check_direction()
        return parsed

    def metadata(self) -> tuple[dict[str, str], str | None]:
        """The blob's metadata (values URL-encoded, so any text fits a header) and a transcript
        too long for it, which goes to the sidecar instead."""
        meta = {"language": self.language or "en"}
        for name in ("profile_type", "from_number", "to_number"):
            value = getattr(self, name)
            if value:
                meta[name] = str(value)
        if self.final:
            meta["final"] = FINAL
        meta.update(self.outcome_metadata())
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


@dataclass(frozen=True, slots=True)
class Description:
    """What a stored recording's metadata and sidecar say, as the ingestion reads them."""

    transcript: str | None
    language: str | None
    final: bool
    recorded_at: datetime | None
    started_at: datetime | None
    profile_type: str | None
    from_number: str | None
    to_number: str | None
    ended_reason: EndedReason | None
    cost: CallCost | None
    latency_ms: int | None


def describe(metadata: Mapping[str, str], sidecar: Mapping[str, Any]) -> Description:
    """Read a blob's metadata and its sidecar's keys (which win), leniently: telephony writes
    them without the upload's validation, so text is cleaned (NUL dropped, trimmed) and only
    what the columns cannot hold is ``OutsideContract``."""
    meta: dict[str, Any] = {k.lower(): unquote(v) for k, v in metadata.items()}
    meta.update(sidecar)
    recorded_at = _time(meta, "recorded_at")
    profile_type = meta.get("profile_type") or None
    if profile_type is not None and profile_type not in PROFILE_TYPES:
        raise OutsideContract(f"profile_type must be inbound or outbound, not {profile_type!r}")
    transcript = str(meta.get("transcript") or "").replace("\x00", "").strip()
    outcomes = _outcomes(meta)
    return Description(
        transcript=transcript or None,
        language=_text(meta, "language", LANGUAGE_CHARS),
        final=str(meta.get("final", "")).strip().lower() in FINAL_VALUES,
        recorded_at=recorded_at,
        started_at=_time(meta, "started_at"),
        profile_type=profile_type,
        from_number=_text(meta, "from_number", PHONE_CHARS),
        to_number=_text(meta, "to_number", PHONE_CHARS),
        ended_reason=outcomes.ended_reason,
        cost=outcomes.cost,
        latency_ms=outcomes.latency_ms,
    )


def _outcomes(meta: dict[str, Any]) -> TurnOutcomes:
    """The outcome fields by the upload's rules; a bad one is ``OutsideContract`` naming it."""
    given = {k: meta[k] for k in OUTCOME_FIELDS if meta.get(k) not in (None, "")}
    try:
        return TurnOutcomes.model_validate(given)
    except ValidationError as exc:
        first = exc.errors()[0]
        field = ".".join(str(part) for part in first["loc"]) or "outcome"
        value = given.get(str(first["loc"][0]), "") if first["loc"] else ""
        msg = f"{field}: {first['msg'].removeprefix('Value error, ')} (given {value!r})"
        raise OutsideContract(msg[:500]) from None


def _time(meta: dict[str, Any], key: str) -> datetime | None:
    value = meta.get(key)
    if value in (None, ""):
        return None
    try:
        parsed = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        raise OutsideContract(f"{key} is not an ISO 8601 time: {value!r}") from None
    if parsed.tzinfo is None:
        raise OutsideContract(f"{key} has no time zone: {value!r}")
    if not EARLIEST <= parsed.year <= LATEST:
        raise OutsideContract(f"{key} is not a plausible time: {value!r}")
    return parsed


def _text(meta: dict[str, Any], key: str, limit: int) -> str | None:
    value = meta.get(key)
    if value in (None, ""):
        return None
    text = str(value).replace("\x00", "").strip()
    if len(text) > limit:
        raise OutsideContract(f"{key} is longer than {limit} characters")
    return text


async def write_sidecar(
    container: ContainerClient, path: RecordingPath, transcript: str | None
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


async def read_sidecar(
    container: ContainerClient, path: RecordingPath
) -> tuple[dict[str, Any], str | None]:
    """The sidecar's keys (lower case, nulls dropped) and its ETag; ({}, None) when there is
    none."""
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
        raise OutsideContract(f"the sidecar {path.sidecar_name} is not valid JSON") from None
    if not isinstance(data, dict):
        raise OutsideContract(f"the sidecar {path.sidecar_name} is not a JSON object")
    return {str(k).lower(): v for k, v in data.items() if v is not None}, etag
