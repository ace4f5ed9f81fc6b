"""Pages and the JSON API over HTTP: what a client sees, downloads and sends."""

from __future__ import annotations

import itertools
import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from shipments_support import Site, site

from kabinet.clock import FrozenClock
from kabinet.host import Host
from kabinet.roles.services import ROLES
from kabinet_shipments.demo import generate
from kabinet_shipments.samples import ensure_counterparty, make_order
from kabinet_shipments.sinks import apply_contracts, apply_invoices, apply_orders

pytestmark = pytest.mark.smoke
_orgs = itertools.count(900_101)


@pytest.fixture
async def web(shipments_url: str, tmp_path: Path, clock: FrozenClock) -> AsyncIterator[Site]:
    async with site(shipments_url, tmp_path, clock) as found:
        yield found


async def _load(host: Host, org: int, n: int = 30) -> None:
    cp = await ensure_counterparty(host, org)
    batch = generate([cp], n, host.clock.now().date(), seed=org, prefix=f"W{org}")
    async with host.db.session() as s:
        await apply_contracts(host, s, batch.contracts)
        await apply_orders(host, s, batch.orders)
        await apply_invoices(host, s, batch.invoices)


async def test_the_registry_page_filters_sorts_and_swaps_the_table(web: Site) -> None:
    org = next(_orgs)
    await _load(web.host, org)
    session = await web.client_of(org)
    full = await web.get("/shipments/?sort=cost&size=25", session)
    assert full.status_code == 200
    assert 'id="registry"' in full.text
    assert "<form" in full.text
    assert 'data-tab="all"' in full.text
    # the counts come after the table: the tabs ask for them once shown
    assert 'hx-get="/shipments/counts?sort=cost&amp;size=25"' in full.text
    counts = await web.get("/shipments/counts?sort=cost&size=25", session)
    assert counts.status_code == 200
    assert "<html" not in counts.text
    assert "hx-get" not in counts.text
    # each count goes into its tab in place (out of band), the links are left alone
    assert "<a " not in counts.text
    tabs = dict(
        re.findall(
            r'<span class="sh-count" id="sh-count-(\w+)" hx-swap-oob="true">(\d+)</span>',
            counts.text,
        )
    )
    assert set(tabs) == {"all", "registered", "in_progress", "done"}
    assert int(tabs["all"]) == 30 >= int(tabs["done"]) + int(tabs["in_progress"])
    assert full.text.count('href="/shipments/orders/') == 25
    assert 'rel="next"' in full.text

    partial = await web.get(
        "/shipments/?sort=-cost", session, **{"HX-Request": "true", "HX-Target": "registry"}
    )
    assert partial.status_code == 200
    assert "<html" not in partial.text
    assert 'id="orders"' in partial.text

    done = await web.get("/shipments/?status=done", session)
    assert "Выполнена" in done.text
    assert "Оформлена</span>" not in done.text

    bad = await web.get("/shipments/?sort=driver", session)
    assert bad.status_code == 400

    csv = await web.get("/shipments/orders.csv?status=done", session)
    assert csv.status_code == 200
    assert csv.text.count("\n") >= 2
    assert "Выполнена" in csv.text  # the status's label, not its code
    assert "done" not in csv.text
    xlsx = await web.get("/shipments/orders.xlsx", session)
    assert xlsx.status_code == 200
    assert xlsx.content[:2] == b"PK"


async def test_a_person_of_two_organizations_filters_by_one_and_can_switch_back(
    web: Site,
) -> None:
    first, second = next(_orgs), next(_orgs)
    await _load(web.host, first, 5)
    await _load(web.host, second, 5)
    session = await web.client_of(first)
    person = web.people[session]
    await web.host.services.of(ROLES).grant(person, "client", second)
    both = await web.get("/shipments/", session)
    assert both.text.count('href="/shipments/orders/') == 10
    assert f'<option value="{first}"' in both.text
    assert f'<option value="{second}"' in both.text
    one = await web.get(f"/shipments/?organization={first}", session)
    assert one.text.count('href="/shipments/orders/') == 5
    assert f"Образец {second}" not in one.text.split('id="registry"')[1]  # its rows only
    # the organization filter is still offered, with the other one to switch back to
    assert f'<option value="{first}" selected>' in one.text
    assert f'<option value="{second}"' in one.text


async def test_the_card_downloads_a_document_and_takes_a_cancel_request(web: Site) -> None:
    org = next(_orgs)
    ids = await make_order(web.host, org)
    session = await web.client_of(org)
    card = await web.get(f"/shipments/orders/{ids['order_id']}", session)
    assert card.status_code == 200
    assert "Москва → Казань" in card.text
    assert 'id="documents"' in card.text

    file = await web.get(
        f"/shipments/orders/{ids['order_id']}/documents/{ids['document_id']}", session
    )
    assert file.status_code == 200
    assert file.content.startswith(b"%PDF")
    assert "tn.pdf" in file.headers["content-disposition"]

    refused_edit = await web.post(
        f"/shipments/orders/{ids['order_id']}/requests",
        session,
        {"kind": "edit", "new_loading_date": "завтра", "new_consignee": "ООО Новый"},
    )
    assert refused_edit.status_code == 422
    said = re.search(r'id="request-error">(.*?)</p>', refused_edit.text, re.S)
    assert said is not None
    assert said.group(1) == "Введите дату в формате ГГГГ-ММ-ДД."
    assert 'value="ООО Новый"' in refused_edit.text  # what was sent is shown again
    assert 'value="завтра"' in refused_edit.text
    sent = await web.post(
        f"/shipments/orders/{ids['order_id']}/requests",
        session,
        {"kind": "cancel", "comment": "Не нужна"},
    )
    assert sent.status_code == 303
    card = await web.get(f"/shipments/orders/{ids['order_id']}", session)
    assert 'data-kind="cancel" data-status="pending"' in card.text
    again = await web.post(
        f"/shipments/orders/{ids['order_id']}/requests",
        session,
        {"kind": "cancel", "comment": "Ещё"},
    )
    assert again.status_code == 409
    assert "уже есть запрос на отмену" in again.text

    stranger = await web.client_of(next(_orgs))
    for path in (
        f"/shipments/orders/{ids['order_id']}",
        f"/shipments/orders/{ids['order_id']}/documents/{ids['document_id']}",
        f"/shipments/contracts/{ids['contract_id']}",
        f"/api/shipments/invoices/{ids['invoice_id']}",
    ):
        assert (await web.get(path, stranger)).status_code == 404, path
    refused = await web.post(
        f"/shipments/orders/{ids['order_id']}/requests",
        stranger,
        {"kind": "cancel", "comment": "x"},
    )
    assert refused.status_code == 404


