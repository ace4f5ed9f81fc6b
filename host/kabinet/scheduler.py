"""Periodic jobs: plugins' schedules (cron or interval) sent as jobs when they fall due.

Tick times are a function of the schedule alone, not of when a scheduler started:
interval ticks are the multiples of the interval since the Unix epoch, cron ticks come
from croniter in the portal's time zone (``[host] timezone``). So every scheduler
computes the same ticks, and a claim on ``schedule + tick`` (Redis ``SET NX`` in
production, a set in memory in the embedded default) lets exactly one of them send it.
Time is read from ``host.clock``: tests move a frozen clock and call :meth:`tick`.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import datetime as dt
import logging
import math
import uuid
from typing import TYPE_CHECKING, Protocol
from zoneinfo import ZoneInfo

from croniter import croniter

from kabinet.contrib import Schedule

if TYPE_CHECKING:
    from redis.asyncio import Redis

    from kabinet.host import Host

log = logging.getLogger(__name__)

LOCK_PREFIX = "kabinet:schedule:"


def next_tick(schedule: Schedule, after: dt.datetime, tz: dt.tzinfo = dt.UTC) -> dt.datetime:
    """The first tick of ``schedule`` strictly after ``after`` (aware UTC)."""
    if schedule.interval is not None:
        step = schedule.interval
        k = math.floor(after.timestamp() / step) + 1
        return dt.datetime.fromtimestamp(k * step, dt.UTC)
    assert schedule.cron is not None
    local = after.astimezone(tz)
    nxt: dt.datetime = croniter(schedule.cron, local).get_next(dt.datetime)
    return nxt.astimezone(dt.UTC)


def latest_tick(
    schedule: Schedule, due: dt.datetime, now: dt.datetime, tz: dt.tzinfo = dt.UTC
) -> dt.datetime:
    """The last tick at or before ``now``, starting from the due tick ``due``.

    Ticks missed while a scheduler was away fire once, as their latest, not in a burst.
    """
    if schedule.interval is not None:
        step = schedule.interval
        return max(
            due, dt.datetime.fromtimestamp(math.floor(now.timestamp() / step) * step, dt.UTC)
        )
    latest = due
    for _ in range(10_000):
        nxt = next_tick(schedule, latest, tz)
        if nxt > now:
            break
        latest = nxt
    return latest


class TickLock(Protocol):
    async def claim(self, key: str, ttl: float) -> bool:
        """True for the first claim of ``key`` among all schedulers, False afterwards."""

    async def close(self) -> None: ...


class MemoryTickLock:
    """One scheduler in one process (the embedded default)."""

    def __init__(self) -> None:
        self._claimed: dict[str, float] = {}

    async def claim(self, key: str, ttl: float) -> bool:
        if key in self._claimed:
            return False
        self._claimed[key] = ttl
        if len(self._claimed) > 10_000:  # old ticks are never claimed again
            for old in list(self._claimed)[:5_000]:
                del self._claimed[old]
        return True

    async def close(self) -> None:
        return None


class RedisTickLock:
    """Schedulers on any number of machines: ``SET key owner NX PX ttl`` in Redis."""

    def __init__(self, url: str) -> None:
        from redis.asyncio import Redis

        self.owner = uuid.uuid4().hex
        self.redis: Redis = Redis.from_url(url)

    async def claim(self, key: str, ttl: float) -> bool:
        return bool(await self.redis.set(key, self.owner, nx=True, px=int(ttl * 1000)))

    async def close(self) -> None:
        await self.redis.aclose()


@dataclasses.dataclass(frozen=True)
class Tick:
    """A tick a scheduler saw: ``fired`` when this scheduler sent it."""

    schedule: str
    at: dt.datetime
    fired: bool


class Scheduler:
    """Sends each schedule's actor once per tick."""

    def __init__(self, host: Host, lock: TickLock | None = None) -> None:
        self.host = host
        url = host.settings.host.redis_url
        self.lock: TickLock = lock or (RedisTickLock(url) if url else MemoryTickLock())
        self.tz = ZoneInfo(host.settings.host.timezone)
        self._due: dict[str, dt.datetime] = {}

    @property
    def schedules(self) -> dict[str, Schedule]:
        return {name: s for name, (_p, s) in sorted(self.host.schedules.items())}

    def start(self) -> None:
        """Begin with the first tick after now (a tick that passed before start is not sent)."""
        now = self.host.clock.now()
        self._due = {name: next_tick(s, now, self.tz) for name, s in self.schedules.items()}

    def next_due(self) -> dt.datetime | None:
        return min(self._due.values(), default=None)

    async def tick(self) -> list[Tick]:
        """Send every schedule whose tick has come; returns the ticks seen."""
        if not self._due:
            self.start()
        now = self.host.clock.now()
        seen: list[Tick] = []
        for name, schedule in self.schedules.items():
            due = self._due.get(name) or next_tick(schedule, now, self.tz)
            if due > now:
                self._due[name] = due
                continue
            at = latest_tick(schedule, due, now, self.tz)
            following = next_tick(schedule, at, self.tz)
            period = (following - at).total_seconds()
            key = f"{LOCK_PREFIX}{name}:{at.isoformat()}"
            # The claim outlives any clock skew between schedulers by a wide margin.
            fired = await self.lock.claim(key, ttl=max(60.0, 10 * period))
            if fired:
                try:
                    await self.host.jobs.send_later(
                        0.0,
                        schedule.actor,
                        dict(schedule.kwargs),
                        origin=f"schedule:{name}@{at.isoformat()}",
                    )
                except Exception:
                    log.exception("schedule %s could not send %s", name, schedule.actor)
            seen.append(Tick(schedule=name, at=at, fired=fired))
            self._due[name] = following
        return seen

    async def run(self, stop: asyncio.Event, *, on_tick: TickCallback | None = None) -> None:
        """Tick until ``stop`` is set, sleeping until the next tick falls due."""
        self.start()
        try:
            while not stop.is_set():
                for t in await self.tick():
                    if on_tick is not None:
                        on_tick(t)
                nxt = self.next_due()
                wait = 1.0
                if nxt is not None:
                    wait = min(1.0, max(0.0, (nxt - self.host.clock.now()).total_seconds()))
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), timeout=wait + 0.005)
        finally:
            await self.lock.close()


class TickCallback(Protocol):
    def __call__(self, tick: Tick, /) -> None: ...
