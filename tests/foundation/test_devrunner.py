"""``kalimera run``: serves, prints a working token, and SIGTERM stops all it started."""

import os
import re
import signal
import subprocess
import time
from pathlib import Path

import httpx
import pytest

from kalimera.localstack import free_port

pytestmark = pytest.mark.slow


def test_run_serves_prints_a_token_and_stops_everything_on_sigterm(
    tmp_path: Path, database_url: str, redis_url: str
) -> None:
    port = free_port()
    env = {
        **os.environ,
        "KALIMERA_LOCAL_DIR": str(tmp_path),
        "DATABASE_URL": database_url,
        "REDIS_URL": redis_url,
        "KALIMERA_ENV": "development",
    }
    log = tmp_path / "run.log"
    with log.open("w") as out:
        proc = subprocess.Popen(
            [".venv/bin/kalimera", "run", "--port", str(port)],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        deadline = time.monotonic() + 60
        token = None
        while token is None and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.2)
            found = re.search(r"Authorization: Bearer (\S+)\"", log.read_text())
            token = found.group(1) if found else None
        assert token, log.read_text()
        base = f"http://127.0.0.1:{port}"
        assert httpx.get(f"{base}/kalimera/health").json()["status"] == "ok"
        assert (tmp_path / "encryption.key").exists()
        azurite = (tmp_path / "azurite.pid").read_text()
        assert azurite == str(proc.pid)

        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0
        assert "stopped azurite" in log.read_text()
        with pytest.raises(httpx.ConnectError):
            httpx.get(f"{base}/kalimera/health")
        assert not (tmp_path / "azurite.pid").exists()
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
