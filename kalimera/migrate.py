"""Migrations: ordered SQL files in ``kalimera/migrations``, each applied once.

The whole run holds a session advisory lock, so two instances migrating at once take turns and
the second finds nothing left to do. Each file runs in its own transaction with its record in
``kalimera_schema_migrations``: a failed file leaves no trace and is retried next time.

Migrations run as the configured database user, the owner of every object (the app's pool acts
as the ``kalimera_app`` role instead, see ``kalimera.db``). The session is in the system scope,
so a data migration sees every tenant's rows where row-level security is forced on the owner.
"""

import logging
from importlib import resources

import psycopg

logger = logging.getLogger(__name__)

LOCK_KEY = 0x6B616C696D657261  # "kalimera"

# Migrations given a new number after they shipped (two files once shared ``0002``): the file's
# version now -> the version databases migrated before the rename recorded. The record is renamed
# before anything is applied, so such a database does not apply the file a second time.
RENUMBERED = {"0009_agents_mask_round_trip": "0002_agents_mask_round_trip"}


def migration_files() -> list[tuple[str, str]]:
    """(version, sql) for every migration, in order."""
    folder = resources.files("kalimera") / "migrations"
    files = sorted((f for f in folder.iterdir() if f.name.endswith(".sql")), key=lambda f: f.name)
    return [(f.name.removesuffix(".sql"), f.read_text(encoding="utf-8")) for f in files]


def migrate(conninfo: str) -> list[str]:
    """Apply every pending migration; returns the versions applied by this call."""
    applied: list[str] = []
    with psycopg.connect(conninfo, autocommit=True) as conn:
        conn.execute("SELECT pg_advisory_lock(%(key)s)", {"key": LOCK_KEY})
        conn.execute("SELECT set_config('kalimera.scope', 'system', false)")
        try:
            conn.execute(
                "CREATE TABLE IF NOT EXISTS kalimera_schema_migrations ("
                " version text PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())"
            )
            for version, old in RENUMBERED.items():
                conn.execute(
                    "UPDATE kalimera_schema_migrations SET version = %(version)s"
                    " WHERE version = %(old)s",
                    {"version": version, "old": old},
                )
            done = {
                row[0] for row in conn.execute("SELECT version FROM kalimera_schema_migrations")
            }
            for version, sql in migration_files():
                if version in done:
                    continue
                with conn.transaction():
                    conn.execute(sql.encode())
                    conn.execute(
                        "INSERT INTO kalimera_schema_migrations (version) VALUES (%(v)s)",
                        {"v": version},
                    )
                logger.info("applied migration %s", version)
                applied.append(version)
        finally:
            conn.execute("SELECT pg_advisory_unlock(%(key)s)", {"key": LOCK_KEY})
    return applied
