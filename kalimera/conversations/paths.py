"""The blob naming contract of the recordings container.

``{tenant_id}/{agent_id}/{conversation_id}/{seq:06d}-{direction}.{ext}``, with an optional JSON
sidecar at the same name ending ``.json``. Telephony uploads by this contract and so does
``POST /kalimera/ai-agent/{agent_id}/voice``; the ingestion parses it.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from enum import StrEnum


class Direction(StrEnum):
    INPUT = "input"  # the caller
    OUTPUT = "output"  # the agent


AUDIO_EXTENSIONS = ("mp3", "wav", "ogg", "flac")
SIDECAR_EXTENSION = "json"

_NAME = re.compile(
    r"^(?P<tenant>[0-9a-fA-F-]{36})/(?P<agent>[0-9a-fA-F-]{36})/(?P<conversation>[0-9a-fA-F-]{36})"
    r"/(?P<seq>[0-9]{6})-(?P<direction>input|output)\.(?P<ext>[a-z0-9]+)$"
)
# The last part of a name close to the contract, to say what is wrong with it.
_LAST_PART = re.compile(r"/(?P<seq>[0-9]+)-(?P<direction>[A-Za-z]+)\.(?P<ext>[A-Za-z0-9]+)$")
CONTRACT = "{tenant_id}/{agent_id}/{conversation_id}/{seq:06d}-{input|output}.{ext}"


class BadPath(ValueError):
    """A blob name outside the naming contract; the message says what is wrong."""


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
    """Parse a blob name (within the container), or raise ``BadPath`` saying why."""
    match = _NAME.match(name)
    if match is None:
        raise BadPath(_why(name))
    ids = {}
    for part in ("tenant", "agent", "conversation"):
        try:
            ids[part] = uuid.UUID(match[part])
        except ValueError:
            raise BadPath(f"{part} id is not a UUID: {match[part]!r}") from None
    ext = match["ext"]
    if ext not in (*AUDIO_EXTENSIONS, SIDECAR_EXTENSION):
        raise BadPath(
            f"unsupported extension .{ext} (expected one of {', '.join(AUDIO_EXTENSIONS)})"
        )
    seq = int(match["seq"])
    if seq < 1:
        raise BadPath("seq starts at 000001")
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
