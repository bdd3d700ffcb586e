"""Events for webhooks, written in the caller's transaction (migration 0023).

Plumbing below the domains, so that any of them reports a change without knowing the webhooks
domain: ``emit`` writes the event, one delivery per enabled endpoint that takes its type, and
their outbox rows (``kalimera_webhook_emit``). The conversations' events are written by a trigger
(0023) instead; this is for the others (a rejected recording, a contacts import). After the
commit, the caller relays the tenant's outbox (``relay_after_commit``), best effort: the sweeper
sends whatever it could not.
"""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING, Any

from psycopg.types.json import Jsonb

from kalimera import outbox

if TYPE_CHECKING:
    from kalimera.db import Conn
    from kalimera.services import Services

EVENT_TYPES = (
    "conversation.started",
    "conversation.ended",
    "conversation.analyzed",
    "recording.rejected",
    "contacts.imported",
    "webhook.test",
)


async def emit(
    conn: Conn,
    *,
    tenant_id: uuid.UUID,
    event_type: str,
    data: dict[str, Any],
    subject_id: uuid.UUID | None = None,
) -> uuid.UUID | None:
    """Write the event in ``conn``'s transaction; its id, or None when the tenant has no
    endpoint (nothing is written: a tenant without webhooks pays nothing)."""
    cur = await conn.execute(
        "SELECT kalimera_webhook_emit(%(tenant)s, %(type)s, %(subject)s, %(data)s) AS id",
        {"tenant": tenant_id, "type": event_type, "subject": subject_id, "data": Jsonb(data)},
    )
    row = await cur.fetchone()
    return None if row is None else row["id"]


async def relay_after_commit(*, services: Services, tenant_id: uuid.UUID) -> None:
    """Queue the tenant's new deliveries now (best effort; the sweeper is the guarantee)."""
    await outbox.relay_after_commit(services=services, tenant_id=tenant_id, outbox=outbox.WEBHOOKS)
