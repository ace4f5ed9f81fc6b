"""The event bus: outbox in the publisher's transaction, relay, at-least-once delivery.

The embedded job runner and a frozen clock drive delivery and backoff here; the Redis
path with a real worker process is in test_jobs.py.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import sys
from collections.abc import AsyncIterator
from typing import Any

import pytest
from sqlalchemy import delete, func, make_url, select, text, update

from kabinet import models
from kabinet.clock import FrozenClock
from kabinet.db import Database
from kabinet.errors import PluginError
from kabinet.events import DELIVER_BATCH_ACTOR, EventError
from kabinet.host import Host
from kabinet.jobs import EmbeddedJobs
from kabinet.testing import PluginFactory, drop_database, migrated_database

pytestmark = pytest.mark.smoke

EVT = """
import asyncio
import msgspec

class OrderCreated(msgspec.Struct):
    order_id: int

CALLS = []
FAIL = {"times": 0}
FAIL_ONCE = set()
HOLD = {}

@hookimpl
def event_types():
    return [
        EventType(name="evt.order.created", payload=OrderCreated),
        EventType(name="evt.audit.noted"),
    ]

@hookimpl
def subscriptions(host):
    async def audit(event, session):
        CALLS.append(event.payload.order_id)
        if "gate" in HOLD:
            HOLD["entered"].set()
            await HOLD["gate"].wait()
        # The subscriber's effect, written through the session it was given.
        await host.events.publish(session, "evt.audit.noted", {"order_id": event.payload.order_id})
        if FAIL["times"] > 0 or event.payload.order_id in FAIL_ONCE:
            FAIL["times"] = max(0, FAIL["times"] - 1)
            FAIL_ONCE.discard(event.payload.order_id)
            raise RuntimeError(f"mail server down for order {event.payload.order_id}")

    return [Subscription(event="evt.order.created", name="evt.audit", handler=audit)]
