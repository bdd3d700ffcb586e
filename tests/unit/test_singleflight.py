"""Concurrent cache misses for one agent share one Postgres read; a write cuts them off."""

import asyncio

from kalimera.singleflight import SingleFlight


def test_concurrent_loads_of_one_key_share_one_call() -> None:
    flights: SingleFlight[int] = SingleFlight()
    calls = 0

    async def load() -> int:
        nonlocal calls
        calls += 1
        await asyncio.sleep(0.05)
        return calls

    async def main() -> list[int]:
        return list(await asyncio.gather(*(flights.do("k", load) for _ in range(50))))

    assert asyncio.run(main()) == [1] * 50
    assert calls == 1


def test_a_forgotten_load_is_not_joined_and_knows_it_is_stale() -> None:
    flights: SingleFlight[str] = SingleFlight()
    current: list[bool] = []
    release = asyncio.Event

    async def main() -> tuple[str, str]:
        gate = release()

        async def old() -> str:
            await gate.wait()
            current.append(flights.is_current("k"))
            return "old"

        async def new() -> str:
            current.append(flights.is_current("k"))
            return "new"

        first = asyncio.ensure_future(flights.do("k", old))
        await asyncio.sleep(0)
        flights.forget("k")  # a write committed while `old` was reading
        second = await flights.do("k", new)
        gate.set()
        return await first, second

    assert asyncio.run(main()) == ("old", "new")
    assert current == [True, False]
