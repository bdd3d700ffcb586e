"""A bulk re-run of ``--calls`` calls against a model that takes ``--latency-ms`` to answer, through
the product's own path: ``POST /kalimera/ai-agent/{id}/analysis-runs`` on the API, the outbox and
its relay, the ``kalimera-analysis`` queue on Azurite, and one consumer instance (the dev runner's,
with host.json's batch size and the model client's default concurrency limit of 4).

Prints the calls analysed per second against the ideal, limit ÷ latency (4 / 0.3 s = 13.3/s),
and against what the model client alone gets from the same fake (its ceiling on this machine),
the most model requests ever in flight (never above the limit), and the p50/p95 of an API
``GET /kalimera/conversations`` before and during the run (the API stays responsive).

    .venv/bin/python -m bench.analysis [--calls 2000] [--latency-ms 300]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import subprocess
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench._stack import BenchStack, percentile  # noqa: E402
from kalimera.analysis.model import TranscriptLine, analyser_for  # noqa: E402
from kalimera.analysis.models import DEFAULT_PLAN  # noqa: E402
from kalimera.outbox import ensure_queues  # noqa: E402
from kalimera.services import Services  # noqa: E402
from kalimera.settings import load_settings  # noqa: E402
from tests.support.analysis import seed_ended_calls  # noqa: E402
from tests.support.fake_openai import FakeOpenAI  # noqa: E402

LIMIT = 4  # KALIMERA_LLM_CONCURRENCY's default
CLIENT_CALLS = 200  # the model client measured alone, first
KEY = "bench-key"


def get_ms(client: httpx.Client, path: str, params: dict[str, str]) -> float:
    started = time.perf_counter()
    response = client.get(path, params=params)
    response.raise_for_status()
    return (time.perf_counter() - started) * 1000


def run(calls: int, latency_ms: int) -> None:
    with BenchStack() as stack:
        # In this process (a thread of its own), so its count of requests in flight is at hand.
        fake = FakeOpenAI(api_key=KEY, latency=latency_ms / 1000).start()
        llm = {
            "KALIMERA_LLM_BASE_URL": fake.base_url,
            "KALIMERA_LLM_API_KEY": KEY,
            "KALIMERA_LLM_MODEL": "fake-gpt",
        }
        consumer = subprocess.Popen(
            [sys.executable, "-m", "bench._consumer"], cwd=ROOT, env=stack.process_env(**llm)
        )
        try:
            client_rate = client_alone(fake, min(calls, CLIENT_CALLS))
            measure(stack, calls, latency_ms, fake)
            print(
                f"the model client alone on the same fake: {client_rate:.1f} calls/s "
                f"({client_rate / (LIMIT / (latency_ms / 1000)):.0%} of the ideal)"
            )
        finally:
            consumer.send_signal(signal.SIGTERM)
            consumer.wait(timeout=30)
            fake.stop()


def client_alone(fake: FakeOpenAI, calls: int) -> float:
    """Calls per second of the model client by itself (no queue, no database): what the fake
    and the client's own work allow, the ceiling the pipeline is compared with."""
    settings = load_settings(
        KALIMERA_ENV="development",
        KALIMERA_LLM_BASE_URL=fake.base_url,
        KALIMERA_LLM_API_KEY=KEY,
        KALIMERA_LLM_MODEL="fake-gpt",
    )
    lines = [
        TranscriptLine(speaker="Caller", offset_seconds=0, text="A table for two tonight?"),
        TranscriptLine(speaker="Agent", offset_seconds=20, text="Of course, at eight."),
    ]

    async def work() -> float:
        services = Services(settings)
        analyser = analyser_for(services)
        assert analyser is not None
        started = time.monotonic()
        try:
            await asyncio.gather(
                *(analyser.analyse(plan=DEFAULT_PLAN, lines=lines) for _ in range(calls))
            )
        finally:
            await services.aclose()
        return calls / (time.monotonic() - started)

    rate = asyncio.run(work())
    fake.requests.clear()
    fake.max_in_flight = 0
    return rate


def measure(stack: BenchStack, calls: int, latency_ms: int, fake: FakeOpenAI) -> None:
    url, _ = stack.start_server()
    tenant = uuid.uuid4()
    headers = {"Authorization": f"Bearer {stack.token(tenant)}"}
    with httpx.Client(base_url=url, headers=headers, timeout=30) as client:
        created = client.post("/kalimera/ai-agent", json={"name": "Bench", "type": "inbound"})
        created.raise_for_status()
        agent = created.json()["id"]

        async def prepare() -> None:
            services = Services(stack.settings())
            try:
                await ensure_queues(services.analysis_queue, services.analysis_poison_queue)
                await seed_ended_calls(
                    services, tenant_id=tenant, agent_id=uuid.UUID(agent), n=calls
                )
            finally:
                await services.aclose()

        asyncio.run(prepare())
        listing = {"agent_id": agent, "limit": "20"}
        idle = [get_ms(client, "/kalimera/conversations", listing) for _ in range(50)]
        today = datetime.now(UTC).date()
        span = {"since": str(today - timedelta(days=1)), "until": str(today)}
        started = time.monotonic()
        answer = client.post(f"/kalimera/ai-agent/{agent}/analysis-runs", json=span)
        answer.raise_for_status()
        post_ms = (time.monotonic() - started) * 1000
        run_id, total = answer.json()["id"], answer.json()["total"]
        during: list[float] = []
        progress: dict[str, object] = {}
        while True:
            during.append(get_ms(client, "/kalimera/conversations", listing))
            progress = client.get(f"/kalimera/analysis-runs/{run_id}").json()
            if progress["status"] != "running":
                break
            time.sleep(0.2)
        elapsed = time.monotonic() - started
    rate = total / elapsed
    ideal = LIMIT / (latency_ms / 1000)
    print(f"calls: {total} (seeded {calls}), model latency {latency_ms} ms, limit {LIMIT}")
    print(
        f"run: {elapsed:.1f} s, {rate:.1f} calls/s; ideal {ideal:.1f}/s "
        f"(limit / latency): {rate / ideal:.0%} of it"
    )
    print(
        "progress: " + json.dumps({k: progress[k] for k in ("status", "done", "failed", "skipped")})
    )
    print(
        f"model requests: {len(fake.requests)}, in flight at most {fake.max_in_flight} "
        f"(limit {LIMIT})"
    )
    print(f"POST analysis-runs: {post_ms:.0f} ms")
    print(
        f"GET /kalimera/conversations idle: p50 {percentile(idle, 50):.1f} ms, "
        f"p95 {percentile(idle, 95):.1f} ms"
    )
    print(
        f"GET /kalimera/conversations during the run ({len(during)} requests): "
        f"p50 {percentile(during, 50):.1f} ms, p95 {percentile(during, 95):.1f} ms"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--calls", type=int, default=2000)
    parser.add_argument("--latency-ms", type=int, default=300)
    args = parser.parse_args()
    run(args.calls, args.latency_ms)


if __name__ == "__main__":
    main()
