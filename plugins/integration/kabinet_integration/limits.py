"""The limits toward a production system, shared by everything that talks to it.

A source's ``max_concurrency`` (requests at once) and ``rate_per_second`` (request starts
a second) hold for the whole portal, not for one connector: every sync, file fetch and
client request of every job takes a slot from the same :class:`Limits`.

Where the limits live decides who shares them, as with the host's other limits. With
``[host] redis_url`` they are in Redis (a sorted set of leased slots and the time of the
next allowed start, both kept by Lua scripts on Redis's own clock), shared by the web
processes and every ``kabinet worker`` on any machine; a slot whose holder died expires
after its lease. Without Redis (the embedded default: one process runs every job) they
are a semaphore and a start-time reservation in that process.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import time
import uuid
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Protocol

from kabinet.services import ServiceKey

if TYPE_CHECKING:
    from redis.asyncio import Redis

    from kabinet.host import Host
    from kabinet_integration.settings import Source

PREFIX = "kabinet:integration:limit:"
POLL_SECONDS = 0.02
"""How soon a request waiting for a slot held in another process asks again."""


class Limits(Protocol):
    def slot(self) -> contextlib.AbstractAsyncContextManager[None]:
        """Held for one request: a place among ``max_concurrency``, entered no sooner than
        the rate allows."""
        ...


class RateLimit:
    """At most ``per_second`` request starts per second (0: none), in this process."""

    def __init__(self, per_second: float) -> None:
        self.interval = 1.0 / per_second if per_second > 0 else 0.0
        self.next = 0.0
        self.lock = asyncio.Lock()

    async def wait(self) -> None:
        if not self.interval:
            return
        async with self.lock:
            now = time.monotonic()
            if self.next > now:
                await asyncio.sleep(self.next - now)
            self.next = max(now, self.next) + self.interval


class LocalLimits:
    """The limits in this process: every connector of the process shares one."""

    def __init__(self, concurrency: int, per_second: float) -> None:
        self.gate = asyncio.Semaphore(max(1, concurrency))
        self.rate = RateLimit(per_second)

    @contextlib.asynccontextmanager
    async def slot(self) -> AsyncIterator[None]:
        async with self.gate:
            await self.rate.wait()
            yield


_ACQUIRE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
if redis.call('ZCARD', KEYS[1]) < tonumber(ARGV[2]) then
  redis.call('ZADD', KEYS[1], now + tonumber(ARGV[3]), ARGV[1])
  redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[3]))
  return 1
end
return 0
"""
"""A slot of the sorted set (member: the holder's token, score: its lease's end, ms)."""

_RESERVE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + tonumber(t[2]) / 1000
local interval = tonumber(ARGV[1])
local nxt = tonumber(redis.call('GET', KEYS[1]) or '0')
if nxt < now then nxt = now end
redis.call('SET', KEYS[1], string.format('%.3f', nxt + interval),
           'PX', math.ceil(nxt + interval - now) + 1000)
return string.format('%.3f', nxt - now)
"""
"""The next allowed start (ms on Redis's clock) moved on by one interval; answers how
long this caller waits for its start."""


class RedisLimits:
    """The limits in Redis, shared by every process of the portal."""

    def __init__(
        self, redis: Redis, key: str, concurrency: int, per_second: float, lease: float
    ) -> None:
        self.redis = redis
        self.slots, self.next = key + ":slots", key + ":next"
        self.concurrency = max(1, concurrency)
        self.interval_ms = 1000.0 / per_second if per_second > 0 else 0.0
        self.lease_ms = int(lease * 1000)
        # No more waiters in this process than it could hold slots: the rest wait here
        # instead of asking Redis in a loop.
        self.local = asyncio.Semaphore(self.concurrency)
        self._acquire = redis.register_script(_ACQUIRE)
        self._reserve = redis.register_script(_RESERVE)

    @contextlib.asynccontextmanager
    async def slot(self) -> AsyncIterator[None]:
        token = uuid.uuid4().hex
        async with self.local:
            args: list[str | int] = [token, self.concurrency, self.lease_ms]
            while True:
                if await self._acquire(keys=[self.slots], args=args):
                    break
                await asyncio.sleep(POLL_SECONDS)
            try:
                if self.interval_ms:
                    wait = float(await self._reserve(keys=[self.next], args=[self.interval_ms]))
                    if wait > 0:
                        await asyncio.sleep(wait / 1000)
                yield
            finally:
                with contextlib.suppress(Exception):  # else it expires with its lease
                    await self.redis.zrem(self.slots, token)


class Registry(dict[tuple[int, str], tuple[asyncio.AbstractEventLoop, Limits]]):
    """A host's limits by (its event loop's id, the source's name), the loop kept beside."""


LIMITS: ServiceKey[Registry] = ServiceKey("integration.limits", Registry)
"""The app's own: no other plugin reads a source's limits."""


def limits_for(host: Host, name: str, source: Source) -> Limits:
    """The limits of source ``name``, shared by every connector of this event loop (and,
    through Redis, of every process)."""
    loop = asyncio.get_running_loop()
    registry = host.services.find(LIMITS)
    if registry is None:
        registry = host.services.provide(LIMITS, Registry())
    key = (id(loop), name)
    found = registry.get(key)
    if found is not None and found[0] is loop:
        return found[1]
    url = host.settings.host.redis_url
    limits: Limits
    if url:
        from redis.asyncio import Redis as RedisClient

        client = RedisClient.from_url(url)
        target = hashlib.sha256(source.base_url.rstrip("/").encode()).hexdigest()[:16]
        # A lease outlasts any request (its timeout) and its wait for a start.
        lease = 4 * source.timeout_seconds + 60.0
        limits = RedisLimits(
            client, PREFIX + target, source.max_concurrency, source.rate_per_second, lease
        )
    else:
        limits = LocalLimits(source.max_concurrency, source.rate_per_second)
    registry[key] = (loop, limits)
    return limits


async def close(host: Host) -> None:
    """Close the Redis clients of the limits (at shutdown)."""
    registry = host.services.find(LIMITS)
    host.services.pop(LIMITS.name, None)
    for _loop, limits in (registry or {}).values():
        if isinstance(limits, RedisLimits):
            with contextlib.suppress(Exception):
                await limits.redis.aclose()
