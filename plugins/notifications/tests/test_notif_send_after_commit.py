"""The send job of a delivery is queued only once the delivery is committed, and then at
once, on every path that queues deliveries: an event's handler (the relay's batch, and
one event delivered alone), a resend from the admin pages, and a digest the sweep sends
when its window ends. A job queued before the commit finds no row to claim, and the
delivery waits for the sweep minutes later (seen under ``kabinet serve``)."""

from __future__ import annotations

import uuid
from collections.abc import Sequence

import pytest
from notif_support import deliveries, folder, publish
from sqlalchemy import select

from kabinet.clock import FrozenClock
from kabinet.host import Host
from kabinet.jobs import EmbeddedJobs, JobMessage
from kabinet.testing import Portal
from kabinet_notifications import models as m
from kabinet_notifications.sending import SEND_ACTOR

pytestmark = pytest.mark.smoke


class Queued:
    """Each send job as it reaches the queue, with its deliveries' statuses as another
    connection sees them at that moment (what a worker's claim would find)."""

    def __init__(self, host: Host, monkeypatch: pytest.MonkeyPatch) -> None:
        self.host = host
        self.seen: list[tuple[list[int], dict[int, str]]] = []
        jobs = host.jobs
        assert isinstance(jobs, EmbeddedJobs)
        self.jobs = jobs
        original = jobs._enqueue

        async def spy(messages: Sequence[JobMessage], *, delay: float = 0.0) -> None:
            for msg in messages:
                if msg.actor == SEND_ACTOR:
                    ids = [int(i) for i in msg.kwargs["ids"]]
                    self.seen.append((ids, await self.committed(ids)))
            await original(messages, delay=delay)

        monkeypatch.setattr(jobs, "_enqueue", spy)

    async def committed(self, ids: list[int]) -> dict[int, str]:
        d = m.delivery
        async with self.host.db.engine.connect() as c:  # outside any unit of work
            rows = await c.execute(select(d.c.id, d.c.status).where(d.c.id.in_(ids)))
            return {int(i): str(s) for i, s in rows.all()}

    def of(self, ids: Sequence[int]) -> list[tuple[list[int], dict[int, str]]]:
        return [(sent, found) for sent, found in self.seen if set(sent) & set(ids)]

    async def relay_and_run(self) -> None:
        """The relay and the jobs due, as ``kabinet serve`` runs them (no sweep)."""
        for _ in range(5):
            relayed = await self.host.events.relay()
            if not relayed and not await self.jobs.drain():
                return


def committed_when_queued(queued: list[tuple[list[int], dict[int, str]]]) -> None:
    assert queued, "no send job was queued"
    for ids, found in queued:
        assert sorted(found) == sorted(ids), f"send job {ids} queued before the commit: {found}"


async def test_an_events_deliveries_are_sent_right_after_the_relays_batch_commits(
    portal: Portal, host: Host, monkeypatch: pytest.MonkeyPatch
) -> None:
    queued = Queued(host, monkeypatch)
    ivan = await portal.person(phone=f"+7916{uuid.uuid4().int % 10**7:07d}")
    anna = await portal.person()
    for who, parcel in ((ivan, "B-1"), (anna, "B-2")):
        await publish(
            host, "depot.parcel.arrived", {"account_id": who.id, "parcel": parcel, "depot": "X"}
        )
    await queued.relay_and_run()  # one batch of both events, each handler in a savepoint
    rows = await deliveries(host, person_id=ivan.id) + await deliveries(host, person_id=anna.id)
    assert sorted((r["person_id"], r["channel"], r["status"]) for r in rows) == sorted(
        [(ivan.id, "email", "sent"), (ivan.id, "sms", "sent"), (anna.id, "email", "sent")]
    )
    assert all(r["attempts"] == 1 for r in rows)
    committed_when_queued(queued.of([r["id"] for r in rows]))


async def test_an_event_delivered_alone_is_sent_right_after_its_commit(
    portal: Portal, host: Host, monkeypatch: pytest.MonkeyPatch
) -> None:
    queued = Queued(host, monkeypatch)
    ivan = await portal.person()
    event_id = await publish(
        host, "depot.parcel.arrived", {"account_id": ivan.id, "parcel": "A-1", "depot": "X"}
    )
    # as a retry or the admin's "deliver again" runs it: one event, no savepoint
    assert await host.events.deliver(event_id, "notifications.depot.parcel.arrived") == "handled"
    await queued.jobs.drain()
    [row] = await deliveries(host, person_id=ivan.id)
    assert (row["status"], row["attempts"]) == ("sent", 1)
    committed_when_queued(queued.of([row["id"]]))


@pytest.mark.parametrize("in_unit", [True, False], ids=["in-a-request", "alone"])
async def test_a_resend_from_the_admin_is_sent_right_after_its_commit(
    portal: Portal, host: Host, monkeypatch: pytest.MonkeyPatch, in_unit: bool
) -> None:
    from kabinet_notifications import reports
    from kabinet_notifications.services import Editor

    ivan = await portal.person()
    await publish(
        host, "depot.parcel.arrived", {"account_id": ivan.id, "parcel": "R-1", "depot": "X"}
    )
    queued = Queued(host, monkeypatch)
    await queued.relay_and_run()
    [original] = await deliveries(host, person_id=ivan.id)
    editor = Editor(None, "Staff")
    if in_unit:  # the admin page's request is one unit of work
        async with host.db.unit():
            new = await reports.resend(host, [original["id"]], channel=None, editor=editor)
            assert queued.of(new) == []  # not before the request commits
    else:
        new = await reports.resend(host, [original["id"]], channel=None, editor=editor)
    assert len(new) == 1
    committed_when_queued(queued.of(new))
    await queued.jobs.drain()
    [again] = await deliveries(host, resend_of=original["id"])
    assert (again["status"], again["attempts"]) == ("sent", 1)
    mails = [f for f in folder(host) if f["account_id"] == ivan.id]
    assert [f["body"] for f in mails].count(original["body"]) == 2


@pytest.mark.kabinet_settings(notifications={"digest_minutes": 10})
async def test_a_digest_is_sent_right_after_its_window_ends(
    portal: Portal, host: Host, clock: FrozenClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    from kabinet_notifications.sending import sweep

    queued = Queued(host, monkeypatch)
    ivan = await portal.person()
    for parcel in ("D-1", "D-2"):
        await publish(
            host, "depot.parcel.arrived", {"account_id": ivan.id, "parcel": parcel, "depot": "X"}
        )
        await queued.relay_and_run()
    rows = await deliveries(host, person_id=ivan.id)
    assert [r["status"] for r in rows] == ["queued", "queued"]
    assert queued.of([r["id"] for r in rows]) == []  # held for the window
    clock.advance(10 * 60)
    assert await sweep(host) >= 2  # (and whatever earlier tests left due)
    committed_when_queued(queued.of([r["id"] for r in rows]))
    await queued.jobs.drain()
    rows = await deliveries(host, person_id=ivan.id)
    assert [(r["status"], r["attempts"]) for r in rows] == [("sent", 1), ("sent", 1)]
    [mail] = [f for f in folder(host) if f["account_id"] == ivan.id]
    assert mail["kind"] == "notifications.digest"
