"""Real recordings for the tests and the benchmarks, made by real encoders from Debian's packages.

Speech comes from ``espeak-ng`` (a caller's voice and an agent's), looped and cut with ``sox`` to
an exact number of samples, so every recording's true length is known by construction:
``samples / rate``. That source WAV is then encoded as telephony and the voice runtime would:
``flac`` (libFLAC), ``lame`` at a constant and at a variable bitrate, ``oggenc`` (libvorbis) and
``opusenc`` (libopus). A dual-channel WAV holds the caller on the left and the agent on the right.

Encoding a 30-minute call takes tens of seconds, so every file is cached under
``.local/corpus/{key}/`` (gitignored), where the key hashes the recipe (the texts and the
functions that run the tools) and the versions of the tools: change either and the corpus is
made again. The tools' list and the cache helpers are ``kalimera.dev.speech``'s (the demo seed
speaks with them too).

    from tests.support.corpus import Recording, make
    path = make(Recording(seconds=60, rate=8000, fmt="opus"))
"""

from __future__ import annotations

import functools
import hashlib
import inspect
import math
import os
import shutil
import subprocess
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

from kalimera.dev.speech import TOOLS, require
from kalimera.dev.speech import cached as _cached
from kalimera.dev.speech import run as _run

ROOT = Path(__file__).resolve().parents[2]
CACHE = ROOT / ".local" / "corpus"

# format -> the extension the blob carries
EXTENSIONS = {
    "wav": "wav",
    "flac": "flac",
    "mp3-cbr": "mp3",
    "mp3-vbr": "mp3",
    "vorbis": "ogg",
    "opus": "ogg",
}
FORMATS = tuple(EXTENSIONS)

CALLER = (
    "Hello, good evening. I would like to book a table for four people on Friday at eight. "
    "My name is Maria Papadopoulou and my number is six nine four, two two three, one one eight. "
    "Could we have a table by the window, please? One of us uses a wheelchair."
)
AGENT = (
    "Thank you for calling Kalimera. Of course, Friday at eight for four people. "
    "A table by the window is free, and the entrance has a ramp. "
    "I have booked it under Papadopoulou. Is there anything else I can help you with today?"
)


@dataclass(frozen=True, slots=True)
class Recording:
    """One recording of the corpus: ``seconds`` of speech at ``rate`` Hz, encoded as ``fmt``."""

    seconds: int
    rate: int = 8000
    fmt: str = "wav"
    channels: int = 1

    @property
    def ext(self) -> str:
        return EXTENSIONS[self.fmt]

    @property
    def samples(self) -> int:
        return self.seconds * self.rate

    @property
    def duration(self) -> Decimal:
        """The source's exact length in seconds (what the ingestion must find)."""
        return Decimal(self.samples) / Decimal(self.rate)

    @property
    def label(self) -> str:
        layout = "mono" if self.channels == 1 else "stereo"
        return f"{self.seconds}s-{self.rate // 1000}k-{layout}-{self.fmt}"

    @property
    def file_name(self) -> str:
        return f"{self.label}.{self.ext}"

    @property
    def tolerance(self) -> Decimal:
        """How far the ingested duration may be from the source's: 1 ms, or for MP3 three MPEG
        frames (the encoder's delay and padding; 576 samples a frame below 32 kHz)."""
        if self.ext == "mp3":
            return Decimal(3 * (576 if self.rate < 32000 else 1152)) / Decimal(self.rate)
        return Decimal("0.001")


SECONDS = (5, 60, 600, 1800)
RATES = (8000, 16000)

# What the tests run: every length at both telephony rates in every format, and a dual-channel
# WAV (caller left, agent right) of a minute and of ten minutes.
CORPUS: tuple[Recording, ...] = (
    *(Recording(s, r, f) for s in SECONDS for r in RATES for f in FORMATS),
    Recording(60, 8000, "wav", channels=2),
    Recording(600, 16000, "wav", channels=2),
)


@functools.cache
def cache_dir() -> Path:
    """The cache folder for this recipe and these tool versions."""
    require()
    recipe = [inspect.getsource(f) for f in (_voice, _speech, _source, _encode)]
    digest = hashlib.sha256("\n".join([CALLER, AGENT, *recipe]).encode())
    for tool in TOOLS:
        version = subprocess.run(
            [tool, "-version" if tool == "ffprobe" else "--version"],
            capture_output=True,
            check=False,
        )
        digest.update(version.stdout.splitlines()[0] if version.stdout else b"")
    return CACHE / digest.hexdigest()[:16]


