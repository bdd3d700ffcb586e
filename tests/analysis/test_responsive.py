"""A bulk run of 2,000 calls against a slow model keeps the API answering and never has more
model requests in flight than the concurrency limit. Generous bounds: the figures are
``bench/analysis.py``'s."""

from __future__ import annotations

import asyncio
import statistics
import threading
import time
from datetime import UTC, datetime, timedelta

import pytest

from kalimera.dev.poller import run_consumer
from kalimera.services import Services
from tests.conftest import Server, Tenant
from tests.support.analysis import drain_with, seed_ended_calls
from tests.support.calls import make_agent, with_services
from tests.support.fake_openai import FakeOpenAI
from tests.support.settings import settings_with

pytestmark = pytest.mark.slow

CALLS = 2_000
LATENCY = 0.3
LIMIT = 4  # KALIMERA_LLM_CONCURRENCY's default
WORK_SECONDS = 6


def test_the_api_answers_while_a_run_of_2000_calls_is_analysed(
    server: Server, tenant: Tenant, settings_env: dict[str, str]
) -> None:
    agent_id = make_agent(server.settings, tenant.id)
    with_services(
        server.settings,
        lambda s: seed_ended_calls(s, tenant_id=tenant.id, agent_id=agent_id, n=CALLS),
    )
    drain_with(server.settings)  # what earlier tests left in the queue
    fake = FakeOpenAI(api_key="test-key", latency=LATENCY).start()
    model = settings_with(
        settings_env,
        KALIMERA_LLM_BASE_URL=fake.base_url,
        KALIMERA_LLM_API_KEY="test-key",
        KALIMERA_LLM_MODEL="fake-gpt",
    )
    stop = threading.Event()

    def consumer() -> None:  # one instance of the queue trigger, with its default settings
        async def work(services: Services) -> None:
            task = asyncio.create_task(run_consumer(services))
            while not stop.is_set():
                await asyncio.sleep(0.1)
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)

        with_services(model, work)

    today = datetime.now(UTC).date()
    span = {"since": str(today - timedelta(days=1)), "until": str(today)}
    started = time.monotonic()
    run = tenant.client.post(f"/kalimera/ai-agent/{agent_id}/analysis-runs", json=span)
    posted = time.monotonic() - started
    assert run.status_code == 202, run.text
    assert run.json()["total"] == CALLS
    run_id = run.json()["id"]
    worker = threading.Thread(target=consumer)
    worker.start()
    waits: list[float] = []
    try:
        deadline = time.monotonic() + WORK_SECONDS
        while time.monotonic() < deadline:
            t0 = time.monotonic()
            listed = tenant.client.get(
                "/kalimera/conversations", params={"agent_id": str(agent_id), "limit": 20}
            )
            waits.append(time.monotonic() - t0)
            assert listed.status_code == 200
            time.sleep(0.1)
        progress = tenant.client.get(f"/kalimera/analysis-runs/{run_id}").json()
        cancelled = tenant.client.delete(f"/kalimera/analysis-runs/{run_id}").json()
    finally:
        stop.set()
        worker.join()
        fake.stop()
    drain_with(server.settings)  # the cancelled items' messages: ignored
    assert posted < 5
    assert progress["done"] > 0
    assert cancelled["status"] == "cancelled"
    assert fake.max_in_flight <= LIMIT
    assert statistics.median(waits) < 1.0, waits
    assert max(waits) < 5.0, waits
