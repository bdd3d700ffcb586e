"""Bounded retries for the errors the ingestion does not expect.

A known bad recording is a rejection at once, and a transient fault (Postgres, Table or Blob
storage unreachable) raises every time so that the host retries until the store is back. Any
other error is a bug or an input no check foresaw: retrying it forever would block nothing but
fill the logs and never tell the operator. So it raises (the host retries: the fault may have
been passing) until the same blob version has failed ``MAX_ATTEMPTS`` times, counted in
Postgres so that the count survives restarts and is shared by every instance; then it becomes a
rejection ``internal error: <ExceptionType>: <message>`` that ``kalimera ingest failures`` lists
and ``kalimera ingest replay`` re-runs (after a fix is deployed).
"""

from __future__ import annotations

import psycopg

from kalimera.db import Conn, DatabaseUnavailable

MAX_ATTEMPTS = 3
REASON_CHARS = 1000


def is_transient(exc: BaseException) -> bool:
    """Whether ``exc`` means a store was unreachable or slow, not that the blob is at fault."""
    from azure.core.exceptions import AzureError

    return isinstance(
        exc,
        DatabaseUnavailable
        | psycopg.OperationalError
        | AzureError
        | ConnectionError
        | TimeoutError,
    )


def reason(exc: BaseException) -> str:
    text = f"internal error: {type(exc).__name__}: {exc}"
    return text if len(text) <= REASON_CHARS else text[: REASON_CHARS - 1] + "…"


async def count_failure(*, conn: Conn, blob_name: str, etag: str, error: str) -> int:
    """Record one more failed attempt at this blob version; how many there have been."""
    cur = await conn.execute(
        """
        INSERT INTO kalimera_ingest_attempts AS a (blob_name, etag, attempts, last_error)
        VALUES (%(b)s, %(e)s, 1, %(err)s)
        ON CONFLICT (blob_name, etag) DO UPDATE SET
            attempts = a.attempts + 1, last_error = EXCLUDED.last_error, last_attempt_at = now()
        RETURNING attempts
        """,
        {"b": blob_name, "e": etag, "err": error},
    )
    row = await cur.fetchone()
    return 1 if row is None else int(row["attempts"])
