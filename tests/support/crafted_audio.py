"""Audio files crafted to make a probe work as hard as it can: valid headers repeated, huge
declared sizes. Shared by the hostile tests, the hypothesis suite and the fuzz run.

Each builder returns ``size`` bytes (or close to it) that start with the right magic, so the
probe gets past the sniff and into the parser.
"""

from __future__ import annotations

import struct

import anycrc

_CRC8 = anycrc.Model("CRC8-SMBUS")
_CRC32_OGG = anycrc.CRC(width=32, poly=0x04C11DB7, init=0, refin=False, refout=False, xorout=0)


def flac_streaminfo(*, max_framesize: int = 0xFFFFFF, total_samples: int = 0) -> bytes:
    """``fLaC`` and a STREAMINFO block (the last metadata block) declaring ``max_framesize``."""
    bits = (8000 << 44) | (0 << 41) | (15 << 36) | total_samples  # 8 kHz, mono, 16-bit
    info = struct.pack(">HH", 4096, 4096) + (16).to_bytes(3, "big")
    info += max_framesize.to_bytes(3, "big") + bits.to_bytes(8, "big") + bytes(16)
    return b"fLaC" + bytes([0x80, 0, 0, 34]) + info


def flac_frame_header(number: int = 0) -> bytes:
    """A frame header with a valid CRC-8 (fixed blocksize 4096, 8 kHz, mono, 16-bit)."""
    coded = _utf8_number(number)
    header = bytes([0xFF, 0xF8, 0xC4, 0x08]) + coded
    return header + bytes([int(_CRC8.calc(header))])


def flac_of_frame_headers(size: int, *, max_framesize: int = 0xFFFFFF) -> bytes:
    """A FLAC of nothing but valid frame headers after its STREAMINFO, ``size`` bytes: the probe's
    worst case (every header is a candidate for the last frame; no CRC-16 passes)."""
    head = flac_streaminfo(max_framesize=max_framesize)
    unit = flac_frame_header(0)
    body = unit * ((size - len(head)) // len(unit) + 1)
    return (head + body)[:size]


def _utf8_number(n: int) -> bytes:
    if n < 0x80:
        return bytes([n])
    if n < 0x800:
        return bytes([0xC0 | n >> 6, 0x80 | n & 0x3F])
    return bytes([0xE0 | n >> 12 & 0x0F, 0x80 | n >> 6 & 0x3F, 0x80 | n & 0x3F])


def ogg_page(
    body: bytes, *, granule: int = 0, flags: int = 0, serial: int = 1, seq: int = 0
) -> bytes:
    """One Ogg page holding ``body`` (< 64 KiB), with a valid CRC."""
    lacing = [255] * (len(body) // 255) + [len(body) % 255]
    header = struct.pack("<4sBBqIII", b"OggS", 0, flags, granule, serial, seq, 0)
    page = header + bytes([len(lacing)]) + bytes(lacing) + body
    crc = int(_CRC32_OGG.calc(page))
    return page[:22] + struct.pack("<I", crc) + page[26:]


def vorbis_identification() -> bytes:
    return b"\x01vorbis" + struct.pack("<IBIiii", 0, 1, 8000, 0, 0, 0) + bytes([0xB8, 1])


def opus_head() -> bytes:
    return b"OpusHead" + struct.pack("<BBHIhB", 1, 1, 312, 8000, 0, 0)


def ogg_of_pages(size: int, first_packet: bytes, *, huge_granule: bool = False) -> bytes:
    """A first page holding ``first_packet``, then empty valid pages (no end of stream) to
    ``size`` bytes: every page is a candidate for the last one."""
    pages = [ogg_page(first_packet, flags=0x02)]
    granule = 2**62 if huge_granule else 0
    seq = 1
    total = len(pages[0])
    while total < size:
        page = ogg_page(b"", granule=granule, seq=seq)
        pages.append(page)
        total += len(page)
        seq += 1
    return b"".join(pages)[:size]


def ogg_of_nested_pages(size: int, first_packet: bytes) -> bytes:
    """Pages whose bodies hold page headers: many ``OggS`` whose declared lengths reach the end."""
    first = ogg_page(first_packet, flags=0x02)
    inner = ogg_page(b"\0" * 200, flags=0x04)
    return (first + inner * ((size - len(first)) // len(inner) + 1))[:size]


def wav_of_chunks(size: int) -> bytes:
    """A RIFF/WAVE declaring 4 GiB, then empty chunks and never a data chunk."""
    head = b"RIFF" + struct.pack("<I", 0xFFFFFFFF) + b"WAVE"
    chunk = b"junk" + struct.pack("<I", 0)
    return (head + chunk * ((size - len(head)) // len(chunk) + 1))[:size]


def wav_huge_data(size: int) -> bytes:
    """A valid fmt chunk, then a data chunk declaring 4 GiB."""
    fmt = struct.pack("<HHIIHH", 1, 1, 8000, 16000, 2, 16)
    head = b"RIFF" + struct.pack("<I", 0xFFFFFFFF) + b"WAVE"
    head += b"fmt " + struct.pack("<I", len(fmt)) + fmt + b"data" + struct.pack("<I", 0xFFFFFFFF)
    return (head + bytes(size))[:size]


def mp3_of_frame_headers(size: int) -> bytes:
    """MPEG-1 layer III sync headers (128 kbit/s, 44.1 kHz) back to back, no frame whole."""
    return (b"\xff\xfb\x90\x00" * (size // 4 + 1))[:size]


def mp3_huge_id3(size: int) -> bytes:
    """An ID3v2 tag declaring the largest size a tag may have, then frame headers."""
    tag = b"ID3\x04\x00\x00" + bytes([0x7F, 0x7F, 0x7F, 0x7F])
    return (tag + mp3_of_frame_headers(size))[:size]


CRAFTED = {
    "flac-headers": ("flac", flac_of_frame_headers),
    "ogg-vorbis-pages": ("ogg", lambda n: ogg_of_pages(n, vorbis_identification())),
    "ogg-opus-pages": ("ogg", lambda n: ogg_of_pages(n, opus_head(), huge_granule=True)),
    "ogg-vorbis-nested": ("ogg", lambda n: ogg_of_nested_pages(n, vorbis_identification())),
    "ogg-opus-nested": ("ogg", lambda n: ogg_of_nested_pages(n, opus_head())),
    "wav-chunks": ("wav", wav_of_chunks),
    "wav-huge-data": ("wav", wav_huge_data),
    "mp3-headers": ("mp3", mp3_of_frame_headers),
    "mp3-huge-id3": ("mp3", mp3_huge_id3),
}
