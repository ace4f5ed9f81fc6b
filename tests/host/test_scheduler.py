"""Schedules: tick times, one send per tick, and two real schedulers against one Redis."""

from __future__ import annotations

import collections
import datetime as dt
import itertools
import subprocess
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import msgspec
import pytest
import redis
from scheduler_processes import beat, stop

from kabinet.clock import FrozenClock
from kabinet.contrib import Schedule
from kabinet.errors import PluginError
from kabinet.host import Host
from kabinet.jobs import REDIS_NAMESPACE, EmbeddedJobs
from kabinet.scheduler import MemoryTickLock, Scheduler, latest_tick, next_tick
from kabinet.testing import PluginFactory

UTC = dt.UTC
T0 = dt.datetime(2026, 1, 15, 9, 0, 0, tzinfo=UTC)

TICKS = """
@hookimpl
def actors(host):
    async def report(kind):
        host.services.setdefault("reports", []).append(kind)
    return [Actor(name="tick.report", fn=report, queue=QUEUE)]

@hookimpl
def schedules(host):
    return [
        Schedule(name="tick.every_minute", actor="tick.report", interval=60,
                 kwargs={"kind": "minute"}),
        Schedule(name="tick.nightly", actor="tick.report", cron="30 3 * * *",
                 kwargs={"kind": "nightly"}),
    ]
"""


def test_interval_ticks_are_multiples_of_the_interval_since_the_epoch() -> None:
    every = Schedule(name="x.y", actor="x.a", interval=60)
    assert next_tick(every, T0) == T0 + dt.timedelta(minutes=1)
    assert next_tick(every, T0 + dt.timedelta(seconds=59.9)) == T0 + dt.timedelta(minutes=1)
    half = Schedule(name="x.z", actor="x.a", interval=0.5)
    assert next_tick(half, T0 + dt.timedelta(seconds=0.2)) == T0 + dt.timedelta(seconds=0.5)


def test_cron_ticks_follow_the_portal_time_zone() -> None:
    nightly = Schedule(name="x.n", actor="x.a", cron="30 3 * * *")
    moscow = ZoneInfo("Europe/Moscow")  # UTC+3 all year
    assert next_tick(nightly, T0, moscow) == dt.datetime(2026, 1, 16, 0, 30, tzinfo=UTC)
    assert next_tick(nightly, T0) == dt.datetime(2026, 1, 16, 3, 30, tzinfo=UTC)


def test_missed_ticks_fire_once_as_the_latest() -> None:
    every = Schedule(name="x.y", actor="x.a", interval=60)
    due = T0 + dt.timedelta(minutes=1)
    now = T0 + dt.timedelta(minutes=10, seconds=5)
    assert latest_tick(every, due, now) == T0 + dt.timedelta(minutes=10)
    hourly = Schedule(name="x.h", actor="x.a", cron="0 * * * *")
    assert latest_tick(hourly, T0, T0 + dt.timedelta(hours=5, minutes=1)) == T0 + dt.timedelta(
        hours=5
    )


@pytest.fixture
async def host(
    plugin_factory: PluginFactory, database_url: str, clock: FrozenClock
) -> AsyncIterator[Host]:
    plugin_factory.add("tick", 'QUEUE = "default"\n' + TICKS)
    h = await Host.create(
        None,
        env={"KABINET__HOST__DATABASE_URL": database_url},
        candidates=plugin_factory.candidates(),
        clock=clock,
    )
    yield h
    await h.db.dispose()


def fired(ticks: list[Any]) -> list[tuple[str, dt.datetime]]:
    return [(t.schedule, t.at) for t in ticks if t.fired and t.schedule.startswith("tick.")]


@pytest.mark.smoke
async def test_embedded_scheduler_sends_each_tick_once(host: Host, clock: FrozenClock) -> None:
    assert isinstance(host.jobs, EmbeddedJobs)
    scheduler = Scheduler(host)
    scheduler.start()
    assert fired(await scheduler.tick()) == []

    clock.advance(59)
    assert fired(await scheduler.tick()) == []
    clock.advance(1)
    assert fired(await scheduler.tick()) == [("tick.every_minute", T0 + dt.timedelta(minutes=1))]
    assert fired(await scheduler.tick()) == []  # the same moment again: nothing more

    # Away for ten minutes: one send for the latest missed tick, not ten.
    clock.advance(minutes=10, seconds=30)
    assert fired(await scheduler.tick()) == [("tick.every_minute", T0 + dt.timedelta(minutes=11))]

    await host.jobs.drain()  # type: ignore[attr-defined]
    assert host.services["reports"] == ["minute", "minute"]


