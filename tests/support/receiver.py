"""A real webhook receiver for the tests: an HTTP server on a free port that records every
request (headers and body) and answers as the test sets it (a status, a delay, a huge body, a
redirect), and that can be down (its port closed) and come back on the same port."""

from __future__ import annotations

import contextlib
import http.server
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from kalimera.dev.localstack import free_port


@dataclass
class Received:
    headers: dict[str, str]
    body: bytes
    at: float


@dataclass
class Behaviour:
    status: int = 200
    delay: float = 0.0  # seconds before answering (after recording the request)
    body: bytes = b"ok"
    stream_bytes: int = 0  # answer this many bytes (chunked), for a huge answer
    location: str | None = None
    # the first N requests hang (recorded, then no answer within the timeout): the receiver got
    # the event but the sender never learned it, so it sends it again
    hang_first: int = 0


@dataclass
class Receiver:
    port: int = field(default_factory=free_port)
    behaviour: Behaviour = field(default_factory=Behaviour)
    received: list[Received] = field(default_factory=list)
    streamed: list[int] = field(default_factory=list)  # bytes written per streamed answer
    _server: http.server.ThreadingHTTPServer | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    def start(self) -> Receiver:
        receiver = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *_: Any) -> None:
                pass

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                body = self.rfile.read(length)
                with receiver._lock:
                    receiver.received.append(
                        Received({k.lower(): v for k, v in self.headers.items()}, body, time.time())
                    )
                    hang = len(receiver.received) <= receiver.behaviour.hang_first
                b = receiver.behaviour
                if hang:
                    time.sleep(3)
                    return
                if b.delay:
                    time.sleep(b.delay)
                with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                    self._answer(b)

            def _answer(self, b: Behaviour) -> None:
                self.send_response(b.status)
                if b.location:
                    self.send_header("Location", b.location)
                if b.stream_bytes:
                    self.send_header("Content-Length", str(b.stream_bytes))
                    self.end_headers()
                    chunk = b"x" * 65536
                    sent = 0
                    try:
                        while sent < b.stream_bytes:
                            self.wfile.write(chunk)
                            sent += len(chunk)
                    finally:
                        receiver.streamed.append(sent)
                    return
                self.send_header("Content-Length", str(len(b.body)))
                self.end_headers()
                self.wfile.write(b.body)

        self._server = http.server.ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def ids(self) -> list[str]:
        return [r.headers["webhook-id"] for r in self.received]
