"""An open-loop load generator: requests start on a fixed schedule, whatever the server does."""

from __future__ import annotations

import asyncio
import random
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

import httpx

from bench._stack import percentile


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
    mix: list[tuple[float, Callable[[httpx.AsyncClient], object]]],
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
    limits = httpx.Limits(max_connections=256, max_keepalive_connections=256)
    async with httpx.AsyncClient(
        base_url=base_url, headers=headers, timeout=10, limits=limits
    ) as client:

        async def one(maker: Callable[[httpx.AsyncClient], object]) -> None:
            started = time.perf_counter()
            try:
                response = await maker(client)  # type: ignore[misc]
            except httpx.HTTPError as exc:
                result.errors[type(exc).__name__] += 1
                return
            result.latencies_ms.append((time.perf_counter() - started) * 1000)
            result.statuses[response.status_code] += 1

        tasks = []
        begin = time.perf_counter()
        total = int(rate * seconds)
        for i in range(total):
            due = begin + i / rate
            delay = due - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            if on_tick is not None:
                on_tick(time.perf_counter() - begin)
            tasks.append(asyncio.create_task(one(rng.choices(makers, weights)[0])))
        await asyncio.gather(*tasks)
        result.seconds = time.perf_counter() - begin
    return result
