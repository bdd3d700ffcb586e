"""Recordings made by sox (Debian's ``sox`` package) at the sizes telephony sends."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest


def sox_wav(path: Path, seconds: float, *, rate: int = 16000, freq: int = 440) -> Path:
    """A mono 16-bit PCM WAV of exactly ``seconds * rate`` samples of a tone."""
    if shutil.which("sox") is None:
        pytest.fail("sox is not installed: apt-get install sox")
    subprocess.run(
        [
            *("sox", "-r", str(rate), "-c", "1", "-n"),
            *("-b", "16", "-e", "signed-integer", str(path)),
            *("synth", str(seconds), "sine", str(freq), "vol", "0.5"),
        ],
        check=True,
        capture_output=True,
    )
    return path
