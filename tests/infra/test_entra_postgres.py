"""Postgres with an Entra access token as the password, through the app's pool.

A private Postgres (started for this module) requires scram-sha-256 for one role whose password
is the token the fake Entra issues, so a login succeeds only with that exact token, the way Azure
Database for PostgreSQL checks the real one."""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo
from psycopg_pool import PoolTimeout

from kalimera.db import create_pool
from kalimera.dev.localstack import LocalStack
from kalimera.entra import POSTGRES_SCOPE, REFRESH_MARGIN_SECONDS, postgres_password
from tests.infra.fake_entra import FakeEntra, jwt

ROLE = "kalimera_entra_app"
# Fixed for the run, so each token (and so the role's password) is known in advance.
EPOCH = int(time.time())


@pytest.fixture(scope="module")
def scram_server() -> Iterator[str]:
    """A private server (port 1 never answers, so LocalStack starts one) where ROLE must log in
    with a password; returns the URL of ROLE (without a password)."""
    # Not under pytest's 0700 temp folders: initdb runs as the postgres user when we are root.
    root = Path(tempfile.mkdtemp(prefix="kalimera-pg-entra-"))
    root.chmod(0o755)
    if os.geteuid() == 0:
        shutil.chown(root, "postgres")  # pg_ctl writes its log here as that user
    with contextlib.ExitStack() as cleanup:
        cleanup.callback(shutil.rmtree, root, ignore_errors=True)
        local = cleanup.enter_context(LocalStack(root))
        admin = local.postgres("postgresql://postgres@127.0.0.1:1/postgres")
        hba = Path(root / "postgres" / "pg_hba.conf")
        hba.write_text(f"host all {ROLE} 127.0.0.1/32 scram-sha-256\n" + hba.read_text())
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute("SELECT pg_reload_conf()")
            conn.execute(sql.SQL("CREATE ROLE {} LOGIN").format(sql.Identifier(ROLE)))
        params = conninfo_to_dict(admin)
        params["user"] = ROLE
        yield make_conninfo(**params)  # type: ignore[arg-type]


def set_role_password(url: str, password: str) -> None:
    params = conninfo_to_dict(url)
    params["user"] = "postgres"
    with psycopg.connect(make_conninfo(**params), autocommit=True) as conn:  # type: ignore[arg-type]
        conn.execute(
            sql.SQL("ALTER ROLE {} PASSWORD {}").format(sql.Identifier(ROLE), sql.Literal(password))
        )


async def open_connections(
    url: str, entra: FakeEntra, count: int, *, wait_seconds: float = 10
) -> list[str]:
    """Open a pool of ``count`` connections with the Entra password; each one's current_user."""
    pool = create_pool(
        url,
        min_size=count,
        max_size=count,
        timeout=5,
        statement_timeout_ms=1000,
        password=postgres_password(entra),
    )
    await pool.open(wait=True, timeout=wait_seconds)
    try:
        users = []
        async with asyncio.TaskGroup() as group:
            for _ in range(count):
                group.create_task(_whoami(pool, users))
        return users
    finally:
        await pool.close()


async def _whoami(pool, users: list[str]) -> None:  # type: ignore[no-untyped-def]
    async with pool.connection() as conn:
        users.append((await (await conn.execute("SELECT current_user AS u")).fetchone())["u"])
        await asyncio.sleep(0.05)  # hold it, so the others need their own connections


def test_the_pool_logs_in_with_the_entra_token_and_reuses_a_fresh_one(scram_server: str) -> None:
    entra = FakeEntra(epoch=EPOCH)
    set_role_password(scram_server, jwt(POSTGRES_SCOPE, expires_on=EPOCH + 3600))
    users = asyncio.run(open_connections(scram_server, entra, count=3))
    assert users == [ROLE] * 3
    # One token for all three connections: it had an hour to live.
    assert entra.requests == [POSTGRES_SCOPE]


def test_a_token_near_expiry_is_replaced_on_every_new_connection(scram_server: str) -> None:
    lifetime = REFRESH_MARGIN_SECONDS - 60  # inside the refresh margin from the start
    entra = FakeEntra(epoch=EPOCH, lifetime=lifetime)
    set_role_password(scram_server, jwt(POSTGRES_SCOPE, expires_on=EPOCH + lifetime))
    asyncio.run(open_connections(scram_server, entra, count=3))
    assert entra.requests == [POSTGRES_SCOPE] * 3


def test_a_login_with_another_token_is_refused(scram_server: str) -> None:
    set_role_password(scram_server, "not-the-token")
    entra = FakeEntra(epoch=EPOCH)
    with pytest.raises(PoolTimeout):
        asyncio.run(open_connections(scram_server, entra, count=1, wait_seconds=1.5))
    token = jwt(POSTGRES_SCOPE, expires_on=EPOCH + 3600)
    with pytest.raises(psycopg.OperationalError, match="password authentication failed"):
        psycopg.connect(scram_server, password=token, connect_timeout=3).close()
