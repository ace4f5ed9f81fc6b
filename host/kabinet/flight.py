"""Single flight: concurrent callers asking for the same key share one call.

Caches that expire (sessions, access views) would otherwise send every request that finds
the entry stale to the database at the same moment: at 32 requests in flight, 32 reads of
the same row every time the entry expires.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Hashable
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class SingleFlight(Generic[K, V]):
    def __init__(self) -> None:
        self._running: dict[K, asyncio.Future[V]] = {}

    async def do(self, key: K, call: Callable[[], Awaitable[V]]) -> V:
        """The result of ``call()``, or of the same key's call already running."""
        running = self._running.get(key)
        if running is None:
            running = asyncio.ensure_future(call())
            self._running[key] = running
            running.add_done_callback(lambda done: self._finished(key, done))
        # A caller that is cancelled leaves the call running for the others.
        return await asyncio.shield(running)

    def _finished(self, key: K, done: asyncio.Future[V]) -> None:
        if self._running.get(key) is done:
            del self._running[key]
        if not done.cancelled():
            done.exception()  # retrieved: every waiter may have been cancelled meanwhile
