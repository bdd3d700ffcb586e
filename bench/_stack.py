"""A throwaway stack for benchmarks: its own database, Redis db, Azurite and server processes."""

from __future__ import annotations

import base64
import os
import secrets
import signal
import subprocess
import tempfile
import uuid
from pathlib import Path
from types import TracebackType

from kalimera.auth import DEFAULT_SCOPES, Scope, issue_token
from kalimera.localstack import (
    LocalStack,
    drop_database,
    ensure_database,
    free_port,
    start_uvicorn,
)
from kalimera.migrate import migrate
from kalimera.settings import load_settings

ADMIN_URL = os.environ.get(
    "KALIMERA_BENCH_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)


class BenchStack:
    def __init__(self) -> None:
        self.tmp = Path(tempfile.mkdtemp(prefix="kalimera-bench-"))
        self.local = LocalStack(self.tmp)
        server = self.local.postgres(ADMIN_URL)
        self.database_url = server.rsplit("/", 1)[0] + f"/kalimera_bench_{secrets.token_hex(4)}"
        ensure_database(self.database_url)
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

    def __enter__(self) -> BenchStack:
        return self

    def __exit__(self, *exc: type[BaseException] | BaseException | TracebackType | None) -> None:
        for proc in self.servers:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                proc.wait(timeout=15)
        drop_database(self.database_url)
        self.local.close()

    def settings(self):  # type: ignore[no-untyped-def]
        old = dict(os.environ)
        os.environ.update(self.env)
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
        proc = start_uvicorn(
            app, port=port, env={**os.environ, **self.env, **env}, extra=("--factory",)
        )
        self.servers.append(proc)
        return f"http://127.0.0.1:{port}", proc

    def token(self, tenant_id: uuid.UUID, scopes: tuple[Scope, ...] = DEFAULT_SCOPES) -> str:
        return issue_token(self.settings(), tenant_id=tenant_id, name="bench", scopes=scopes)[1]


def percentile(values: list[float], pct: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    index = min(len(ordered) - 1, max(0, round(pct / 100 * len(ordered)) - 1))
    return ordered[index]