"""


HOST_TABLES = "host_event_handling", "host_event", "host_failed_job"


@pytest.fixture(scope="module")
async def module_url(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[str]:
    """One migrated database for this module (creating one per test takes seconds)."""
    url = await migrated_database(tmp_path_factory.mktemp("db"))
    yield url
    await drop_database(url)


@pytest.fixture
async def fresh_url(module_url: str) -> str:
    """The module's database with the host's tables emptied, so no earlier test's events
    are relayed and ids start at 1."""
    db = Database(make_url(module_url))
    try:
        async with db.session() as s:
            if db.dialect == "postgresql":
                await s.execute(text(f"TRUNCATE {', '.join(HOST_TABLES)} RESTART IDENTITY"))
            else:
                for table in (models.event_handling, models.event, models.failed_job):
                    await s.execute(delete(table))
    finally:
        await db.dispose()
    return module_url


@pytest.fixture
async def host(
    plugin_factory: PluginFactory, fresh_url: str, clock: FrozenClock
) -> AsyncIterator[Host]:
    plugin_factory.add("evt", EVT)
    h = await Host.create(
        None,
        env={"KABINET__HOST__DATABASE_URL": fresh_url},
        candidates=plugin_factory.candidates(),
        clock=clock,
    )
    yield h
    await h.db.dispose()


def plugin(factory: PluginFactory) -> Any:
    return sys.modules[factory.modules[0]]


def jobs(host: Host) -> EmbeddedJobs:
    assert isinstance(host.jobs, EmbeddedJobs)
    return host.jobs


async def publish(host: Host, order_id: int) -> int:
    async with host.db.session() as s:
        return await host.events.publish(s, "evt.order.created", {"order_id": order_id})


async def effects(host: Host) -> list[Any]:
    t = models.event
    async with host.db.session() as s:
        rows = await s.execute(
            select(t.c.payload).where(t.c.type == "evt.audit.noted").order_by(t.c.id)
        )
        return [r[0]["order_id"] for r in rows]


async def handling(host: Host, event_id: int) -> dict[str, Any]:
    h = models.event_handling
    async with host.db.session() as s:
        row = (
            (
                await s.execute(
                    select(h).where(h.c.event_id == event_id, h.c.subscriber == "evt.audit")
                )
            )
            .mappings()
            .one()
        )
    return models.row_times(dict(row), "next_attempt_at", "handled_at", "updated_at")


async def test_event_of_rolled_back_transaction_is_never_delivered(
    host: Host, plugin_factory: PluginFactory
) -> None:
    class Abandon(Exception):
        pass

    async def abandoned() -> None:
        async with host.db.session() as s:
            await host.events.publish(s, "evt.order.created", {"order_id": 1})
            raise Abandon

    with pytest.raises(Abandon):
        await abandoned()
    await publish(host, 2)

    assert await host.events.relay() == 1
    assert await jobs(host).drain() == 1
    assert await host.events.relay() == 1  # the subscriber's own event, which nobody hears
    assert await jobs(host).drain() == 0

    assert plugin(plugin_factory).CALLS == [2]
    assert await effects(host) == [2]
    async with host.db.session() as s:
        types = (await s.execute(select(models.event.c.type))).scalars().all()
    assert sorted(types) == ["evt.audit.noted", "evt.order.created"]


async def test_commit_wakes_the_relay_and_rollback_does_not(host: Host) -> None:
    bus = host.events

    async def abandoned() -> None:
        async with host.db.session() as s:
            await bus.publish(s, "evt.order.created", {"order_id": 1})
            raise LookupError

    with pytest.raises(LookupError):
        await abandoned()
    assert not bus._wake.is_set()
    await publish(host, 2)
    assert bus._wake.is_set()


async def test_failing_subscriber_is_retried_with_backoff_then_recorded_as_failed(
    host: Host, plugin_factory: PluginFactory, clock: FrozenClock
) -> None:
    mod = plugin(plugin_factory)
    mod.FAIL["times"] = 100
    bus, runner = host.events, jobs(host)
    start = clock.now()
    event_id = await publish(host, 7)
    await bus.relay()

    assert await runner.drain() == 1
    row = await handling(host, event_id)
    assert (row["state"], row["attempts"]) == ("retrying", 1)
    assert row["next_attempt_at"] == start + dt.timedelta(seconds=2)
    assert "RuntimeError: mail server down for order 7" in row["last_error"]

    # Nothing runs before the backoff has passed, then each retry waits twice as long.
    waits = []
    for attempt in range(2, bus.max_attempts + 1):
        due = row["next_attempt_at"]
        clock.advance((due - clock.now()).total_seconds() - 0.5)
        assert await runner.drain() == 0
        clock.advance(0.5)
        assert await runner.drain() == 1
        row = await handling(host, event_id)
        assert row["attempts"] == attempt
        if row["next_attempt_at"] is not None:
            waits.append((row["next_attempt_at"] - clock.now()).total_seconds())
    assert waits == [4.0, 8.0, 16.0]
    assert row["state"] == "failed"
    assert row["next_attempt_at"] is None
    assert "mail server down for order 7" in row["last_error"]
    assert len(mod.CALLS) == bus.max_attempts
    assert runner.pending == 0
    assert await effects(host) == []

    listed = await bus.with_errors()
    assert [(e.event_id, e.subscriber, e.state, e.attempts) for e in listed] == [
        (event_id, "evt.audit", "failed", bus.max_attempts)
    ]
    assert listed[0].payload == {"order_id": 7}

    # An admin retries it once the mail server is back.
    mod.FAIL["times"] = 0
    await bus.retry(event_id, "evt.audit")
    await runner.drain()
    row = await handling(host, event_id)
    assert row["state"] == "handled"
    assert await effects(host) == [7]
    assert await bus.with_errors() == []
    with pytest.raises(EventError, match="has no failed handling of event"):
        await bus.retry(event_id, "evt.audit")


async def test_duplicate_delivery_has_no_second_effect(
    host: Host, plugin_factory: PluginFactory
) -> None:
    bus, runner = host.events, jobs(host)
    event_id = await publish(host, 3)
    await bus.relay()
    # The relay crashed after sending and before marking: the event is relayed again.
    async with host.db.session() as s:
        await s.execute(update(models.event).values(relayed_at=None))
    await bus.relay()
    assert runner.pending == 2

    assert await runner.drain() == 2
    assert plugin(plugin_factory).CALLS == [3]
    assert await effects(host) == [3]
    assert await bus.deliver(event_id, "evt.audit", 0) == "skipped"
    row = await handling(host, event_id)
    assert (row["state"], row["attempts"]) == ("handled", 1)


@pytest.mark.postgres
async def test_concurrent_duplicates_run_the_handler_once(
    host: Host, plugin_factory: PluginFactory
) -> None:
    mod = plugin(plugin_factory)
    gate = mod.HOLD["gate"] = asyncio.Event()
    entered = mod.HOLD["entered"] = asyncio.Event()
    event_id = await publish(host, 4)
    first = asyncio.create_task(host.events.deliver(event_id, "evt.audit", 0))
    await entered.wait()  # the first delivery is inside the handler, holding the row
    second = asyncio.create_task(host.events.deliver(event_id, "evt.audit", 0))
    await asyncio.wait([second], timeout=0.2)
    assert not second.done()  # waits for the first one's row lock
    gate.set()
    assert sorted(await asyncio.gather(first, second)) == ["handled", "skipped"]
    assert mod.CALLS == [4]
    assert await effects(host) == [4]


async def test_lost_deliveries_are_sent_again(host: Host, clock: FrozenClock) -> None:
    bus, runner = host.events, jobs(host)
    await publish(host, 5)
    await bus.relay()
    runner._heap.clear()  # the process stopped before running the delivery
    assert await bus.redeliver_stale(older_than=600) == 0
    clock.advance(601)
    assert await bus.redeliver_stale(older_than=600) == 1
    await runner.drain()
    assert await effects(host) == [5]
    assert await bus.redeliver_stale(older_than=0) == 0


async def test_publish_refuses_undeclared_types_and_bad_payloads(host: Host) -> None:
    async with host.db.session() as s:
        with pytest.raises(EventError, match=r"'evt\.order\.made' is not declared .*event_types"):
            await host.events.publish(s, "evt.order.made", {"order_id": 1})
        with pytest.raises(EventError, match="does not fit OrderCreated"):
            await host.events.publish(s, "evt.order.created", {"order_id": "one"})
        with pytest.raises(EventError, match="must be a OrderCreated, got Host"):
            await host.events.publish(s, "evt.order.created", host)  # type: ignore[arg-type]


async def test_delivery_job_carries_events_and_subscriber(host: Host) -> None:
    first, second = await publish(host, 6), await publish(host, 16)
    assert await host.events.relay() == 2
    [(_, _, msg)] = jobs(host)._heap  # one job for both events of one subscriber
    assert msg.actor == DELIVER_BATCH_ACTOR
    assert msg.kwargs == {
        "subscriber": "evt.audit",
        "events": [
            [first, "evt.order.created", {"order_id": 6}, "2026-01-15T09:00:00+00:00"],
            [second, "evt.order.created", {"order_id": 16}, "2026-01-15T09:00:00+00:00"],
        ],
    }
    assert msg.queue == "events"


async def test_relay_splits_many_events_into_batches(
    host: Host, plugin_factory: PluginFactory
) -> None:
    host.events.batch_size = 2
    for order in range(5):
        await publish(host, order)
    assert await host.events.relay(limit=4) == 4
    assert [len(m.kwargs["events"]) for _, _, m in sorted(jobs(host)._heap)] == [2, 2]
    assert await host.events.relay() == 1
    assert await jobs(host).drain() == 3
    assert sorted(plugin(plugin_factory).CALLS) == [0, 1, 2, 3, 4]
    assert sorted(await effects(host)) == [0, 1, 2, 3, 4]


async def test_one_failure_in_a_batch_keeps_the_others_effects(
    host: Host, plugin_factory: PluginFactory, clock: FrozenClock
) -> None:
    mod = plugin(plugin_factory)
    ids = [await publish(host, order) for order in (1, 2, 3)]
    mod.FAIL_ONCE.add(2)
    await host.events.relay()
    assert await jobs(host).drain() == 1  # one job for the three
    assert await effects(host) == [1, 3]  # the second's write was rolled back alone
    states = [(await handling(host, i))["state"] for i in ids]
    assert states == ["handled", "retrying", "handled"]
    failed = await handling(host, ids[1])
    assert failed["attempts"] == 1
    assert "mail server down for order 2" in failed["last_error"]
    assert failed["next_attempt_at"] == clock.now() + dt.timedelta(seconds=2)
    clock.advance(2)
    assert await jobs(host).drain() == 1  # the retry, of that event alone
    assert (await handling(host, ids[1]))["state"] == "handled"
    assert sorted(await effects(host)) == [1, 2, 3]
    assert mod.CALLS == [1, 2, 3, 2]


async def test_host_tables_match_their_migrations(fresh_url: str) -> None:
    host = await Host.create(None, env={"KABINET__HOST__DATABASE_URL": fresh_url})
    try:
        assert await host.migrations.diff("host") == []
        assert {"host_event", "host_event_handling", "host_failed_job"} <= set(
            host.migrations.by_name["host"].metadata.tables
        )
    finally:
        await host.db.dispose()


# --- the subscriptions hook, as the host consumes it ------------------------------------


async def test_hook_subscriptions_delivered_to_each_subscriber(
    plugin_factory: PluginFactory, fresh_url: str, clock: FrozenClock
) -> None:
    plugin_factory.add("evt", EVT)
    plugin_factory.add(
        "other",
        """
        SEEN = []

        @hookimpl
        async def subscriptions(host):
            def sync_handler(event):
                SEEN.append((event.type, event.payload.order_id))
            return [
                Subscription(event="evt.order.created", name="other.seen", handler=sync_handler)
            ]
        """,
        requires=("evt",),
    )
    host = await Host.create(
        None,
        env={"KABINET__HOST__DATABASE_URL": fresh_url},
        candidates=plugin_factory.candidates(),
        clock=clock,
    )
    try:
        assert set(host.subscriptions) == {"evt.audit", "other.seen"}
        await publish(host, 9)
        await host.events.relay()
        assert await jobs(host).drain() == 2
        assert sys.modules[plugin_factory.modules[1]].SEEN == [("evt.order.created", 9)]
        assert await effects(host) == [9]
    finally:
        await host.db.dispose()


async def test_hook_subscriptions_to_undeclared_event_refused(
    plugin_factory: PluginFactory,
) -> None:
    plugin_factory.add(
        "lone",
        """
        @hookimpl
        def subscriptions(host):
            return [Subscription(event="ghost.thing.happened", name="lone.x", handler=print)]
        """,
    )
    with pytest.raises(PluginError, match=r"'lone\.x' listens to 'ghost\.thing\.happened'"):
        await Host.create(None, env={}, candidates=plugin_factory.candidates())


async def test_hook_subscriptions_names_are_unique(plugin_factory: PluginFactory) -> None:
    plugin_factory.add("evt", EVT)
    plugin_factory.add(
        "dup",
        """
        @hookimpl
        def subscriptions(host):
            return [Subscription(event="evt.order.created", name="evt.audit", handler=print)]
        """,
        requires=("evt",),
    )
    with pytest.raises(PluginError, match=r"evt\.audit"):
        await Host.create(None, env={}, candidates=plugin_factory.candidates())


async def test_handler_failure_rolls_back_its_own_writes(
    host: Host, plugin_factory: PluginFactory
) -> None:
    t = models.event
    plugin(plugin_factory).FAIL["times"] = 1
    event_id = await publish(host, 8)
    await host.events.relay()
    await jobs(host).drain()
    async with host.db.session() as s:
        count = (await s.execute(select(func.count()).select_from(t))).scalar_one()
    assert count == 1  # the effect published before the failure was rolled back
    assert (await handling(host, event_id))["state"] == "retrying"
