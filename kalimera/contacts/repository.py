"""SQL for contacts. Every statement is scoped by ``tenant_id``; nothing here commits."""

import uuid
from collections.abc import Sequence
from typing import Any

from psycopg import sql
from psycopg.rows import DictRow

from kalimera.db import Conn
from kalimera.paging import Page, fetch_page

COLUMNS = (
    "id, first_name, last_name, contact_no, email, start_datetime, end_datetime, language, "
    "voice, status, created_at, updated_at, version"
)
# The fields a client writes, in table order; the only names ever composed into SQL.
FIELDS = (
    "first_name",
    "last_name",
    "contact_no",
    "email",
    "start_datetime",
    "end_datetime",
    "language",
    "voice",
    "status",
)
# Must stay the expression of kalimera_contacts_search_idx, or the index is not used.
SEARCH_TEXT = (
    "(first_name || ' ' || last_name || ' ' || coalesce(contact_no, '') || ' ' "
    "|| coalesce(email, ''))"
)
# The constraints whose violations the service turns into client errors.
PHONE_TAKEN = "kalimera_contacts_contact_no_key"
END_BEFORE_START = "kalimera_contacts_end_after_start"


async def insert(*, conn: Conn, tenant_id: uuid.UUID, fields: dict[str, Any]) -> DictRow:
    cur = await conn.execute(
        "INSERT INTO kalimera_contacts (tenant_id, first_name, last_name, contact_no, email,"  # noqa: S608 - fixed column names
        " start_datetime, end_datetime, language, voice, status)"
        " VALUES (%(tenant_id)s, %(first_name)s, %(last_name)s, %(contact_no)s, %(email)s,"
        " %(start_datetime)s, %(end_datetime)s, %(language)s, %(voice)s, %(status)s)"
        f" RETURNING {COLUMNS}",
        {"tenant_id": tenant_id, **{f: fields[f] for f in FIELDS}},
    )
    row = await cur.fetchone()
    assert row is not None
    return row


async def get(*, conn: Conn, tenant_id: uuid.UUID, contact_id: int) -> DictRow | None:
    cur = await conn.execute(
        f"SELECT {COLUMNS} FROM kalimera_contacts"  # noqa: S608 - fixed names
        " WHERE tenant_id = %(tenant_id)s AND id = %(id)s",
        {"tenant_id": tenant_id, "id": contact_id},
    )
    return await cur.fetchone()


async def update(
    *,
    conn: Conn,
    tenant_id: uuid.UUID,
    contact_id: int,
    changes: dict[str, Any],
    version: int | None = None,
) -> DictRow | None:
    """Set the given fields (names from ``FIELDS`` only) and count a version; None when the
    contact is not there, or not at ``version`` when one is given."""
    assert changes
    assert set(changes) <= set(FIELDS)
    assignments = sql.SQL(", ").join(
        sql.SQL("{} = {}").format(sql.Identifier(name), sql.Placeholder(name)) for name in changes
    )
    query = sql.SQL(
        "UPDATE kalimera_contacts SET {assignments}, version = version + 1"
        " WHERE tenant_id = %(tenant_id)s AND id = %(id)s"
        " AND (%(version)s::int IS NULL OR version = %(version)s) RETURNING {columns}"
    ).format(assignments=assignments, columns=sql.SQL(COLUMNS))
    cur = await conn.execute(
        query, {**changes, "tenant_id": tenant_id, "id": contact_id, "version": version}
    )
    return await cur.fetchone()


async def delete(
    *, conn: Conn, tenant_id: uuid.UUID, contact_id: int, version: int | None = None
) -> bool:
    """False when the contact is not there, or not at ``version`` when one is given."""
    cur = await conn.execute(
        "DELETE FROM kalimera_contacts WHERE tenant_id = %(tenant_id)s AND id = %(id)s"
        " AND (%(version)s::int IS NULL OR version = %(version)s)",
        {"tenant_id": tenant_id, "id": contact_id, "version": version},
    )
    return cur.rowcount == 1


