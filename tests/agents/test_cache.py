"""The Redis cache: masked documents only, invalidated by every write, never a dependency."""

import subprocess
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import redis

from kalimera.dev.localstack import LocalStack
from kalimera.settings import Settings
from tests.agents.conftest import create, planted, secret_body
from tests.conftest import Server, Tenant, make_token
from tests.support.settings import settings_with


def test_delete_then_get_is_404_at_once(tenant: Tenant, raw_redis: redis.Redis) -> None:
    agent_id = create(tenant.client)
    path = f"/kalimera/ai-agent/{agent_id}"
    assert tenant.client.get(path).status_code == 200
    assert raw_redis.exists(f"kalimera:agent:{tenant.id}:{agent_id}")
    assert tenant.client.delete(path).status_code == 200
    assert tenant.client.get(path).status_code == 404
    assert tenant.client.delete(path).status_code == 404


def test_update_then_get_shows_the_new_values_at_once(tenant: Tenant) -> None:
    agent_id = create(tenant.client)
    path = f"/kalimera/ai-agent/{agent_id}"
    first = tenant.client.get(path)
    assert tenant.client.get(path).content == first.content  # served from the cache

    assert tenant.client.put(path, json={"name": "Renamed", "azure": {"Region": "b"}}).is_success
    agent = tenant.client.get(path).json()
    assert agent["name"] == "Renamed"
    assert agent["azure"] == {"Region": "b"}

    assert tenant.client.put(f"{path}/azure", json={"Region": "c"}).is_success
    second = tenant.client.get(path)
    assert second.json()["azure"] == {"Region": "c"}
    assert second.headers["etag"] != first.headers["etag"]


@pytest.fixture
def private_redis(tmp_path: Path) -> Iterator[tuple[int, subprocess.Popen[bytes]]]:
    with LocalStack(tmp_path) as stack:
        url, proc = stack.start_redis()
        yield int(url.rsplit(":", 1)[1].split("/")[0]), proc


def test_reads_and_writes_succeed_when_redis_stops(
    settings: Settings,
    settings_env: dict[str, str],
    private_redis: tuple[int, subprocess.Popen[bytes]],
) -> None:
    port, redis_server = private_redis
    server = Server(settings_with(settings_env, REDIS_URL=f"redis://127.0.0.1:{port}/0"))
    server.start()
    tenant_id = uuid.uuid4()
    token = make_token(settings, tenant_id)
    try:
        with httpx.Client(
            base_url=server.url, headers={"Authorization": f"Bearer {token}"}, timeout=10
        ) as client:
            agent_id = create(client, secret_body(planted()))
            path = f"/kalimera/ai-agent/{agent_id}"
            assert client.get(path).status_code == 200
            assert redis.Redis(port=port).exists(f"kalimera:agent:{tenant_id}:{agent_id}")

            # Readers in flight while Redis dies: every one of their requests succeeds.
            stop = threading.Event()
            statuses: list[int] = []

            def reader() -> None:
                with httpx.Client(base_url=server.url, headers=client.headers, timeout=10) as c:
                    while not stop.is_set():
                        statuses.append(c.get(path).status_code)

            readers = [threading.Thread(target=reader) for _ in range(4)]
            for thread in readers:
                thread.start()
            time.sleep(0.3)
            redis_server.kill()
            time.sleep(1.0)
            stop.set()
            for thread in readers:
                thread.join()
            assert len(statuses) > 20
            assert set(statuses) == {200}

            for i in range(20):
                started = time.monotonic()
                assert client.get(path).status_code == 200
                assert client.put(f"{path}/Azure", json={"Region": f"r{i}"}).status_code == 200
                assert client.get(path).json()["azure"]["Region"] == f"r{i}"
                assert time.monotonic() - started < 2
            assert client.put(path, json={"name": "still"}).status_code == 200
            other = create(client)
            assert client.get(f"/kalimera/ai-agent/{other}").status_code == 200
            assert client.delete(path).status_code == 200
            assert client.get(path).status_code == 404
            assert client.get("/kalimera/ai-agent").json()["total"] == 1
    finally:
        server.stop()


def test_a_hung_redis_costs_time_not_failures(
    settings: Settings, settings_env: dict[str, str], blackhole: int
) -> None:
    # Redis accepts the connection and never answers: slower than the 50 ms budget.
    server = Server(settings_with(settings_env, REDIS_URL=f"redis://127.0.0.1:{blackhole}/0"))
    server.start()
    token = make_token(settings, uuid.uuid4())
    try:
        with httpx.Client(
            base_url=server.url, headers={"Authorization": f"Bearer {token}"}, timeout=10
        ) as client:
            agent_id = create(client)
            path = f"/kalimera/ai-agent/{agent_id}"
            for i in range(10):
                started = time.monotonic()
                assert client.get(path).status_code == 200
                assert client.put(f"{path}/Azure", json={"Region": f"r{i}"}).status_code == 200
                assert client.get(path).json()["azure"] == {"Region": f"r{i}"}
                assert time.monotonic() - started < 1.5
    finally:
        server.stop()
