"""The Redis cache: masked documents only, invalidated by every write, never a dependency."""

import secrets
import subprocess
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis
from pydantic import SecretStr
from starlette.middleware.cors import CORSMiddleware
from starlette.responses import Response

from kalimera.agents import service
from kalimera.agents.routes import AgentAnswer, CachedAgentReads
from kalimera.auth import Scope
from kalimera.deps import not_modified
from kalimera.dev.localstack import LocalStack
from kalimera.gateway import GatewayCheck
from kalimera.limits import BodyGuard
from kalimera.settings import Settings
from kalimera.telemetry import RequestIdMiddleware
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


@pytest.mark.parametrize("if_none_match", [None, '"7"', '"6", W/"7"', '"6"'])
def test_the_agents_answer_is_what_a_starlette_response_makes_of_it(
    if_none_match: str | None,
) -> None:
    # AgentAnswer builds its headers directly, for the route and the cached read alike: they
    # stay those of the generic Response (and deps.not_modified's 304) they replace.
    rendered = service.Rendered('"7"', b'{"id":"x"}')
    fast = AgentAnswer(rendered, if_none_match)
    generic = not_modified(if_none_match, rendered.etag) or Response(
        rendered.body, media_type="application/json", headers={"ETag": rendered.etag}
    )
    assert (fast.status_code, fast.raw_headers, fast.body) == (
        generic.status_code,
        generic.raw_headers,
        generic.body,
    )


GATEWAY_SECRET = secrets.token_urlsafe(48)
CONSOLE = "https://console.example.com"


class Caller:
    """A server and the headers every request to it carries (API Management's secret)."""

    def __init__(self, server: Server, headers: dict[str, str]) -> None:
        self.server = server
        self.headers = headers

    def get(self, path: str, token: str, **headers: str) -> httpx.Response:
        auth = {"Authorization": f"Bearer {token}"}
        return httpx.get(self.server.url + path, headers={**self.headers, **auth, **headers})


@pytest.fixture(scope="module")
def guarded(settings: Settings) -> Iterator[Server]:
    """The app as it runs behind API Management (the gateway secret), a console origin allowed:
    every middleware in front of FastAPI is on."""
    srv = Server(
        settings.model_copy(
            update={"gateway_secret": SecretStr(GATEWAY_SECRET), "cors_origins": (CONSOLE,)}
        )
    )
    srv.start()
    yield srv
    srv.stop()


@pytest.fixture(params=["plain", "guarded"])
def caller(request: pytest.FixtureRequest, server: Server) -> Caller:
    """The default app, and the app with the gateway check and CORS on."""
    if request.param == "plain":
        return Caller(server, {})
    return Caller(request.getfixturevalue("guarded"), {"X-Kalimera-Gateway": GATEWAY_SECRET})


def test_the_cached_read_and_the_middleware_outside_it_run_in_front_of_fastapi(
    guarded: Server,
) -> None:
    # In the order they were added (the outermost first), each once: the request ids, the
    # gateway check and CORS for every request, whether the cached read answers it or not.
    front = [m.cls for m in guarded.app.front_middleware]
    assert front == [CORSMiddleware, GatewayCheck, RequestIdMiddleware, CachedAgentReads]
    assert [m.cls for m in guarded.app.user_middleware] == [BodyGuard]


@pytest.fixture
def route_reads(monkeypatch: pytest.MonkeyPatch) -> list[object]:
    """The agent ids ``get_agent`` read: a read answered in front of FastAPI adds none."""
    reads: list[object] = []
    read = service.read

    async def counted(**kwargs: Any) -> service.Rendered:
        reads.append(kwargs["agent_id"])
        return await read(**kwargs)

    monkeypatch.setattr(service, "read", counted)
    return reads


def _owned_agent(caller: Caller, tenant_id: uuid.UUID) -> tuple[str, str]:
    """An agent of ``tenant_id`` (with secrets), cached: its path and ETag."""
    token = make_token(caller.server.settings, tenant_id)
    with httpx.Client(
        base_url=caller.server.url, headers={**caller.headers, "Authorization": f"Bearer {token}"}
    ) as client:
        path = f"/kalimera/ai-agent/{create(client, body=secret_body(planted()))}"
        tag = client.get(path).headers["etag"]  # the agent is cached from here on
    return path, tag


