"""The one size cap on a file read in pieces: the CSV import's, the recording upload's.

The body guard (``kalimera.limits``) bounds a whole request body, before and as it arrives. A
file has a cap of its own, below the body's (a form around it takes room, and the file may come
from elsewhere than a request: a CLI, a test): this is where that cap is counted and refused,
with ``kalimera.errors.TooLarge`` (413), so no caller writes the check, or its message, again.

Use it in one of two ways::

    cap = SizeCap(limit=2**20, detail="The file is larger than 1 MiB")
    async for chunk in stream:       # a file parsed as it streams (a multipart push parser)
        cap.take(chunk)              # TooLarge once the bytes seen pass ``limit``
        ...

    data = await read_capped(stream, cap)   # the whole file, as bytes, under the cap

``take`` returns its chunk, so it can wrap a value in place (``data = cap.take(await f.read())``).
A cap counts one file: make one per file read.
"""

from __future__ import annotations

from collections.abc import AsyncIterable
from dataclasses import dataclass

from kalimera.errors import TooLarge


@dataclass(slots=True)
class SizeCap:
    """Counts a file's bytes; ``detail`` is what the caller is told when they pass ``limit``."""

    limit: int
    detail: str
    seen: int = 0

    def take(self, chunk: bytes) -> bytes:
        """Count ``chunk``; ``TooLarge`` when the file is now over the limit."""
        self.seen += len(chunk)
        if self.seen > self.limit:
            raise TooLarge(self.detail)
        return chunk


async def read_capped(stream: AsyncIterable[bytes], cap: SizeCap) -> bytes:
    """The whole of ``stream``, refused (``TooLarge``) as soon as it passes the cap: never more
    than ``cap.limit`` bytes (and one chunk) held."""
    return b"".join([cap.take(chunk) async for chunk in stream])
