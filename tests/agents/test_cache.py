"""The Redis cache: masked documents only, invalidated by every write, never a dependency."""

import subprocess
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
import redis

from kalimera.auth import Scope
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


def _answer(response: httpx.Response) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
    """Status, headers in order (but the date and this request's id) and body."""
    volatile = {b"date", b"x-request-id"}
    headers = [(k.lower(), v) for k, v in response.headers.raw if k.lower() not in volatile]
    return response.status_code, headers, response.content


def test_a_cached_read_answers_exactly_as_the_route_does(server: Server, tenant: Tenant) -> None:
    # A token's first request is authenticated by the route (its principal is not cached yet);
    # the next ones are answered in front of the router (CachedAgentReads): the same answers.
    agent_id = create(tenant.client, body=secret_body(planted()))
    path = f"{server.url}/kalimera/ai-agent/{agent_id}"
    tag = tenant.client.get(path).headers["etag"]  # the agent is cached from here on
    for extra in ({}, {"If-None-Match": tag}, {"If-None-Match": '"stale", ' + tag}):
        headers = {"Authorization": f"Bearer {make_token(server.settings, tenant.id)}", **extra}
        by_route, by_shortcut = (httpx.get(path, headers=headers) for _ in range(2))
        assert _answer(by_shortcut) == _answer(by_route)
        assert by_shortcut.status_code == (304 if extra else 200)
        assert by_shortcut.headers["x-request-id"] != by_route.headers["x-request-id"]


def test_a_cached_read_is_the_callers_tenants_only(
    server: Server, new_tenant: Callable[..., Tenant]
) -> None:
    owner, other = new_tenant(), new_tenant()
    agent_id = create(owner.client)
    path = f"/kalimera/ai-agent/{agent_id}"
    assert owner.client.get(path).status_code == 200  # cached under the owner's tenant
    for _ in range(2):  # the other's token is in the token cache from the first request on
        answer = other.client.get(path)
        assert answer.status_code == 404
        assert answer.headers["content-type"] == "application/problem+json"


def test_a_cached_read_without_the_scope_is_refused(
    server: Server, new_tenant: Callable[..., Tenant]
) -> None:
    owner = new_tenant()
    agent_id = create(owner.client)
    path = f"/kalimera/ai-agent/{agent_id}"
    assert owner.client.get(path).status_code == 200
    token = make_token(server.settings, owner.id, scopes=(Scope.CONTACTS_READ,))
    for _ in range(2):
        answer = httpx.get(server.url + path, headers={"Authorization": f"Bearer {token}"})
        assert answer.status_code == 403
