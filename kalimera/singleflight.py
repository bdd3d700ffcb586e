"""Concurrent loads of the same key share one call (per event loop).

When a hot cache entry expires or is invalidated under load, every request in flight misses at
once; without this, each of them queries Postgres for the same row (and waits for the small
pool), which is what a read's tail latency is made of. ``forget`` drops a key's call in flight,
so a load that began before a write is neither joined by later readers nor allowed to repopulate
a cache with what it read (``is_current``).
"""

import asyncio
import weakref
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

T = TypeVar("T")


class SingleFlight(Generic[T]):
    def __init__(self) -> None:
        self._calls: weakref.WeakKeyDictionary[
            asyncio.AbstractEventLoop, dict[str, asyncio.Task[T]]
        ] = weakref.WeakKeyDictionary()

    def _for_loop(self) -> dict[str, asyncio.Task[T]]:
        loop = asyncio.get_running_loop()
        calls = self._calls.get(loop)
        if calls is None:
            calls = self._calls[loop] = {}
        return calls

    async def do(self, key: str, load: Callable[[], Awaitable[T]]) -> T:
        """``load()``'s result, shared with every concurrent caller of the same key."""
        calls = self._for_loop()
        task = calls.get(key)
        if task is None:
            task = asyncio.ensure_future(load())
            calls[key] = task

            def done(finished: asyncio.Task[T]) -> None:
                if calls.get(key) is finished:
                    del calls[key]

            task.add_done_callback(done)
        # shield: a caller that goes away (client disconnect) does not cancel the others' load.
        return await asyncio.shield(task)

    def is_current(self, key: str) -> bool:
        """Inside ``load``: False once ``forget(key)`` was called while it ran."""
        task = self._for_loop().get(key)
        return task is not None and task is asyncio.current_task()

    def forget(self, key: str) -> None:
        """Callers from now on start a new load for ``key``."""
        self._for_loop().pop(key, None)
