"""SQL for erasure and retention (migration 0024): one statement per intent. Never commits.

The erasure itself is the SQL function ``kalimera_erase_conversations``, so that every way in (a
DELETE, a contact's calls from the contacts domain, the retention timer) erases alike.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta

from psycopg.rows import DictRow

from kalimera.db import Conn


@dataclass(frozen=True, slots=True)
class Erased:
    """What one erasure took: conversations, and their recordings (turns)."""

    conversations: int
    recordings: int


async def erase(
    *,
    conn: Conn,
    tenant_id: uuid.UUID,
    conversation_ids: Sequence[uuid.UUID],
    reason: str,
    token_id: uuid.UUID | None,
) -> Erased:
    """Erase these conversations of the tenant (those that exist), log it, and leave their
    storage to ``kalimera_erasure_pending``."""
    cur = await conn.execute(
        "SELECT conversations, recordings FROM kalimera_erase_conversations("
        "%(tenant_id)s, %(ids)s::uuid[], %(reason)s, %(token)s)",
        {
            "tenant_id": tenant_id,
            "ids": list(conversation_ids),
            "reason": reason,
            "token": token_id,
        },
    )
    row = await cur.fetchone()
    assert row is not None
    return Erased(row["conversations"], row["recordings"])


async def pending(
    *, conn: Conn, tenant_id: uuid.UUID, conversation_ids: Sequence[uuid.UUID]
) -> list[DictRow]:
    """The pending storage of these conversations (what a request erased just now)."""
    cur = await conn.execute(
        "SELECT tenant_id, conversation_id, agent_id, blob_names, attempts, settle_at"
        " FROM kalimera_erasure_pending"
        " WHERE tenant_id = %(tenant_id)s AND conversation_id = ANY(%(ids)s::uuid[])",
        {"tenant_id": tenant_id, "ids": list(conversation_ids)},
    )
    return await cur.fetchall()


async def claim_pending(*, conn: Conn, limit: int, lease: timedelta) -> list[DictRow]:
    """The oldest available leftovers of every tenant, leased for ``lease`` (a sweeper that dies
    leaves them to the next one). System scope."""
    cur = await conn.execute(
        """
        UPDATE kalimera_erasure_pending p SET available_at = now() + %(lease)s
        FROM (SELECT tenant_id, conversation_id FROM kalimera_erasure_pending
              WHERE available_at <= now()
              ORDER BY available_at, tenant_id, conversation_id
              LIMIT %(limit)s FOR UPDATE SKIP LOCKED) AS due
        WHERE p.tenant_id = due.tenant_id AND p.conversation_id = due.conversation_id
        RETURNING p.tenant_id, p.conversation_id, p.agent_id, p.blob_names, p.attempts,
                  p.settle_at
        """,
        {"limit": limit, "lease": lease},
    )
    return await cur.fetchall()


async def settled(*, conn: Conn, tenant_id: uuid.UUID, conversation_id: uuid.UUID) -> None:
    """The storage is gone, after the settle time: the leftover row goes too."""
    await conn.execute(
        "DELETE FROM kalimera_erasure_pending"
        " WHERE tenant_id = %(tenant_id)s AND conversation_id = %(c)s AND settle_at <= now()",
        {"tenant_id": tenant_id, "c": conversation_id},
    )


async def retry_later(
    *,
    conn: Conn,
    tenant_id: uuid.UUID,
    conversation_id: uuid.UUID,
    error: str | None,
    after: timedelta | None,
) -> None:
    """Try again: after a failure (``error``, backing off with the attempts), or at the settle
    time (``error`` None: the last pass that confirms nothing came back)."""
    await conn.execute(
        """
        UPDATE kalimera_erasure_pending
        SET attempts = attempts + (%(error)s::text IS NOT NULL)::int,
            last_error = coalesce(%(error)s, last_error),
            available_at = CASE WHEN %(after)s::interval IS NULL THEN settle_at
                                ELSE now() + %(after)s END
        WHERE tenant_id = %(tenant_id)s AND conversation_id = %(c)s
        """,
        {"tenant_id": tenant_id, "c": conversation_id, "error": error, "after": after},
    )


async def get_retention(*, conn: Conn, tenant_id: uuid.UUID) -> DictRow | None:
    cur = await conn.execute(
        "SELECT days, updated_at FROM kalimera_retention WHERE tenant_id = %(tenant_id)s",
        {"tenant_id": tenant_id},
    )
    return await cur.fetchone()


async def set_retention(
    *, conn: Conn, tenant_id: uuid.UUID, days: int | None, token_id: uuid.UUID | None
) -> DictRow | None:
    """Set (or with ``days`` None, remove) the tenant's retention; the row as it now is."""
    if days is None:
        await conn.execute(
            "DELETE FROM kalimera_retention WHERE tenant_id = %(tenant_id)s",
            {"tenant_id": tenant_id},
        )
        return None
    cur = await conn.execute(
        """
        INSERT INTO kalimera_retention (tenant_id, days, updated_by)
        VALUES (%(tenant_id)s, %(days)s, %(token)s)
        ON CONFLICT (tenant_id) DO UPDATE
            SET days = EXCLUDED.days, updated_by = EXCLUDED.updated_by, updated_at = now()
        RETURNING days, updated_at
        """,
        {"tenant_id": tenant_id, "days": days, "token": token_id},
    )
    return await cur.fetchone()


async def retentions(*, conn: Conn, tenant_id: uuid.UUID | None = None) -> list[DictRow]:
    """Every tenant's retention (system scope), or one tenant's."""
    cur = await conn.execute(
        "SELECT tenant_id, days FROM kalimera_retention"
        " WHERE %(tenant_id)s::uuid IS NULL OR tenant_id = %(tenant_id)s ORDER BY tenant_id",
        {"tenant_id": tenant_id},
    )
    return await cur.fetchall()


async def count_older(*, conn: Conn, tenant_id: uuid.UUID, days: int) -> int:
    """How many of the tenant's conversations started more than ``days`` days ago: what the
    retention would erase now."""
    cur = await conn.execute(
        "SELECT count(*) AS n FROM kalimera_conversations"
        " WHERE tenant_id = %(tenant_id)s AND started_at < now() - make_interval(days => %(days)s)",
        {"tenant_id": tenant_id, "days": days},
    )
    row = await cur.fetchone()
    assert row is not None
    return int(row["n"])


async def oldest(*, conn: Conn, tenant_id: uuid.UUID, days: int, limit: int) -> list[uuid.UUID]:
    """The next batch past the retention, oldest first; rows another transaction holds (a turn
    being ingested, another erasure) are left to the next batch."""
    cur = await conn.execute(
        "SELECT id FROM kalimera_conversations"
        " WHERE tenant_id = %(tenant_id)s AND started_at < now() - make_interval(days => %(days)s)"
        " ORDER BY started_at, id LIMIT %(limit)s FOR UPDATE SKIP LOCKED",
        {"tenant_id": tenant_id, "days": days, "limit": limit},
    )
    return [row["id"] for row in await cur.fetchall()]


async def log(*, conn: Conn, tenant_id: uuid.UUID, limit: int) -> list[DictRow]:
    """The tenant's latest erasures, newest first."""
    cur = await conn.execute(
        "SELECT reason, token_id, conversations, recordings, erased_at FROM kalimera_erasure_log"
        " WHERE tenant_id = %(tenant_id)s ORDER BY erased_at DESC, id DESC LIMIT %(limit)s",
        {"tenant_id": tenant_id, "limit": limit},
    )
    return await cur.fetchall()
