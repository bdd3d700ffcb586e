import secrets
from concurrent.futures import ThreadPoolExecutor

import psycopg
import pytest
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from kalimera import migrate as migrate_module
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


def test_no_two_migrations_share_a_number() -> None:
    numbers = [version.split("_", 1)[0] for version, _ in migration_files()]
    assert len(set(numbers)) == len(numbers), numbers


def test_a_database_migrated_before_a_renumbering_does_not_apply_that_migration_again(
    database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = _with_db(database_url, f"kalimera_renumbered_{secrets.token_hex(4)}")
    ensure_database(url)
    current = migration_files()
    # The files as they were named before the renumbering: same SQL, old versions, old order.
    shipped = {"0009_agents_mask_round_trip": "0002_agents_mask_round_trip"}
    before = sorted((shipped.get(version, version), sql) for version, sql in current)
    try:
        with monkeypatch.context() as m:
            m.setattr(migrate_module, "migration_files", lambda: before)
            m.setattr(migrate_module, "RENUMBERED", {})
            assert migrate(url) == [version for version, _ in before]
        # Applying the renumbered file again would fail (its constraint exists): it must not run.
        assert migrate(url) == []
        with psycopg.connect(url) as conn:
            recorded = [
                r[0] for r in conn.execute("SELECT version FROM kalimera_schema_migrations")
            ]
        assert sorted(recorded) == [version for version, _ in current]
    finally:
        drop_database(url)


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
