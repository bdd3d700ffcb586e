"""Audio checks and exact durations for mp3, wav, ogg (Vorbis, Opus) and flac.

The content must be the format its extension names (magic bytes, then a parse of the header by
mutagen), complete (a truncated file is refused: the WAV data chunk must fit, the last FLAC frame
must pass its CRC and end where STREAMINFO says, the last Ogg page must be whole and end the
stream), and its duration comes from the header (sample counts), never from the byte length.

Only the parts of a blob the parser touches are downloaded: ``SparseFile`` presents the blob as
a seekable file and fetches missing ranges on demand (the head comes with the first request; the
Ogg and FLAC checks read the tail), so a 25 MiB recording costs two small reads, not 25 MiB.

Work is linear in the bytes read, whatever the file declares: the windows read at the end are
bounded (``FLAC_WINDOW_MAX``, not the ``max_framesize`` a crafted STREAMINFO names), the CRCs are
computed in C (``anycrc``), and the tail searches share a ``Budget`` of CRC'd bytes proportional
to the window, so a file of nothing but valid frame headers or page headers is refused after a
bounded amount of work instead of re-scanning the window for every candidate.

Over 400 lines because each format's completeness check is its own small parser; they share the
sparse reader and the work budget, which is why they live together.

Over 400 lines, on purpose: it is one concern (is this audio of its type, whole, and how long),
and its parts are bound together by the work bounds above. ``SparseFile`` counts the parser's
reads and refuses with ``BadAudio``; the format checks read through it within the same
``CHUNK``/``TAIL_BYTES`` windows. Split, each half would import the other.
"""

from __future__ import annotations

import io
import re
import struct
from collections.abc import Callable
from dataclasses import dataclass
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any

import anycrc

CHUNK = 64 * 1024
TAIL_BYTES = 64 * 1024  # what the Ogg and FLAC checks read at the end of a file, at least
# The FLAC tail window grows with the declared max_framesize, up to this: FLAC's subset caps a
# frame at 4608 samples (73 KiB of 16-bit 8-channel PCM, uncompressed), so twice that is room
# for the last frame and the header before it; a larger declared size buys no more work.
FLAC_WINDOW_MAX = 256 * 1024
CRC_WORK_FACTOR = 16  # the tail searches CRC at most this many times the window's bytes
MAX_READS = 4096  # reads of the parser (mutagen) per probe
WAV_MAX_CHUNKS = 256  # chunks before the data chunk (real files have 1-4: fmt, LIST, fact)
MILLISECOND = Decimal("0.001")
OPUS_RATE = 48_000

# What a file starts with, to name what an upload really is when it is not what it claims.
_MAGIC: tuple[tuple[bytes, str], ...] = (
    (b"\x89PNG\r\n\x1a\n", "PNG image"),
    (b"\xff\xd8\xff", "JPEG image"),
    (b"GIF8", "GIF image"),
    (b"%PDF", "PDF document"),
    (b"PK\x03\x04", "ZIP archive"),
    (b"fLaC", "FLAC"),
    (b"OggS", "Ogg"),
    (b"ID3", "MP3"),
)


class BadAudio(ValueError):
    """The recording is not usable audio of its claimed type; the message says why."""


@dataclass(frozen=True, slots=True)
class AudioInfo:
    codec: str
    duration: Decimal  # seconds, to the millisecond
    sample_rate: int
    channels: int


def describe(head: bytes) -> str:
    """A short name for what ``head`` looks like, for error messages."""
    for magic, name in _MAGIC:
        if head.startswith(magic):
            return name
    if head[:4] == b"RIFF" and head[8:12] == b"WAVE":
        return "WAV"
    if _mpeg_sync(head):
        return "MP3"
    if head[:1] in (b"{", b"["):
        return "JSON or text"
    return "unrecognised data"


def _mpeg_sync(head: bytes) -> bool:
    return len(head) >= 2 and head[0] == 0xFF and (head[1] & 0xE0) == 0xE0


