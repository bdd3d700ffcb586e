"""Behind PgBouncer in transaction mode the app leaves nothing on a server connection.

Azure's built-in PgBouncer (port 6432) runs each transaction on whichever server connection is
free, so whatever a transaction leaves on its session (a setting, the role, a prepared statement,
an advisory lock, a temporary table, a LISTEN, an open cursor) meets the next client's
transaction, another tenant's request perhaps. The whole API suite already runs through such a
PgBouncer (tests/conftest.py); here it has a single server connection, so every request of two
tenants runs on the same backend, and a plain client after them reads back what is left on it.
"""

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
from psycopg.rows import dict_row

from kalimera.dev.localstack import LocalStack
from tests.conftest import Server, make_token
from tests.support.settings import settings_with

CONTACTS = "/kalimera/contact"

# What a session can carry from one transaction to the next; the backend's pid says which
# server connection answered.
SESSION_STATE = """
SELECT pg_backend_pid() AS pid, current_user AS role,
       coalesce(current_setting('kalimera.tenant_id', true), '') AS tenant,
       coalesce(current_setting('kalimera.scope', true), '') AS scope,
       current_setting('statement_timeout') AS statement_timeout,
       (SELECT count(*) FROM pg_prepared_statements) AS prepared,
       (SELECT count(*) FROM pg_locks
         WHERE locktype = 'advisory' AND pid = pg_backend_pid()) AS advisory_locks,
       (SELECT count(*) FROM pg_cursors) AS cursors,
       (SELECT count(*) FROM pg_listening_channels()) AS listening,
       (SELECT count(*) FROM pg_class WHERE relnamespace = pg_my_temp_schema()) AS temp_tables
"""


@pytest.fixture
def one_server_connection(database_url: str, tmp_path: Path) -> Iterator[str]:
    """The run's database through a PgBouncer of its own with one server connection."""
    with LocalStack(tmp_path) as stack:
        yield stack.pgbouncer(database_url, pool_size=1)


def session_state(url: str) -> dict[str, Any]:
    """The session state of the server connection a new client of ``url`` gets."""
    with psycopg.connect(url, autocommit=True, row_factory=dict_row) as conn:
        state = conn.execute(SESSION_STATE).fetchone()
    assert state is not None
    return state


@pytest.mark.parametrize(
    "leak",
    [
        "SELECT set_config('kalimera.tenant_id', gen_random_uuid()::text, false)",
        "SET ROLE kalimera_app",
        "SET statement_timeout = 1234",
        "PREPARE leaked AS SELECT 1",
        "SELECT pg_advisory_lock(42)",
        "DECLARE leaked CURSOR WITH HOLD FOR SELECT 1",
        "LISTEN leaked",
        "CREATE TEMP TABLE leaked (x int)",
    ],
)
def test_session_state_left_by_one_client_reaches_the_next_one(
    one_server_connection: str, leak: str
) -> None:
    """The check below would catch a leak: PgBouncer resets nothing between transactions."""
    before = session_state(one_server_connection)
    with psycopg.connect(one_server_connection, autocommit=True) as leaky:
        leaky.execute(leak)
    after = session_state(one_server_connection)
    assert after["pid"] == before["pid"]
    assert after != before


def test_two_tenants_requests_on_one_server_connection_leave_it_as_it_was(
    settings_env: dict[str, str], one_server_connection: str
) -> None:
    before = session_state(one_server_connection)
    # One client connection too: the same statements run on it again and again, as on a busy
    # instance, which is when psycopg would prepare them.
    settings = settings_with(
        settings_env, DATABASE_URL=one_server_connection, KALIMERA_DB_POOL_MAX="1"
    )
    server = Server(settings)
    server.start()
    try:
        a, b = (
            httpx.Client(
                base_url=server.url,
                timeout=30,
                headers={"Authorization": f"Bearer {make_token(settings, uuid.uuid4())}"},
            )
            for _ in range(2)
        )
        with a, b:
            # A's contact, written and imported (the import takes a transaction's advisory
            # lock); B, on the same server connection next, sees none of it; A sees its own.
            person = {"first_name": "Zoe", "last_name": "Alpha", "contact_no": "+302101234567"}
            assert a.post(CONTACTS, json=person).status_code == 201
            csv = b"first_name,last_name,contact_no\nYann,Beta,+302109999999\n"
            imported = a.post(
                f"{CONTACTS}/import", content=csv, headers={"Content-Type": "text/csv"}
            )
            assert imported.json() == {"created": 1, "errors": []}
            for _ in range(6):  # past psycopg's prepare threshold (5): nothing is prepared
                assert b.get(CONTACTS).json()["total"] == 0
                assert a.get(CONTACTS).json()["total"] == 2
            assert b.post(CONTACTS, json=person).status_code == 201
            assert b.get(CONTACTS).json()["total"] == 1
    finally:
        server.stop()
    assert session_state(one_server_connection) == before
