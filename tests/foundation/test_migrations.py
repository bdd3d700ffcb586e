import secrets
from concurrent.futures import ThreadPoolExecutor

import psycopg

from kalimera.localstack import drop_database, ensure_database
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
