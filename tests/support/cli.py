"""The ``kalimera`` command as an operator runs it, in a process of its own, on an environment."""

import os
import re
import subprocess
import sys
import time
from pathlib import Path


def kalimera(
    env: dict[str, str], *args: str, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    """``kalimera *args`` with ``env`` over this process's environment: its exit code and text."""
    return subprocess.run(
        [sys.executable, "-m", "kalimera", *args],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def start_run(env: dict[str, str], port: int, log: Path) -> tuple[subprocess.Popen[bytes], str]:
    """``kalimera run`` in its own session, returned once it has printed its token."""
    with log.open("w") as out:
        proc = subprocess.Popen(
            [".venv/bin/kalimera", "run", "--port", str(port)],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline and proc.poll() is None:
        found = re.search(r"Authorization: Bearer (\S+)\"", log.read_text())
        if found:
            return proc, found.group(1)
        time.sleep(0.2)
    proc.kill()
    raise AssertionError(log.read_text())
