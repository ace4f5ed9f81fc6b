"""Counting attempts in a window: failed logins, code sending, resets, registrations.

A window opens with the first hit of a key and lasts ``window`` seconds by the host's
clock; once ``limit`` hits are counted the key is refused until the window ends (that is
when a locked account may try again). Keys are hashed: the identifiers people type never
rest in Redis.

A hit counts and answers in one step that nothing can interleave with (one Lua script
in Redis; in process memory, code with no ``await`` between reading and writing), so a
caller counts an attempt *before* checking it: of many attempts arriving at once, only
``limit`` are let through to be checked, whatever the interleaving. An attempt that
turned out not to count (a successful login) is given back with :meth:`Limiter.release`.

Where the counts live decides who shares them. With ``[host] redis_url`` they are in
Redis, shared by every web process and every host of the portal. The embedded default
keeps them in the memory of the one web process it runs: they hold against requests at
once in that process, restart from zero when it restarts, and several processes without
Redis would each count on their own (so run more than one only with Redis).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from redis.asyncio import Redis

    from kabinet.clock import Clock


@dataclasses.dataclass(frozen=True)
class Verdict:
    allowed: bool
    count: int
    retry_at: dt.datetime | None = None
    """When the key may try again (set when refused)."""
    ends_at: dt.datetime | None = None
    """When the current window ends (the count starts again from zero)."""


class Limiter(Protocol):
    async def hit(self, bucket: str, key: str, limit: int, window: int) -> Verdict:
        """Count one attempt, atomically; refused when this makes more than ``limit``."""

    async def release(self, bucket: str, key: str) -> None:
        """Give back one counted attempt (it turned out not to be a failure)."""

    async def reset(self, bucket: str, key: str) -> None:
        """Forget the key's count (a successful login clears its failures)."""


def _digest(bucket: str, key: str) -> str:
    return bucket + ":" + hashlib.sha256(key.encode()).hexdigest()[:32]


class MemoryLimiter:
    """Counts in this process (the embedded default runs one web process)."""

    def __init__(self, clock: Clock) -> None:
        self.clock = clock
        self._counts: dict[str, tuple[int, float]] = {}

    def _current(self, name: str, window: int) -> tuple[int, float]:
        now = self.clock.now().timestamp()
        count, start = self._counts.get(name, (0, now))
        if now - start >= window:
            count, start = 0, now
        return count, start

    async def hit(self, bucket: str, key: str, limit: int, window: int) -> Verdict:
        name = _digest(bucket, key)
        count, start = self._current(name, window)
        if count == 0:
            start = self.clock.now().timestamp()
        count += 1
        self._counts[name] = (count, start)
        if len(self._counts) > 100_000:
            self._sweep(window)
        return _result(count, start, limit, window)

    async def release(self, bucket: str, key: str) -> None:
        name = _digest(bucket, key)
        found = self._counts.get(name)
        if found is not None and found[0] > 0:
            self._counts[name] = (found[0] - 1, found[1])

    async def reset(self, bucket: str, key: str) -> None:
        self._counts.pop(_digest(bucket, key), None)

    def _sweep(self, window: int) -> None:
        now = self.clock.now().timestamp()
        self._counts = {k: v for k, v in self._counts.items() if now - v[1] < window}


def _result(count: int, start: float, limit: int, window: int) -> Verdict:
    """A hit is refused beyond ``limit``. (There is no "look without counting": a check
    before the attempt and a count after it let every attempt made at once through.)"""
    refused = count > limit
    ends = dt.datetime.fromtimestamp(start + window, dt.UTC)
    return Verdict(
        allowed=not refused, count=count, retry_at=ends if refused else None, ends_at=ends
    )


_HIT = """
local start = tonumber(redis.call('HGET', KEYS[1], 's') or '0')
local count = tonumber(redis.call('HGET', KEYS[1], 'c') or '0')
local now = tonumber(ARGV[1])
local window = tonumber(ARGV[2])
if count == 0 or now - start >= window then
  start = now
  count = 0
end
count = count + 1
redis.call('HSET', KEYS[1], 's', tostring(start), 'c', count)
redis.call('EXPIRE', KEYS[1], window * 2)
return {count, tostring(start)}
"""

_RELEASE = """
local count = tonumber(redis.call('HGET', KEYS[1], 'c') or '0')
if count > 0 then redis.call('HINCRBY', KEYS[1], 'c', -1) end
return count
"""


class RedisLimiter:
    """Counts in Redis, shared by every web process; the window runs on the host's clock."""

    def __init__(self, redis: Redis, clock: Clock, prefix: str) -> None:
        self.redis = redis
        self.clock = clock
        self.prefix = prefix + "limit:"
        self._hit = redis.register_script(_HIT)
        self._release = redis.register_script(_RELEASE)

    async def hit(self, bucket: str, key: str, limit: int, window: int) -> Verdict:
        now = self.clock.now().timestamp()
        count, start = await self._hit(
            keys=[self.prefix + _digest(bucket, key)], args=[now, window]
        )
        return _result(int(count), float(start), limit, window)

    async def release(self, bucket: str, key: str) -> None:
        await self._release(keys=[self.prefix + _digest(bucket, key)])

    async def reset(self, bucket: str, key: str) -> None:
        await self.redis.delete(self.prefix + _digest(bucket, key))