def sniff(ext: str, head: bytes) -> None:
    """Refuse content whose first bytes do not match its extension (``BadAudio``)."""
    if not head:
        raise BadAudio("empty file")
    ok = {
        "wav": head[:4] == b"RIFF" and (len(head) < 12 or head[8:12] == b"WAVE"),
        "flac": head[:4] == b"fLaC" or head[:3] == b"ID3",
        "ogg": head[:4] == b"OggS",
        "mp3": head[:3] == b"ID3" or _mpeg_sync(head),
    }.get(ext, False)
    if not ok:
        raise BadAudio(f"content is not {ext.upper()} (it looks like {describe(head)})")


class NotFetched(Exception):
    """A read reached a part of the blob not yet downloaded, and the file has no ``fetch``."""


class SparseFile(io.RawIOBase):
    """A read-only, seekable view of a blob of known size that downloads the chunks a reader
    touches (``fetch(start, end)`` returns bytes ``[start, end)``) and keeps them. Without a
    ``fetch`` a read of a missing part raises ``NotFetched`` (a probe of bytes in memory)."""

    def __init__(
        self, size: int, fetch: Callable[[int, int], bytes] | None, head: bytes = b""
    ) -> None:
        self.size = size
        self.fetch = fetch
        self._pos = 0
        self._chunks: dict[int, bytes] = {}
        self.fetched_bytes = 0
        self.reads = 0
        self._store(0, head)

    def _store(self, start: int, data: bytes) -> None:
        # ``start`` is chunk-aligned; a short final piece is kept only when it reaches the end.
        for offset in range(0, len(data), CHUNK):
            piece = data[offset : offset + CHUNK]
            if len(piece) == CHUNK or start + offset + len(piece) == self.size:
                self._chunks[(start + offset) // CHUNK] = piece

    def add(self, start: int, data: bytes) -> None:
        """Keep ``data`` fetched from ``start`` (a multiple of ``CHUNK``)."""
        self.fetched_bytes += len(data)
        self._store(start, data)

    def tail_to_fetch(self, ext: str) -> int | None:
        """Where the missing part of the window the ``ext`` check reads at the end of the file
        starts (a multiple of ``CHUNK``), or None when it needs no tail or has it already."""
        if ext not in ("ogg", "flac"):
            return None
        first = max(0, self.size - TAIL_BYTES) // CHUNK
        missing = [i for i in range(first, (self.size - 1) // CHUNK + 1) if i not in self._chunks]
        return missing[0] * CHUNK if missing else None

    @property
    def complete(self) -> bool:
        return len(self._chunks) * CHUNK >= self.size

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._pos

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._pos, io.SEEK_END: self.size}[whence]
        if base + offset < 0:
            raise OSError("seek before the start of the file")
        self._pos = base + offset
        return self._pos

    def readinto(self, buffer: memoryview | bytearray) -> int:  # type: ignore[override]
        self.reads += 1
        if self.reads > MAX_READS:
            # mutagen walks pages and chunks one read at a time: a file of 25 MiB of empty Ogg
            # pages would cost it a million reads. Real files' headers take a few dozen.
            raise BadAudio(f"not a valid file: its headers take more than {MAX_READS} reads")
        end = min(self._pos + len(buffer), self.size)
        if end <= self._pos:
            return 0
        data = self.range(self._pos, end)
        buffer[: len(data)] = data
        self._pos = end
        return len(data)

    def range(self, start: int, end: int) -> bytes:
        """Bytes ``[start, end)``, fetching the missing chunks in one request."""
        first, last = start // CHUNK, (end - 1) // CHUNK
        missing = [i for i in range(first, last + 1) if i not in self._chunks]
        if missing:
            lo = missing[0] * CHUNK
            hi = min((missing[-1] + 1) * CHUNK, self.size)
            if self.fetch is None:
                raise NotFetched(f"bytes {lo}-{hi} are not fetched")
            data = self.fetch(lo, hi)
            if len(data) != hi - lo:
                raise BadAudio("the blob is shorter than its size says")
            self.fetched_bytes += len(data)
            self._store(lo, data)
        joined = b"".join(self._chunks[i] for i in range(first, last + 1))
        return joined[start - first * CHUNK : end - first * CHUNK]


def probe(ext: str, file: SparseFile) -> AudioInfo:
    """Check the recording and read its exact duration (blocking: mutagen is synchronous)."""
    import mutagen

    if file.size == 0:
        raise BadAudio("empty file")
    head = file.range(0, min(file.size, 64))
    sniff(ext, head)
    try:
        if ext == "wav":
            return _wav(file)
        if ext == "flac":
            return _flac(file)
        if ext == "ogg":
            return _ogg(file)
        return _mp3(file)
    except (mutagen.MutagenError, struct.error, EOFError, IndexError, KeyError) as exc:
        raise BadAudio(f"not a valid {ext.upper()} file: {exc or type(exc).__name__}") from None


def _info(audio: Any) -> Any:
    """The stream information; mutagen types it as optional, a parsed file always has it."""
    if audio.info is None:
        raise BadAudio("no stream information")
    return audio.info


def _seconds(value: float) -> Decimal:
    return Decimal(repr(value)).quantize(MILLISECOND, rounding=ROUND_HALF_EVEN)


def _wav(file: SparseFile) -> AudioInfo:
    from mutagen.wave import WAVE

    # mutagen takes the data chunk's declared size on trust; a cut file declares more than it has.
    # The walk is bounded (``WAV_MAX_CHUNKS``) and comes before mutagen's, which has no bound: a
    # file of 25 MiB of empty chunks would cost it three million reads.
    pos = 12
    for _ in range(WAV_MAX_CHUNKS):
        if pos + 8 > file.size:
            raise BadAudio("truncated: no data chunk")
        chunk_id, chunk_size = struct.unpack("<4sI", file.range(pos, pos + 8))
        if chunk_id == b"data":
            present = file.size - pos - 8
            if chunk_size > present:
                msg = (
                    f"truncated: the data chunk declares {chunk_size} bytes, {present} are present"
                )
                raise BadAudio(msg)
            break
        pos += 8 + chunk_size + (chunk_size & 1)
    else:
        raise BadAudio(f"not a valid WAV file: no data chunk among its first {WAV_MAX_CHUNKS}")
    file.seek(0)
    info = _info(WAVE(file))
    return AudioInfo("pcm", _seconds(info.length), info.sample_rate, info.channels)


def _mp3(file: SparseFile) -> AudioInfo:
    from mutagen.mp3 import MP3, XingHeader, XingHeaderError

    file.seek(0)
    info = _info(MP3(file))
    if info.length <= 0:
        raise BadAudio("not a valid MP3 file: no audio frames")
    # A Xing/Info header (LAME writes one) states the stream's byte count: a cut file is shorter.
    file.seek(info.frame_offset + XingHeader.get_offset(info))
    try:
        xing = XingHeader(file)
    except XingHeaderError:
        xing = None
    if xing is not None and xing.bytes > 0:
        present = file.size - info.frame_offset
        if xing.bytes > present:
            msg = f"truncated: the Xing header declares {xing.bytes} bytes, {present} are present"
            raise BadAudio(msg)
    return AudioInfo("mp3", _seconds(info.length), info.sample_rate, info.channels)


def _ogg(file: SparseFile) -> AudioInfo:
    first_packet = file.range(0, min(file.size, 64))[28:]
    if first_packet.startswith(b"\x01vorbis"):
        from mutagen.oggvorbis import OggVorbis

        file.seek(0)
        info = _info(OggVorbis(file))
        _last_ogg_granule(file)
        return AudioInfo("vorbis", _seconds(info.length), info.sample_rate, info.channels)
    if first_packet.startswith(b"OpusHead"):
        return _opus(file, first_packet)
    raise BadAudio(f"unsupported Ogg codec (first packet {first_packet[:8]!r})")


def _opus(file: SparseFile, opus_head: bytes) -> AudioInfo:
    """Opus is always decoded at 48 kHz: the length is the last page's granule position less
    the pre-skip (RFC 7845), in 48 kHz samples. The sample rate reported is the source's, as
    the encoder wrote it in OpusHead (0 when unknown: then 48 kHz)."""
    from mutagen.oggopus import OggOpus

    if len(opus_head) < 19:
        raise BadAudio("not a valid OGG file: the OpusHead packet is cut short")
    file.seek(0)
    _info(OggOpus(file))  # the header pages parse
    channels = opus_head[9]
    pre_skip, input_rate = struct.unpack_from("<HI", opus_head, 10)
    samples = _last_ogg_granule(file) - pre_skip
    if samples < 0:
        raise BadAudio("not a valid OGG file: the stream ends before its pre-skip")
    duration = (Decimal(samples) / OPUS_RATE).quantize(MILLISECOND, rounding=ROUND_HALF_EVEN)
    return AudioInfo("opus", duration, input_rate or OPUS_RATE, channels)


def _last_ogg_granule(file: SparseFile) -> int:
    """The granule position of the stream's last page, which must be whole (its CRC passes),
    end the file and carry the end-of-stream flag: a cut file has no such page."""
    start = max(0, file.size - TAIL_BYTES)
    tail = file.range(start, file.size)
    budget = Budget(len(tail))
    pos = tail.rfind(b"OggS")
    while pos >= 0:
        if pos + 27 <= len(tail):
            nsegs = tail[pos + 26]
            body = sum(tail[pos + 27 : pos + 27 + nsegs])
            end = pos + 27 + nsegs + body
            if end == len(tail):
                budget.spend(end - pos, "Ogg page")
            if end == len(tail) and _ogg_crc_ok(tail[pos:end]):
                if not tail[pos + 5] & 0x04:
                    raise BadAudio("truncated: the last Ogg page does not end the stream")
                return int(struct.unpack_from("<q", tail, pos + 6)[0])
        pos = tail.rfind(b"OggS", 0, pos)
    raise BadAudio("truncated: the file does not end with a whole Ogg page")


@dataclass(frozen=True, slots=True)
class _StreamInfo:
    sample_rate: int
    channels: int
    total_samples: int
    max_blocksize: int
    max_framesize: int


def _streaminfo(file: SparseFile) -> Any:
    """FLAC's STREAMINFO, the first metadata block, read from its 42 bytes: the other blocks
    (padding, pictures, seek tables: 64 KiB of padding in a long file made by ``flac``) are not
    read. A stream behind an ID3v2 tag is left to mutagen, which skips the tag."""
    head = file.range(0, min(file.size, 42))
    if head[:4] != b"fLaC":
        from mutagen.flac import FLAC

        file.seek(0)
        return _info(FLAC(file))
    if len(head) < 42 or head[4] & 0x7F != 0 or int.from_bytes(head[5:8], "big") != 34:
        raise BadAudio("not a valid FLAC file: it does not start with a STREAMINFO block")
    max_block = struct.unpack_from(">H", head, 10)[0]
    max_frame = int.from_bytes(head[15:18], "big")
    bits = int.from_bytes(head[18:26], "big")
    sample_rate, channels, total = bits >> 44, ((bits >> 41) & 7) + 1, bits & (2**36 - 1)
    if sample_rate == 0:
        raise BadAudio("not a valid FLAC file: STREAMINFO gives a sample rate of 0")
    return _StreamInfo(sample_rate, channels, total, max_block, max_frame)


def _flac(file: SparseFile) -> AudioInfo:
    info = _streaminfo(file)
    end_sample = _last_flac_frame_end(file, info)
    total = info.total_samples or end_sample
    if end_sample != total:
        raise BadAudio(
            f"truncated: audio ends at sample {end_sample} of {total} "
            f"({end_sample / info.sample_rate:.3f} s of {total / info.sample_rate:.3f} s)"
        )
    return AudioInfo("flac", _seconds(total / info.sample_rate), info.sample_rate, info.channels)


def _last_flac_frame_end(file: SparseFile, info: object) -> int:
    """The sample number just after the last frame, found from the end of the file: the last
    position holding a frame header with a valid CRC-8 whose frame, to the end of the file,
    passes its CRC-16. A cut file has no such frame, or one that ends early.

    Candidates are found by the sync code (``FF F8``/``FF F9``, a C search), not byte by byte;
    the CRC-16 of each is charged to a ``Budget``, so a file of valid headers costs a bounded
    multiple of the window however large the ``max_framesize`` it declares."""
    max_frame = getattr(info, "max_framesize", 0) or 0
    window = min(file.size, max(TAIL_BYTES, min(2 * max_frame + 64, FLAC_WINDOW_MAX)))
    tail = file.range(file.size - window, file.size)
    if len(tail) >= 128 and tail[-128:-125] == b"TAG":  # an ID3v1 tag some taggers append
        tail = tail[:-128]
    budget = Budget(window)
    stored = int.from_bytes(tail[-2:], "big")
    view = memoryview(tail)
    fixed_block = getattr(info, "max_blocksize", 0)
    syncs = [m.start() for m in _FLAC_SYNC.finditer(tail, 0, len(tail) - 2)]
    for pos in reversed(syncs):
        header = _flac_frame_header(tail, pos, fixed_block)
        if header is not None:
            budget.spend(len(tail) - 2 - pos, "FLAC frame")
            if _crc16(view[pos:-2]) == stored:
                first_sample, block_size = header
                return first_sample + block_size
    raise BadAudio("truncated: no complete FLAC frame at the end of the file")


def _flac_frame_header(buf: bytes, p: int, fixed_block: int) -> tuple[int, int] | None:
    """(first sample, block size) of the frame header at ``p``, or None when it is not one."""
    if p + 6 > len(buf) or buf[p + 1] not in (0xF8, 0xF9):
        return None
    bs_code, sr_code = buf[p + 2] >> 4, buf[p + 2] & 0x0F
    channels, sample_size, reserved = buf[p + 3] >> 4, (buf[p + 3] >> 1) & 7, buf[p + 3] & 1
    if bs_code == 0 or sr_code == 15 or channels > 10 or reserved:
        return None
    q = p + 4
    lead = buf[q]
    extra = next((n for n in range(7) if not (lead << n) & 0x80), 7)
    if extra == 1 or extra > 7:
        return None
    length = 1 if extra == 0 else extra
    if q + length > len(buf):
        return None
    number = lead & (0x7F >> length) if length > 1 else lead
    for byte in buf[q + 1 : q + length]:
        if byte & 0xC0 != 0x80:
            return None
        number = (number << 6) | (byte & 0x3F)
    q += length
    if bs_code == 1:
        block = 192
    elif 2 <= bs_code <= 5:
        block = 576 << (bs_code - 2)
    elif bs_code == 6:
        block, q = buf[q] + 1, q + 1
    elif bs_code == 7:
        block, q = int.from_bytes(buf[q : q + 2], "big") + 1, q + 2
    else:
        block = 256 << (bs_code - 8)
    q += {12: 1, 13: 2, 14: 2}.get(sr_code, 0)
    if q >= len(buf) or _crc8(buf[p:q]) != buf[q]:
        return None
    del sample_size
    variable = buf[p + 1] == 0xF9
    first = number if variable else number * (fixed_block or block)
    return first, block


_FLAC_SYNC = re.compile(b"\xff[\xf8\xf9]")  # a frame header's first two bytes
_CRC8 = anycrc.Model("CRC8-SMBUS")  # FLAC frame header: poly 0x07, init 0
_CRC16 = anycrc.Model("CRC16-UMTS")  # FLAC frame: poly 0x8005, init 0, not reflected
_CRC32_OGG = anycrc.CRC(width=32, poly=0x04C11DB7, init=0, refin=False, refout=False, xorout=0)


class Budget:
    """How many bytes the tail searches may still CRC: ``CRC_WORK_FACTOR`` times the window.
    A real file's last frame or page is the first or second candidate from the end, so it
    spends about one frame; a file crafted to hold thousands of plausible candidates runs out
    and is refused, after work proportional to what was read."""

    def __init__(self, window: int) -> None:
        self.left = CRC_WORK_FACTOR * max(window, 1)

    def spend(self, n: int, what: str) -> None:
        self.left -= n
        if self.left < 0:
            raise BadAudio(f"truncated: no complete {what} at the end of the file")


def _crc8(data: bytes) -> int:
    return int(_CRC8.calc(data))


def _crc16(data: bytes | memoryview) -> int:
    return int(_CRC16.calc(data))


def _ogg_crc_ok(page: bytes) -> bool:
    zeroed = page[:22] + b"\0\0\0\0" + page[26:]
    return int(_CRC32_OGG.calc(zeroed)) == int.from_bytes(page[22:26], "little")
