"""SQL for agents: one statement per intent, every one scoped by tenant. Never commits."""

import json
import uuid
from typing import Any

from psycopg import AsyncCursor
from psycopg.rows import DictRow
from psycopg.types.json import Jsonb, set_json_loads

from kalimera.agents.models import INT64
from kalimera.db import Conn
from kalimera.paging import Page, contains, fetch_page

COLUMNS = (
    "id, name, description, avatar, profile_type, configuration, version, created_at, updated_at"
)

Row = dict[str, Any]


def _number(text: str) -> int | float:
    # Postgres prints a jsonb number without an exponent (1e300 comes back as 301 digits);
    # keep what does not fit in 64 bits a float, as it was sent, so it can be served again.
    value = int(text)
    return value if -INT64 <= value < INT64 else float(text)


def _loads(data: str | bytes) -> Any:
    return json.loads(data, parse_int=_number)


def _cursor(conn: Conn) -> AsyncCursor[DictRow]:
    """A cursor whose jsonb values are read by ``_loads``."""
    cur = conn.cursor()
    set_json_loads(_loads, cur)
    return cur


# Queries below splice in COLUMNS and _SEARCHED/`where`: constant SQL fragments, never values
# (hence the S608 waivers); every value is a named parameter.


async def insert(
    *,
    conn: Conn,
    tenant_id: uuid.UUID,
    agent_id: uuid.UUID,
    columns: dict[str, Any],
    configuration: dict[str, Any],
) -> Row:
    cur = await _cursor(conn).execute(
        "INSERT INTO kalimera_ai_agents"  # noqa: S608
        " (tenant_id, id, name, description, avatar, profile_type, configuration)"
        " VALUES (%(tenant_id)s, %(id)s, %(name)s, %(description)s, %(avatar)s, %(profile_type)s,"
        " kalimera_keep_masked(%(configuration)s, '{}'::jsonb))"
        f" RETURNING {COLUMNS}",
        {"tenant_id": tenant_id, "id": agent_id, "configuration": Jsonb(configuration), **columns},
    )
    row = await cur.fetchone()
    assert row is not None
    return row


async def get(*, conn: Conn, tenant_id: uuid.UUID, agent_id: uuid.UUID) -> Row | None:
    cur = await _cursor(conn).execute(
        f"SELECT {COLUMNS} FROM kalimera_ai_agents"  # noqa: S608
        " WHERE tenant_id = %(tenant_id)s AND id = %(id)s",
        {"tenant_id": tenant_id, "id": agent_id},
    )
    return await cur.fetchone()


# The expression the trigram index covers; the search must use it as written to use the index.
_SEARCHED = "(name || ' ' || coalesce(description, '') || ' ' || profile_type)"


async def page(
    *, conn: Conn, tenant_id: uuid.UUID, search: str | None, limit: int, offset: int
) -> Page:
    """One page, newest first, and the total matching; ``search`` is a case-insensitive
    substring of name, description or profile type."""
    return await fetch_page(
        conn,
        table="kalimera_ai_agents",
        columns=COLUMNS,
        where="tenant_id = %(tenant_id)s"
        f" AND (%(pattern)s::text IS NULL OR {_SEARCHED} ILIKE %(pattern)s::text)",
        order_by="created_at DESC, id",
        params={"tenant_id": tenant_id, "pattern": contains(search)},
        limit=limit,
        offset=offset,
        cursor=_cursor(conn),
    )


