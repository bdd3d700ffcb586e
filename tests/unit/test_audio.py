"""Audio checks: the content must be its extension's format and whole; durations are exact."""

from __future__ import annotations

from decimal import Decimal

import pytest

from kalimera.conversations.audio import BadAudio, NotFetched, SparseFile, probe
from tests.support.audio_fixtures import DURATIONS, PNG_BYTES, fixture, wav_bytes
from tests.support.corpus import FORMATS, Recording, make


def _probe(ext: str, data: bytes) -> tuple[Decimal, SparseFile]:
    file = SparseFile(len(data), lambda start, end: data[start:end], data[:65536])
    return probe(ext, file).duration, file


@pytest.mark.parametrize("name", sorted(DURATIONS))
def test_each_format_reads_its_exact_duration(name: str) -> None:
    assert _probe(name.rsplit(".", 1)[1], fixture(name))[0] == DURATIONS[name]


@pytest.mark.parametrize("name", [*sorted(DURATIONS), "wav"])
@pytest.mark.parametrize("keep", [0.5, 0.9, -1])
def test_a_truncated_file_is_refused(name: str, keep: float) -> None:
    data = wav_bytes(2.0) if name == "wav" else fixture(name)
    cut = data[:keep] if keep < 0 else data[: int(len(data) * keep)]
    with pytest.raises(BadAudio, match=r"truncated|not a valid"):
        _probe(name.rsplit(".", 1)[-1], cut)


def test_an_ogg_stream_cut_at_a_page_boundary_is_refused() -> None:
    data = fixture("tone-1750ms.ogg")
    last_page = data.rfind(b"OggS")
    with pytest.raises(BadAudio, match="does not end the stream"):
        _probe("ogg", data[:last_page])


@pytest.mark.parametrize(
    ("ext", "data", "looks_like"),
    [
        ("wav", PNG_BYTES, "PNG image"),
        ("mp3", fixture("tone-2250ms.flac"), "FLAC"),
        ("flac", wav_bytes(0.1), "WAV"),
        ("ogg", fixture("tone-1250ms.mp3"), "MP3"),
        ("wav", b'{"transcript": "hi"}', "JSON or text"),
    ],
)
def test_content_that_is_not_its_extensions_format_is_refused(
    ext: str, data: bytes, looks_like: str
) -> None:
    with pytest.raises(
        BadAudio, match=f"content is not {ext.upper()} \\(it looks like {looks_like}"
    ):
        _probe(ext, data)


def test_an_empty_file_is_refused() -> None:
    with pytest.raises(BadAudio, match="empty file"):
        _probe("wav", b"")


def test_a_25_mib_wav_is_probed_from_its_head_without_reading_the_rest() -> None:
    data = wav_bytes(0.01)[:44] + b"\0" * (25 * 1024 * 1024 - 44)
    data = (
        data[:4]
        + (len(data) - 8).to_bytes(4, "little")
        + data[8:40]
        + (len(data) - 44).to_bytes(4, "little")
        + data[44:]
    )
    duration, file = _probe("wav", data)
    assert duration == (Decimal(len(data) - 44) / 16000).quantize(Decimal("0.001"))
    assert file.fetched_bytes == 0  # the 64 KiB head given up front was enough


@pytest.mark.parametrize("rate", [8000, 16000])
def test_ogg_opus_is_the_last_granule_less_the_pre_skip_at_48_khz(rate: int) -> None:
    data = make(Recording(60, rate, "opus")).read_bytes()
    info = probe("ogg", SparseFile(len(data), lambda s, e: data[s:e], data[:65536]))
    # the sample rate is the source's, from OpusHead
    assert (info.codec, info.duration, info.sample_rate, info.channels) == (
        "opus",
        Decimal("60.000"),
        rate,
        1,
    )


@pytest.mark.parametrize("fmt", FORMATS)
def test_a_30_minute_recording_is_probed_from_its_head_and_tail(fmt: str) -> None:
    rec = Recording(1800, 8000, fmt)
    data = make(rec).read_bytes()
    duration, file = _probe(rec.ext, data)
    assert abs(duration - rec.duration) <= rec.tolerance
    assert file.fetched_bytes <= 2 * 65536  # of 4.6 to 28.8 MB


def test_without_a_fetch_a_read_past_what_is_held_raises_not_fetched() -> None:
    data = make(Recording(60, 8000, "flac")).read_bytes()
    file = SparseFile(len(data), None, data[:65536])
    with pytest.raises(NotFetched):
        probe("flac", file)  # the check reads the last frame
    tail = file.tail_to_fetch("flac")
    assert tail is not None
    file.add(tail, data[tail:])
    assert probe("flac", file).duration == Decimal("60.000")