async def test_the_api_lists_orders_and_answers_problems(web: Site) -> None:
    org = next(_orgs)
    await _load(web.host, org, 12)
    session = await web.client_of(org)
    listed = await web.get("/api/shipments/orders?size=25&sort=number", session)
    assert listed.status_code == 200
    body = listed.json()
    assert len(body["items"]) == 12
    assert body["counts"]["all"] == 12
    numbers = [o["number"] for o in body["items"]]
    assert numbers == sorted(numbers)
    detail = await web.get(f"/api/shipments/orders/{body['items'][0]['id']}", session)
    assert detail.status_code == 200
    assert "history" in detail.json()

    bad = await web.get("/api/shipments/orders?date_from=yesterday", session)
    assert bad.status_code == 400
    assert bad.headers["content-type"].startswith("application/problem+json")
    assert bad.json()["errors"][0]["field"] == "date_from"

    debt = await web.get("/api/shipments/debt", session)
    assert debt.status_code == 200
    assert "overdue" in debt.json()
    schema = await web.get("/api/schema/openapi.json", session)
    assert schema.status_code == 200
    paths = schema.json()["paths"]
    assert {"/api/shipments/orders", "/api/shipments/orders/{order_id}/requests"} <= set(paths)


async def test_the_api_filters_are_typed_query_parameters_in_the_schema(web: Site) -> None:
    """Issue 17, point 3: every filter the lists take is in the OpenAPI document, and a
    wrong one is a 400 problem naming it (as before, when they were read from a dict)."""
    org = next(_orgs)
    await _load(web.host, org, 12)
    session = await web.client_of(org)
    schema = (await web.get("/api/schema/openapi.json", session)).json()["paths"]

    def params(path: str) -> dict[str, Any]:
        found = schema[path]["get"].get("parameters", [])
        return {p["name"]: p for p in found if p["in"] == "query"}

    orders = params("/api/shipments/orders")
    assert {
        "status", "date_from", "date_to", "origin", "destination", "q", "organization",
        "counterparty", "contract", "late", "sort", "size", "after", "before",
    } <= set(orders)  # fmt: skip
    assert "-cost" in orders["sort"]["schema"]["enum"]
    assert "in_progress" in orders["status"]["schema"]["enum"]
    invoices = params("/api/shipments/invoices")
    assert {"status", "date_from", "date_to", "q", "sort", "size", "after", "before"} <= set(
        invoices
    )
    assert "overdue" in invoices["status"]["schema"]["enum"]
    assert {"start", "end"} <= set(params("/api/shipments/debt"))
    assert "status" in params("/api/shipments/requests")

    numbered = await web.get("/api/shipments/orders?sort=-number&size=25&late=0", session)
    numbers = [o["number"] for o in numbered.json()["items"]]
    assert len(numbers) == 12
    assert numbers == sorted(numbers, reverse=True)
    first = await web.get("/api/shipments/invoices?size=25&sort=number", session)
    assert first.status_code == 200
    for path, field in (
        ("/api/shipments/orders?sort=driver", "sort"),
        ("/api/shipments/orders?size=7", "size"),
        ("/api/shipments/orders?status=lost", "status"),
        ("/api/shipments/orders?organization=abc", "organization"),
        ("/api/shipments/orders?counterparty=0", "counterparty"),
        ("/api/shipments/invoices?sort=driver", "sort"),
        ("/api/shipments/invoices?date_to=31.12.2026", "date_to"),
        ("/api/shipments/debt?start=yesterday", "start"),
    ):
        bad = await web.get(path, session)
        assert bad.status_code == 400, path
        assert bad.headers["content-type"].startswith("application/problem+json")
        assert [e["field"] for e in bad.json()["errors"]] == [field], path
    # a cursor of the shape the schema gives that no list gave: the app's rule refuses it
    for path, field in (
        ("/api/shipments/orders?after=bm90LWEtY3Vyc29y", "after"),
        ("/api/shipments/invoices?before=bm90LWEtY3Vyc29y", "before"),
    ):
        damaged = await web.get(path, session)
        assert damaged.status_code == 422, path
        assert [e["field"] for e in damaged.json()["errors"]] == [field], path
    refused = await web.get("/api/shipments/orders?before=%25%25%25", session)
    assert refused.status_code == 400  # not a cursor's shape at all
    assert [e["field"] for e in refused.json()["errors"]] == ["before"]


async def test_the_home_page_shows_the_organization_at_a_glance(web: Site) -> None:
    org = next(_orgs)
    await _load(web.host, org, 8)
    session = await web.client_of(org)
    home = await web.get("/", session)
    assert home.status_code == 200
    assert 'id="shipments-home"' in home.text
    assert 'data-count="all">8<' in home.text
    assert 'id="home-debt"' in home.text
