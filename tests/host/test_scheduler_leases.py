"""A tick is never lost and its job never runs twice (issue 19.1): two schedulers on a real
Redis with a frozen clock, one of them "killed" at each step between its claim and its
confirmation, and a Redis worker given two messages of one tick; then two real scheduler
processes taking over the ticks of a claimer that died."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import itertools
import math
import subprocess
import time
import uuid
from collections.abc import AsyncIterator, Callable, Sequence
from pathlib import Path
from typing import Any

import msgspec
import pytest
import redis.asyncio
from scheduler_processes import beat, stop

from kabinet.clock import FrozenClock
from kabinet.contrib import Schedule
from kabinet.host import Host
from kabinet.jobs import REDIS_NAMESPACE, JobMessage
from kabinet.jobs_redis import RedisJobs
from kabinet.scheduler import LEASE_SECONDS, RedisTickLock, Scheduler, next_tick
from kabinet.testing import PluginFactory

REDIS = "redis://127.0.0.1:6379/0"

MINUTES = """
@hookimpl
def actors(host):
    async def report(kind):
        host.services.setdefault("reports", []).append(kind)
    return [Actor(name="lease.report", fn=report, queue="default")]

@hookimpl
def schedules(host):
    return [Schedule(name="lease.every_minute", actor="lease.report", interval=60,
                     kwargs={"kind": "minute"})]
