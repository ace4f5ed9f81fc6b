"""1C data that points across companies, through the local 1C (issue 14, point 10).

A delta carries an invoice of counterparty A naming B's order: the invoice is set aside in
quarantine with a reason staff can read, the rest of the delta is applied, and A's client
sees no number of B's orders on the invoices page or in the API. An invoice whose order
comes in a later run goes through then; an order 1C gives to another counterparty takes
its number off the old one's invoices.
"""

from __future__ import annotations

import itertools
import random
import uuid
from typing import Any

import httpx
import pytest
from integration_support import count

from kabinet.host import Host
from kabinet.identity.services import IDENTITY
from kabinet.identity.sessions import SessionRecord, new_token
from kabinet.roles.services import ROLES
from kabinet_integration import models as m
from kabinet_integration.sync import integration
from kabinet_integration_testing import OneCServer, generate, invoice, order
from kabinet_shipments import models as sm
from kabinet_shipments.samples import ensure_counterparty

pytestmark = pytest.mark.smoke
ORDERS = "Document_ЗаявкаНаПеревозку"
INVOICES = "Document_СчетНаОплатуПокупателю"
_orgs = itertools.count(760_001)


class Client:
    """A signed-in client of one organization, over HTTP against the real app."""

    def __init__(self, http: httpx.AsyncClient, cookie: str) -> None:
        self.http, self.cookie = http, cookie

    async def get(self, path: str) -> httpx.Response:
        self.http.cookies.clear()
        response = await self.http.get(path, headers={"Cookie": self.cookie})
        assert response.status_code == 200, (path, response.status_code, response.text[:300])
        return response


async def client_of(host: Host, http: httpx.AsyncClient, org: int) -> Client:
    """A new person holding ``client`` in ``org``, signed in."""
    identity = host.services.of(IDENTITY)
    account = await identity.create_account(
        full_name=f"Клиент {org}", email=f"references-{uuid.uuid4().hex[:12]}@example.test"
    )
    await host.services.of(ROLES).grant(int(account.id), "client", org)
    token, key = new_token()
    now = host.clock.now()
    await identity.sessions.create(
        SessionRecord(key=key, account_id=int(account.id), created_at=now, last_seen_at=now)
    )
    return Client(http, f"{identity.settings.cookie_name}={token}")


def _number(onec: OneCServer, ref: str) -> str:
    return str((onec.data.get(ORDERS, ref) or {})["Number"])


async def _seen(client: Client) -> str:
    """Everything the client's invoices page and API show."""
    page = (await client.get("/shipments/invoices")).text
    return page + (await client.get("/api/shipments/invoices")).text


async def _invoices(client: Client) -> dict[str, str | None]:
    body = (await client.get("/api/shipments/invoices")).json()
    assert body["next"] is None  # all on one page
    return {i["number"]: i["order_number"] for i in body["items"]}


async def _quarantine(host: Host) -> dict[str, Any]:
    async with host.db.reader() as s:
        return {
            r.ref: r
            for r in await s.execute(m.quarantine.select().where(m.quarantine.c.state == "open"))
        }


async def test_an_invoice_naming_another_companys_order_is_quarantined_and_not_shown(
    host: Host, onec: OneCServer, web: httpx.AsyncClient
) -> None:
    org_a, org_b = next(_orgs), next(_orgs)
    cp_a = await ensure_counterparty(host, org_a)
    cp_b = await ensure_counterparty(host, org_b)
    # Orders 1 and 3 are A's, 2 and 4 B's; invoices 1 (A, order 1) and 2 (B, order 2).
    made = generate(onec.data, owners=[cp_b, cp_a], orders=4, invoices=2, seed=23)
    contract_a, contract_b = made.contracts[1], made.contracts[0]
    a_orders, b_orders = made.orders[0::2], made.orders[1::2]
    assert all((onec.data.get(ORDERS, ref) or {})["Контрагент_Key"] == cp_a for ref in a_orders)
    svc = integration(host)
    first = await svc.run("onec")
    assert (first.state, first.counts.quarantined) == ("succeeded", 0), first.error
    a = await client_of(host, web, org_a)
    b = await client_of(host, web, org_b)
    assert set((await _invoices(a)).values()) == {_number(onec, a_orders[0])}

    # The delta: A's invoice naming B's order, A's invoice naming A's order not in 1C yet,
    # and ordinary changes (a new invoice of A for its own order, an order moved on).
    onec.data.tick(60)
    b_number = _number(onec, b_orders[1])
    foreign = onec.data.put(INVOICES, invoice_of(cp_a, contract_a, b_orders[1], 901))
    later_order = order_of(cp_a, contract_a, 902)
    early = onec.data.put(INVOICES, invoice_of(cp_a, contract_a, later_order["Ref_Key"], 903))
    own = onec.data.put(INVOICES, invoice_of(cp_a, contract_a, a_orders[1], 904))
    moving_on = dict(onec.data.get(ORDERS, a_orders[1]) or {})
    moving_on["Дислокация"] = "Тверь"
    onec.data.put(ORDERS, moving_on)
    out = await svc.run("onec")
    assert out.state == "succeeded", out.error

    held = await _quarantine(host)
    assert set(held) == {foreign["Ref_Key"], early["Ref_Key"]}
    reason = held[foreign["Ref_Key"]].reason
    assert f"order {b_orders[1]!r} belongs to another counterparty" in reason
    assert f"{cp_b!r}, not {cp_a!r}" in reason
    assert held[foreign["Ref_Key"]].payload["Заявка_Key"] == b_orders[1]
    assert "unknown order" in held[early["Ref_Key"]].reason
    # The rest of the delta went through.
    assert await count(host, sm.invoice, sm.invoice.c.external_id == own["Ref_Key"]) == 1
    assert await count(host, sm.order, sm.order.c.location == "Тверь") == 1
    seen = await _seen(a)
    assert b_number not in seen
    assert "СЧ-000901" not in seen
    assert (await _invoices(a))["СЧ-000904"] == _number(onec, a_orders[1])

    # The next run: the order comes, the waiting invoice goes through linked to it; 1C gives
    # B's invoiced order to A, and B's invoice stops showing that order's number.
    onec.data.tick(60)
    onec.data.put(ORDERS, later_order)
    b_invoiced = made.orders[1]
    given = dict(onec.data.get(ORDERS, b_invoiced) or {})
    given.update({"Контрагент_Key": cp_a, "Договор_Key": contract_a})
    onec.data.put(ORDERS, given)
    assert _number(onec, b_invoiced) in await _seen(b)
    out = await svc.run("onec")
    assert out.state == "succeeded", out.error
    assert set(await _quarantine(host)) == {foreign["Ref_Key"]}
    assert (await _invoices(a))["СЧ-000903"] == later_order["Number"]
    assert _number(onec, b_invoiced) not in await _seen(b)
    assert b_number not in await _seen(a)
    assert await count(host, sm.contract, sm.contract.c.external_id == contract_b) == 1


def invoice_of(owner: str, contract: str, order_ref: str, n: int) -> dict[str, Any]:
    """An invoice object as 1C holds it (the local 1C generator's, numbered ``n``)."""
    return invoice(random.Random(n), owner, contract, order_ref, n)


def order_of(owner: str, contract: str, n: int) -> dict[str, Any]:
    """An order object as 1C holds it, numbered ``n``."""
    return order(random.Random(n), owner, contract, n)
