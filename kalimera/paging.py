"""One page of a listing and how many match: the one way every list endpoint pages.

The page and the total are two statements (a window ``count(*) OVER ()`` would count the whole
match for every row it returns, and return no total for a page past the end); each uses the
listing's index. Callers pass constant SQL fragments only; every value is a named parameter.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, LiteralString

from psycopg import AsyncCursor, sql
from psycopg.rows import DictRow

from kalimera.db import Conn


@dataclass(frozen=True, slots=True)
class Page:
    rows: list[DictRow]
    total: int


def contains(text: str | None) -> str | None:
    """The ILIKE pattern matching ``text`` anywhere, its ``%``, ``_`` and ``\\`` taken literally;
    None for no search (an empty or blank term)."""
    term = (text or "").strip()
    if not term:
        return None
    escaped = term.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def statements(
    *,
    table: LiteralString | sql.Composable,
    columns: LiteralString,
    where: sql.Composable | LiteralString,
    order_by: LiteralString,
) -> tuple[sql.Composed, sql.Composed]:
    """The page's statement (its bounds are ``%(limit)s`` and ``%(offset)s``) and the count's,
    as ``fetch_page`` runs them (and a test of their plans explains them). ``table`` is a table's
    name, or a ``FROM`` source of its own (a join)."""
    condition = where if isinstance(where, sql.Composable) else sql.SQL(where)
    source = table if isinstance(table, sql.Composable) else sql.Identifier(table)
    rows = sql.SQL("FROM {} WHERE {}").format(source, condition)
    page = sql.SQL("SELECT {} {} ORDER BY {} LIMIT %(limit)s OFFSET %(offset)s").format(
        sql.SQL(columns), rows, sql.SQL(order_by)
    )
    return page, sql.SQL("SELECT count(*) AS total {}").format(rows)


async def fetch_page(
    conn: Conn,
    *,
    table: LiteralString | sql.Composable,
    columns: LiteralString,
    where: sql.Composable | LiteralString,
    order_by: LiteralString,
    params: dict[str, Any],
    limit: int,
    offset: int,
    cursor: AsyncCursor[DictRow] | None = None,
) -> Page:
    """Rows ``offset``..``offset + limit`` of ``table`` matching ``where`` in ``order_by``, and the
    number matching. ``cursor`` is for a caller that reads values its own way (agents' JSON)."""
    page, count = statements(table=table, columns=columns, where=where, order_by=order_by)
    cur = await (cursor or conn.cursor()).execute(
        page, {**params, "limit": limit, "offset": offset}
    )
    rows = await cur.fetchall()
    counted = await conn.execute(count, params)
    total = await counted.fetchone()
    assert total is not None
    return Page(rows, int(total["total"]))
