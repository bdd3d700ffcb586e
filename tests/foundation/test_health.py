import time

import httpx
import pytest

from kalimera.auth import new_token
from kalimera.dev.localstack import free_port
from tests.conftest import Server
from tests.support.settings import settings_with


def test_health_reports_every_check(anon: httpx.Client) -> None:
    response = anon.get("/kalimera/health")
    assert response.status_code == 200
    assert response.json() == {
        "status": "ok",
        "checks": {"postgres": "ok", "redis": "ok", "storage": "ok"},
    }


def test_liveness_answers_without_a_pool_connection(anon: httpx.Client, server: Server) -> None:
    pool = server.app.state.services.pool
    before = pool.get_stats().get("requests_num", 0)
    for _ in range(20):
        response = anon.get("/kalimera/health/live")
        assert response.status_code == 200
        assert response.json() == {"status": "ok"}
    assert pool.get_stats().get("requests_num", 0) == before


def test_readiness_checks_at_most_once_a_second(anon: httpx.Client, server: Server) -> None:
    pool = server.app.state.services.pool
    before = pool.get_stats().get("requests_num", 0)
    started = time.monotonic()
    answered = 0
    while time.monotonic() - started < 0.5:
        assert anon.get("/kalimera/health").status_code == 200
        answered += 1
    assert answered > 5
    assert pool.get_stats().get("requests_num", 0) - before <= 1


@pytest.mark.parametrize("failure", ["refused", "hung"])
def test_postgres_down_answers_503_within_2s(
    settings_env: dict[str, str], blackhole: int, failure: str
) -> None:
    port = free_port() if failure == "refused" else blackhole
    settings = settings_with(settings_env, DATABASE_URL=f"postgresql://postgres@127.0.0.1:{port}/x")
    server = Server(settings)
    server.start()
    try:
        started = time.monotonic()
        response = httpx.get(f"{server.url}/kalimera/health", timeout=10)
        elapsed = time.monotonic() - started
        assert response.status_code == 503
        assert response.json()["checks"]["postgres"] == "down"
        assert response.headers["retry-after"]
        assert elapsed < 2.0

        started = time.monotonic()
        # A well-formed token needs the database to tell; a malformed one would not (401).
        probe = httpx.get(
            f"{server.url}/kalimera/_auth-probe",
            headers={"Authorization": f"Bearer {new_token()}"},
            timeout=10,
        )
        assert probe.status_code == 503
        assert probe.headers["content-type"] == "application/problem+json"
        assert probe.headers["retry-after"]
        assert time.monotonic() - started < 2.5
    finally:
        server.stop()


def test_redis_down_degrades_but_serves(settings_env: dict[str, str]) -> None:
    settings = settings_with(settings_env, REDIS_URL=f"redis://127.0.0.1:{free_port()}/0")
    server = Server(settings)
    server.start()
    try:
        response = httpx.get(f"{server.url}/kalimera/health", timeout=10)
        assert response.status_code == 200
        assert response.json()["status"] == "degraded"
        assert response.json()["checks"]["redis"] == "down"
    finally:
        server.stop()
