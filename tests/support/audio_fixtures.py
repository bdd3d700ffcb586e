"""Real audio for the tests: WAV made here with the standard library, and small committed FLAC,
Ogg/Vorbis and MP3 files of known duration (made by ``fixtures/make_fixtures.py``)."""

from __future__ import annotations

import io
import math
import struct
import wave
from decimal import Decimal
from pathlib import Path

FIXTURES = Path(__file__).parent / "fixtures"

# file name -> exact duration in seconds (as the ingestion stores it: to the millisecond)
DURATIONS: dict[str, Decimal] = {
    "tone-2250ms.flac": Decimal("2.250"),
    "tone-1750ms.ogg": Decimal("1.750"),
    "tone-1250ms.mp3": Decimal("1.250"),
}


def wav_bytes(seconds: float, *, rate: int = 8000, freq: float = 440.0) -> bytes:
    """A mono 16-bit PCM WAV of exactly ``round(seconds * rate)`` samples."""
    frames = round(seconds * rate)
    samples = (int(8000 * math.sin(2 * math.pi * freq * i / rate)) for i in range(frames))
    out = io.BytesIO()
    with wave.open(out, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(b"".join(struct.pack("<h", s) for s in samples))
    return out.getvalue()


def fixture(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


PNG_BYTES = (
    b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x06\x00\x00\x00"
    b"\x1f\x15\xc4\x89\x00\x00\x00\rIDATx\x9cc\xf8\x0f\x00\x00\x01\x01\x00\x05\x18\xd8N\x00"
    b"\x00\x00\x00IEND\xaeB`\x82"
)
