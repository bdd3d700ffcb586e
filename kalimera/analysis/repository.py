"""SQL for analysis plans: one statement per intent, every one scoped by tenant. Never commits.

The agent is checked here, in SQL on ``kalimera_ai_agents`` (the analysis domain does not import
the agents domain): the table's foreign key makes a plan's agent exist, and these statements
tell an unknown agent (404) from an agent without a plan (the default plan).
"""

import uuid
from typing import Any

from psycopg.types.json import Jsonb

from kalimera.db import Conn
from kalimera.paging import Page, fetch_page

Row = dict[str, Any]


async def current(*, conn: Conn, tenant_id: uuid.UUID, agent_id: uuid.UUID) -> Row | None:
    """The agent's newest plan (``version``, ``plan``, ``created_at``: all null when it has
    none); None when the tenant has no such agent."""
    cur = await conn.execute(
        "SELECT p.version, p.plan, p.created_at FROM kalimera_ai_agents a"
        " LEFT JOIN LATERAL (SELECT version, plan, created_at FROM kalimera_analysis_plans"
        "   WHERE tenant_id = a.tenant_id AND agent_id = a.id ORDER BY version DESC LIMIT 1) p"
        " ON true"
        " WHERE a.tenant_id = %(tenant_id)s AND a.id = %(agent_id)s",
        {"tenant_id": tenant_id, "agent_id": agent_id},
    )
    return await cur.fetchone()


async def lock_agent(*, conn: Conn, tenant_id: uuid.UUID, agent_id: uuid.UUID) -> bool:
    """Lock the agent's row until the transaction ends, so that plan writes to one agent take
    turns (and a delete of the agent waits for them); False when the tenant has no such agent.

    ``FOR NO KEY UPDATE`` conflicts with itself, not with the foreign key's ``KEY SHARE``
    checks. It is its own statement so that, under READ COMMITTED, the next statement's
    snapshot already sees the plan the previous lock holder committed.
    """
    cur = await conn.execute(
        "SELECT 1 FROM kalimera_ai_agents WHERE tenant_id = %(tenant_id)s AND id = %(agent_id)s"
        " FOR NO KEY UPDATE",
        {"tenant_id": tenant_id, "agent_id": agent_id},
    )
    return await cur.fetchone() is not None


async def latest_version(*, conn: Conn, tenant_id: uuid.UUID, agent_id: uuid.UUID) -> int:
    """The agent's newest plan version; 0 without one."""
    cur = await conn.execute(
        "SELECT coalesce(max(version), 0) AS version FROM kalimera_analysis_plans"
        " WHERE tenant_id = %(tenant_id)s AND agent_id = %(agent_id)s",
        {"tenant_id": tenant_id, "agent_id": agent_id},
    )
    row = await cur.fetchone()
    assert row is not None
    return int(row["version"])


async def insert(
    *,
    conn: Conn,
    tenant_id: uuid.UUID,
    agent_id: uuid.UUID,
    version: int,
    plan: dict[str, Any],
) -> Row:
    """Store ``plan`` as ``version``; a version taken already raises ``UniqueViolation``."""
    cur = await conn.execute(
        "INSERT INTO kalimera_analysis_plans (tenant_id, agent_id, version, plan)"
        " VALUES (%(tenant_id)s, %(agent_id)s, %(version)s, %(plan)s)"
        " RETURNING version, plan, created_at",
        {"tenant_id": tenant_id, "agent_id": agent_id, "version": version, "plan": Jsonb(plan)},
    )
    row = await cur.fetchone()
    assert row is not None
    return row


async def agent_exists(*, conn: Conn, tenant_id: uuid.UUID, agent_id: uuid.UUID) -> bool:
    cur = await conn.execute(
        "SELECT 1 FROM kalimera_ai_agents WHERE tenant_id = %(tenant_id)s AND id = %(agent_id)s",
        {"tenant_id": tenant_id, "agent_id": agent_id},
    )
    return await cur.fetchone() is not None


async def list_page(
    *, conn: Conn, tenant_id: uuid.UUID, agent_id: uuid.UUID, limit: int, offset: int
) -> Page:
    """The agent's plan versions, newest first (the primary key, read backwards)."""
    return await fetch_page(
        conn,
        table="kalimera_analysis_plans",
        columns="version, plan, created_at",
        where="tenant_id = %(tenant_id)s AND agent_id = %(agent_id)s",
        order_by="version DESC",
        params={"tenant_id": tenant_id, "agent_id": agent_id},
        limit=limit,
        offset=offset,
    )
