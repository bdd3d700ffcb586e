import secrets
from concurrent.futures import ThreadPoolExecutor

import psycopg
import pytest
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from kalimera.dev.localstack import drop_database, ensure_database
from kalimera.migrate import migrate, migration_files
from tests.conftest import _with_db


def test_migrating_twice_applies_each_migration_once(database_url: str) -> None:
    assert migrate(database_url) == []
    with psycopg.connect(database_url) as conn:
        versions = [
            r[0] for r in conn.execute("SELECT version FROM kalimera_schema_migrations ORDER BY 1")
        ]
    assert versions == [v for v, _ in migration_files()]


def test_concurrent_migrations_take_turns(database_url: str) -> None:
    url = _with_db(database_url, f"kalimera_migrate_{secrets.token_hex(4)}")
    ensure_database(url)
    try:
        with ThreadPoolExecutor(4) as pool:
            results = list(pool.map(lambda _: migrate(url), range(4)))
        applied = [v for result in results for v in result]
        assert sorted(applied) == [v for v, _ in migration_files()]
        with psycopg.connect(url) as conn:
            count = conn.execute("SELECT count(*) FROM kalimera_schema_migrations").fetchone()
        assert count is not None
        assert count[0] == len(migration_files())
    finally:
        drop_database(url)


def test_an_owner_that_is_no_superuser_migrates_and_the_policies_hold_it_too(
    database_url: str,
) -> None:
    """As on Azure, where the migrating user is not a superuser: it owns what it creates, may
    switch to the app's role afterwards (the migration grants it), and FORCE holds it to the
    policies like the app (a superuser alone bypasses them)."""
    owner = f"kalimera_owner_{secrets.token_hex(4)}"
    params = conninfo_to_dict(_with_db(database_url, f"kalimera_owned_{secrets.token_hex(4)}"))
    with psycopg.connect(database_url, autocommit=True) as admin:
        admin.execute(sql.SQL("CREATE ROLE {} LOGIN CREATEROLE").format(sql.Identifier(owner)))
        admin.execute(
            sql.SQL("CREATE DATABASE {} OWNER {}").format(
                sql.Identifier(str(params["dbname"])), sql.Identifier(owner)
            )
        )
    url = make_conninfo(**{**params, "user": owner})  # type: ignore[arg-type]
    tenant = "00000000-0000-4000-8000-000000000001"
    insert = (
        "INSERT INTO kalimera_contacts (tenant_id, first_name, last_name) VALUES (%(t)s, 'A', 'B')"
    )
    try:
        assert migrate(url) == [v for v, _ in migration_files()]
        with psycopg.connect(url, autocommit=True) as conn:
            with pytest.raises(psycopg.errors.InsufficientPrivilege, match="row-level security"):
                conn.execute(insert, {"t": tenant})
            with conn.transaction():
                conn.execute("SET LOCAL kalimera.scope = 'system'")
                conn.execute(insert, {"t": tenant})
            seen = conn.execute("SELECT count(*) FROM kalimera_contacts").fetchone()
            owners = conn.execute(
                "SELECT DISTINCT pg_get_userbyid(relowner) FROM pg_class"
                " WHERE relnamespace = 'public'::regnamespace"
            ).fetchall()
            conn.execute("SET ROLE kalimera_app")
            role = conn.execute("SELECT current_user").fetchone()
        assert seen == (0,)  # the row is there, but this session acts for no tenant
        assert owners == [(owner,)]
        assert role == ("kalimera_app",)
    finally:
        drop_database(url)
        with psycopg.connect(database_url, autocommit=True) as admin:
            admin.execute(sql.SQL("DROP ROLE {}").format(sql.Identifier(owner)))
