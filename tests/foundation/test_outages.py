"""Postgres stopped and started again under a running server: fast 503s, then recovery."""

import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from kalimera.dev.localstack import LocalStack, free_port
from kalimera.migrate import migrate
from tests.conftest import Server, make_token
from tests.support.settings import settings_with

pytestmark = pytest.mark.slow


@pytest.fixture
def private_postgres(tmp_path: Path) -> Iterator[tuple[LocalStack, str]]:
    with LocalStack(tmp_path) as stack:
        # Nothing answers on this port, so the stack starts a Postgres of its own.
        url = stack.postgres(f"postgresql://postgres@127.0.0.1:{free_port()}/kalimera")
        migrate(url)
        yield stack, url


def test_postgres_outage_answers_503_fast_and_recovers_without_restart(
    settings_env: dict[str, str], private_postgres: tuple[LocalStack, str]
) -> None:
    import uuid

    stack, url = private_postgres
    settings = settings_with(settings_env, DATABASE_URL=url, KALIMERA_AUTH_CACHE_SECONDS="0")
    token = make_token(settings, uuid.uuid4())
    server = Server(settings)
    server.start()
    headers = {"Authorization": f"Bearer {token}"}
    probe = f"{server.url}/kalimera/_auth-probe"
    try:
        assert httpx.get(probe, headers=headers).status_code == 200
        stack.stop_postgres()
        for _ in range(3):
            started = time.monotonic()
            response = httpx.get(probe, headers=headers, timeout=10)
            assert response.status_code == 503
            assert response.headers["retry-after"]
            assert time.monotonic() - started < 2.0
        health = httpx.get(f"{server.url}/kalimera/health", timeout=10)
        assert health.status_code == 503
        assert health.json()["checks"]["postgres"] == "down"

        stack.start_postgres()
        deadline = time.monotonic() + 10
        status = 0
        while status != 200 and time.monotonic() < deadline:
            status = httpx.get(probe, headers=headers, timeout=10).status_code
            time.sleep(0.1)
        assert status == 200
        assert httpx.get(f"{server.url}/kalimera/health").status_code == 200
    finally:
        server.stop()
