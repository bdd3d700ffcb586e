"""Where a running ``kalimera run`` keeps its stack, so other commands find it.

``kalimera run`` starts Azurite (and, where none answers, Postgres and Redis) on free ports each
time; the data stays under ``.local/`` but the ports change. While it serves, it records the
connection settings of its stack in ``.local/running.json``, with its pid and start time, and
removes the record when it stops. ``kalimera demo seed`` reads it to write where the console
reads (a record whose process is gone, killed without a chance to remove it, is ignored).
"""

from __future__ import annotations

import contextlib
import json
import os
import uuid
from collections.abc import Iterator, Mapping
from pathlib import Path

from kalimera.dev.localstack import process_start_time

RECORD = "running.json"
SETTINGS = ("DATABASE_URL", "REDIS_URL", "KALIMERA_STORAGE", "KALIMERA_ENV")
DEV_TENANT = "dev-tenant"


@contextlib.contextmanager
def recorded(root: Path, env: Mapping[str, str]) -> Iterator[Path]:
    """Record this process's stack (the ``SETTINGS`` of ``env``) under ``root`` while the block
    runs; the file is readable by its owner only (the URLs may hold passwords)."""
    path = root / RECORD
    tmp = path.with_suffix(".tmp")
    record = {
        "pid": os.getpid(),
        "started": process_start_time(os.getpid()),
        "settings": {k: env[k] for k in SETTINGS if k in env},
    }
    tmp.write_text(json.dumps(record))
    tmp.chmod(0o600)
    tmp.replace(path)
    try:
        yield path
    finally:
        with contextlib.suppress(OSError, ValueError):
            if json.loads(path.read_text())["pid"] == os.getpid():
                path.unlink()


def running_settings(root: Path) -> dict[str, str] | None:
    """The settings of the ``kalimera run`` that serves from ``root`` now; None when none does."""
    try:
        record = json.loads((root / RECORD).read_text())
        pid, started, settings = record["pid"], record["started"], record["settings"]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    if started is None or process_start_time(int(pid)) != started:
        return None
    return {str(k): str(v) for k, v in settings.items()}


def dev_tenant(root: Path) -> uuid.UUID:
    """The development tenant of this checkout (``.local/dev-tenant``), made on first use: the
    one ``kalimera run`` prints a token for and ``kalimera demo seed`` fills."""
    path = root / DEV_TENANT
    if not path.exists():
        root.mkdir(parents=True, exist_ok=True)
        path.write_text(str(uuid.uuid4()))
    return uuid.UUID(path.read_text().strip())
