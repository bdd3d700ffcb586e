"""Every audio probe decides (an ``AudioInfo`` or ``BadAudio``, nothing else) within a fixed
budget, whatever it is fed: random bytes behind the right magic, real recordings cut anywhere or
with bytes flipped, and files crafted to make it work hardest (valid headers repeated, huge
declared sizes), for WAV, FLAC, Ogg Vorbis, Ogg Opus and MP3.

``make test`` runs a short version (60 examples a property); the long one is
``HYPOTHESIS_PROFILE=fuzz .venv/bin/pytest tests/hostile/test_probe_hypothesis.py`` (2,000).
"""

from __future__ import annotations

import os
import time

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kalimera.conversations.audio import AudioInfo, BadAudio, SparseFile, probe
from tests.support import crafted_audio
from tests.support.audio_fixtures import fixture

BUDGET_SECONDS = 1.0  # per probe; the bar is 2 s for the whole ingestion of a crafted file
settings.register_profile(
    "ci", max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.register_profile(
    "fuzz", max_examples=2000, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
PROFILE = os.environ.get("HYPOTHESIS_PROFILE", "ci")

REAL = {
    "flac": fixture("tone-2250ms.flac"),
    "ogg": fixture("tone-1750ms.ogg"),
    "mp3": fixture("tone-1250ms.mp3"),
}
MAGIC = {
    "wav": b"RIFF\0\0\0\0WAVE",
    "flac": crafted_audio.flac_streaminfo(),
    "ogg-vorbis": crafted_audio.ogg_page(crafted_audio.vorbis_identification(), flags=2),
    "ogg-opus": crafted_audio.ogg_page(crafted_audio.opus_head(), flags=2),
    "mp3": b"\xff\xfb\x90\x00",
}


def decide(ext: str, data: bytes) -> AudioInfo | BadAudio:
    """Probe ``data`` as the ingestion does (the head in hand, the rest fetched on demand) and
    assert the decision came within the budget."""
    file = SparseFile(len(data), lambda start, end: data[start:end], data[:65536])
    started = time.perf_counter()
    try:
        result: AudioInfo | BadAudio = probe(ext, file)
    except BadAudio as exc:
        result = exc
    elapsed = time.perf_counter() - started
    assert elapsed < BUDGET_SECONDS, f"{ext} of {len(data)} bytes took {elapsed:.3f} s"
    return result


@settings(settings.get_profile(PROFILE))
@given(kind=st.sampled_from(sorted(MAGIC)), body=st.binary(max_size=4096))
def test_random_bytes_behind_the_magic(kind: str, body: bytes) -> None:
    decide(kind.split("-")[0], MAGIC[kind] + body)


@settings(settings.get_profile(PROFILE))
@given(ext=st.sampled_from(sorted(REAL)), data=st.data())
def test_real_recordings_cut_or_flipped(ext: str, data: st.DataObject) -> None:
    raw = bytearray(REAL[ext])
    cut = data.draw(st.integers(min_value=0, max_value=len(raw)), label="cut")
    flips = data.draw(
        st.lists(st.tuples(st.integers(0, len(raw) - 1), st.integers(0, 255)), max_size=8),
        label="flips",
    )
    for at, value in flips:
        raw[at] = value
    decide(ext, bytes(raw[:cut]))


@settings(settings.get_profile(PROFILE))
@given(
    name=st.sampled_from(sorted(crafted_audio.CRAFTED)),
    size=st.integers(min_value=64, max_value=2 * 1024 * 1024),
)
def test_crafted_files_of_any_size(name: str, size: int) -> None:
    ext, build = crafted_audio.CRAFTED[name]
    assert isinstance(decide(ext, build(size)), BadAudio)


@settings(settings.get_profile(PROFILE))
@given(
    max_framesize=st.integers(min_value=0, max_value=0xFFFFFF),
    size=st.integers(min_value=64, max_value=1024 * 1024),
)
def test_flac_declaring_any_max_framesize(max_framesize: int, size: int) -> None:
    data = crafted_audio.flac_of_frame_headers(size, max_framesize=max_framesize)
    assert isinstance(decide("flac", data), BadAudio)


@pytest.mark.parametrize("size", [64 * 1024, 25 * 1024 * 1024])
@pytest.mark.parametrize("name", sorted(crafted_audio.CRAFTED))
def test_crafted_files_at_the_bar_sizes(name: str, size: int) -> None:
    """The bar's sizes: 64 KiB (once probed on the event loop) and 25 MiB (the upload limit)."""
    ext, build = crafted_audio.CRAFTED[name]
    assert isinstance(decide(ext, build(size)), BadAudio)
