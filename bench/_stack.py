"""A throwaway stack for benchmarks: its own database, Redis db, Azurite and server processes."""

from __future__ import annotations

import asyncio
import base64
import os
import secrets
import signal
import subprocess
import tempfile
import uuid
from pathlib import Path
from types import TracebackType

import psycopg

from kalimera.auth import DEFAULT_SCOPES, Scope, issue_token
from kalimera.dev.localstack import (
    LocalStack,
    drop_database,
    ensure_database,
    free_port,
    start_uvicorn,
)
from kalimera.migrate import migrate
from kalimera.services import Services
from kalimera.settings import Settings, load_settings
from kalimera.storage import ensure_containers

ADMIN_URL = os.environ.get(
    "KALIMERA_BENCH_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)


def settle(database_url: str) -> None:
    """Wait until a copied database is on disk. ``CREATE DATABASE … TEMPLATE`` writes the whole
    template (15 GB for the 10M seed) through the WAL and the page cache, whose checkpoints and
    writeback then stalled the first statements timed on the copy: a finalise of 1,000 idle
    conversations that takes 2.5 s on a cold cache ran past the 15 s statement timeout."""
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("CHECKPOINT")
    os.sync()


class BenchStack:
    """The product as a user runs it: its processes get the stack's addresses and secrets and
    otherwise the product's default settings (``process_env``)."""

    def __init__(self, *, keep: bool = False, template: str | None = None) -> None:
        """``template``: the database starts as a copy of that one (on the same server)."""
        self.keep = keep
        self.tmp = Path(tempfile.mkdtemp(prefix="kalimera-bench-"))
        self.local = LocalStack(self.tmp)
        server = self.local.postgres(ADMIN_URL)
        self.database_url = server.rsplit("/", 1)[0] + f"/kalimera_bench_{secrets.token_hex(4)}"
        ensure_database(self.database_url, template=template)
        if template:
            settle(self.database_url)
        migrate(self.database_url)
        self.env = {
            "KALIMERA_ENV": "production",
            "DATABASE_URL": self.database_url,
            "REDIS_URL": self.local.redis("redis://127.0.0.1:6379/0").rsplit("/", 1)[0] + "/14",
            "KALIMERA_STORAGE": self.local.azurite(self.tmp / "azurite"),
            "KALIMERA_ENCRYPTION_KEY": base64.b64encode(secrets.token_bytes(32)).decode(),
            "KALIMERA_LOG_LEVEL": "WARNING",
        }
        self.servers: list[subprocess.Popen[bytes]] = []
        # What the deployment (infra/) creates: the voice container and the turns table.
        asyncio.run(ensure_storage(self.settings()))

    def __enter__(self) -> BenchStack:
        return self

    def __exit__(self, *exc: type[BaseException] | BaseException | TracebackType | None) -> None:
        for proc in self.servers:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                proc.wait(timeout=15)
        if self.keep:
            print(f"kept database {self.database_url}")
        else:
            drop_database(self.database_url)
        self.local.close()

    def process_env(self, **env: str) -> dict[str, str]:
        """The environment of a product process (server, ``kalimera`` command): the stack's
        settings and ``env``, none of the caller's own ``KALIMERA_*``, ``DATABASE_URL`` or
        ``REDIS_URL``, so every other setting is the product's default."""
        inherited = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith("KALIMERA_") and k not in {"DATABASE_URL", "REDIS_URL"}
        }
        return {**inherited, **self.env, **env}

    def settings(self) -> Settings:
        old = dict(os.environ)
        os.environ.clear()
        os.environ.update(self.process_env())
        try:
            return load_settings()
        finally:
            os.environ.clear()
            os.environ.update(old)

    def start_server(
        self, app: str = "kalimera.app:create_app", **env: str
    ) -> tuple[str, subprocess.Popen[bytes]]:
        """uvicorn with one worker in its own process; returns (base URL, process)."""
        port = free_port()
        proc = start_uvicorn(app, port=port, env=self.process_env(**env), extra=("--factory",))
        self.servers.append(proc)
        return f"http://127.0.0.1:{port}", proc

    def token(self, tenant_id: uuid.UUID, scopes: tuple[Scope, ...] = DEFAULT_SCOPES) -> str:
        return issue_token(self.settings(), tenant_id=tenant_id, name="bench", scopes=scopes)[1]


async def ensure_storage(settings: Settings) -> None:
    """The containers and table the deployment creates (infra/), on this stack's Azurite."""
    services = Services(settings)
    try:
        await ensure_containers(services.blobs, services.tables, settings)
    finally:
        await services.aclose()


def percentile(values: list[float], pct: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    index = min(len(ordered) - 1, max(0, round(pct / 100 * len(ordered)) - 1))
    return ordered[index]
