"""Which blob an uploaded recording gets: its seq (exchange number) given, or allocated.

Both uploads (multipart and upload URL) name the blob here, so a recording is the same whichever
way it came. A seq, given or allocated, is recorded in Postgres in one upsert, so two uploads at
once never get the same one.
"""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING

from kalimera.conversations import recording, repository
from kalimera.conversations.models import Direction
from kalimera.db import transaction

if TYPE_CHECKING:
    from azure.storage.blob.aio import ContainerClient

    from kalimera.services import Services


async def resolve_path(
    *,
    services: Services,
    tenant_id: uuid.UUID,
    agent_id: uuid.UUID,
    fields: recording.RecordingFields,
    ext: str,
) -> tuple[recording.RecordingPath, bool]:
    """The blob name, and whether its seq was allocated here (then ``release_seq`` gives it
    back if the upload fails)."""
    conversation_id = fields.conversation_id or uuid.uuid4()
    allocated = fields.seq is None
    highest = 0
    if allocated:
        highest = await _highest_stored_seq(
            services.recordings, tenant_id, agent_id, conversation_id, fields.direction
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
    path = recording.build(
        tenant_id=tenant_id,
        agent_id=agent_id,
        conversation_id=conversation_id,
        seq=seq,
        direction=fields.direction,
        ext=ext,
    )
    return path, allocated


async def release_seq(*, services: Services, path: recording.RecordingPath) -> None:
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
    direction: Direction,
) -> int:
    """The highest seq of this conversation and direction in Blob Storage (telephony writes
    there directly, without asking for a seq)."""
    prefix = recording.conversation_prefix(tenant_id, agent_id, conversation_id)
    highest = 0
    async for blob in container.list_blobs(name_starts_with=prefix):
        try:
            found = recording.parse(blob.name)
        except recording.OutsideContract:
            continue
        if found.direction is direction and not found.is_sidecar:
            highest = max(highest, found.seq)
    return highest