@pytest.mark.smoke
async def test_cron_schedule_fires_at_its_local_time(host: Host, clock: FrozenClock) -> None:
    scheduler = Scheduler(host)
    scheduler.start()
    clock.advance(hours=15, minutes=29)  # 00:29 UTC = 03:29 in Moscow
    await scheduler.tick()
    clock.advance(minutes=1)
    nightly = [t for t in fired(await scheduler.tick()) if t[0] == "tick.nightly"]
    assert nightly == [("tick.nightly", dt.datetime(2026, 1, 16, 0, 30, tzinfo=UTC))]


@pytest.mark.smoke
async def test_two_schedulers_sharing_a_lock_send_each_tick_once(
    host: Host, clock: FrozenClock
) -> None:
    lock = MemoryTickLock()
    first, second = Scheduler(host, lock), Scheduler(host, lock)
    first.start()
    second.start()
    sent: list[tuple[str, dt.datetime]] = []
    for _ in range(5):
        clock.advance(60)
        sent += fired(await first.tick()) + fired(await second.tick())
    minutes = [at for name, at in sent if name == "tick.every_minute"]
    assert minutes == [T0 + dt.timedelta(minutes=n) for n in range(1, 6)]


async def test_hook_schedules_refuse_an_unknown_actor(plugin_factory: PluginFactory) -> None:
    plugin_factory.add(
        "lost",
        """
        @hookimpl
        def schedules(host):
            return [Schedule(name="lost.hourly", actor="lost.nothing", cron="0 * * * *")]
        """,
    )
    with pytest.raises(PluginError, match=r"sends unknown actor 'lost\.nothing'"):
        await Host.create(None, env={}, candidates=plugin_factory.candidates())


# --- two real `kabinet scheduler` processes against one Redis ------------------------------


@pytest.mark.slow
def test_two_scheduler_processes_fire_each_tick_exactly_once(
    plugin_factory: PluginFactory, tmp_path: Path, database_url: str
) -> None:
    b = beat(plugin_factory, tmp_path, database_url, schedule="beat.fast", interval=0.25)
    msgs_key = f"{REDIS_NAMESPACE}:{b.queue}.msgs"
    # The client and the processes are closed and stopped on every path: a socket left
    # to the garbage collector is a ResourceWarning failing whichever test runs then.
    with redis.Redis.from_url(b.redis_url) as client:
        try:
            procs: list[subprocess.Popen[bytes]] = []
            try:
                for n in (1, 2):
                    procs.append(b.start(n))
                # Wait (bounded) until both processes have seen a dozen ticks (3 s of
                # them); starting Python and the plugins takes a few seconds more on a busy
                # machine.
                deadline = time.monotonic() + 30
                while time.monotonic() < deadline and min(len(b.lines(n)) for n in (1, 2)) < 12:
                    assert all(p.poll() is None for p in procs), "a scheduler exited early"
                    time.sleep(0.1)  # waiting for the two processes, not for time to pass
            finally:
                codes = stop(procs, timeout=10)
            assert codes == [0, 0], [b.errors(n)[-2000:] for n in (1, 2)]

            # Each message in the queue carries the tick that sent it (its origin).
            sent: collections.Counter[str] = collections.Counter()
            for raw in client.hvals(msgs_key):
                message = msgspec.json.decode(raw)
                _id, _attempt, origin, _kwargs = message["args"]
                sent[origin] += 1
        finally:
            client.delete(msgs_key, f"{REDIS_NAMESPACE}:{b.queue}")
    assert len(sent) >= 8, "the schedulers sent too few ticks to judge"
    assert set(sent.values()) == {1}, f"a tick was sent twice: {sent}"

    # Both processes saw the ticks they overlapped on; for each, exactly one fired it.
    seen: dict[str, list[str]] = collections.defaultdict(list)
    for n in (1, 2):
        for state, at in b.lines(n):
            seen[at].append(state)
    both = {at: states for at, states in seen.items() if len(states) == 2}
    assert len(both) >= 10, seen
    assert all(sorted(states) == ["fired", "skipped"] for states in both.values()), both
    fired_ticks = {f"schedule:beat.fast@{at}" for at, s in seen.items() if "fired" in s}
    assert fired_ticks == set(sent)
    ticks = sorted(dt.datetime.fromisoformat(at) for at in seen)
    gaps = {(b - a).total_seconds() for a, b in itertools.pairwise(ticks)}
    assert gaps == {0.25}, "a tick went missing"