async def update(
    *,
    conn: Conn,
    tenant_id: uuid.UUID,
    agent_id: uuid.UUID,
    columns: dict[str, Any],
    sections: dict[str, Any],
    version: int | None = None,
) -> Row | None:
    """Change the given columns and replace the given sections, in one statement.

    The new configuration is computed from the row as locked by this UPDATE (Postgres
    re-reads a row a concurrent transaction changed), so writers of different sections never
    lose each other's work; a ``"********"`` in a section keeps the value stored at its path.
    None when no such agent, or ``version`` is given and is not the stored one.
    """
    params: dict[str, Any] = {
        "tenant_id": tenant_id,
        "id": agent_id,
        "version": version,
        "sections": Jsonb(sections),
    }
    for column in ("name", "description", "avatar", "profile_type"):
        params[f"set_{column}"] = column in columns
        params[column] = columns.get(column)
    cur = await _cursor(conn).execute(
        "UPDATE kalimera_ai_agents SET"  # noqa: S608
        " name = CASE WHEN %(set_name)s THEN %(name)s ELSE name END,"
        " description = CASE WHEN %(set_description)s THEN %(description)s ELSE description END,"
        " avatar = CASE WHEN %(set_avatar)s THEN %(avatar)s ELSE avatar END,"
        " profile_type ="
        "  CASE WHEN %(set_profile_type)s THEN %(profile_type)s ELSE profile_type END,"
        " configuration = configuration || kalimera_keep_masked(%(sections)s, configuration)"
        " WHERE tenant_id = %(tenant_id)s AND id = %(id)s"
        " AND (%(version)s::bigint IS NULL OR version = %(version)s::bigint)"
        f" RETURNING {COLUMNS}",
        params,
    )
    return await cur.fetchone()


async def exists(*, conn: Conn, tenant_id: uuid.UUID, agent_id: uuid.UUID) -> bool:
    cur = await conn.execute(
        "SELECT 1 FROM kalimera_ai_agents WHERE tenant_id = %(tenant_id)s AND id = %(id)s",
        {"tenant_id": tenant_id, "id": agent_id},
    )
    return await cur.fetchone() is not None


async def delete(*, conn: Conn, tenant_id: uuid.UUID, agent_id: uuid.UUID) -> bool:
    cur = await conn.execute(
        "DELETE FROM kalimera_ai_agents WHERE tenant_id = %(tenant_id)s AND id = %(id)s",
        {"tenant_id": tenant_id, "id": agent_id},
    )
    return cur.rowcount == 1


async def keys_after(
    *, conn: Conn, after: tuple[uuid.UUID, uuid.UUID] | None, limit: int
) -> list[tuple[uuid.UUID, uuid.UUID]]:
    """(tenant_id, id) of every agent of every tenant, in key order, for batch jobs."""
    cur = await conn.execute(
        "SELECT tenant_id, id FROM kalimera_ai_agents"
        " WHERE %(after_tenant)s::uuid IS NULL"
        " OR (tenant_id, id) > (%(after_tenant)s, %(after_id)s)"
        " ORDER BY tenant_id, id LIMIT %(limit)s",
        {
            "after_tenant": after[0] if after else None,
            "after_id": after[1] if after else None,
            "limit": limit,
        },
    )
    return [(row["tenant_id"], row["id"]) for row in await cur.fetchall()]


async def lock_configuration(
    *, conn: Conn, tenant_id: uuid.UUID, agent_id: uuid.UUID
) -> dict[str, Any] | None:
    """The stored configuration, locked until the transaction ends."""
    cur = await _cursor(conn).execute(
        "SELECT configuration FROM kalimera_ai_agents"
        " WHERE tenant_id = %(tenant_id)s AND id = %(id)s FOR UPDATE",
        {"tenant_id": tenant_id, "id": agent_id},
    )
    row = await cur.fetchone()
    return None if row is None else row["configuration"]


async def set_configuration(
    *, conn: Conn, tenant_id: uuid.UUID, agent_id: uuid.UUID, configuration: dict[str, Any]
) -> None:
    await conn.execute(
        "UPDATE kalimera_ai_agents SET configuration = %(configuration)s"
        " WHERE tenant_id = %(tenant_id)s AND id = %(id)s",
        {"tenant_id": tenant_id, "id": agent_id, "configuration": Jsonb(configuration)},
    )
