"""Notifications a person wants, not a flood (issue 16, point 3), on the whole portal fed by
the local 1C: a first load notifies nobody and a later delta does; a person linked today
hears nothing of what changed before (old overdue invoices included)."""

from __future__ import annotations

import datetime as dt
import itertools
from collections.abc import AsyncIterator, Iterator
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from notif_support import deliveries, folder, publish, run

from kabinet.clock import FrozenClock
from kabinet.host import Host
from kabinet.testing import Portal, PortalFactory, drop_database, migrated_database
from kabinet_integration.sync import integration
from kabinet_integration_testing import Generated, OneCData, OneCServer, generate

ORDERS = "Document_ЗаявкаНаПеревозку"
INVOICES = "Document_СчетНаОплатуПокупателю"
NOW = dt.datetime(2026, 11, 25, 9, 0, tzinfo=dt.UTC)
_n = itertools.count(1)
ONLY = ("companies", "shipments", "integration", "notifications")  # every other plugin off


@pytest.fixture(scope="module")
async def portal_url(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[str]:
    url = await migrated_database(tmp_path_factory.mktemp("wanted"))
    yield url
    await drop_database(url)


@pytest.fixture
def onec() -> Iterator[OneCServer]:
    with OneCServer(OneCData()) as server:
        yield server


@pytest.fixture
async def fed(
    make_portal: PortalFactory, portal_url: str, onec: OneCServer
) -> AsyncIterator[Portal]:
    """The whole portal (no test app) fed by the local 1C, on this module's database."""
    onec_settings = {
        "base_url": onec.base_url,
        "username": onec.username,
        "password": onec.password,
        "rate_per_second": 0,
        "files_ahead": False,
        "entities": ["contract", "order", "invoice", "answer"],
    }
    found = await make_portal(
        database_url=portal_url,
        clock=FrozenClock(NOW),
        plugins=ONLY,
        settings={"integration": {"sources": {"onec": onec_settings}}},
    )
    yield found
    await wipe(found.host)


async def wipe(host: Host) -> None:
    """Tests share one database: the next one's 1C starts from scratch (no cursor)."""
    from sqlalchemy import delete

    async with host.db.session() as s:
        for schema in reversed(host.schemas):
            if schema.name in ("integration", "shipments"):
                for table in reversed(schema.metadata.sorted_tables):
                    await s.execute(delete(table))


async def company(host: Host) -> tuple[int, str]:
    """An organization with one counterparty known to 1C: (organization, its 1C id)."""
    from kabinet_companies.services import SYSTEM, companies
    from kabinet_companies.validation import make_inn

    n = next(_n)
    svc = companies(host)
    org = await svc.create_organization(f"ООО Тест {n}", make_inn(7_900_000 + 10 * n))
    external = f"cp-wanted-{n}"
    await svc.create_counterparty(
        SYSTEM,
        name=f"Тест {n}",
        inn=make_inn(7_900_001 + 10 * n),
        organization_id=org.id,
        external_id=external,
    )
    return org.id, external


async def client(host: Host, organization: int, **kw: Any) -> int:
    """A client of ``organization`` with an e-mail and a phone, linked now."""
    n = next(_n)
    account = await host.services["identity"].create_account(
        full_name=f"Клиент {n}",
        email=f"client{n}@example.test",
        phone=f"+7900{n:07d}",
        **kw,
    )
    await host.services["roles"].grant(account.id, "client", organization)
    return int(account.id)


def _set(data: OneCData, name: str, ref: str, **fields: Any) -> None:
    obj = dict(data.get(name, ref) or {})
    obj.update(fields)
    data.put(name, obj)


async def mine(host: Host, person: int) -> list[str]:
    return sorted(f"{d['event']}:{d['channel']}" for d in await deliveries(host, person_id=person))


async def test_first_load_notifies_nobody_and_a_later_delta_does(
    fed: Portal, onec: OneCServer
) -> None:
    host, clock = fed.host, fed.clock
    org, external = await company(host)
    person = await client(host, org)
    made: Generated = generate(onec.data, owners=[external], orders=8, invoices=6)
    clock.advance(60)

    first = await integration(host).run("onec")
    assert first.state == "succeeded", first
    assert first.counts.applied >= 14
    await host.services["shipments.finance"].mark_overdue()  # the hourly job, after it
    await run(host)
    # 8 orders in every status, 6 invoices (4 unpaid past due) and not one message
    assert await mine(host, person) == []

    # Later in 1C: an order moves on, a new invoice is made; the next delta tells.
    clock.advance(20 * 60)
    onec.data.tick(20 * 60)
    moved = next(
        ref
        for ref in made.orders
        if (onec.data.get(ORDERS, ref) or {}).get("Статус") == "Оформлена"
    )
    _set(onec.data, ORDERS, moved, Статус="ВРаботе", Дислокация="Тверь")
    old = dict(onec.data.get(INVOICES, made.invoices[0]) or {})
    fresh = {
        **old,
        "Ref_Key": "3f2c1b5e-0000-4000-8000-000000000001",
        "Number": "СЧ-900001",
        "Date": "2026-11-25T00:00:00",
        "СрокОплаты": "2026-12-10T00:00:00",
        "СуммаДокумента": 205800.0,
        "СуммаОплаты": 0.0,
        "СтатусОплаты": "НеОплачен",
    }
    onec.data.put(INVOICES, fresh)
    second = await integration(host).run("onec")
    assert second.state == "succeeded", second
    await host.services["shipments.finance"].mark_overdue()
    await run(host)
    got = await mine(host, person)
    assert got == sorted(
        f"{event}:{channel}"
        for event in ("shipments.invoice.created", "shipments.order.status_changed")
        for channel in ("email", "sms")
    ), got


async def test_a_person_linked_today_hears_nothing_of_older_changes(
    fed: Portal, onec: OneCServer
) -> None:
    host, clock = fed.host, fed.clock
    org, external = await company(host)
    before = await client(host, org)
    made = generate(onec.data, owners=[external], orders=4, invoices=3)
    await integration(host).run("onec")  # the first load: quiet
    # A delta brings an invoice due in a week, and changes an order.
    clock.advance(60)
    onec.data.tick(60)
    invoice = {
        **dict(onec.data.get(INVOICES, made.invoices[0]) or {}),
        "Ref_Key": "3f2c1b5e-0000-4000-8000-000000000002",
        "Number": "СЧ-900002",
        "Date": "2026-11-25T00:00:00",
        "СрокОплаты": "2026-12-02T00:00:00",
        "СуммаДокумента": 1000.0,
        "СуммаОплаты": 0.0,
        "СтатусОплаты": "НеОплачен",
    }
    onec.data.put(INVOICES, invoice)
    assert (await integration(host).run("onec")).state == "succeeded"
    # The event is not handled yet when a second client is linked (a queue behind).
    clock.advance(60)
    later = await client(host, org)
    await run(host)
    assert await mine(host, before) == [
        "shipments.invoice.created:email",
        "shipments.invoice.created:sms",
    ]
    assert await mine(host, later) == []

    # Ten days on, the new invoice is overdue (since the portal's midnight after 2 December):
    # both clients linked before that are reminded; a third, linked after it fell due but
    # before the hourly job noticed, is not. The first load's old overdue invoices (due in
    # 2025) remind nobody.
    clock.advance(10 * 86400)
    third = await client(host, org)
    await host.services["shipments.finance"].mark_overdue()
    await run(host)
    overdue = "shipments.invoice.overdue"
    assert [x for x in await mine(host, before) if x.startswith(overdue)] == [
        f"{overdue}:email",
        f"{overdue}:sms",
    ]
    assert [x for x in await mine(host, later) if x.startswith(overdue)] == [
        f"{overdue}:email",
        f"{overdue}:sms",
    ]
    assert await mine(host, third) == []


async def test_statistics_count_each_message_once_on_the_portals_day(
    portal: Portal, host: Host, clock: FrozenClock
) -> None:
    """Two messages sent at 01:30 in Moscow (22:30 UTC the day before): the statistics
    show two messages (sent, not also queued), on the portal's day, not UTC's."""
    from kabinet_notifications import reports

    moscow = ZoneInfo("Europe/Moscow")
    clock.advance((dt.datetime(2026, 12, 1, 22, 30, tzinfo=dt.UTC) - clock.now()).total_seconds())
    lo = dt.datetime(2026, 11, 30, tzinfo=moscow)
    hi = dt.datetime(2026, 12, 3, tzinfo=moscow)
    event = "depot.parcel.arrived"
    before = await reports.summary(host, lo, hi, event=event)
    ivan = await portal.person(phone="+79165550001")
    await publish(host, event, {"account_id": ivan.id, "parcel": "N-1", "depot": "Тверь"})
    await run(host)
    after = await reports.summary(host, lo, hi, event=event)
    assert after.step == "day"
    assert [b.date().isoformat() for b in after.buckets] == [
        "2026-11-30",
        "2026-12-01",
        "2026-12-02",
    ]
    added = {
        status: [
            a - b for a, b in zip(after.by_status[status], before.by_status[status], strict=True)
        ]
        for status in after.by_status
    }
    assert added["sent"] == [0, 0, 2]  # 2 December in Moscow
    assert added["queued"] == [0, 0, 0]
    assert sum(after.totals.values()) - sum(before.totals.values()) == 2


async def test_an_sms_shows_dates_and_amounts_as_its_reader_writes_them(
    fed: Portal,
) -> None:
    host, _clock = fed.host, fed.clock
    org, _ext = await company(host)
    ru = await client(host, org, language="ru")
    en = await client(host, org, language="en", timezone="Europe/London")
    payload = {
        "invoice_id": 1,
        "number": "СЧ-000042",
        "organization_id": org,
        "amount": "205800.00",
        "debt": "205800.00",
        "currency": "RUB",
        "date": "2026-10-20",
        "due_date": "2026-11-10",
    }
    async with host.db.session() as s:
        await host.events.publish(s, "shipments.invoice.overdue", payload)
    await run(host)
    sms = {d["person_id"]: d["body"] for d in await deliveries(host, channel="sms")}
    assert sms[ru] == (
        "Срок оплаты счёта СЧ-000042 истёк 10 нояб. 2026\u202fг.; к оплате 205\xa0800,00\xa0₽."
    )
    assert sms[en] == "Invoice СЧ-000042 was due on Nov 10, 2026; RUB205,800.00 remain to be paid."


@pytest.mark.kabinet_settings(notifications={"digest_minutes": 10})
async def test_three_changes_within_the_window_make_one_digest_per_channel_sent_once(
    portal: Portal, host: Host, clock: FrozenClock
) -> None:
    import asyncio

    from kabinet_notifications.delivery import send, sweep

    ivan = await portal.person(phone="+79165550002")
    for n in (1, 2, 3):  # three parcels within ten minutes
        await publish(
            host,
            "depot.parcel.arrived",
            {"account_id": ivan.id, "parcel": f"P-{n}", "depot": "Тверь"},
        )
        await run(host)
        clock.advance(3 * 60)
    mine = [x for x in folder(host) if x["account_id"] == ivan.id]
    assert mine == []  # held for the window
    clock.advance(2 * 60)  # ten minutes after the first
    ids = [d["id"] for d in await deliveries(host, person_id=ivan.id)]
    assert len(ids) == 6
    # two workers send at once, and two schedulers sweep: each message goes once
    await asyncio.gather(send(host, ids[:3]), send(host, ids[3:]), send(host, ids))
    await asyncio.gather(sweep(host), sweep(host))
    await run(host)
    mine = [x for x in folder(host) if x["account_id"] == ivan.id]
    assert sorted(x["channel"] for x in mine) == ["email", "sms"]
    for message in mine:
        assert message["kind"] == "notifications.digest"
        for n in (1, 2, 3):
            assert f"P-{n}" in message["body"]
    email = next(x for x in mine if x["channel"] == "email")
    assert email["subject"] == "Новые уведомления (3)"
    rows = await deliveries(host, person_id=ivan.id)
    assert {r["status"] for r in rows} == {"sent"}
    assert {r["channel"]: r["provider_id"] for r in rows} == {
        x["channel"]: next(r["provider_id"] for r in rows if r["channel"] == x["channel"])
        for x in mine
    }
    assert len({r["provider_id"] for r in rows}) == 2  # one message per channel


async def test_an_organization_is_named_as_the_companies_app_shows_it(
    fed: Portal,
) -> None:
    """The failed list names an organization through the companies service found under the
    optional key (this app does not require companies): by name for who may see it, else
    nothing (its number is shown)."""
    from kabinet.access import Principal
    from kabinet_notifications.organizations import organization_name

    host, _ = fed.host, fed.clock
    org, _ = await company(host)
    other, _ = await company(host)
    member = Principal(person_id=await client(host, org), name="Клиент", kind="person")
    assert (await organization_name(host, org)).startswith("ООО Тест ")
    assert (await organization_name(host, org, member)).startswith("ООО Тест ")
    assert await organization_name(host, other, member) == ""  # not his company
    assert await organization_name(host, 10**9) == ""  # no such organization
    assert await organization_name(host, None) == ""
