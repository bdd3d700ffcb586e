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


async def fetch_page(
    conn: Conn,
    *,
    table: LiteralString,
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
    condition = where if isinstance(where, sql.Composable) else sql.SQL(where)
    source = sql.SQL("FROM {} WHERE {}").format(sql.Identifier(table), condition)
    cur = await (cursor or conn.cursor()).execute(
        sql.SQL("SELECT {} {} ORDER BY {} LIMIT %(limit)s OFFSET %(offset)s").format(
            sql.SQL(columns), source, sql.SQL(order_by)
        ),
        {**params, "limit": limit, "offset": offset},
    )
    rows = await cur.fetchall()
    counted = await conn.execute(sql.SQL("SELECT count(*) AS total {}").format(source), params)
    total = await counted.fetchone()
    assert total is not None
    return Page(rows, int(total["total"]))
