"""A service that hangs: a plugin (``pytest_plugins`` in tests/conftest.py), so every folder's
outage tests can ask for ``blackhole``."""

import socket
from collections.abc import Iterator

import pytest


@pytest.fixture
def blackhole() -> Iterator[int]:
    """A port that accepts TCP connections and never answers: a hung database."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(100)
    yield sock.getsockname()[1]
    sock.close()
