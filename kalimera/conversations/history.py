"""The turns table (Table storage): a conversation's history, one entity per turn.

The ingestion writes an entity after its transaction commits, from the turn as Postgres holds
it; the conversation's detail reads them back. A partition is one conversation of one tenant.
"""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING, Any

from kalimera.conversations import repository
from kalimera.conversations.recording import RecordingPath
from kalimera.db import Conn, transaction

if TYPE_CHECKING:
    from kalimera.services import Services

TRANSCRIPT_ENTITY_CHARS = 30_000  # a Table string property holds 64 KiB of UTF-16
ROUNDS = 3
COLUMNS = [
    "RowKey",
    "Seq",
    "Direction",
    "RecordedAt",
    "Duration",
    "Transcript",
    "BlobName",
    "LatencyMs",
]


def partition_key(tenant_id: uuid.UUID, conversation_id: uuid.UUID) -> str:
    """The history partition of one conversation, qualified by tenant so that two tenants can
    never share one (conversation ids come from clients too)."""
    return f"{tenant_id}_{conversation_id}"


async def write(
    *, services: Services, path: RecordingPath, turn: Any = None, first: bool = False
) -> None:
    """Write the turn's history entity from the turn as Postgres holds it, outside any
    transaction (idempotent). ``turn``: the row as the caller's transaction committed it (saves
    reading it back), or None to read it.

    Two versions of one turn racing here could leave the older one's entity last; so the holder
    is read again after the write, and the entity rewritten from it when it changed meanwhile.
    Except for the turn's ``first`` version (no version held the turn before it): its entity is
    inserted, never replaced, so a later version's entity, which replaces, can only come after
    it (an entity already there makes the insert fail, and then the loop decides as above)."""
    from azure.core.exceptions import ResourceExistsError

    if first and turn is not None:
        try:
            await services.turns.create_entity(_entity(path, turn))
        except ResourceExistsError:
            turn = None
        else:
            return
    await _write_verified(services, path, turn)


async def _write_verified(services: Services, path: RecordingPath, turn: Any) -> None:
    from azure.data.tables import UpdateMode

    p = path
    written: tuple[str, str] | None = None
    row = turn
    for _ in range(ROUNDS):
        if row is None:
            async with transaction(await services.db(), tenant_id=p.tenant_id) as conn:
                row = await held_turn(conn=conn, path=p)
        if row is None or (row["blob_name"], row["etag"]) == written:
            return
        await services.turns.upsert_entity(_entity(p, row), UpdateMode.REPLACE)
        written = (row["blob_name"], row["etag"])
        row = None


def _entity(p: RecordingPath, row: Any) -> dict[str, Any]:
    """The history entity of the turn ``row`` (as stored in Postgres), without null values."""
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
        "LatencyMs": row["latency_ms"],
    }
    return {k: v for k, v in entity.items() if v is not None}


async def held_turn(*, conn: Conn, path: RecordingPath) -> Any:
    """The turn of ``path`` as stored (the version holding it and its values), or None."""
    return await repository.turn(
        conn=conn,
        tenant_id=path.tenant_id,
        conversation_id=path.conversation_id,
        seq=path.seq,
        direction=path.direction.value,
    )


async def entities(
    *, services: Services, tenant_id: uuid.UUID, conversation_id: uuid.UUID
) -> list[dict[str, Any]]:
    """The conversation's turn entities, in turn order (by seq, the caller's turn first)."""
    found: list[dict[str, Any]] = [
        dict(e)
        async for e in services.turns.query_entities(
            "PartitionKey eq @pk",
            parameters={"pk": partition_key(tenant_id, conversation_id)},
            select=COLUMNS,
        )
    ]
    found.sort(key=lambda e: (int(e["Seq"]), e["Direction"] != "input"))
    return found
