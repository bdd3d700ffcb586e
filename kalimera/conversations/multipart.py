"""A ``multipart/form-data`` body read as it streams in: parts and their bytes, never the whole.

The route builds a ``Form`` from the request's byte stream and ``Content-Type`` (the only HTTP
it needs), so the upload below it reads parts without a web framework in its way. The body is
fed to python-multipart's push parser chunk by chunk; each chunk's events are handed on before
the next chunk is read, so memory stays flat whatever the file's size.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from kalimera.errors import Malformed

DRAIN_LIMIT = 64 * 1024 * 1024  # read and drop at most this much after refusing a body


@dataclass(frozen=True, slots=True)
class Part:
    """A part begins: its form name and its file name ("" when it has none)."""

    name: str
    filename: str


class PartEnd:
    """The current part is complete."""


END = PartEnd()
Event = Part | bytes | PartEnd


@dataclass
class _Parsed:
    """What the parser has reported since its events were last handed on."""

    events: list[Event] = field(default_factory=list)
    header_field: bytearray = field(default_factory=bytearray)
    header_value: bytearray = field(default_factory=bytearray)
    headers: dict[str, bytes] = field(default_factory=dict)

    def callbacks(self) -> dict[str, Any]:
        def on_part_begin() -> None:
            self.headers = {}

        def on_header_field(data: bytes, start: int, end: int) -> None:
            self.header_field += data[start:end]

        def on_header_value(data: bytes, start: int, end: int) -> None:
            self.header_value += data[start:end]

        def on_header_end() -> None:
            self.headers[self.header_field.decode("latin-1").lower()] = bytes(self.header_value)
            self.header_field.clear()
            self.header_value.clear()

        def on_headers_finished() -> None:
            self.events.append(_part(self.headers.get("content-disposition", b"")))

        def on_part_data(data: bytes, start: int, end: int) -> None:
            self.events.append(data[start:end])

        def on_part_end() -> None:
            self.events.append(END)

        return {
            "on_part_begin": on_part_begin,
            "on_header_field": on_header_field,
            "on_header_value": on_header_value,
            "on_header_end": on_header_end,
            "on_headers_finished": on_headers_finished,
            "on_part_data": on_part_data,
            "on_part_end": on_part_end,
        }


def _part(disposition: bytes) -> Part:
    from python_multipart.multipart import parse_options_header

    _, options = parse_options_header(disposition)
    return Part(
        name=options.get(b"name", b"").decode("utf-8", "replace"),
        filename=options.get(b"filename", b"").decode("utf-8", "replace"),
    )


class Form:
    """One request's multipart body: its events, read once, and what is left of it drained."""

    def __init__(self, stream: AsyncIterator[bytes], content_type: str | None) -> None:
        from python_multipart.multipart import parse_options_header

        self._stream = stream
        media_type, options = parse_options_header(content_type or "")
        boundary = options.get(b"boundary")
        self._boundary = boundary if media_type == b"multipart/form-data" else None

    @property
    def is_multipart(self) -> bool:
        """Whether the body is ``multipart/form-data`` with a boundary to split it by."""
        return bool(self._boundary)

    async def events(self) -> AsyncGenerator[Event, None]:
        """The parts' events as the body arrives; ``Malformed`` when it is not valid
        multipart."""
        from python_multipart.exceptions import MultipartParseError
        from python_multipart.multipart import MultipartParser

        assert self._boundary
        parsed = _Parsed()
        parser = MultipartParser(self._boundary, parsed.callbacks())  # type: ignore[arg-type]  # a TypedDict
        try:
            async for chunk in self._stream:
                parser.write(chunk)
                events, parsed.events = parsed.events, []
                for event in events:
                    yield event
            parser.finalize()
        except MultipartParseError:
            raise Malformed("The multipart body is malformed") from None

    async def drain(self) -> None:
        """Read and drop what the client is still sending (up to a bound), so that it reads the
        error instead of a reset connection."""
        dropped = 0
        try:
            async for chunk in self._stream:
                dropped += len(chunk)
                if dropped > DRAIN_LIMIT:
                    return
        except Exception:  # noqa: BLE001 - the stream may be consumed or cut already; the error stands
            return
