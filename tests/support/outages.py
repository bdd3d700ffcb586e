"""A service that hangs: a plugin (``pytest_plugins`` in tests/conftest.py), so every folder's
outage tests can ask for ``blackhole``."""

import os
import re
import socket
import subprocess
from collections.abc import Iterator, Mapping
from pathlib import Path

import pytest

from kalimera.dev.localstack import free_port, start_uvicorn


@pytest.fixture
def blackhole() -> Iterator[int]:
    """A port that accepts TCP connections and never answers: a hung database."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(100)
    yield sock.getsockname()[1]
    sock.close()


def start_app_with_hung_queues(
    settings_env: Mapping[str, str], blackhole: int, log: Path
) -> tuple[int, subprocess.Popen[bytes]]:
    """The app in a uvicorn process of its own whose queue endpoint hangs (its blobs and tables
    answer): a relay after a commit waits there, where a test kills the process. Its port and
    process."""
    storage = re.sub(
        r"QueueEndpoint=[^;]+;",
        f"QueueEndpoint=http://127.0.0.1:{blackhole}/devstoreaccount1;",
        settings_env["KALIMERA_STORAGE"],
    )
    port = free_port()
    server = start_uvicorn(
        "kalimera.app:create_app",
        port=port,
        env={**os.environ, **settings_env, "KALIMERA_STORAGE": storage},
        extra=("--factory",),
        log=log,
    )
    return port, server
