"""A request names the order it became by the order's key (shipments' ``order_by_key``),
never by a search of its number: another order with the same number (1C's numbers repeat)
or a number that starts the same ("ТТ-1" and "ТТ-10") must not be linked instead."""

from __future__ import annotations

import datetime as dt
import re
from decimal import Decimal

import msgspec
import pytest
from booking_setup import Company, company, connections, order_form, sink
from sqlalchemy import event

from kabinet.testing import Portal
from kabinet_booking.review import answer
from kabinet_booking.services import BOOKING
from kabinet_shipments.services import SHIPMENTS

pytestmark = pytest.mark.smoke


async def send(portal: Portal, c: Company) -> int:
    service = portal.host.services.of(BOOKING)
    client = await portal.signed_in(c.client)
    sent = await client.post(
        "/booking/new", data={**order_form(c.contract_id, service.today()), "action": "send"}
    )
    found = re.search(r"/booking/(\d+)", sent.headers["location"])
    assert found, sent.headers
    return int(found.group(1))


async def orders(portal: Portal, c: Company, *values: dict[str, object]) -> None:
    """Orders of the company's counterparty, as the production system sends them."""
    orders_sink = await sink(portal.host, "shipments.order")
    records = [
        msgspec.convert(
            {
                "counterparty": f"booking-sample-{c.organization_id}",
                "origin": "Москва",
                "destination": "Казань",
                "cost": Decimal(1000),
                "date": now(portal) - dt.timedelta(days=30),
                **v,
            },
            orders_sink.struct,
        )
        for v in values
    ]
    async with portal.host.db.session() as session:
        result = await orders_sink.apply(portal.host, session, records, notify=False)
    assert not result.rejected


def now(portal: Portal) -> dt.datetime:
    """The portal's time as 1C writes it (local, without a zone)."""
    return portal.host.clock.now().replace(tzinfo=None, microsecond=0)


async def order_id(portal: Portal, key: str) -> int:
    async with portal.host.db.session() as session:
        made = await portal.host.services.of(SHIPMENTS).order_by_key(session, key)
    assert made is not None
    return made[0]


async def portal_key(portal: Portal, c: Company, request_id: int) -> str:
    async with portal.host.db.session() as session:
        found = await portal.host.services.of(BOOKING).get(session, c.client.principal, request_id)
    return found.portal_key


async def test_accepted_in_the_portal_links_its_own_order_not_another_of_the_same_number(
    portal: Portal,
) -> None:
    c = await company(portal)
    request_id = await send(portal, c)
    number = f"ТТ-П{request_id:06d}"
    later = now(portal) + dt.timedelta(days=3)
    # An order 1C numbered the same, newer (first in the registry, and in a search of the
    # number), and one whose cargo names the number: neither is the request's order.
    await orders(
        portal,
        c,
        {"external_id": f"same-{request_id}", "number": number, "date": later},
        {"external_id": f"named-{request_id}", "number": "ТТ-9", "cargo_name": number},
    )
    admin = await portal.signed_in(await portal.person("admin"))
    with connections(portal) as most:  # the order is made and linked in the request's unit
        assert (await admin.post(f"/booking/{request_id}/accept")).status_code == 303
    assert most == [1]
    own = await order_id(portal, f"booking-{await portal_key(portal, c, request_id)}")
    card = await (await portal.signed_in(c.client)).get(f"/booking/{request_id}")
    assert f'<a href="/shipments/orders/{own}">{number}</a>' in card.text
    assert f"/shipments/orders/{await order_id(portal, f'same-{request_id}')}" not in card.text
    async with portal.host.db.session() as session:
        found = await portal.host.services.of(BOOKING).get(session, c.client.principal, request_id)
    assert found.order_id == own
    writes: list[str] = []

    def seen(_c: object, _cur: object, statement: str, *_rest: object) -> None:
        if statement.lstrip().upper().startswith(("UPDATE", "INSERT", "DELETE")):
            writes.append(statement)

    engine = portal.host.db.engine.sync_engine
    event.listen(engine, "before_cursor_execute", seen)
    try:  # the order's card names the request, linked already: viewing it writes nothing
        order_card = await (await portal.signed_in(c.client)).get(f"/shipments/orders/{own}")
    finally:
        event.remove(engine, "before_cursor_execute", seen)
    assert f'<a href="/booking/{request_id}">Из заявки № {request_id}</a>' in order_card.text
    assert [w for w in writes if "booking_request" in w] == []


async def test_accepted_in_1c_before_its_order_arrived_links_it_on_the_card(
    portal: Portal,
) -> None:
    c = await company(portal)
    request_id = await send(portal, c)
    service = portal.host.services.of(BOOKING)
    key = f"1c-{request_id}"
    async with portal.host.db.session() as session:
        found = await service.get(session, c.client.principal, request_id)
        assert await answer(service, session, found.portal_key, accepted=True, order_key=key)
    web = await portal.signed_in(c.client)
    card = await web.get(f"/booking/{request_id}")
    assert "/shipments/orders/" not in card.text  # its order has not arrived yet

    later = now(portal) + dt.timedelta(days=3)
    await orders(  # the order ТТ-1, and a newer ТТ-10 whose cargo names "ТТ-1"
        portal,
        c,
        {"external_id": f"other-{request_id}", "number": "ТТ-10", "date": later},
        {"external_id": f"x-{request_id}", "number": "ТТ-11", "cargo_name": "по ТТ-1"},
        {"external_id": key, "number": "ТТ-1"},
    )
    card = await web.get(f"/booking/{request_id}")
    own = await order_id(portal, key)
    assert f'<a href="/shipments/orders/{own}">ТТ-1</a>' in card.text
    async with portal.host.db.session() as session:
        linked = await service.get(session, c.client.principal, request_id)
    assert (linked.order_id, linked.order_number) == (own, "ТТ-1")
