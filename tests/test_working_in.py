"""A person in several companies works in one at a time (issue 16, point 1), over HTTP.

The header's switch is a form post answered by a 303 back to the page (``HX-Redirect``, a
whole page load, when htmx sent it: never a swap, no ``HX-Refresh``, one header); the
chosen company (the ``kabinet_org`` cookie) scopes every page, count, export and the home
page through the access service, "all my companies" stays a choice, and the JSON API does
not read the cookie.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from kabinet.access import ORG_COOKIE, Principal
from kabinet.host import Host
from kabinet.pages import CSRF_COOKIE, CSRF_HEADER
from kabinet.roles.services import ROLES
from kabinet.routematrix import RouteMatrix
from kabinet.testing import drop_database, migrated_database
from kabinet.web import build_app
from kabinet_companies.services import COMPANIES
from kabinet_shipments.exports import EXPORTS

pytestmark = pytest.mark.smoke


class Browser:
    """One signed-in person's requests, with the cookies a browser would keep."""

    def __init__(self, host: Host, client: httpx.AsyncClient, matrix: RouteMatrix) -> None:
        self.host = host
        self.client = client
        self.matrix = matrix
        self.cookies: dict[str, str] = {}

    async def sign_in(self, person_id: int) -> None:
        name, _, value = (await self.matrix.session(person_id)).partition("=")
        self.cookies = {name: value}

    def _header(self) -> str:
        return "; ".join(f"{k}={v}" for k, v in self.cookies.items())

    def _keep(self, response: httpx.Response) -> None:
        for raw in response.headers.get_list("set-cookie"):
            pair = raw.split(";")[0]
            name, _, value = pair.partition("=")
            expired = "max-age=0" in raw.lower() or "expires=thu, 01 jan 1970" in raw.lower()
            if name == ORG_COOKIE and (expired or not value.strip('"')):
                self.cookies.pop(name, None)
            elif name == ORG_COOKIE:
                self.cookies[name] = value

    async def get(self, path: str, **headers: str) -> httpx.Response:
        response = await self.client.get(path, headers={"Cookie": self._header(), **headers})
        assert response.status_code < 500, response.text
        return response

    async def post(self, path: str, data: dict[str, str], **headers: str) -> httpx.Response:
        session = next(f"{k}={v}" for k, v in self.cookies.items() if k != ORG_COOKIE)
        csrf = await self.matrix.csrf(session)
        response = await self.client.post(
            path,
            data=data,
            headers={
                "Cookie": f"{self._header()}; {CSRF_COOKIE}={csrf}",
                CSRF_HEADER: csrf,
                **headers,
            },
        )
        self._keep(response)
        return response


@pytest.fixture
async def own_database_url(tmp_path: Path) -> AsyncIterator[str]:
    """A database of the test's own: organizations other tests made with fixed ids in the
    run's shared database would collide with the ones made here."""
    url = await migrated_database(tmp_path)
    yield url
    await drop_database(url)


@pytest.fixture
async def portal(own_database_url: str, tmp_path: Path) -> AsyncIterator[tuple[Host, Browser]]:
    database_url = own_database_url
    settings = tmp_path / "settings.toml"
    settings.write_text('[host]\nvar_dir = "var"\nsecret_key = "working-in-secret"\n')
    host = await Host.create(settings, env={"KABINET__HOST__DATABASE_URL": database_url})
    app = await build_app(host)
    await host.startup()
    try:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1:8000") as c:
            yield host, Browser(host, c, RouteMatrix(host, app, c))
    finally:
        await host.shutdown()


async def _two_companies(host: Host, browser: Browser) -> dict[str, Any]:
    from kabinet_companies.services import companies
    from kabinet_shipments.samples import make_order

    svc = companies(host)
    north = await svc.create_organization("ООО Север Выбор")
    south = await svc.create_organization("ООО Юг Выбор")
    orders = {
        north.id: [await make_order(host, north.id), await make_order(host, north.id)],
        south.id: [await make_order(host, south.id)],
    }
    anna = await browser.matrix.person("anna")
    for org in (north.id, south.id):
        await host.services.of(ROLES).grant(anna, "client", org)
        async with host.db.session() as s:
            await svc.add_member(s, anna, org)
    return {"north": north.id, "south": south.id, "orders": orders, "anna": anna}


async def _numbers(host: Host, orders: list[dict[str, Any]], key: str, column: str) -> list[str]:
    from sqlalchemy import select

    from kabinet_shipments import models as m

    table = {"order_id": m.order, "invoice_id": m.invoice, "contract_id": m.contract}[key]
    async with host.db.engine.connect() as conn:
        rows = await conn.execute(
            select(getattr(table.c, column)).where(table.c.id.in_([o[key] for o in orders]))
        )
        return sorted(str(r[0]) for r in rows)


def _count(html: str, tab: str) -> str:
    found = re.search(rf'id="sh-count-{tab}"[^>]*>([^<]*)<', html)
    assert found, html
    return str(found.group(1)).strip()


def _selected(html: str) -> str:
    found = re.search(r'<select id="co-current"[^>]*>(.*?)</select>', html, re.S)
    assert found, "no company switch in the header"
    chosen = re.findall(r'<option value="([^"]+)" selected>', found.group(1))
    assert len(chosen) == 1, found.group(1)
    return str(chosen[0])


