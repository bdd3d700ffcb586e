"""The ``kalimera`` command as an operator runs it, in a process of its own, on an environment."""

import os
import subprocess
import sys


def kalimera(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    """``kalimera *args`` with ``env`` over this process's environment: its exit code and text."""
    return subprocess.run(
        [sys.executable, "-m", "kalimera", *args],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
