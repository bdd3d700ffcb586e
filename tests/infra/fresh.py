"""Run Python in a fresh interpreter from the repository root with exactly the given environment
(plus PATH): what a Functions worker starting on those app settings would see."""

import os
import subprocess
import sys

from tests.infra.bicep import ROOT


def fresh_python(*args: str, env: dict[str, str], timeout: float = 120) -> str:
    """Run ``python *args``; its last stdout line (asserting it exited 0, else its stderr)."""
    result = subprocess.run(
        [sys.executable, *args],
        env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"), **env},
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        cwd=ROOT,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout.strip().splitlines()[-1]