@pytest.mark.parametrize(
    "extra",
    ["none", "if-none-match", "stale and current tags", "origin", "request id"],
)
def test_a_cached_read_answers_exactly_as_the_route_does(
    caller: Caller, route_reads: list[object], extra: str
) -> None:
    # A token's first request is authenticated by the route (its principal is not cached yet);
    # the next ones are answered in front of FastAPI (CachedAgentReads): the same answers, with
    # what the request-id, gateway and CORS middleware add to them.
    tenant_id = uuid.uuid4()
    path, tag = _owned_agent(caller, tenant_id)
    headers = {
        "none": {},
        "if-none-match": {"If-None-Match": tag},
        "stale and current tags": {"If-None-Match": '"stale", ' + tag},
        "origin": {"Origin": CONSOLE},
        "request id": {"X-Request-ID": "apim-7f3a.1"},
    }[extra]
    token = make_token(caller.server.settings, tenant_id)
    route_reads.clear()
    by_route = caller.get(path, token, **headers)
    assert len(route_reads) == 1
    by_shortcut = caller.get(path, token, **headers)
    assert len(route_reads) == 1  # not read by the route: answered in front of FastAPI

    assert _answer(by_shortcut) == _answer(by_route)
    assert by_shortcut.status_code == (304 if "If-None-Match" in headers else 200)
    if "X-Request-ID" in headers:
        assert by_shortcut.headers["x-request-id"] == by_route.headers["x-request-id"]
        assert by_shortcut.headers["x-request-id"] == "apim-7f3a.1"
    else:
        assert by_shortcut.headers["x-request-id"] != by_route.headers["x-request-id"]
        assert len(by_shortcut.headers["x-request-id"]) == 32
    if "Origin" in headers and caller.headers:
        assert by_shortcut.headers["access-control-allow-origin"] == CONSOLE
        assert "ETag" in by_shortcut.headers["access-control-expose-headers"]


def test_a_cached_read_that_skipped_the_gateway_is_refused_as_any_request_is(
    guarded: Server, route_reads: list[object]
) -> None:
    caller = Caller(guarded, {"X-Kalimera-Gateway": GATEWAY_SECRET})
    tenant_id = uuid.uuid4()
    path, _ = _owned_agent(caller, tenant_id)
    token = make_token(guarded.settings, tenant_id)
    assert caller.get(path, token).status_code == 200  # the token is cached too
    route_reads.clear()

    skipped = Caller(guarded, {"Origin": CONSOLE})
    refused = skipped.get(path, token)
    listing = skipped.get("/kalimera/ai-agent", token)
    assert refused.status_code == 403
    assert refused.headers["content-type"] == "application/problem+json"
    assert refused.headers["access-control-allow-origin"] == CONSOLE
    assert _answer(refused) == _answer(listing)
    assert route_reads == []


def test_a_preflight_for_an_agent_is_answered_as_for_any_route(guarded: Server) -> None:
    preflight = {
        "Origin": CONSOLE,
        "Access-Control-Request-Method": "GET",
        "Access-Control-Request-Headers": "authorization,if-none-match",
    }
    agent = httpx.options(f"{guarded.url}/kalimera/ai-agent/{uuid.uuid4()}", headers=preflight)
    listing = httpx.options(f"{guarded.url}/kalimera/contact", headers=preflight)
    assert agent.status_code == 200
    assert agent.headers["access-control-allow-origin"] == CONSOLE
    assert _answer(agent) == _answer(listing)


@pytest.mark.parametrize("refusal", ["another tenant's id", "a token without the scope"])
def test_a_read_the_cached_path_may_not_answer_is_answered_by_the_route(
    caller: Caller, route_reads: list[object], refusal: str
) -> None:
    owner = uuid.uuid4()
    path, _ = _owned_agent(caller, owner)
    token = (
        make_token(caller.server.settings, uuid.uuid4())
        if refusal == "another tenant's id"
        else make_token(caller.server.settings, owner, scopes=(Scope.CONTACTS_READ,))
    )
    route_reads.clear()
    # The first request authenticates the token; from the second on it is in the token cache.
    first, second = (caller.get(path, token, Origin=CONSOLE) for _ in range(2))
    assert _answer(second) == _answer(first)
    assert second.headers["content-type"] == "application/problem+json"
    if refusal == "another tenant's id":
        assert second.status_code == 404
        assert len(route_reads) == 2  # both read by the route: the other tenant's key misses
    else:
        assert second.status_code == 403
        assert route_reads == []  # refused before any read
