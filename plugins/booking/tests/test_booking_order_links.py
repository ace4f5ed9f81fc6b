"""The order's card links back to the request it came from and offers "Repeat this order"
(the shipments app's ``shipments_order_links`` hook, implemented by booking)."""

from __future__ import annotations

import re

import pytest
from booking_setup import company, order_form

from kabinet.testing import Portal
from kabinet_booking.services import BOOKING

pytestmark = pytest.mark.smoke


async def test_hook_shipments_order_links_the_card_links_to_its_request_and_repeats_it(
    portal: Portal,
) -> None:
    c = await company(portal)
    service = portal.host.services.of(BOOKING)
    admin = await portal.signed_in(await portal.person("admin"))
    client = await portal.signed_in(c.client)
    sent = await client.post(
        "/booking/new", data={**order_form(c.contract_id, service.today()), "action": "send"}
    )
    request_id = int(re.findall(r"/booking/(\d+)", sent.headers["location"])[0])
    assert (await admin.post(f"/booking/{request_id}/accept")).status_code == 303
    found = re.search(
        r'href="/shipments/orders/(\d+)"', (await client.get(f"/booking/{request_id}")).text
    )
    assert found
    order_id = int(found.group(1))

    card = await client.get(f"/shipments/orders/{order_id}")

    assert card.status_code == 200
    assert f'<a href="/booking/{request_id}">Из заявки № {request_id}</a>' in card.text
    repeat = f'<a href="/booking/new?from_order={order_id}" class="button">Повторить этот заказ</a>'
    assert repeat in card.text
    english = await portal.signed_in(c.client, language="en")
    assert "Repeat this order" in (await english.get(f"/shipments/orders/{order_id}")).text
    filled = await client.get(f"/booking/new?from_order={order_id}")
    assert 'value="Станки"' in filled.text  # the form opens filled from the order

    stranger = await portal.signed_in((await company(portal)).client)
    assert (await stranger.get(f"/shipments/orders/{order_id}")).status_code == 404


async def test_hook_shipments_orders_links_the_registry_offers_a_new_request(
    portal: Portal,
) -> None:
    c = await company(portal)
    client = await portal.signed_in(c.client)
    registry = await client.get("/shipments/")
    assert registry.status_code == 200
    button = '<p class="sh-links" id="orders-links"><a href="/booking/new" class="button">'
    assert f"{button}Новая заявка</a></p>" in registry.text
    english = await portal.signed_in(c.client, language="en")
    assert f"{button}New request</a></p>" in (await english.get("/shipments/")).text
    swapped = await client.get(
        "/shipments/?q=1", headers={"HX-Request": "true", "HX-Target": "registry"}
    )
    assert swapped.status_code == 200
    assert 'id="orders-links"' not in swapped.text  # the table alone, not the page's header

    staff = await portal.person("manager", organization=c.organization_id)  # sees, books none
    manager = await portal.signed_in(staff)
    seen = await manager.get("/shipments/")
    assert seen.status_code == 200
    assert 'id="orders-links"' not in seen.text
    assert 'href="/booking/new"' not in seen.text