async def test_the_chosen_company_scopes_every_page_and_the_switch_reloads_cleanly(
    portal: tuple[Host, Browser],
) -> None:
    host, browser = portal
    world = await _two_companies(host, browser)
    north, south, orders = world["north"], world["south"], world["orders"]
    await browser.sign_in(world["anna"])
    n_orders = await _numbers(host, orders[north], "order_id", "number")
    s_orders = await _numbers(host, orders[south], "order_id", "number")
    n_invoices = await _numbers(host, orders[north], "invoice_id", "number")
    s_invoices = await _numbers(host, orders[south], "invoice_id", "number")
    n_contracts = await _numbers(host, orders[north], "contract_id", "number")
    s_contracts = await _numbers(host, orders[south], "contract_id", "number")

    # At first: all my companies, every order.
    registry = await browser.get("/shipments/")
    assert registry.status_code == 200
    assert _selected(registry.text) == "all"
    assert all(n in registry.text for n in n_orders + s_orders)
    assert _count((await browser.get("/shipments/counts")).text, "all") == "3"

    # Choose the south on the registry from a boosted page (htmx): the page kit answers
    # HX-Redirect, a whole page load of the registry (never a swap into the page that
    # asked, never an HX-Refresh of it), and the cookie.
    switched = await browser.post(
        "/companies/current",
        {"organization": str(south), "next": "/shipments/"},
        **{"HX-Request": "true"},
    )
    assert switched.status_code == 200
    assert switched.headers["hx-redirect"] == "/shipments/"
    assert "hx-refresh" not in switched.headers
    assert "location" not in switched.headers
    assert browser.cookies.get(ORG_COOKIE) == str(south)

    registry = await browser.get("/shipments/")
    assert registry.text.count('<header class="topbar">') == 1
    assert _selected(registry.text) == str(south)
    assert all(n in registry.text for n in s_orders)
    assert not any(n in registry.text for n in n_orders)
    counts = await browser.get("/shipments/counts")
    assert _count(counts.text, "all") == "1"
    export = await browser.get("/shipments/orders.csv")
    assert export.status_code == 200
    assert all(n in export.text for n in s_orders)
    assert not any(n in export.text for n in n_orders)
    invoices = await browser.get("/shipments/invoices")
    assert all(n in invoices.text for n in s_invoices)
    assert not any(n in invoices.text for n in n_invoices)
    contracts = await browser.get("/shipments/contracts")
    assert all(n in contracts.text for n in s_contracts)
    assert not any(n in contracts.text for n in n_contracts)
    north_card = await browser.get(f"/shipments/orders/{orders[north][0]['order_id']}")
    assert north_card.status_code == 404  # another company's order while working in the south
    home = await browser.get("/")
    assert home.status_code == 200
    assert _selected(home.text) == str(south)

    # The JSON API does not read the cookie: a browser tab's choice never changes an answer.
    api = await browser.get("/api/shipments/orders")
    assert api.status_code == 200
    assert api.json()["counts"]["all"] == 3

    # Switching on an order's card lands on the list, not on another company's card.
    card = f"/shipments/orders/{orders[south][0]['order_id']}"
    switched = await browser.post("/companies/current", {"organization": str(north), "next": card})
    assert switched.headers["location"] == "/shipments/orders"
    registry = await browser.get("/shipments/")
    assert all(n in registry.text for n in n_orders)
    assert not any(n in registry.text for n in s_orders)
    assert _selected(registry.text) == str(north)

    # Someone else's company cannot be chosen: the choice falls back to all of mine.
    other = await host.services.of(COMPANIES).create_organization("ООО Чужая Выбор")
    refused = await browser.post("/companies/current", {"organization": str(other.id), "next": "/"})
    assert refused.status_code == 303
    assert ORG_COOKIE not in browser.cookies
    browser.cookies[ORG_COOKIE] = str(other.id)  # a forged cookie is ignored
    registry = await browser.get("/shipments/")
    assert all(n in registry.text for n in n_orders + s_orders)

    # All my companies again.
    browser.cookies[ORG_COOKIE] = str(south)
    back = await browser.post("/companies/current", {"organization": "all", "next": "/shipments/"})
    assert back.status_code == 303
    assert ORG_COOKIE not in browser.cookies
    registry = await browser.get("/shipments/")
    assert _selected(registry.text) == "all"
    assert all(n in registry.text for n in n_orders + s_orders)


async def test_a_background_export_keeps_the_chosen_company(
    portal: tuple[Host, Browser],
) -> None:
    host, browser = portal
    world = await _two_companies(host, browser)
    exports = host.services.of(EXPORTS)
    anna = Principal(person_id=world["anna"], kind="person", working_in=world["south"])
    export_id = await exports.create(anna, {}, "csv", send=False)
    await exports.run(export_id)
    row = await exports.get(anna, export_id)
    assert row.params == {"organization": str(world["south"])}
    assert row.rows_done == 1


async def test_staff_are_not_narrowed_by_the_cookie(portal: tuple[Host, Browser]) -> None:
    host, browser = portal
    world = await _two_companies(host, browser)
    admin = await browser.matrix.person("admin")
    await host.services.of(ROLES).grant(admin, "admin")
    await browser.sign_in(admin)
    browser.cookies[ORG_COOKIE] = str(world["south"])
    registry = await browser.get("/shipments/")
    numbers = await _numbers(host, world["orders"][world["north"]], "order_id", "number")
    assert all(n in registry.text for n in numbers)
