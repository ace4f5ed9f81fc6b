"""A new order carried to the local 1C through the integration app's public outbound
contract and answered there: the client sends the form, the request is handed over in the
sending transaction, written once in 1C's names (``НоваяЗаявка``, ``ИзмененныеПоля``), the
1C operator accepts it and 1C creates the order, the next delta brings the order and the
answer, the request becomes ``accepted`` naming the order and its author is told; a
rejection comes back with 1C's reason. The portal's own acceptance is refused for a
request 1C answers."""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from booking_setup import order_form
from sqlalchemy import select

from kabinet.testing import Portal, drop_database, migrated_database
from kabinet_booking.services import BOOKING
from kabinet_companies.services import COMPANIES, SYSTEM
from kabinet_integration.outbound import send_due
from kabinet_integration.sync import integration
from kabinet_integration_testing import Generated, OneCData, OneCServer, generate
from kabinet_notifications.models import delivery
from kabinet_shipments.services import SHIPMENTS

pytestmark = pytest.mark.smoke

REQUESTS = "Document_ЗапросКлиента"
ORDERS = "Document_ЗаявкаНаПеревозку"
CONTRACTS = "Catalog_ДоговорыКонтрагентов"


@pytest.fixture
def onec() -> Iterator[OneCServer]:
    with OneCServer(OneCData()) as server:
        yield server


@pytest.fixture
async def own_database(tmp_path: Path) -> AsyncIterator[str]:
    """A database of this test's own (the first load fills it with 1C's data), dropped
    after the portal on it is closed (set up first, torn down last)."""
    url = await migrated_database(tmp_path / "db")
    yield url
    await drop_database(url)


@pytest.fixture
async def connected(
    own_database: str, make_portal: Callable[..., Awaitable[Portal]], onec: OneCServer
) -> tuple[Portal, Generated]:
    """A portal of its own database on the local 1C, after a first load."""
    generated = generate(onec.data)
    source = {
        "base_url": onec.base_url,
        "username": "portal",
        "password": "пароль",
        "rate_per_second": 0,
        "timeout_seconds": 2,
        "retry_seconds": 0.05,
    }
    portal = await make_portal(
        database_url=own_database,
        settings={"integration": {"sources": {"onec": source}}},
    )
    await sync(portal)
    return portal, generated


async def sync(portal: Portal) -> None:
    out = await integration(portal.host).run("onec")
    assert out.state == "succeeded", out.error


def written(onec: OneCServer, key: str) -> list[dict[str, Any]]:
    docs = onec.data.sets[REQUESTS].values()
    return [d for d in docs if d.get("ИдентификаторПортала") == key]


async def client_of(portal: Portal, onec: OneCServer, generated: Generated) -> Any:
    """A client of an organization holding the first contract's counterparty."""
    contract = onec.data.get(CONTRACTS, generated.contracts[0])
    assert contract is not None
    companies = portal.host.services.of(COMPANIES)
    found = await companies.counterparties(SYSTEM, unassigned=True, limit=500)
    party = next(c for c in found.items if c.external_id == contract["Owner_Key"])
    org = portal.organization_id()
    await companies.ensure_organization(org, "Клиент 1С")
    await companies.move_counterparty(SYSTEM, party.id, org)
    return await portal.person("client", organization=org)


async def send(portal: Portal, client: Any) -> tuple[int, str]:
    service = portal.host.services.of(BOOKING)
    contracts = await service.contracts(client.principal)
    assert contracts
    web = await portal.signed_in(client)
    sent = await web.post(
        "/booking/new", data={**order_form(contracts[0].id, service.today()), "action": "send"}
    )
    assert sent.status_code == 303, sent.text[:300]
    found = re.search(r"/booking/(\d+)", sent.headers["location"])
    assert found is not None
    request_id = int(found.group(1))
    async with portal.host.db.session() as session:
        request = await service.get(session, client.principal, request_id)
    assert request.handed_over
    return request_id, request.portal_key


async def test_accepted_in_1c_the_order_arrives_and_the_client_is_told(
    connected: tuple[Portal, Generated], onec: OneCServer
) -> None:
    portal, generated = connected
    client = await client_of(portal, onec, generated)
    request_id, key = await send(portal, client)
    assert await send_due(portal.host) == 1
    assert await send_due(portal.host) == 0  # once
    (doc,) = written(onec, key)
    assert doc["ВидЗапроса"] == "НоваяЗаявка"
    fields = json.loads(doc["ИзмененныеПоля"])
    assert fields["ПунктОтправления"] == "Москва, Складская 5"
    assert fields["ГрузВес"] == 1200.5
    assert fields["ДатаПогрузки"].endswith("T09:00:00")
    assert "Упаковка: Паллеты" in fields["Комментарий"]
    admin = await portal.signed_in(await portal.person("admin"))
    assert (await admin.post(f"/booking/{request_id}/accept")).status_code == 409  # 1C answers

    onec.data.tick(30)
    assert onec.accept(key) == 1
    (doc,) = written(onec, key)
    made = onec.data.get(ORDERS, doc["Заявка_Key"])
    assert made is not None
    await sync(portal)
    service = portal.host.services.of(BOOKING)
    async with portal.host.db.session() as session:
        request = await service.get(session, client.principal, request_id)
    assert request.state == "accepted"
    assert request.order_key == doc["Заявка_Key"]
    assert request.order_number == made["Number"]  # the delta brought the order first
    web = await portal.signed_in(client)
    shipments = portal.host.services.of(SHIPMENTS)
    page, _ = await shipments.orders(client.principal, shipments.parse_orders({}))
    (order,) = [o for o in page.rows if o.number == made["Number"]]
    card = await web.get(f"/booking/{request_id}")  # the request names its order at once
    assert f'<a href="/shipments/orders/{order.id}">{made["Number"]}</a>' in card.text
    order_card = await web.get(f"/shipments/orders/{order.id}")  # the order names its request
    assert f'<a href="/booking/{request_id}">Из заявки № {request_id}</a>' in order_card.text
    await sync(portal)  # the same answer again changes nothing
    async with portal.host.db.session() as session:
        again = await service.get(session, client.principal, request_id)
    assert [s.state for s in again.steps] == ["draft", "sent", "accepted"]
    await portal.drain()
    async with portal.host.db.reader() as s:
        told = (
            await s.execute(
                select(delivery.c.body).where(
                    delivery.c.event == "booking.request.accepted",
                    delivery.c.person_id == client.id,
                )
            )
        ).all()
    assert told
    assert all(made["Number"] in body for (body,) in told)  # the message names the order


async def test_rejected_in_1c_with_its_reason(
    connected: tuple[Portal, Generated], onec: OneCServer
) -> None:
    portal, generated = connected
    client = await client_of(portal, onec, generated)
    request_id, key = await send(portal, client)
    assert await send_due(portal.host) == 1
    onec.data.tick(30)
    assert onec.reject(key, "Нет машин на эту дату") == 1
    await sync(portal)
    web = await portal.signed_in(client)
    card = await web.get(f"/booking/{request_id}")
    assert "Отклонена" in card.text
    assert "Нет машин на эту дату" in card.text
