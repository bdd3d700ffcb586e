"""Webhook fixtures: a development-mode API (http and local receivers allowed), a receiver, and
the worker driven in-process as the dev runner drives it (relay, then each queued message)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from kalimera.auth import DEFAULT_SCOPES, Scope
from kalimera.dev.poller import WEBHOOKS, consume_message, receive
from kalimera.outbox import ensure_queues
from kalimera.services import Services
from kalimera.settings import Settings
from kalimera.webhooks import delivery
from tests.conftest import Server, Tenant
from tests.support.receiver import Receiver
from tests.support.settings import settings_with

TIMEOUT = 1.0  # seconds: the attempt's bound, lowered from 10 so a slow receiver costs little


@pytest.fixture(scope="session")
def dev_settings(settings_env: dict[str, str], settings: Settings) -> Settings:
    """Development mode (over ``settings``, which made the containers)."""
    return settings_with(
        settings_env,
        KALIMERA_ENV="development",
        KALIMERA_WEBHOOK_TIMEOUT_SECONDS=str(TIMEOUT),
    )


@pytest.fixture(scope="session")
def dev_server(dev_settings: Settings) -> Iterator[Server]:
    srv = Server(dev_settings)
    srv.start()
    yield srv
    srv.stop()


@pytest.fixture
def dev_tenant(dev_server: Server) -> Iterator[Tenant]:
    tenant = Tenant(dev_server, (*DEFAULT_SCOPES, Scope.AGENTS_RUNTIME))
    yield tenant
    tenant.client.close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver().start()
    yield r
    r.stop()


@pytest.fixture
def fast_retries(monkeypatch: pytest.MonkeyPatch) -> None:
    """The retry schedule in seconds instead of hours (the same number of tries)."""
    monkeypatch.setattr(delivery, "SCHEDULE", (1,) * len(delivery.SCHEDULE))
    monkeypatch.setattr(delivery, "JITTER", 0.0)


def create_endpoint(tenant: Tenant, url: str, **body: Any) -> dict[str, Any]:
    response = tenant.client.post("/kalimera/webhooks", json={"url": url, **body})
    assert response.status_code == 201, response.text
    return dict(response.json())


def start_call(tenant: Tenant) -> str:
    agent = tenant.client.post("/kalimera/ai-agent", json={"name": "A", "type": "inbound"})
    assert agent.status_code == 201, agent.text
    call = tenant.client.post(
        "/kalimera/conversations",
        json={"agent_id": agent.json()["id"], "profile_type": "inbound"},
    )
    assert call.status_code == 201, call.text
    return str(call.json()["id"])


def drain(
    settings: Settings,
    until: Callable[[], bool],
    *,
    timeout: float = 30.0,
    prepare: Callable[[Services], Any] | None = None,
) -> dict[str, int]:
    """Run the worker as the dev runner does (the relay's sweep, then every visible message of
    the webhooks queue) until ``until()`` holds; what became of the messages, by outcome."""
    outcomes: dict[str, int] = {}

    async def work() -> None:
        services = Services(settings)
        try:
            await ensure_queues(services.webhooks_queue, services.webhooks_poison_queue)
            if prepare is not None:
                await prepare(services)
            deadline = time.monotonic() + timeout
            while not until():
                assert time.monotonic() < deadline, f"not done in {timeout} s: {outcomes}"
                await delivery.sweep(services=services)
                messages = await receive(services, 16, WEBHOOKS)
                results = await asyncio.gather(
                    *(consume_message(services, m, retry_seconds=1, job=WEBHOOKS) for m in messages)
                )
                outcomes["messages"] = outcomes.get("messages", 0) + len(results)
                if not messages:
                    await asyncio.sleep(0.2)
        finally:
            await services.aclose()

    asyncio.run(work())
    return outcomes


def deliveries(tenant: Tenant, endpoint_id: str, **params: Any) -> list[dict[str, Any]]:
    response = tenant.client.get(
        f"/kalimera/webhooks/{endpoint_id}/deliveries", params={"limit": 100, **params}
    )
    assert response.status_code == 200, response.text
    return list(response.json()["items"])


def all_settled(tenant: Tenant, endpoint_id: str) -> Callable[[], bool]:
    def settled() -> bool:
        items = deliveries(tenant, endpoint_id)
        return bool(items) and all(d["status"] != "pending" for d in items)

    return settled
