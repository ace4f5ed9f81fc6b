"""A tick is never lost and its job never runs twice (issue 19.1): two schedulers on a real
Redis with a frozen clock, one of them "killed" at each step between its claim and its
confirmation, and a Redis worker given two messages of one tick."""

from __future__ import annotations

import asyncio
import datetime as dt
import uuid
from collections.abc import AsyncIterator, Sequence
from typing import Any

import pytest
import redis.asyncio

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
    client = redis.asyncio.Redis.from_url(REDIS)
    keys = [k async for k in client.scan_iter(f"{name}*")]
    if keys:
        await client.delete(*keys)
    await client.aclose()


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
    """Two schedulers, as in two processes, sharing this test's keys in Redis."""
    first = Scheduler(host, RedisTickLock(REDIS, prefix=prefix))
    second = Scheduler(host, RedisTickLock(REDIS, prefix=prefix))
    first.start()
    second.start()
    yield first, second
    for s in (first, second):
        await s.lock.close()


def fired(ticks: list[Any]) -> list[dt.datetime]:
    return [t.at for t in ticks if t.fired]


async def test_a_tick_claimed_by_a_scheduler_killed_before_its_send_is_taken_over(
    host: Host, clock: FrozenClock, pair: tuple[Scheduler, Scheduler], sent: list[JobMessage]
) -> None:
    first, second = pair
    clock.advance(60)
    tick = clock.now()

    async def dies(*args: Any, **kwargs: Any) -> str:
        raise Killed

    real_send = host.jobs.send_later
    host.jobs.send_later = dies  # type: ignore[method-assign]
    with pytest.raises(Killed):
        await first.tick()  # claimed, then killed before the send
    host.jobs.send_later = real_send  # type: ignore[method-assign]
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
    worker = await Host.create(
        None,
        env={"KABINET__HOST__DATABASE_URL": database_url, "KABINET__HOST__REDIS_URL": REDIS},
        candidates=plugin_factory.candidates(),
        clock=clock,
    )
    jobs = worker.jobs
    assert isinstance(jobs, RedisJobs)
    jobs.loop = asyncio.get_running_loop()
    try:
        for msg in (one, two, one):
            await asyncio.to_thread(jobs._run_threadsafe, msg)
        assert worker.services["reports"] == ["minute", "minute"]  # one, then one again
        # Messages that are not ticks are never held back.
        plain = JobMessage(one.actor, one.kwargs, one.queue, origin="relay")
        await asyncio.to_thread(jobs._run_threadsafe, plain)
        await asyncio.to_thread(jobs._run_threadsafe, dataclass_copy(plain))
        assert worker.services["reports"] == ["minute"] * 4
    finally:
        jobs.broker.client.delete(f"{REDIS_NAMESPACE}:tick:{origin}")
        jobs.loop = None
        await jobs.close()
        await worker.db.dispose()


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
