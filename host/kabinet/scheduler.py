"""Periodic jobs: plugins' schedules (cron or interval) sent as jobs when they fall due.

Tick times are a function of the schedule alone, not of when a scheduler started:
interval ticks are the multiples of the interval since the Unix epoch, cron ticks come
from croniter in the portal's time zone (``[host] timezone``). So every scheduler
computes the same ticks, and a claim on ``schedule + tick`` (Redis in production, a dict
in memory in the embedded default) lets one of them send it.
Time is read from ``host.clock``: tests move a frozen clock and call :meth:`tick`.

Each tick is sent, and its job runs once, also when a scheduler is killed (issue 19.1):

- the claim is a lease of :data:`LEASE_SECONDS` (its end, by the claimer's clock, is in
  the claim's value); once the job is sent the claim becomes ``sent`` for the tick's
  long time-to-live. A scheduler that finds a tick claimed keeps it in a pending list;
  if the lease ends unconfirmed (the claimer was killed between the claim and the
  confirmation, or its send failed) it takes the claim over and sends the tick itself;
- a scheduler killed after sending but before confirming makes that tick sent twice:
  both messages carry the tick's origin (``schedule:<name>@<tick>``), and a Redis worker
  runs only the first message of an origin (:mod:`kabinet.jobs_redis`); a redelivery of
  that same message (its worker killed mid-job) still runs.

- a scheduler that starts (a restart after a kill, when no other scheduler ran) watches the
  latest past tick of each schedule the same way: a claim left unconfirmed by a scheduler
  that died is taken over once its lease ends; a tick that was sent, or that nobody
  claimed (no scheduler ran then), is not sent.
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
from kabinet.jobs import SCHEDULE_ORIGIN

if TYPE_CHECKING:
    from redis.asyncio import Redis

    from kabinet.host import Host

log = logging.getLogger(__name__)

LOCK_PREFIX = "kabinet:schedule:"
LEASE_SECONDS = 5.0
"""How long a claim waits for its confirmation before another scheduler takes it over."""


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


def previous_tick(schedule: Schedule, now: dt.datetime, tz: dt.tzinfo = dt.UTC) -> dt.datetime:
    """The last tick of ``schedule`` at or before ``now`` (aware UTC)."""
    if schedule.interval is not None:
        step = schedule.interval
        return dt.datetime.fromtimestamp(math.floor(now.timestamp() / step) * step, dt.UTC)
    assert schedule.cron is not None
    after = (now + dt.timedelta(seconds=1)).astimezone(tz)  # a tick at ``now`` counts
    prev: dt.datetime = croniter(schedule.cron, after).get_prev(dt.datetime)
    return prev.astimezone(dt.UTC)


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
    """The claims of ticks, shared by every scheduler. Times are seconds since the epoch."""

    async def claim(self, key: str, *, until: float, ttl: float) -> bool:
        """Lease ``key`` until ``until`` if nobody has claimed it: True for the first claim."""

    async def confirm(self, key: str, *, ttl: float) -> None:
        """The leased tick was sent: nobody takes it over."""

    async def take_over(self, key: str, *, now: float, until: float, ttl: float) -> str:
        """Lease ``key`` again if its lease ended unconfirmed before ``now``: ``taken``;
        ``held`` while its lease lasts; ``done`` when it was sent (or is forgotten)."""

    async def close(self) -> None: ...


SENT = "sent"


class MemoryTickLock:
    """One scheduler in one process (the embedded default): key -> lease end or ``sent``."""

    def __init__(self) -> None:
        self._claimed: dict[str, float | str] = {}

    async def claim(self, key: str, *, until: float, ttl: float) -> bool:
        if key in self._claimed:
            return False
        self._claimed[key] = until
        if len(self._claimed) > 10_000:  # old ticks are never claimed again
            for old in list(self._claimed)[:5_000]:
                del self._claimed[old]
        return True

    async def confirm(self, key: str, *, ttl: float) -> None:
        self._claimed[key] = SENT

    async def take_over(self, key: str, *, now: float, until: float, ttl: float) -> str:
        lease = self._claimed.get(key, SENT)
        if isinstance(lease, str):
            return "done"
        if lease > now:
            return "held"
        self._claimed[key] = until
        return "taken"

    async def close(self) -> None:
        return None


TAKE_OVER = """
local v = redis.call('GET', KEYS[1])
if not v or v == 'sent' then return 'done' end
local ends = tonumber(string.match(v, ' (%S+)$'))
if not ends then return 'done' end
if ends > tonumber(ARGV[1]) then return 'held' end
redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])
return 'taken'
"""
"""Atomically: a lease that ended unconfirmed (``<owner> <until>``) becomes ours. A claim
without a lease end (an earlier release's, sent right after it was made) counts as sent."""


class RedisTickLock:
    """Schedulers on any number of machines: ``SET key "<owner> <until>" NX PX ttl`` in
    Redis, ``sent`` once confirmed, a script for the take-over. ``prefix`` is for tests."""

    def __init__(self, url: str, *, prefix: str = "") -> None:
        from redis.asyncio import Redis

        self.owner = uuid.uuid4().hex
        self.prefix = prefix
        self.redis: Redis = Redis.from_url(url)

    def _lease(self, until: float) -> str:
        return f"{self.owner} {until!r}"

    async def claim(self, key: str, *, until: float, ttl: float) -> bool:
        lease, px = self._lease(until), int(ttl * 1000)
        return bool(await self.redis.set(self.prefix + key, lease, nx=True, px=px))

    async def confirm(self, key: str, *, ttl: float) -> None:
        await self.redis.set(self.prefix + key, SENT, px=int(ttl * 1000))

    async def take_over(self, key: str, *, now: float, until: float, ttl: float) -> str:
        args = (repr(now), self._lease(until), int(ttl * 1000))
        found = await self.redis.eval(TAKE_OVER, 1, self.prefix + key, *args)
        return found.decode() if isinstance(found, bytes) else str(found)

    async def close(self) -> None:
        await self.redis.aclose()


@dataclasses.dataclass(frozen=True)
class Tick:
    """A tick a scheduler saw: ``fired`` when this scheduler sent it."""

    schedule: str
    at: dt.datetime
    fired: bool


@dataclasses.dataclass(frozen=True)
class _Pending:
    """A tick another scheduler claimed (or whose send failed here), until it is sent."""

    schedule: str
    at: dt.datetime
    key: str
    ttl: float


class Scheduler:
    """Sends each schedule's actor once per tick."""

    def __init__(self, host: Host, lock: TickLock | None = None) -> None:
        self.host = host
        url = host.settings.host.redis_url
        self.lock: TickLock = lock or (RedisTickLock(url) if url else MemoryTickLock())
        self.tz = ZoneInfo(host.settings.host.timezone)
        self._due: dict[str, dt.datetime] = {}
        self.pending: list[_Pending] = []
        """Ticks claimed by others and not yet seen sent: taken over if their lease ends."""

    @property
    def schedules(self) -> dict[str, Schedule]:
        return {name: s for name, (_p, s) in sorted(self.host.schedules.items())}

    def start(self) -> None:
        """Begin with the first tick after now (a tick that passed before start is not sent,
        unless a scheduler that died left its claim unconfirmed: see the module's text)."""
        now = self.host.clock.now()
        self._due = {name: next_tick(s, now, self.tz) for name, s in self.schedules.items()}
        for name, schedule in self.schedules.items():
            at = previous_tick(schedule, now, self.tz)
            pending = self._pending(name, schedule, at)
            if (now - at).total_seconds() <= pending.ttl and pending not in self.pending:
                self.pending.append(pending)  # ``done`` at the first tick unless it lapsed

    def _pending(self, name: str, schedule: Schedule, at: dt.datetime) -> _Pending:
        """The claim of ``schedule``'s tick ``at``: its key, kept for ten periods (the claim
        outlives any clock skew between schedulers by a wide margin)."""
        following = next_tick(schedule, at, self.tz)
        ttl = max(60.0, 10 * (following - at).total_seconds())
        return _Pending(name, at, f"{LOCK_PREFIX}{name}:{at.isoformat()}", ttl)

    def next_due(self) -> dt.datetime | None:
        return min(self._due.values(), default=None)

    async def tick(self, on_tick: TickCallback | None = None) -> list[Tick]:
        """Send every schedule whose tick has come, and every pending tick whose lease
        ended unconfirmed; returns the ticks seen (each also given to ``on_tick`` at once)."""
        if not self._due:
            self.start()
        now = self.host.clock.now()
        seen: list[Tick] = []

        def saw(t: Tick) -> None:
            seen.append(t)
            if on_tick is not None:
                on_tick(t)

        await self._take_over(now, saw)
        for name, schedule in self.schedules.items():
            due = self._due.get(name) or next_tick(schedule, now, self.tz)
            if due > now:
                self._due[name] = due
                continue
            at = latest_tick(schedule, due, now, self.tz)
            pending = self._pending(name, schedule, at)
            until = now.timestamp() + LEASE_SECONDS
            fired = await self.lock.claim(pending.key, until=until, ttl=pending.ttl)
            if fired:
                fired = await self._send(pending)
            else:
                self.pending.append(pending)
            saw(Tick(schedule=name, at=at, fired=fired))
            self._due[name] = next_tick(schedule, at, self.tz)
        return seen

    async def _take_over(self, now: dt.datetime, saw: TickCallback) -> None:
        for p in list(self.pending):
            if (now - p.at).total_seconds() > p.ttl or p.schedule not in self.host.schedules:
                self.pending.remove(p)  # its claim is forgotten: too old to send now
                continue
            until = now.timestamp() + LEASE_SECONDS
            state = await self.lock.take_over(p.key, now=now.timestamp(), until=until, ttl=p.ttl)
            if state == "held":
                continue
            self.pending.remove(p)
            if state == "taken":
                log.warning("schedule %s: tick %s taken over (its claim lapsed)", p.schedule, p.at)
                if await self._send(p):
                    saw(Tick(schedule=p.schedule, at=p.at, fired=True))

    async def _send(self, p: _Pending) -> bool:
        """Send the tick's job, then confirm the claim; a failed send stays pending here."""
        schedule = self.host.schedules[p.schedule][1]
        try:
            await self.host.jobs.send_later(
                0.0,
                schedule.actor,
                dict(schedule.kwargs),
                origin=f"{SCHEDULE_ORIGIN}{p.schedule}@{p.at.isoformat()}",
            )
        except Exception:
            log.exception("schedule %s could not send %s", p.schedule, schedule.actor)
            self.pending.append(p)  # tried again once the lease ends
            return False
        await self.lock.confirm(p.key, ttl=p.ttl)
        return True

    async def run(self, stop: asyncio.Event, *, on_tick: TickCallback | None = None) -> None:
        """Tick until ``stop`` is set, sleeping until the next tick falls due; the lock (its
        Redis client) is closed however the loop ends, a failing start included."""
        try:
            self.start()
            while not stop.is_set():
                await self.tick(on_tick)
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
