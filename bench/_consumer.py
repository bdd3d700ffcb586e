"""One instance of a queue's consumers, for ``bench/analysis.py`` (``analysis``, the default) and
``bench/webhooks.py`` (``webhooks``): the dev runner's consumer (host.json's batch and retries)
and the relay's sweeper, with the settings of its environment, until SIGTERM."""

from __future__ import annotations

import asyncio
import signal
import sys

from kalimera.dev.poller import ANALYSIS, WEBHOOKS, run_consumer
from kalimera.dev.runner import RELAY_SECONDS, every
from kalimera.outbox import sweep
from kalimera.services import Services
from kalimera.settings import load_settings
from kalimera.webhooks.delivery import sweep as relay_webhooks


async def main() -> None:
    services = Services(load_settings())
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    webhooks = sys.argv[1:] == ["webhooks"]
    queue, relay = (WEBHOOKS, relay_webhooks) if webhooks else (ANALYSIS, sweep)

    async def relaying() -> None:
        await every(RELAY_SECONDS, relay)(services)

    tasks = [
        asyncio.create_task(run_consumer(services, job=queue)),
        asyncio.create_task(relaying()),
    ]
    try:
        await stop.wait()
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await services.aclose()


if __name__ == "__main__":
    asyncio.run(main())
