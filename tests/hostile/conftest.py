"""The hostile-input suite's tools: the app in a uvicorn process of its own (so its memory and
its event loop are measured apart from the test's), and a raw HTTP client that streams a body
while it listens, as a client that sends more than it should does.
"""

from __future__ import annotations

import os
import re
import socket
import subprocess
import threading
import time
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from kalimera.auth import DEFAULT_SCOPES, Scope
from kalimera.dev.localstack import free_port, start_uvicorn
from kalimera.settings import Settings
from tests.conftest import make_token

MiB = 1024 * 1024


@dataclass
class ProcessServer:
    """``kalimera.app:create_app`` under uvicorn, one worker, in its own process."""

    url: str
    port: int
    proc: subprocess.Popen[bytes]

    def status_kib(self, field: str) -> int:
        text = Path(f"/proc/{self.proc.pid}/status").read_text()
        match = re.search(rf"^{field}:\s+(\d+) kB", text, re.MULTILINE)
        assert match is not None
        return int(match[1])

    def reset_peak_rss(self) -> int:
        """Reset the process's peak RSS (VmHWM) to its current RSS; returns it in KiB."""
        Path(f"/proc/{self.proc.pid}/clear_refs").write_text("5")
        return self.status_kib("VmHWM")


@pytest.fixture(scope="session")
def process_server(settings_env: dict[str, str], settings: Settings) -> Iterator[ProcessServer]:
    del settings  # depends on it for the storage containers it creates
    port = free_port()
    proc = start_uvicorn(
        "kalimera.app:create_app",
        port=port,
        env={**os.environ, **settings_env, "KALIMERA_LOG_LEVEL": "WARNING"},
        extra=("--factory",),
    )
    yield ProcessServer(f"http://127.0.0.1:{port}", port, proc)
    proc.terminate()
    proc.wait(timeout=15)


@pytest.fixture(scope="session")
def process_token(settings: Settings) -> str:
    return make_token(settings, uuid.uuid4(), (*DEFAULT_SCOPES, Scope.AGENTS_RUNTIME))


@dataclass
class Answer:
    status: int
    headers: dict[str, str]
    body: bytes
    seconds: float  # from the first byte sent to the whole answer read
    sent: int  # body bytes the server took before it answered or closed


def stream_request(
    port: int,
    method: str,
    path: str,
    headers: dict[str, str],
    body: Iterable[bytes],
    *,
    timeout: float = 30,
) -> Answer:
    """Send the request head, then the body piece by piece, while another thread reads: stop
    sending as soon as the answer is complete or the server closes. Chunked encoding unless the
    headers declare a Content-Length."""
    chunked = not any(k.lower() == "content-length" for k in headers)
    head = f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
    head += "".join(f"{k}: {v}\r\n" for k, v in headers.items())
    if chunked:
        head += "Transfer-Encoding: chunked\r\n"
    sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    received = bytearray()
    done = threading.Event()
    finished_at: list[float] = []

    def read() -> None:
        try:
            while not _complete(received):
                data = sock.recv(65536)
                if not data:
                    break
                received.extend(data)
        except OSError:
            pass
        finished_at.append(time.monotonic())
        done.set()

    reader = threading.Thread(target=read, daemon=True)
    started = time.monotonic()
    sock.sendall((head + "\r\n").encode())
    reader.start()
    sent = 0
    try:
        for piece in body:
            if done.is_set():
                break
            sock.sendall(f"{len(piece):x}\r\n".encode() + piece + b"\r\n" if chunked else piece)
            sent += len(piece)
        else:
            if chunked:
                sock.sendall(b"0\r\n\r\n")
    except OSError:
        pass  # the server closed: its answer, if any, is what counts
    done.wait(timeout)
    sock.close()
    reader.join(1)
    assert finished_at, f"no answer within {timeout} s"
    return _parse(bytes(received), finished_at[0] - started, sent)


def _complete(data: bytearray) -> bool:
    head, sep, rest = bytes(data).partition(b"\r\n\r\n")
    if not sep:
        return False
    match = re.search(rb"(?im)^content-length:\s*(\d+)", head)
    return match is not None and len(rest) >= int(match[1])


def _parse(data: bytes, seconds: float, sent: int) -> Answer:
    head, _, rest = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    assert lines[0].startswith("HTTP/1.1 "), f"no HTTP answer: {data[:200]!r}"
    headers = {}
    for line in lines[1:]:
        key, _, value = line.partition(":")
        headers[key.strip().lower()] = value.strip()
    return Answer(int(lines[0].split()[1]), headers, rest, seconds, sent)


def pieces(total: int, size: int = 256 * 1024, fill: bytes = b"[") -> Iterator[bytes]:
    """``total`` bytes in pieces of ``size``, made as they are sent (never whole in memory)."""
    piece = fill * size
    left = total
    while left > 0:
        yield piece[: min(size, left)]
        left -= size


def json_filler(total: int) -> Iterator[bytes]:
    """A JSON-looking body of ``total`` bytes: an object with one huge string."""
    yield b'{"name": "'
    yield from pieces(total - 12, fill=b"a")
    yield b'"}'