async def erase_calls(
    *, conn: Conn, tenant_id: uuid.UUID, contact_id: int, token_id: uuid.UUID | None
) -> int:
    """Erase the contact's conversations (``contact_id``, migration 0022) by the one erasure
    of migration 0024, which logs it (reason 'contact') and leaves their recordings and history
    to the conversations' sweeper. How many went."""
    cur = await conn.execute(
        "SELECT conversations FROM kalimera_erase_conversations(%(tenant_id)s,"
        " ARRAY(SELECT id FROM kalimera_conversations"
        "       WHERE tenant_id = %(tenant_id)s AND contact_id = %(id)s),"
        " 'contact', %(token)s)",
        {"tenant_id": tenant_id, "id": contact_id, "token": token_id},
    )
    row = await cur.fetchone()
    assert row is not None
    return int(row["conversations"])


async def link_calls(
    *, conn: Conn, tenant_id: uuid.UUID, contact_ids: Sequence[int], numbers: Sequence[str]
) -> int:
    """Link the tenant's calls to these contacts by their numbers (E.164), and let go of the
    calls of numbers they no longer hold (migration 0025), in one statement however many
    contacts. How many calls changed."""
    cur = await conn.execute(
        "SELECT kalimera_link_contacts(%(tenant_id)s, %(ids)s::bigint[], %(numbers)s::text[])"
        " AS changed",
        {"tenant_id": tenant_id, "ids": list(contact_ids), "numbers": list(numbers)},
    )
    row = await cur.fetchone()
    assert row is not None
    return int(row["changed"])


async def page(
    *,
    conn: Conn,
    tenant_id: uuid.UUID,
    pattern: str | None,
    status: str | None,
    limit: int,
    offset: int,
) -> Page:
    """One page newest first, and the total matching. ``pattern`` is an ILIKE pattern."""
    conditions = [sql.SQL("tenant_id = %(tenant_id)s")]
    if status is not None:
        conditions.append(sql.SQL("status = %(status)s"))
    if pattern is not None:
        conditions.append(sql.SQL(SEARCH_TEXT + " ILIKE %(pattern)s"))
    return await fetch_page(
        conn,
        table="kalimera_contacts",
        columns=COLUMNS,
        where=sql.SQL(" AND ").join(conditions),
        order_by="id DESC",
        params={"tenant_id": tenant_id, "status": status, "pattern": pattern},
        limit=limit,
        offset=offset,
    )


async def lock_imports(*, conn: Conn, tenant_id: uuid.UUID) -> None:
    """Serialise imports per tenant until the transaction ends, so two imports of the same file
    at once cannot both insert a contact that has no phone number."""
    await conn.execute(
        "SELECT pg_advisory_xact_lock(hashtext('kalimera_contacts_import'),"
        " hashtext(%(tenant_id)s::text))",
        {"tenant_id": tenant_id},
    )


async def insert_many(
    *, conn: Conn, tenant_id: uuid.UUID, rows: Sequence[dict[str, Any]]
) -> list[DictRow]:
    """Insert the rows in one statement, skipping any whose phone number is already stored and,
    for rows without one, any whose names and email match a stored contact without one.

    Returns the id, phone number, names and email of every row inserted, so the caller can
    tell which rows were skipped and link the new contacts' calls.
    """
    columns = {f: [row[f] for row in rows] for f in FIELDS}
    cur = await conn.execute(
        """
        INSERT INTO kalimera_contacts (tenant_id, first_name, last_name, contact_no, email,
            start_datetime, end_datetime, language, voice, status)
        SELECT %(tenant_id)s, r.first_name, r.last_name, r.contact_no, r.email,
            r.start_datetime, r.end_datetime, r.language, r.voice, r.status
        FROM unnest(%(first_name)s::text[], %(last_name)s::text[], %(contact_no)s::text[],
            %(email)s::text[], %(start_datetime)s::timestamptz[], %(end_datetime)s::timestamptz[],
            %(language)s::text[], %(voice)s::text[], %(status)s::text[])
            AS r(first_name, last_name, contact_no, email, start_datetime, end_datetime,
                language, voice, status)
        WHERE r.contact_no IS NOT NULL OR NOT EXISTS (
            SELECT 1 FROM kalimera_contacts c
            WHERE c.tenant_id = %(tenant_id)s AND c.contact_no IS NULL
                AND lower(c.first_name) = lower(r.first_name)
                AND lower(c.last_name) = lower(r.last_name)
                AND lower(coalesce(c.email, '')) = lower(coalesce(r.email, ''))
        )
        ON CONFLICT (tenant_id, contact_no) DO NOTHING
        RETURNING id, contact_no, first_name, last_name, email
        """,
        {"tenant_id": tenant_id, **columns},
    )
    return await cur.fetchall()
