"""The SQL of a tenant's own view of its tokens. Making and revoking a token is ``kalimera.auth``'s
(the CLI does it too); row-level security keeps every statement here inside the tenant."""

import uuid
from typing import Any

from kalimera.auth import LISTED_COLUMNS
from kalimera.db import Conn
from kalimera.paging import Page, fetch_page


async def page(*, conn: Conn, tenant_id: uuid.UUID, limit: int, offset: int) -> Page:
    """Newest first, revoked and expired ones included (an administrator's history)."""
    return await fetch_page(
        conn,
        table="kalimera_api_tokens",
        columns=LISTED_COLUMNS,
        where="tenant_id = %(tenant_id)s",
        order_by="created_at DESC, id DESC",
        params={"tenant_id": tenant_id},
        limit=limit,
        offset=offset,
    )


async def get(*, conn: Conn, tenant_id: uuid.UUID, token_id: uuid.UUID) -> dict[str, Any] | None:
    cur = await conn.execute(
        f"SELECT {LISTED_COLUMNS} FROM kalimera_api_tokens"  # noqa: S608 - fixed names
        " WHERE tenant_id = %(tenant_id)s AND id = %(id)s",
        {"tenant_id": tenant_id, "id": token_id},
    )
    row: dict[str, Any] | None = await cur.fetchone()
    return row