def _voice(who: str) -> Path:
    """One voice's speech, as espeak-ng says it (22,050 Hz), with a pause after it."""
    text, voice = (CALLER, "en-us") if who == "caller" else (AGENT, "en+f3")

    def build(tmp: Path) -> None:
        _run("espeak-ng", "-v", voice, "-s", "165", "-w", tmp, text)

    return _cached(cache_dir() / f"voice-{who}.wav", build)


def _soxi_samples(path: Path) -> int:
    out = subprocess.run(["soxi", "-s", str(path)], capture_output=True, check=True, text=True)
    return int(out.stdout.strip())


def _speech(seconds: int, rate: int, who: str) -> Path:
    """Mono 16-bit speech of exactly ``seconds * rate`` samples at ``rate``: the voice looped.
    ``rate`` comes before ``trim`` so that trim counts samples at the output rate."""
    voice = _voice(who)

    def build(tmp: Path) -> None:
        loops = math.ceil(seconds * 22050 / _soxi_samples(voice)) + 1
        _run(
            "sox", voice, "-b", "16", "-e", "signed-integer", tmp,
            "pad", "0", "0.6", "repeat", str(loops - 1), "rate", str(rate), "channels", "1",
            "trim", "0", f"{seconds * rate}s",
        )  # fmt: skip

    return _cached(cache_dir() / f"speech-{who}-{seconds}s-{rate}.wav", build)


def _source(rec: Recording) -> Path:
    """The uncompressed source: the caller's speech, or caller and agent on two channels."""
    if rec.channels == 1:
        return _speech(rec.seconds, rec.rate, "caller")
    left, right = _speech(rec.seconds, rec.rate, "caller"), _speech(rec.seconds, rec.rate, "agent")

    def build(tmp: Path) -> None:
        _run("sox", "-M", left, right, tmp)

    return _cached(cache_dir() / f"source-{rec.label}.wav", build)


def _encode(rec: Recording, source: Path, out: Path) -> None:
    if rec.fmt == "wav":
        shutil.copyfile(source, out)
    elif rec.fmt == "flac":
        _run("flac", "--silent", "--force", "-5", "-o", out, source)
    elif rec.fmt == "mp3-cbr":
        _run("lame", "--silent", "-b", "32", source, out)
    elif rec.fmt == "mp3-vbr":
        _run("lame", "--silent", "-V", "5", source, out)
    elif rec.fmt == "vorbis":
        _run("oggenc", "--quiet", "-q", "3", "-o", out, source)
    elif rec.fmt == "opus":
        # --comp 0: libopus' fastest search, 3.7x faster than its default 10 for a 30-minute call
        # (10.5 s, not 39 s); the Ogg pages and granule positions the parser reads are the same.
        _run("opusenc", "--quiet", "--bitrate", "24", "--comp", "0", source, out)
    else:
        raise ValueError(f"unknown format {rec.fmt!r}")


def make(rec: Recording) -> Path:
    """The recording's file, made (once) by the real encoder."""
    source = _source(rec)
    if rec.fmt == "wav" and _soxi_samples(source) != rec.samples:
        raise AssertionError(f"{source} does not hold {rec.samples} samples")

    def build(tmp: Path) -> None:
        _encode(rec, source, tmp)

    return _cached(cache_dir() / rec.file_name, build)


def make_all(recordings: Iterable[Recording], workers: int | None = None) -> dict[Recording, Path]:
    """Every recording's file, made in parallel (one encoder process a core), the longest
    first so that no long encode is left running alone at the end."""
    recordings = list(recordings)
    for rec in recordings:  # the shared sources first, so that no two threads make one
        _source(rec)
    longest_first = sorted(recordings, key=lambda rec: rec.samples * rec.channels, reverse=True)
    with ThreadPoolExecutor(max_workers=workers or os.cpu_count() or 2) as pool:
        made = dict(zip(longest_first, pool.map(make, longest_first), strict=True))
    return {rec: made[rec] for rec in recordings}


def ffprobe_seconds(path: Path) -> Decimal:
    """The duration ``ffprobe`` reports (an independent reading; for MP3 and Opus it counts the
    encoder's delay and padding, which the ingestion leaves out)."""
    out = subprocess.run(
        [
            "ffprobe", "-v", "error", "-show_entries", "format=duration",
            "-of", "default=noprint_wrappers=1:nokey=1", str(path),
        ],
        capture_output=True, check=True, text=True,
    )  # fmt: skip
    return Decimal(out.stdout.strip())


if __name__ == "__main__":  # make corpus: encoded once, before the test workers start
    make_all(CORPUS)
