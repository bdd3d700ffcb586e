"""Webhook deliveries from commit to receiver: ``--events`` events committed at ``--rate`` a
second (one per transaction, as calls end) to a tenant with one endpoint whose receiver answers in
``--receiver-ms``, delivered through the product's path (the outbox and its relay, the
``kalimera-webhooks`` queue on Azurite, one consumer instance: the dev runner's, with host.json's
batch of 8 and threshold of 4, so at most 12 attempts at once); then a burst of ``--burst``
events committed at once (500 a transaction), which the queue holds while the consumer drains it.

Prints, for each, the events per second from the first commit to the last arrival and the median
and p99 of each event's commit-to-arrival latency (its ``timestamp``, written in the committing
transaction, to the moment the receiver has the request); every event is checked to arrive (at
least once; duplicates counted by ``webhook-id``). Azurite's queue slows down as it grows (a
receive of 8 takes 16 ms with 100 messages queued, 600 ms with 10,000; a delete 6 ms, 285 ms), so
a burst measures Azurite more than the product: the steady rate is the figure that transfers.

    .venv/bin/python -m bench.webhooks [--events 10000] [--rate 25] [--burst 2000]
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from datetime import datetime
from pathlib import Path

import orjson
from aiohttp import web

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench._stack import BenchStack, percentile  # noqa: E402
from kalimera import events as event_log  # noqa: E402
from kalimera.db import transaction  # noqa: E402
from kalimera.dev.localstack import free_port  # noqa: E402
from kalimera.outbox import ensure_queues  # noqa: E402
from kalimera.services import Services  # noqa: E402
from kalimera.settings import load_settings  # noqa: E402
from kalimera.webhooks import service  # noqa: E402
from kalimera.webhooks.models import WebhookCreate  # noqa: E402

BATCH = 500  # events per committing transaction


class Receiver:
    """An aiohttp server in a thread of its own: notes each request's arrival, answers after
    ``latency`` seconds."""

    def __init__(self, latency: float) -> None:
        self.latency = latency
        self.port = free_port()
        self.arrivals: list[tuple[str, float, float]] = []  # webhook-id, arrival, event time
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        threading.Thread(target=self._run, daemon=True).start()
        self._ready.wait()

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)

        async def handle(request: web.Request) -> web.Response:
            body = await request.read()
            arrived = time.time()
            stamp = datetime.fromisoformat(orjson.loads(body)["timestamp"]).timestamp()
            self.arrivals.append((request.headers["webhook-id"], arrived, stamp))
            await asyncio.sleep(self.latency)
            return web.Response(text="ok")

        async def start() -> None:
            app = web.Application()
            app.router.add_post("/hook", handle)
            runner = web.AppRunner(app, access_log=None)
            await runner.setup()
            await web.TCPSite(runner, "127.0.0.1", self.port).start()
            self._ready.set()

        self._loop.run_until_complete(start())
        self._loop.run_forever()


async def commit(services: Services, tenant_id: uuid.UUID, count: int) -> None:
    """``count`` events in one transaction (as a change would write them), relayed after."""
    async with transaction(await services.db(), tenant_id=tenant_id) as conn:
        await conn.execute(
            "SELECT kalimera_webhook_emit(%(t)s, 'contacts.imported', NULL,"
            " jsonb_build_object('created', n, 'refused', 0, 'errors', '[]'::jsonb))"
            " FROM generate_series(1, %(n)s) AS n",
            {"t": tenant_id, "n": count},
        )
    await event_log.relay_after_commit(services=services, tenant_id=tenant_id)


async def produce(
    services: Services, tenant_id: uuid.UUID, events: int, rate: float | None
) -> float:
    """Commit ``events`` (a burst in batches, or one at a time at ``rate`` a second); the time
    of the first commit. Says how long the commits took (a loaded machine may not keep the rate)."""
    started = time.time()
    if rate is None:
        for done in range(0, events, BATCH):
            await commit(services, tenant_id, min(BATCH, events - done))
    else:
        for n in range(events):
            await commit(services, tenant_id, 1)
            await asyncio.sleep(max(0.0, started + (n + 1) / rate - time.time()))
    took = time.time() - started
    print(f"committed {events} events in {took:.1f} s ({events / took:.0f}/s)")
    return started


def report(name: str, receiver: Receiver, first: int, events: int, started: float) -> None:
    arrivals = receiver.arrivals[first:]
    seen: dict[str, tuple[float, float]] = {}
    for msg_id, arrived, stamp in arrivals:
        seen.setdefault(msg_id, (arrived, stamp))
    latencies = [(arrived - stamp) * 1000 for arrived, stamp in seen.values()]
    last = max(arrived for arrived, _ in seen.values())
    duplicates = sum(n - 1 for n in Counter(m for m, _, _ in arrivals).values())
    print(
        f"{name}: {len(seen)} of {events} events delivered ({duplicates} duplicates) in "
        f"{last - started:.1f} s: {len(seen) / (last - started):.0f} events/s; commit to "
        f"receiver p50 {percentile(latencies, 50):.0f} ms, p99 {percentile(latencies, 99):.0f} ms"
    )


async def wait_for(receiver: Receiver, count: int, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while len({m for m, _, _ in receiver.arrivals}) < count:
        if time.monotonic() > deadline:
            msg = f"only {len(receiver.arrivals)} of {count} arrived in {seconds} s"
            raise SystemExit(msg)
        await asyncio.sleep(0.1)


async def measure(stack: BenchStack, args: argparse.Namespace, receiver: Receiver) -> None:
    services = Services(stack.settings())
    try:
        await ensure_queues(services.webhooks_queue, services.webhooks_poison_queue)
        tenant_id = uuid.uuid4()
        dev = Services(dev_settings(stack))
        try:
            await service.create(
                services=dev,
                tenant_id=tenant_id,
                body=WebhookCreate(url=f"http://127.0.0.1:{receiver.port}/hook"),
            )
        finally:
            await dev.aclose()
        print(
            f"receiver answers in {args.receiver_ms} ms; one consumer instance (at most 12 "
            "attempts at once)"
        )
        started = await produce(services, tenant_id, args.events, args.rate)
        await wait_for(receiver, args.events, seconds=args.events)
        report(f"steady, {args.rate:.0f}/s", receiver, 0, args.events, started)
        if args.burst:
            first = len(receiver.arrivals)
            started = await produce(services, tenant_id, args.burst, None)
            await wait_for(receiver, args.events + args.burst, seconds=args.burst)
            report(f"burst, {BATCH} a transaction", receiver, first, args.burst, started)
    finally:
        await services.aclose()


def dev_settings(stack: BenchStack):  # type: ignore[no-untyped-def]
    """The stack's settings in development mode: the receiver is on this machine."""
    import os

    old = dict(os.environ)
    os.environ.update(stack.process_env(KALIMERA_ENV="development"))
    try:
        return load_settings()
    finally:
        os.environ.clear()
        os.environ.update(old)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=10_000)
    parser.add_argument("--receiver-ms", type=int, default=50)
    parser.add_argument("--rate", type=float, default=25.0)
    parser.add_argument("--burst", type=int, default=2000)
    args = parser.parse_args()
    # A SIGTERM unwinds like Ctrl-C (by default it ends the process on the spot), so the
    # consumer is stopped and the throwaway database and Azurite go with the run.
    signal.signal(signal.SIGTERM, _stop)
    receiver = Receiver(args.receiver_ms / 1000)
    with BenchStack() as stack:
        consumer = subprocess.Popen(
            [sys.executable, "-m", "bench._consumer", "webhooks"],
            cwd=ROOT,
            env=stack.process_env(KALIMERA_ENV="development"),
        )
        try:
            asyncio.run(measure(stack, args, receiver))
        finally:
            consumer.send_signal(signal.SIGTERM)
            consumer.wait(timeout=30)


def _stop(signum: int, _frame: object) -> None:
    raise SystemExit(128 + signum)


if __name__ == "__main__":
    main()
