"""After sending: the managers' review (return with a comment, send again, accept), the
production system's answer, and acceptance in the portal creating the order through the
shipments sink, the request linked to it."""

from __future__ import annotations

import re

import pytest
from booking_setup import company, order_form
from sqlalchemy import select

from kabinet.testing import Portal
from kabinet_booking.review import answer
from kabinet_booking.services import BOOKING
from kabinet_notifications.models import delivery
from kabinet_shipments.services import SHIPMENTS

pytestmark = pytest.mark.smoke


def new_id(location: str) -> int:
    found = re.search(r"/booking/(\d+)", location)
    assert found, location
    return int(found.group(1))


async def test_managers_return_a_request_and_accept_it_sent_again(portal: Portal) -> None:
    portal.override("booking", review_by_managers=True)
    c = await company(portal)
    service = portal.host.services.of(BOOKING)
    manager = await portal.person("manager", organization=c.organization_id)
    client = await portal.signed_in(c.client)
    staff = await portal.signed_in(manager)
    sent = await client.post(
        "/booking/new", data={**order_form(c.contract_id, service.today()), "action": "send"}
    )
    request_id = new_id(sent.headers["location"])
    assert "На согласовании" in (await client.get(f"/booking/{request_id}")).text
    card = await staff.get(f"/booking/{request_id}")
    assert f'action="/booking/{request_id}/review"' in card.text
    nothing = await staff.post(f"/booking/{request_id}/review", data={"decision": "return"})
    assert nothing.status_code == 400  # a return says what to correct
    back = await staff.post(
        f"/booking/{request_id}/review", data={"decision": "return", "comment": "Укажите вес"}
    )
    assert back.status_code == 303
    seen = await client.get(f"/booking/{request_id}")
    assert "Возвращена" in seen.text
    assert "Укажите вес" in seen.text
    edited = await client.post(
        f"/booking/{request_id}/edit",
        data={**order_form(c.contract_id, service.today(), cargo_weight="900"), "action": "send"},
    )
    assert edited.status_code == 303
    accepted = await staff.post(f"/booking/{request_id}/review", data={"decision": "accept"})
    assert accepted.status_code == 303
    async with portal.host.db.session() as session:
        found = await service.get(session, c.client.principal, request_id)
    assert found.state == "sent"
    assert str(found.fields.cargo_weight) == "900"
    assert [s.state for s in found.steps] == [
        "draft",
        "under_review",
        "returned",
        "under_review",
        "sent",
    ]
    other = await company(portal)
    stranger = await portal.signed_in(
        await portal.person("manager", organization=other.organization_id)
    )
    assert (await stranger.get(f"/booking/{request_id}")).status_code == 404


async def test_staff_accept_in_the_portal_and_the_order_appears(portal: Portal) -> None:
    c = await company(portal)
    service = portal.host.services.of(BOOKING)
    admin = await portal.signed_in(await portal.person("admin"))
    client = await portal.signed_in(c.client)
    sent = await client.post(
        "/booking/new",
        data={**order_form(c.contract_id, service.today()), "action": "send"},
        files={"attachments": ("spec.txt", b"4 pallets", "text/plain")},
    )
    request_id = new_id(sent.headers["location"])
    assert (await client.post(f"/booking/{request_id}/accept")).status_code == 403
    done = await admin.post(f"/booking/{request_id}/accept")
    assert done.status_code == 303
    card = await client.get(f"/booking/{request_id}")
    number = f"ТТ-П{request_id:06d}"
    link = re.search(rf'<a href="/shipments/orders/(\d+)">{number}</a>', card.text)
    assert link, card.text
    assert "Заявка стала заказом" in card.text
    order = await portal.host.services.of(SHIPMENTS).order(c.client.principal, int(link.group(1)))
    assert order.number == number
    assert order.origin == "Москва, Складская 5"
    assert order.cargo_name == "Станки"
    assert "Упаковка: Паллеты" in order.comment
    on_card = await client.get(f"/shipments/orders/{link.group(1)}")
    file_link = re.search(
        rf'href="(/booking/{request_id}/files/\d+)">Файл заявки: spec.txt<', on_card.text
    )
    assert file_link is not None  # the request's file stays with the order it became
    assert (await client.get(file_link.group(1))).content == b"4 pallets"
    again = await admin.post(f"/booking/{request_id}/accept")
    assert again.status_code == 409  # once

    await portal.drain()  # the author is told, in their language, on their channels
    d = delivery.c
    async with portal.host.db.reader() as s:
        told = (
            await s.execute(
                select(d.subject, d.body).where(
                    d.event == "booking.request.accepted", d.person_id == c.client.id
                )
            )
        ).all()
    assert told, "the author was notified"
    assert any(number in body for _subject, body in told)

    repeat = await client.get(f"/booking/new?from_order={link.group(1)}")  # repeat the order
    assert repeat.status_code == 200
    assert 'value="Москва, Складская 5"' in repeat.text
    assert 'value="Станки"' in repeat.text
    other = await company(portal)
    stranger = await portal.signed_in(other.client)
    assert (await stranger.get(f"/booking/new?from_order={link.group(1)}")).status_code == 404


async def test_the_production_systems_rejection_is_shown_with_its_reason(portal: Portal) -> None:
    c = await company(portal)
    service = portal.host.services.of(BOOKING)
    client = await portal.signed_in(c.client)
    sent = await client.post(
        "/booking/new", data={**order_form(c.contract_id, service.today()), "action": "send"}
    )
    request_id = new_id(sent.headers["location"])
    async with portal.host.db.session() as session:
        found = await service.get(session, c.client.principal, request_id)
        assert await answer(service, session, found.portal_key, accepted=False, reason="Нет ТС")
        assert not await answer(service, session, found.portal_key, accepted=False, reason="x")
    rejected = await client.get("/booking/?state=rejected")
    assert "Нет ТС" in rejected.text
