"""The SQL of endpoints, deliveries and their outbox rows. Never commits: the caller's
``transaction`` is the unit of work; row-level security keeps a tenant's statements in it."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from psycopg import sql
from psycopg.rows import DictRow
from psycopg.types.json import Jsonb

from kalimera.db import Conn
from kalimera.paging import Page, fetch_page

ENDPOINT_COLUMNS = """
    id, url, events, description, enabled, disabled_reason, created_at, updated_at,
    CASE WHEN previous_secret_expires_at > now() THEN previous_secret_expires_at END
        AS previous_secret_expires_at
"""
DELIVERY_COLUMNS = """
    d.id, d.msg_id AS webhook_id, d.event_id, e.type AS event_type, d.status, d.attempts,
    CASE WHEN d.status = 'pending' THEN d.next_attempt_at END AS next_attempt_at, d.created_at
"""


async def count_endpoints(*, conn: Conn, tenant_id: uuid.UUID) -> int:
    # Locks the tenant's endpoints, so two creations at once cannot both pass the limit; the
    # advisory lock covers a tenant with none yet.
    await conn.execute(
        "SELECT pg_advisory_xact_lock(hashtextextended('webhooks:' || %(t)s::text, 0))",
        {"t": tenant_id},
    )
    cur = await conn.execute(
        "SELECT count(*) AS n FROM kalimera_webhook_endpoints WHERE tenant_id = %(t)s",
        {"t": tenant_id},
    )
    row = await cur.fetchone()
    assert row is not None
    return int(row["n"])


async def insert_endpoint(*, conn: Conn, tenant_id: uuid.UUID, **values: Any) -> DictRow:
    cur = await conn.execute(
        f"""
        INSERT INTO kalimera_webhook_endpoints
            (tenant_id, id, url, events, description, enabled, secret)
        VALUES (%(t)s, %(id)s, %(url)s, %(events)s, %(description)s, %(enabled)s, %(secret)s)
        RETURNING {ENDPOINT_COLUMNS}
        """,  # noqa: S608 - a fixed column list
        {"t": tenant_id, **values},
    )
    row = await cur.fetchone()
    assert row is not None
    return row


async def list_endpoints(*, conn: Conn, tenant_id: uuid.UUID) -> list[DictRow]:
    cur = await conn.execute(
        f"SELECT {ENDPOINT_COLUMNS} FROM kalimera_webhook_endpoints"  # noqa: S608
        " WHERE tenant_id = %(t)s ORDER BY created_at, id",
        {"t": tenant_id},
    )
    return await cur.fetchall()


async def get_endpoint(
    *, conn: Conn, tenant_id: uuid.UUID, endpoint_id: uuid.UUID
) -> DictRow | None:
    cur = await conn.execute(
        f"SELECT {ENDPOINT_COLUMNS} FROM kalimera_webhook_endpoints"  # noqa: S608
        " WHERE tenant_id = %(t)s AND id = %(id)s",
        {"t": tenant_id, "id": endpoint_id},
    )
    return await cur.fetchone()


async def update_endpoint(
    *, conn: Conn, tenant_id: uuid.UUID, endpoint_id: uuid.UUID, **values: Any
) -> DictRow | None:
    """Set the values given (None: unchanged); enabling clears why it was disabled."""
    cur = await conn.execute(
        f"""
        UPDATE kalimera_webhook_endpoints SET
            url = coalesce(%(url)s, url),
            events = coalesce(%(events)s, events),
            description = coalesce(%(description)s, description),
            enabled = coalesce(%(enabled)s, enabled),
            disabled_reason = CASE WHEN %(enabled)s THEN NULL ELSE disabled_reason END,
            failing_since = CASE WHEN %(enabled)s THEN NULL ELSE failing_since END,
            updated_at = now()
        WHERE tenant_id = %(t)s AND id = %(id)s
        RETURNING {ENDPOINT_COLUMNS}
        """,  # noqa: S608 - a fixed column list
        {"t": tenant_id, "id": endpoint_id, **values},
    )
    return await cur.fetchone()


async def delete_endpoint(*, conn: Conn, tenant_id: uuid.UUID, endpoint_id: uuid.UUID) -> bool:
    """Delete it and its deliveries (by cascade: a pending one's queued message finds nothing)."""
    cur = await conn.execute(
        "DELETE FROM kalimera_webhook_endpoints WHERE tenant_id = %(t)s AND id = %(id)s",
        {"t": tenant_id, "id": endpoint_id},
    )
    return cur.rowcount > 0


async def rotate_secret(
    *,
    conn: Conn,
    tenant_id: uuid.UUID,
    endpoint_id: uuid.UUID,
    secret: str,
    hours: int,
) -> datetime | None:
    """The new secret in place, the current one kept ``hours`` as the previous; when it ends."""
    cur = await conn.execute(
        """
        UPDATE kalimera_webhook_endpoints SET
            previous_secret = secret,
            previous_secret_expires_at = now() + make_interval(hours => %(hours)s),
            secret = %(secret)s, updated_at = now()
        WHERE tenant_id = %(t)s AND id = %(id)s
        RETURNING previous_secret_expires_at
        """,
        {"t": tenant_id, "id": endpoint_id, "secret": secret, "hours": hours},
    )
    row = await cur.fetchone()
    return None if row is None else row["previous_secret_expires_at"]


async def test_delivery(
    *, conn: Conn, tenant_id: uuid.UUID, endpoint_id: uuid.UUID, data: dict[str, Any]
) -> None:
    """A ``webhook.test`` event, delivered to this endpoint only, and queued."""
    await conn.execute(
        """
        WITH event AS (
            INSERT INTO kalimera_webhook_events (tenant_id, type, data)
            VALUES (%(t)s, 'webhook.test', %(data)s) RETURNING id
        ), made AS (
            INSERT INTO kalimera_webhook_deliveries (tenant_id, id, endpoint_id, event_id, msg_id)
            SELECT %(t)s, d.id, %(e)s, event.id, 'msg_' || replace(d.id::text, '-', '')
              FROM event, LATERAL (SELECT gen_random_uuid() AS id) d
            RETURNING id, generation
        )
        INSERT INTO kalimera_webhook_outbox (tenant_id, delivery_id, generation)
        SELECT %(t)s, id, generation FROM made
        """,
        {"t": tenant_id, "e": endpoint_id, "data": Jsonb(data)},
    )


async def deliveries_page(
    *,
    conn: Conn,
    tenant_id: uuid.UUID,
    endpoint_id: uuid.UUID,
    status: str | None,
    limit: int,
    offset: int,
) -> Page:
    """Newest first."""
    return await fetch_page(
        conn,
        table=sql.SQL(
            "kalimera_webhook_deliveries d JOIN kalimera_webhook_events e"
            " ON e.tenant_id = d.tenant_id AND e.id = d.event_id"
        ),
        columns=DELIVERY_COLUMNS,
        where="d.tenant_id = %(t)s AND d.endpoint_id = %(e)s"
        " AND (%(status)s::text IS NULL OR d.status = %(status)s)",
        order_by="d.created_at DESC, d.id DESC",
        params={"t": tenant_id, "e": endpoint_id, "status": status},
        limit=limit,
        offset=offset,
    )


async def restart_delivery(
    *, conn: Conn, tenant_id: uuid.UUID, endpoint_id: uuid.UUID, delivery_id: uuid.UUID
) -> bool:
    """Make the delivery pending again, due now, with a fresh retry schedule, and queue it."""
    cur = await conn.execute(
        """
        WITH again AS (
            UPDATE kalimera_webhook_deliveries SET
                status = 'pending', tries = 0, generation = generation + 1,
                next_attempt_at = now(), claimed_until = NULL, updated_at = now()
            WHERE tenant_id = %(t)s AND endpoint_id = %(e)s AND id = %(d)s
            RETURNING id, generation
        )
        INSERT INTO kalimera_webhook_outbox (tenant_id, delivery_id, generation)
        SELECT %(t)s, id, generation FROM again
        """,
        {"t": tenant_id, "e": endpoint_id, "d": delivery_id},
    )
    return cur.rowcount > 0


async def replay(
    *, conn: Conn, tenant_id: uuid.UUID, endpoint_id: uuid.UUID, since: datetime
) -> int:
    """Every event since ``since`` of a type the endpoint takes sent to it again: a delivery
    it had restarts (its ``webhook-id`` kept), one it never had is made. How many were queued."""
    cur = await conn.execute(
        """
        WITH endpoint AS (
            SELECT id, events FROM kalimera_webhook_endpoints
             WHERE tenant_id = %(t)s AND id = %(e)s
        ), wanted AS (
            SELECT ev.id FROM kalimera_webhook_events ev, endpoint
             WHERE ev.tenant_id = %(t)s AND ev.created_at >= %(since)s
               AND (cardinality(endpoint.events) = 0 OR ev.type = ANY(endpoint.events)
                    OR EXISTS (SELECT 1 FROM kalimera_webhook_deliveries x
                                WHERE x.tenant_id = %(t)s AND x.endpoint_id = endpoint.id
                                  AND x.event_id = ev.id))
               AND (ev.type <> 'webhook.test'
                    OR EXISTS (SELECT 1 FROM kalimera_webhook_deliveries x
                                WHERE x.tenant_id = %(t)s AND x.endpoint_id = endpoint.id
                                  AND x.event_id = ev.id))
        ), made AS (
            INSERT INTO kalimera_webhook_deliveries AS d
                (tenant_id, id, endpoint_id, event_id, msg_id)
            SELECT %(t)s, n.id, %(e)s, wanted.id, 'msg_' || replace(n.id::text, '-', '')
              FROM wanted, LATERAL (SELECT gen_random_uuid() AS id) n
            ON CONFLICT (tenant_id, endpoint_id, event_id) DO UPDATE SET
                status = 'pending', tries = 0, generation = d.generation + 1,
                next_attempt_at = now(), claimed_until = NULL, updated_at = now()
            RETURNING d.id, d.generation
        )
        INSERT INTO kalimera_webhook_outbox (tenant_id, delivery_id, generation)
        SELECT %(t)s, id, generation FROM made
        """,
        {"t": tenant_id, "e": endpoint_id, "since": since},
    )
    return cur.rowcount


# ---- the worker's statements ------------------------------------------------------------------


async def claim(
    *, conn: Conn, tenant_id: uuid.UUID, delivery_id: uuid.UUID, generation: int, hold: float
) -> DictRow | None:
    """Take the delivery for one attempt (for ``hold`` seconds) with what the attempt needs:
    None unless it is pending, of this generation, and not held by another worker."""
    cur = await conn.execute(
        """
        UPDATE kalimera_webhook_deliveries d
        SET claimed_until = now() + make_interval(secs => %(hold)s)
        FROM kalimera_webhook_endpoints p, kalimera_webhook_events e
        WHERE d.tenant_id = %(t)s AND d.id = %(d)s AND d.generation = %(g)s
          AND d.status = 'pending' AND (d.claimed_until IS NULL OR d.claimed_until < now())
          AND p.tenant_id = d.tenant_id AND p.id = d.endpoint_id
          AND e.tenant_id = d.tenant_id AND e.id = d.event_id
        RETURNING d.id, d.msg_id, d.tries, d.endpoint_id, p.url, p.enabled, p.secret,
            CASE WHEN p.previous_secret_expires_at > now() THEN p.previous_secret END
                AS previous_secret,
            e.type, e.data, e.created_at
        """,
        {"t": tenant_id, "d": delivery_id, "g": generation, "hold": hold},
    )
    return await cur.fetchone()


async def held_elsewhere(
    *, conn: Conn, tenant_id: uuid.UUID, delivery_id: uuid.UUID, generation: int
) -> bool:
    """Whether another worker holds this very message's delivery (this one must wait)."""
    cur = await conn.execute(
        "SELECT 1 FROM kalimera_webhook_deliveries WHERE tenant_id = %(t)s AND id = %(d)s"
        " AND generation = %(g)s AND status = 'pending' AND claimed_until >= now()",
        {"t": tenant_id, "d": delivery_id, "g": generation},
    )
    return await cur.fetchone() is not None


async def record_attempt(
    *,
    conn: Conn,
    tenant_id: uuid.UUID,
    delivery_id: uuid.UUID,
    generation: int,
    attempt: dict[str, Any],
    status: str,
    retry_in: int | None,
) -> None:
    """The attempt in the log, and the delivery's new state; a retry queued ``retry_in``
    seconds ahead (its message waits in the queue, invisible, until then)."""
    await conn.execute(
        """
        WITH done AS (
            UPDATE kalimera_webhook_deliveries SET
                attempts = attempts || %(attempt)s, tries = tries + 1, status = %(status)s,
                generation = generation + (%(retry)s::int IS NOT NULL)::int,
                next_attempt_at = now() + make_interval(secs => coalesce(%(retry)s, 0)),
                claimed_until = NULL, updated_at = now()
            WHERE tenant_id = %(t)s AND id = %(d)s AND generation = %(g)s
            RETURNING id, generation
        )
        INSERT INTO kalimera_webhook_outbox (tenant_id, delivery_id, generation, delay_seconds)
        SELECT %(t)s, id, generation, %(retry)s FROM done WHERE %(retry)s::int IS NOT NULL
        """,
        {
            "t": tenant_id,
            "d": delivery_id,
            "g": generation,
            "attempt": Jsonb([attempt]),
            "status": status,
            "retry": retry_in,
        },
    )


async def endpoint_succeeded(*, conn: Conn, tenant_id: uuid.UUID, endpoint_id: uuid.UUID) -> None:
    await conn.execute(
        "UPDATE kalimera_webhook_endpoints SET failing_since = NULL"
        " WHERE tenant_id = %(t)s AND id = %(e)s AND failing_since IS NOT NULL",
        {"t": tenant_id, "e": endpoint_id},
    )


async def endpoint_failed(
    *,
    conn: Conn,
    tenant_id: uuid.UUID,
    endpoint_id: uuid.UUID,
    disable_after_days: int,
    gone: bool,
) -> str | None:
    """Note a failed attempt; disable the endpoint when it answered 410 or has failed for
    ``disable_after_days``. Why it was disabled now, or None."""
    cur = await conn.execute(
        """
        UPDATE kalimera_webhook_endpoints p SET
            failing_since = coalesce(p.failing_since, now()),
            enabled = p.enabled AND NOT verdict.disable,
            disabled_reason = CASE WHEN verdict.disable AND p.enabled THEN verdict.reason
                                   ELSE p.disabled_reason END,
            updated_at = CASE WHEN verdict.disable AND p.enabled THEN now() ELSE p.updated_at END
        FROM (SELECT %(gone)s OR coalesce(failing_since < now() - make_interval(
                         days => %(days)s), false) AS disable,
                     CASE WHEN %(gone)s THEN 'the receiver answered 410 Gone'
                          ELSE 'every delivery failed for ' || %(days)s || ' days' END AS reason
                FROM kalimera_webhook_endpoints
               WHERE tenant_id = %(t)s AND id = %(e)s) AS verdict
        WHERE p.tenant_id = %(t)s AND p.id = %(e)s
        RETURNING CASE WHEN verdict.disable THEN verdict.reason END AS disabled
        """,
        {"t": tenant_id, "e": endpoint_id, "days": disable_after_days, "gone": gone},
    )
    row = await cur.fetchone()
    return None if row is None else row["disabled"]


async def rescue_lost(*, conn: Conn, overdue_seconds: int, limit: int) -> int:
    """Queue again the pending deliveries overdue by ``overdue_seconds`` that nothing holds
    or queues (a message the queue gave up on: poisoned while Postgres was down). Their old
    message, should it still come, is of an older generation and dropped."""
    cur = await conn.execute(
        """
        WITH lost AS (
            UPDATE kalimera_webhook_deliveries d SET generation = generation + 1,
                updated_at = now()
            FROM (SELECT tenant_id, id FROM kalimera_webhook_deliveries x
                   WHERE x.status = 'pending'
                     AND x.next_attempt_at < now() - make_interval(secs => %(overdue)s)
                     AND (x.claimed_until IS NULL OR x.claimed_until < now())
                     AND NOT EXISTS (SELECT 1 FROM kalimera_webhook_outbox o
                                      WHERE o.tenant_id = x.tenant_id AND o.delivery_id = x.id)
                   ORDER BY x.next_attempt_at LIMIT %(limit)s
                   FOR UPDATE SKIP LOCKED) AS found
            WHERE d.tenant_id = found.tenant_id AND d.id = found.id
            RETURNING d.tenant_id, d.id, d.generation
        )
        INSERT INTO kalimera_webhook_outbox (tenant_id, delivery_id, generation)
        SELECT tenant_id, id, generation FROM lost
        """,
        {"overdue": overdue_seconds, "limit": limit},
    )
    return cur.rowcount
