"""From an event to deliveries: recipients, templates, preferences, idempotency, secrets."""

from __future__ import annotations

import uuid

import pytest
from notif_support import deliveries, folder, publish, run

from kabinet.clock import FrozenClock
from kabinet.host import Host
from kabinet.testing import Portal
from kabinet_notifications.services import Editor, service_of

pytestmark = pytest.mark.smoke


async def test_an_event_sends_its_notification_to_the_person_on_each_channel(
    portal: Portal, host: Host
) -> None:
    ivan = await portal.person(name="Иван", phone=f"+7916{uuid.uuid4().int % 10**7:07d}")
    await publish(
        host, "depot.parcel.arrived", {"account_id": ivan.id, "parcel": "P-77", "depot": "Казань"}
    )
    await run(host)
    rows = await deliveries(host, person_id=ivan.id)
    assert sorted((r["channel"], r["status"]) for r in rows) == [("email", "sent"), ("sms", "sent")]
    mail = next(r for r in rows if r["channel"] == "email")
    assert mail["subject"] == "Посылка P-77"
    assert mail["body"] == "Иван, посылка P-77 прибыла в Казань."
    written = [f for f in folder(host) if f["account_id"] == ivan.id]
    assert sorted(f["channel"] for f in written) == ["email", "sms"]
    assert next(f for f in written if f["channel"] == "sms")["body"] == "Посылка P-77 прибыла"


async def test_a_redelivered_event_sends_nothing_twice(portal: Portal, host: Host) -> None:
    from kabinet.events import Event
    from kabinet_notifications.delivery import dispatch

    ivan = await portal.person()
    event_id = await publish(
        host, "depot.parcel.arrived", {"account_id": ivan.id, "parcel": "P-1", "depot": "X"}
    )
    await run(host)
    ev = Event(
        id=event_id,
        type="depot.parcel.arrived",
        payload={"account_id": ivan.id, "parcel": "P-1", "depot": "X"},
        created_at=host.clock.now(),
    )
    async with host.db.session() as s:
        await dispatch(host, ev, s)
    await run(host)
    assert len(await deliveries(host, person_id=ivan.id)) == 1
    assert len([f for f in folder(host) if f["account_id"] == ivan.id]) == 1


async def test_preference_off_records_a_skipped_delivery(portal: Portal, host: Host) -> None:
    svc = await service_of(host)
    ivan = await portal.person(phone="+79161230000")
    await svc.set_preferences(ivan.id, {("depot.parcel.arrived", "sms")})
    await publish(
        host, "depot.parcel.arrived", {"account_id": ivan.id, "parcel": "P-2", "depot": "X"}
    )
    await run(host)
    rows = {r["channel"]: r for r in await deliveries(host, person_id=ivan.id)}
    assert rows["email"]["status"] == "skipped"
    assert rows["sms"]["status"] == "sent"


async def test_a_deactivated_notification_or_channel_sends_nothing_there(
    portal: Portal, host: Host
) -> None:
    svc = await service_of(host)
    staff = Editor(person_id=None, name="Staff")
    ivan = await portal.person(phone="+79161231111")
    await svc.set_active("depot.parcel.arrived", False, channel="sms", editor=staff)
    await publish(
        host, "depot.parcel.arrived", {"account_id": ivan.id, "parcel": "P-3", "depot": "X"}
    )
    await run(host)
    assert [r["channel"] for r in await deliveries(host, person_id=ivan.id)] == ["email"]
    await svc.set_active("depot.parcel.arrived", False, editor=staff)
    await publish(
        host, "depot.parcel.arrived", {"account_id": ivan.id, "parcel": "P-4", "depot": "X"}
    )
    await run(host)
    assert len(await deliveries(host, person_id=ivan.id)) == 1
    view = await svc.notification("depot.parcel.arrived")
    assert view.updated_by_name == "Staff"
    assert not view.active


async def test_people_holding_a_permission_in_the_organization_receive_it(
    portal: Portal, host: Host, clock: FrozenClock
) -> None:
    roles = host.services["roles"]
    a = await portal.person(name="A")
    b = await portal.person(name="B")
    outsider = await portal.person(name="C")
    from kabinet.roles.services import Actor

    actor = Actor(person_id=None, address="")
    await roles.grant(a.id, "client", 5501, actor=actor)
    await roles.grant(b.id, "client", 5501, actor=actor)
    await roles.grant(outsider.id, "client", 5502, actor=actor)
    role = next(r for r in await roles.roles() if r.code == "client")
    await roles.set_permissions(role.id, {*role.permissions, "depot.parcels.view"}, actor=actor)
    await publish(host, "depot.report.ready", {"organization_id": 5501, "report": "R-9"})
    await run(host)
    rows = await deliveries(host, event="depot.report.ready")
    got = {r["person_id"] for r in rows if r["organization_id"] == 5501}
    assert {a.id, b.id} <= got
    assert outsider.id not in got
    assert {r["body"] for r in rows if r["person_id"] in (a.id, b.id)} == {"Отчёт R-9"}


async def test_counts_per_hour_and_day_count_each_message_once(
    portal: Portal, host: Host, clock: FrozenClock
) -> None:
    import datetime as dt

    from kabinet_notifications import reports

    start = clock.now()
    before_h = await reports.summary(
        host, start, start + dt.timedelta(hours=1), event="depot.parcel.arrived"
    )
    before_d = await reports.summary(
        host, start, start + dt.timedelta(days=3), event="depot.parcel.arrived"
    )
    ivan = await portal.person(phone="+79165556677")
    await publish(
        host, "depot.parcel.arrived", {"account_id": ivan.id, "parcel": "N", "depot": "X"}
    )
    await run(host)
    after_h = await reports.summary(
        host, start, start + dt.timedelta(hours=1), event="depot.parcel.arrived"
    )
    after_d = await reports.summary(
        host, start, start + dt.timedelta(days=3), event="depot.parcel.arrived"
    )
    for before, after in ((before_h, after_h), (before_d, after_d)):
        # two messages, each counted once under its status now (sent, no longer queued)
        assert after.totals["queued"] - before.totals["queued"] == 0
        assert after.totals["sent"] - before.totals["sent"] == 2
        assert sum(after.totals.values()) - sum(before.totals.values()) == 2
        assert after.by_channel["sms"] - before.by_channel.get("sms", 0) == 1
    assert after_h.step == "hour"
    assert after_d.step == "day"


async def test_the_sweep_sends_deliveries_whose_job_was_lost(
    portal: Portal, host: Host, clock: FrozenClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    from kabinet_notifications import delivery, sending

    async def lost(*args: object, **kwargs: object) -> None:
        """The process stopped before its sending jobs reached a queue."""

    ivan = await portal.person()
    with monkeypatch.context() as patch:
        patch.setattr(delivery, "enqueue", lost)
        await publish(
            host, "depot.parcel.arrived", {"account_id": ivan.id, "parcel": "L", "depot": "X"}
        )
        await host.events.relay()
        await host.jobs.drain()  # type: ignore[attr-defined]
    [row] = await deliveries(host, person_id=ivan.id)
    assert row["status"] == "queued"
    assert await sending.sweep(host) == 0  # not yet: its job may still be on its way
    clock.advance(seconds=61)
    assert await sending.sweep(host) >= 1
    await host.jobs.drain()  # type: ignore[attr-defined]
    [row] = await deliveries(host, person_id=ivan.id)
    assert row["status"] == "sent"