"""


MINUTE = Schedule(name="lease.every_minute", actor="lease.report", interval=60)


class Killed(BaseException):
    """The process died here (not an ``Exception``: nothing in it may catch it)."""


@pytest.fixture
async def host(
    plugin_factory: PluginFactory, database_url: str, clock: FrozenClock
) -> AsyncIterator[Host]:
    plugin_factory.add("lease", MINUTES)
    h = await Host.create(
        None,
        env={"KABINET__HOST__DATABASE_URL": database_url},
        candidates=plugin_factory.candidates(),
        clock=clock,
    )
    yield h
    await h.db.dispose()


@pytest.fixture
async def prefix() -> AsyncIterator[str]:
    """A Redis key prefix of this test alone; its keys are deleted at the end."""
    name = f"test:{uuid.uuid4().hex}:"
    yield name
    async with redis.asyncio.Redis.from_url(REDIS) as client:  # closed on every path
        keys = [k async for k in client.scan_iter(f"{name}*")]
        if keys:
            await client.delete(*keys)


@pytest.fixture
def sent(host: Host, monkeypatch: pytest.MonkeyPatch) -> list[JobMessage]:
    """Every message the schedulers send, in order."""
    found: list[JobMessage] = []

    async def enqueue(messages: Sequence[JobMessage], *, delay: float = 0.0) -> None:
        found.extend(messages)

    monkeypatch.setattr(host.jobs, "enqueue", enqueue)
    return found


@pytest.fixture
async def pair(host: Host, prefix: str) -> AsyncIterator[tuple[Scheduler, Scheduler]]:
    """Two schedulers, as in two processes, sharing this test's keys in Redis; both locks'
    Redis clients are closed however the test ends (each even if the other's close fails)."""
    async with contextlib.AsyncExitStack() as stack:
        first, second = scheduler(host, prefix, stack), scheduler(host, prefix, stack)
        first.start()
        second.start()
        yield first, second


def scheduler(host: Host, prefix: str, stack: contextlib.AsyncExitStack) -> Scheduler:
    """A scheduler with a Redis lock of its own (as in a process of its own), the lock's
    client closed when ``stack`` closes: on every path, a failed assertion included (a
    socket left to the garbage collector is a ResourceWarning, an "unraisable exception"
    failing whichever test runs when it is collected). Closing it twice is harmless."""
    lock = RedisTickLock(REDIS, prefix=prefix)
    stack.push_async_callback(lock.close)
    return Scheduler(host, lock)


def fired(ticks: list[Any]) -> list[dt.datetime]:
    return [t.at for t in ticks if t.fired]


async def killed_before_its_send(scheduler: Scheduler, host: Host) -> None:
    """``scheduler`` ticks: it claims the tick that fell due, then dies before sending it."""

    async def dies(*args: Any, **kwargs: Any) -> str:
        raise Killed

    real_send = host.jobs.send_later
    host.jobs.send_later = dies  # type: ignore[method-assign]
    try:
        with pytest.raises(Killed):
            await scheduler.tick()
    finally:
        host.jobs.send_later = real_send  # type: ignore[method-assign]


async def test_a_tick_claimed_by_a_scheduler_killed_before_its_send_is_taken_over(
    host: Host, clock: FrozenClock, pair: tuple[Scheduler, Scheduler], sent: list[JobMessage]
) -> None:
    first, second = pair
    clock.advance(60)
    tick = clock.now()
    await killed_before_its_send(first, host)
    assert fired(await second.tick()) == []  # claimed by the first: pending here
    assert sent == []

    clock.advance(LEASE_SECONDS - 1)
    assert fired(await second.tick()) == []  # the lease still holds
    clock.advance(1.5)
    assert fired(await second.tick()) == [tick]  # the lease ended unconfirmed: taken over
    assert [m.origin for m in sent] == [f"schedule:lease.every_minute@{tick.isoformat()}"]
    clock.advance(LEASE_SECONDS * 2)
    assert fired(await second.tick()) == []  # sent once: nothing pending any more
    assert second.pending == []
    assert len(sent) == 1


async def test_a_lone_scheduler_restarted_after_a_kill_sends_the_tick_it_had_claimed(
    host: Host, clock: FrozenClock, prefix: str, sent: list[JobMessage]
) -> None:
    """No other scheduler ran: the restarted one finds the claim its killed self left."""
    async with contextlib.AsyncExitStack() as stack:
        killed = scheduler(host, prefix, stack)
        killed.start()
        clock.advance(60)
        tick = clock.now()
        await killed_before_its_send(killed, host)
        await killed.lock.close()  # the process is gone, its connection with it

        clock.advance(2)  # the process is started again, its lease still running
        restarted = scheduler(host, prefix, stack)
        restarted.start()
        assert fired(await restarted.tick()) == []  # the dead claim's lease still holds
        clock.advance(LEASE_SECONDS)
        assert fired(await restarted.tick()) == [tick]  # lapsed unconfirmed: taken over
        clock.advance(60)
        assert fired(await restarted.tick()) == [tick + dt.timedelta(seconds=60)]
    assert [m.origin for m in sent] == [
        f"schedule:lease.every_minute@{t.isoformat()}"
        for t in (tick, tick + dt.timedelta(seconds=60))
    ]


async def test_a_restarted_scheduler_sends_no_tick_that_was_sent_or_never_claimed(
    host: Host, clock: FrozenClock, prefix: str, sent: list[JobMessage]
) -> None:
    """A tick another scheduler sent is done; one that fell while no scheduler ran is
    not sent late (ticks before a start are not sent)."""
    async with contextlib.AsyncExitStack() as stack:
        first = scheduler(host, prefix, stack)
        first.start()
        clock.advance(60)
        assert len(fired(await first.tick())) == 1
        await first.lock.close()
        for _ in range(2):  # sent before the restart; then none ran at the next tick
            again = scheduler(host, prefix, stack)
            again.start()
            assert again.pending != []  # the latest tick is watched
            clock.advance(LEASE_SECONDS * 3)
            assert fired(await again.tick()) == []
            assert again.pending == []
            await again.lock.close()
            clock.advance(60 - LEASE_SECONDS * 3)
    assert len(sent) == 1


async def test_a_confirmed_tick_is_never_sent_again(
    host: Host, clock: FrozenClock, pair: tuple[Scheduler, Scheduler], sent: list[JobMessage]
) -> None:
    first, second = pair
    for _ in range(3):
        tick = next_tick(MINUTE, clock.now())
        clock.advance((tick - clock.now()).total_seconds())
        one, other = fired(await first.tick()), fired(await second.tick())
        assert (one, other) == ([tick], [])
        assert second.pending != []
        clock.advance(LEASE_SECONDS + 1)  # past the lease: the pending tick was sent
        assert fired(await second.tick()) + fired(await first.tick()) == []
    assert second.pending == []
    origins = [m.origin for m in sent]
    assert len(origins) == len(set(origins)) == 3


async def test_a_failed_send_is_tried_again_by_the_same_scheduler_after_its_lease(
    host: Host, clock: FrozenClock, pair: tuple[Scheduler, Scheduler], sent: list[JobMessage]
) -> None:
    alone = pair[0]
    clock.advance(60)
    tick = clock.now()

    async def refused(*args: Any, **kwargs: Any) -> str:
        raise ConnectionError("Redis is away")

    real_send = host.jobs.send_later
    host.jobs.send_later = refused  # type: ignore[method-assign]
    assert fired(await alone.tick()) == []
    host.jobs.send_later = real_send  # type: ignore[method-assign]
    clock.advance(LEASE_SECONDS + 0.5)
    assert fired(await alone.tick()) == [tick]
    assert len(sent) == 1


async def test_a_scheduler_killed_between_send_and_confirmation_sends_twice_one_job_runs(
    host: Host,
    clock: FrozenClock,
    pair: tuple[Scheduler, Scheduler],
    sent: list[JobMessage],
    plugin_factory: PluginFactory,
    database_url: str,
) -> None:
    first, second = pair
    clock.advance(60)

    async def dies(key: str, *, ttl: float) -> None:
        raise Killed

    first.lock.confirm = dies  # type: ignore[method-assign]
    with pytest.raises(Killed):
        await first.tick()  # sent, then killed before the confirmation
    await second.tick()
    clock.advance(LEASE_SECONDS + 1)
    await second.tick()  # taken over: sent again
    assert len(sent) == 2
    assert sent[0].origin == sent[1].origin
    assert sent[0].id != sent[1].id

    # A Redis worker runs the first of the two, drops the second, and runs the first again
    # when it is redelivered (its worker died in the middle of it).
    origin = f"schedule:lease.every_minute@{uuid.uuid4().hex}"  # this test's tick alone
    one, two = (JobMessage(m.actor, m.kwargs, m.queue, id=m.id, origin=origin) for m in sent)
    env = {"KABINET__HOST__DATABASE_URL": database_url, "KABINET__HOST__REDIS_URL": REDIS}
    async with contextlib.AsyncExitStack() as stack:
        worker = await Host.create(
            None, env=env, candidates=plugin_factory.candidates(), clock=clock
        )
        jobs = redis_jobs(worker, stack)
        stack.callback(jobs.broker.client.delete, f"{REDIS_NAMESPACE}:tick:{origin}")
        jobs.loop = asyncio.get_running_loop()
        stack.callback(setattr, jobs, "loop", None)
        for msg in (one, two, one):
            await asyncio.to_thread(jobs._run_threadsafe, msg)
        assert worker.services["reports"] == ["minute", "minute"]  # one, then one again
        # Messages that are not ticks are never held back.
        plain = JobMessage(one.actor, one.kwargs, one.queue, origin="relay")
        await asyncio.to_thread(jobs._run_threadsafe, plain)
        await asyncio.to_thread(jobs._run_threadsafe, dataclass_copy(plain))
        assert worker.services["reports"] == ["minute"] * 4
    # Closing the jobs closed the sockets of the broker's pool (left open, the garbage
    # collector closes them with a ResourceWarning whenever it runs).
    pool = jobs.broker.client.connection_pool
    assert pool._available_connections  # the worker talked to Redis
    assert [c for c in pool._available_connections if c._sock is not None] == []


def redis_jobs(host: Host, stack: contextlib.AsyncExitStack) -> RedisJobs:
    """``host``'s Redis jobs; when ``stack`` closes, on every path, they are closed (the
    broker's connection pool with them), then the host's database."""
    stack.push_async_callback(host.db.dispose)
    jobs = host.jobs
    stack.push_async_callback(jobs.close)
    assert isinstance(jobs, RedisJobs)
    return jobs


def dataclass_copy(msg: JobMessage) -> JobMessage:
    """Another message with the same origin and arguments."""
    return JobMessage(msg.actor, msg.kwargs, msg.queue, origin=msg.origin)


async def test_a_claim_of_an_earlier_release_without_a_lease_is_not_taken_over(
    host: Host, clock: FrozenClock, pair: tuple[Scheduler, Scheduler], sent: list[JobMessage]
) -> None:
    """During a rolling upgrade a scheduler of the earlier release claims a tick with its
    bare id and sends it at once (its workers do not drop a second message of a tick)."""
    old, new = pair
    clock.advance(60)
    lock = old.lock
    assert isinstance(lock, RedisTickLock)
    key = f"{lock.prefix}kabinet:schedule:lease.every_minute:{clock.now().isoformat()}"
    await lock.redis.set(key, lock.owner, px=600_000)
    assert fired(await new.tick()) == []
    clock.advance(LEASE_SECONDS * 3)
    assert fired(await new.tick()) == []
    assert new.pending == []
    assert sent == []


# --- two real `kabinet scheduler` processes, and claims of schedulers that died -------------


@pytest.mark.slow
async def test_scheduler_processes_take_over_the_ticks_of_a_dead_claimer_and_each_runs_once(
    plugin_factory: PluginFactory, tmp_path: Path, database_url: str
) -> None:
    b = beat(plugin_factory, tmp_path, database_url, schedule="beat.second", interval=1)
    settings, url, queue = b.settings, b.redis_url, b.queue
    origins: list[str] = []
    ran: list[str] = []
    # Every Redis client, host and process below is closed or stopped on every path (an
    # assertion failing, a process that will not stop): a socket left to the garbage
    # collector is a ResourceWarning failing whichever later test runs when it is collected.
    async with contextlib.AsyncExitStack() as stack:
        client = await stack.enter_async_context(redis.asyncio.Redis.from_url(url))
        stack.push_async_callback(forget, client, queue, origins)
        procs: list[subprocess.Popen[bytes]] = []
        try:
            for n in (1, 2):
                procs.append(b.start(n))
            async with contextlib.AsyncExitStack() as senders:
                sender = await Host.create(settings, env={}, candidates=plugin_factory.candidates())
                redis_jobs(sender, senders)

                def both_tick() -> bool:
                    return all(b.lines(n) for n in (1, 2))

                await wait_until(both_tick, procs)
                # Two ticks to come are claimed by a scheduler that then died: before its
                # send (``lost``), and after its send but before its confirmation (``twice``).
                now = math.floor(time.time())
                lost, twice = (
                    dt.datetime.fromtimestamp(now + n, dt.UTC).isoformat() for n in (3, 4)
                )
                for at in (lost, twice):
                    lease = f"dead {dt.datetime.fromisoformat(at).timestamp() + 1.0!r}"
                    await client.set(f"kabinet:schedule:beat.second:{at}", lease, px=60_000)
                await sender.jobs.send_later(
                    0.0, "beat.note", {}, origin=f"schedule:beat.second@{twice}"
                )

                def fired() -> set[str]:
                    return {at for n in (1, 2) for state, at in b.lines(n) if state == "fired"}

                def both_fired() -> bool:
                    return {lost, twice} <= fired()

                def later_fired() -> bool:
                    return any(at > twice for at in fired())

                await wait_until(both_fired, procs)
                await wait_until(later_fired, procs)
        finally:
            codes = stop(procs)
        assert codes == [0, 0], [b.errors(n)[-2000:] for n in (1, 2)]

        # Each tick was fired by one scheduler, none is missing, the two taken over included.
        every = [at for n in (1, 2) for state, at in b.lines(n) if state == "fired"]
        assert len(every) == len(set(every)), every
        seconds = sorted(dt.datetime.fromisoformat(at).timestamp() for at in every)
        assert {b - a for a, b in itertools.pairwise(seconds)} == {1.0}, every
        said = "".join(b.log(n).read_text() + b.errors(n) for n in (1, 2))
        assert said.count("taken over") == 2, said[-3000:]

        # The queue holds one message per tick, two for ``twice``; a worker runs one of each.
        ids = [m.decode() for m in await client.lrange(f"{REDIS_NAMESPACE}:{queue}", 0, -1)]  # type: ignore[union-attr]
        raw = await client.hmget(f"{REDIS_NAMESPACE}:{queue}.msgs", ids)
        worker = await Host.create(settings, env={}, candidates=plugin_factory.candidates())
        jobs = redis_jobs(worker, stack)
        for data in raw:
            assert data is not None
            msg = JobMessage.from_wire("beat.note", queue, msgspec.json.decode(data)["args"])
            origins.append(msg.origin)
            if await asyncio.to_thread(jobs.first_of_its_tick, msg):
                ran.append(msg.origin)
    assert sorted(origins) == sorted([f"schedule:beat.second@{at}" for at in [*every, twice]])
    assert sorted(ran) == sorted(set(origins))


async def forget(client: redis.asyncio.Redis, queue: str, origins: Sequence[str]) -> None:
    """Delete the test's queue and the claims of the ticks a worker ran."""
    keys = [f"{REDIS_NAMESPACE}:tick:{o}" for o in origins]
    await client.delete(f"{REDIS_NAMESPACE}:{queue}", f"{REDIS_NAMESPACE}:{queue}.msgs", *keys)


async def wait_until(predicate: Callable[[], bool], procs: list[subprocess.Popen[bytes]]) -> None:
    """Poll the scheduler processes' progress (bounded: 40 s for a loaded machine)."""
    end = time.monotonic() + 40
    while not predicate():
        assert all(p.poll() is None for p in procs), "a scheduler exited early"
        assert time.monotonic() < end, "the schedulers made no progress in 40 s"
        await asyncio.sleep(0.1)  # polling other processes, not waiting for time to pass
