"""Speech made by real tools (Debian's ``espeak-ng`` and ``sox``), cached under ``.local/``.

Shared by the demo seed (``kalimera.dev.calls``: recordings a console can play) and the tests'
corpus (``tests/support/corpus.py``: recordings of exact lengths in every format), so the seed
does not depend on ``tests/``. Files are written under a temporary name and renamed, so two
processes making the same file never see half of it.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import tempfile
from collections.abc import Callable
from pathlib import Path

# command -> Debian package; `make test` (`make audio-tools`) installs the missing ones.
TOOLS = {
    "sox": "sox",
    "espeak-ng": "espeak-ng",
    "lame": "lame",
    "oggenc": "vorbis-tools",
    "opusenc": "opus-tools",
    "flac": "flac",
    "ffprobe": "ffmpeg",
}
SPEECH_TOOLS = ("espeak-ng", "sox")
CALLER_VOICE = "en-us"
AGENT_VOICE = "en+f3"


class MissingTools(RuntimeError):
    """An audio tool is not installed; the message names the packages to install."""


def missing_tools(tools: tuple[str, ...] = tuple(TOOLS)) -> list[str]:
    return [tool for tool in tools if shutil.which(tool) is None]


def require(tools: tuple[str, ...] = tuple(TOOLS)) -> None:
    """Raise ``MissingTools`` naming the apt packages when any of ``tools`` is missing."""
    if missing := missing_tools(tools):
        packages = " ".join(sorted({TOOLS[t] for t in missing}))
        msg = (
            f"audio tools missing: {', '.join(missing)}"
            f" (`make audio-tools`, or apt-get install -y {packages})"
        )
        raise MissingTools(msg)


def run(*args: str | Path) -> None:
    subprocess.run([str(a) for a in args], check=True, capture_output=True)


def cached(target: Path, build: Callable[[Path], None]) -> Path:
    """``target`` if it exists, else made by ``build(tmp)`` into a temporary file, renamed."""
    if target.exists():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".part-", suffix=target.suffix)
    os.close(fd)
    try:
        build(Path(tmp))
        os.chmod(tmp, 0o644)
        os.replace(tmp, target)
        return target
    finally:
        Path(tmp).unlink(missing_ok=True)


def spoken(text: str, *, voice: str, folder: Path, rate: int = 8000) -> Path:
    """``text`` said by espeak-ng in ``voice``, as a telephony recording: mono 16-bit WAV at
    ``rate`` Hz with a short pause at the end; made once per text, voice and rate."""
    key = hashlib.sha256(f"{voice}\n{rate}\n{text}".encode()).hexdigest()[:20]

    def build(tmp: Path) -> None:
        raw = tmp.with_name(tmp.name + ".espeak.wav")
        try:
            run("espeak-ng", "-v", voice, "-s", "160", "-w", raw, text)
            run(
                "sox", raw, "-b", "16", "-e", "signed-integer", tmp,
                "rate", str(rate), "channels", "1", "pad", "0", "0.4",
            )  # fmt: skip
        finally:
            raw.unlink(missing_ok=True)

    return cached(folder / f"{key}.wav", build)
