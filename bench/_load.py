"""An open-loop load generator: requests start on a fixed schedule, whatever the server does.

aiohttp rather than httpx: at a few hundred requests a second httpx's own pool, not the server,
became the bottleneck (measured: 125 requests/s at 4 s p50 against a server that answers each
in 2 to 3 ms).
"""

from __future__ import annotations

import asyncio
import random
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import aiohttp

from bench._stack import percentile

# A request to make: (method, path, keyword arguments for aiohttp, e.g. json=...).
Request = tuple[str, str, dict[str, Any]]


@dataclass
class Result:
    latencies_ms: list[float] = field(default_factory=list)
    statuses: Counter[int] = field(default_factory=Counter)
    errors: Counter[str] = field(default_factory=Counter)
    seconds: float = 0.0

    @property
    def failed(self) -> int:
        return sum(self.errors.values()) + sum(n for s, n in self.statuses.items() if s >= 500)

    def summary(self, name: str) -> str:
        n = len(self.latencies_ms)
        return (
            f"{name}: {n} requests in {self.seconds:.1f} s ({n / self.seconds:.0f}/s), "
            f"failed {self.failed}, statuses {dict(sorted(self.statuses.items()))}, "
            f"p50 {percentile(self.latencies_ms, 50):.1f} ms, "
            f"p99 {percentile(self.latencies_ms, 99):.1f} ms"
            + (f", errors {dict(self.errors)}" if self.errors else "")
        )


async def open_loop(
    base_url: str,
    headers: dict[str, str],
    mix: list[tuple[float, Callable[[], Request]]],
    *,
    rate: float,
    seconds: float,
    on_tick: Callable[[float], None] | None = None,
) -> Result:
    """Send ``rate`` requests a second for ``seconds``, each drawn from ``mix`` by weight."""
    result = Result()
    weights = [w for w, _ in mix]
    makers = [m for _, m in mix]
    rng = random.Random(7)
    connector = aiohttp.TCPConnector(limit=256)
    timeout = aiohttp.ClientTimeout(total=10)
    async with aiohttp.ClientSession(
        base_url=base_url, headers=headers, connector=connector, timeout=timeout
    ) as session:

        async def one(request: Request) -> None:
            method, path, kwargs = request
            started = time.perf_counter()
            try:
                async with session.request(method, path, **kwargs) as response:
                    await response.read()
            except (aiohttp.ClientError, TimeoutError) as exc:
                result.errors[type(exc).__name__] += 1
                return
            result.latencies_ms.append((time.perf_counter() - started) * 1000)
            result.statuses[response.status] += 1

        tasks = []
        begin = time.perf_counter()
        for i in range(int(rate * seconds)):
            delay = begin + i / rate - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            if on_tick is not None:
                on_tick(time.perf_counter() - begin)
            request = rng.choices(makers, weights)[0]()
            tasks.append(asyncio.create_task(one(request)))
        await asyncio.gather(*tasks)
        result.seconds = time.perf_counter() - begin
    return result
