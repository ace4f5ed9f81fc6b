"""A person with more contracts than the form lists (50) still finds and orders under
any of them: the form lists the first 50 and offers a search (``/booking/contracts``, htmx)
that refills the list; the contract chosen is accepted by the rules and stays chosen."""

from __future__ import annotations

import datetime as dt
import re

import msgspec
import pytest
from booking_setup import Company, company, connections, order_form, sink

from kabinet.testing import Portal
from kabinet_booking.services import BOOKING, LISTED

pytestmark = pytest.mark.smoke


async def more_contracts(portal: Portal, c: Company, n: int) -> None:
    """``n`` more contracts of the company's counterparty, numbered "Z-001"… (after its
    first one, "K-…", in the list)."""
    contracts = await sink(portal.host, "shipments.contract")
    records = [
        msgspec.convert(
            {
                "external_id": f"{c.contract_key}-z{i:03d}",
                "counterparty": f"booking-sample-{c.organization_id}",
                "number": f"Z-{i:03d}",
                "date": dt.date(2026, 1, 1),
            },
            contracts.struct,
        )
        for i in range(1, n + 1)
    ]
    async with portal.host.db.session() as session:
        result = await contracts.apply(portal.host, session, records, notify=False)
    assert not result.rejected


def options(html: str) -> dict[int, str]:
    """The contract options: of the form's contract list, or of a fragment refilling it."""
    within = re.search(r'<select id="f-contract_id".*?</select>', html, re.S)
    part = within.group(0) if within else html
    return {int(k): v for k, v in re.findall(r'<option value="(\d+)"[^>]*>([^<]+)<', part)}


async def test_a_person_with_many_contracts_finds_and_orders_under_any(portal: Portal) -> None:
    c = await company(portal)
    await more_contracts(portal, c, LISTED + 5)
    service = portal.host.services.of(BOOKING)
    everything = await service.contracts(c.client.principal)
    assert len(everything) == LISTED + 6
    last = next(k for k in everything if k.number == f"Z-{LISTED + 5:03d}")
    client = await portal.signed_in(c.client)

    with connections(portal) as most:  # the contracts are read in the request's unit
        form = await client.get("/booking/new")
    assert most == [1]
    listed = options(form.text)
    assert len(listed) == LISTED
    assert last.id not in listed  # beyond the list: found by the search
    assert 'id="f-contract_q"' in form.text
    assert 'hx-get="/booking/contracts"' in form.text

    found = await client.get("/booking/contracts", params={"q": f"z-{LISTED + 5:03d}"})
    assert found.status_code == 200
    assert options(found.text) == {last.id: last.label}
    by_party = await client.get("/booking/contracts", params={"q": "заКАЗЧИК"})
    assert by_party.status_code == 200  # the counterparty's name, any case
    assert len(options(by_party.text)) == LISTED  # at most as many as the form lists
    kept = await client.get(
        "/booking/contracts", params={"q": "Z-001", "contract_id": str(last.id)}
    )
    assert re.search(rf'<option value="{last.id}" selected>', kept.text)  # stays chosen
    assert (
        "Договор не найден"
        in (await client.get("/booking/contracts", params={"q": "нет такого"})).text
    )

    with connections(portal) as most:  # the contract's key too is read in the unit
        sent = await client.post(
            "/booking/new",
            data={**order_form(last.id, service.today()), "action": "send"},
        )
    assert most == [1]
    assert sent.status_code == 303, sent.text[:500]
    made = re.search(r"/booking/(\d+)", sent.headers["location"])
    assert made is not None
    request_id = int(made.group(1))
    async with portal.host.db.session() as session:
        request = await service.get(session, c.client.principal, request_id)
    assert (request.state, request.contract_id) == ("sent", last.id)
    card = await client.get(f"/booking/{request_id}")
    assert last.label in card.text

    draft = await client.post(
        "/booking/new", data={**order_form(last.id, service.today()), "action": "save"}
    )
    assert draft.status_code == 303
    edit = await client.get(draft.headers["location"])
    assert last.id in options(edit.text)
    assert re.search(rf'<option value="{last.id}" selected>', edit.text)  # shown, chosen

    other = await company(portal)  # another company's contract: neither found nor accepted
    theirs = await client.get(
        "/booking/contracts", params={"q": "K-", "contract_id": str(other.contract_id)}
    )
    assert theirs.status_code == 200
    assert c.contract_id in options(theirs.text)
    assert other.contract_id not in options(theirs.text)
    refused = await client.post(
        "/booking/new",
        data={**order_form(other.contract_id, service.today()), "action": "send"},
    )
    assert refused.status_code == 400
    stranger = await portal.signed_in(other.client)
    assert last.id not in options(
        (await stranger.get("/booking/contracts", params={"q": "Z-"})).text
    )
