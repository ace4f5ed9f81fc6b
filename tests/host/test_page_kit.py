"""The page kit (kabinet.forms, kabinet.paging, kabinet.htmx and their macros), on a small
plugin built for the test: what a person sees when a form is wrong, what the API answers
for the same refusal, the pager's arithmetic on any page number, and redirects for a
browser and for htmx."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from litestar.testing import AsyncTestClient

from kabinet.paging import Paging
from kabinet.testing import PluginFactory
from kabinet.web import build_app

pytestmark = pytest.mark.smoke

PLUGIN = """
import datetime as dt
from typing import Annotated, Any, Literal

import msgspec
from litestar import Request, Response, get, post
from litestar.params import FromQuery

from kabinet.access import Principal, public, signed_in
from kabinet.forms import FieldError, form_view, read_form
from kabinet.htmx import redirect
from kabinet.pages import page
from kabinet.paging import PageNo, Paging, PerPage


class Order(msgspec.Struct):
    name: Annotated[str, msgspec.Meta(min_length=1, max_length=20)] = ""
    qty: Annotated[int, msgspec.Meta(ge=1, le=100)] = 1
    day: dt.date | None = None
    kind: Literal["box", "pallet"] = "box"
    urgent: bool = False
    tags: list[str] = []


class Taken(FieldError):
    status = 409


@get("/kit/order", access=signed_in)
async def order_page(request: Request) -> Response[Any]:
    return await page(request, "kit/order.html", form=None)


@post("/kit/order", access=signed_in)
async def order_save(request: Request) -> Response[Any]:
    try:
        data = await read_form(request, Order)
        if data.name == "taken":
            raise Taken("This name is taken.", "name")
    except FieldError as exc:
        return await page(request, "kit/order.html", status_code=exc.status,
                          form=await form_view(request, exc))
    swap = request.query_params.get("swap") == "1"
    return redirect(request, "/kit/order", flash=f"Saved {data.qty} x {data.name}", swap=swap)


@post("/api/kit/orders", access=public)
async def order_api(request: Request) -> dict[str, Any]:
    data = await read_form(request, Order)
    if data.name == "taken":
        raise Taken("This name is taken.", "name")
    return {"name": data.name, "qty": data.qty, "urgent": data.urgent, "tags": data.tags}


@get("/kit/uncaught", access=signed_in)
async def uncaught(request: Request) -> Response[Any]:
    raise Taken("This name is taken.", "name")


@get("/kit/list", access=signed_in)
async def rows(
    request: Request, q: FromQuery[str] = "", page_no: PageNo = 1, per_page: PerPage = None
) -> Response[Any]:
    paging = Paging.of(request, page_no, per_page, size=10, most=20).counted(35)
    return await page(request, "kit/list.html", fragment="kit/list_table.html",
                      paging=paging, q=q)


@get("/api/kit/rows", access=public)
async def rows_api(page_no: PageNo = 1, per_page: PerPage = None) -> dict[str, int]:
    paging = Paging.of(None, page_no, per_page, size=10).counted(35)
    return {"offset": paging.offset, "limit": paging.limit, "pages": paging.pages}


class As:
    def __init__(self, app: Any) -> None:
        self.app = app
    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        for k, v in scope.get("headers", []):
            if k == b"x-test-person":
                scope["user"] = Principal(person_id=int(v), name="Анна", kind="person")
        await self.app(scope, receive, send)


@hookimpl
def routers(host):
    return [order_page, order_save, order_api, uncaught, rows, rows_api]

@hookimpl
def middleware(host):
    return [As]

@hookimpl
def template_dir():
    from pathlib import Path
    return Path(__file__).parent / "templates"
"""

ORDER = """\
{% extends "shell/base.html" %}
{% from "shell/forms.html" import field, select, choices, form_errors, csrf with context %}
{% block content %}
<form method="post" action="/kit/order">
  {{ csrf() }}
  {{ form_errors(form, ["name", "qty", "day", "kind", "tags"]) }}
  {{ field(form, "name", "Name", required=True) }}
  {{ field(form, "qty", "Quantity", inputmode="numeric", value=1) }}
  {{ field(form, "day", "Day", type="date") }}
  {{ select(form, "kind", "Kind", [("box", "Box"), ("pallet", "Pallet")]) }}
  {{ choices(form, "tags", "Tags", [("cold", "Cold"), ("fragile", "Fragile")]) }}
</form>
{% endblock %}
"""

LIST = """\
{% extends "shell/base.html" %}
{% block content %}
<h1>Rows</h1><div id="rows">{% include "kit/list_table.html" %}</div>
{% endblock %}
"""

LIST_TABLE = """\
{% from "shell/pager.html" import pager with context %}
<p id="rows-shown">rows {{ paging.first_row }}–{{ paging.last_row }} of {{ paging.total }}</p>
{{ pager(paging, target="#rows") }}
"""

ME = {"X-Test-Person": "2"}


@pytest.fixture
async def client(
    plugin_factory: PluginFactory, database_url: str, tmp_path: Path
) -> AsyncIterator[AsyncTestClient[Any]]:
    from kabinet.host import Host

    plugin_factory.add(
        "kit",
        PLUGIN,
        files={
            "templates/kit/order.html": ORDER,
            "templates/kit/list.html": LIST,
            "templates/kit/list_table.html": LIST_TABLE,
        },
    )
    host = await Host.create(
        None,
        env={"KABINET__HOST__DATABASE_URL": database_url, "KABINET__HOST__VAR_DIR": str(tmp_path)},
        candidates=plugin_factory.candidates(),
    )
    try:
        async with AsyncTestClient(await build_app(host)) as c:
            yield c
    finally:
        await host.db.dispose()


async def _csrf(client: AsyncTestClient[Any]) -> str:
    shown = await client.get("/kit/order", headers=ME)
    assert shown.status_code == 200
    found = re.search(r'name="csrf_token" value="([^"]+)"', shown.text)
    assert found
    return found.group(1)


def _error_of(html: str, name: str) -> str:
    found = re.search(rf'<small class="field-error" id="e-{name}">([^<]*)</small>', html)
    return found.group(1) if found else ""


# --- forms ---------------------------------------------------------------------------------


async def test_a_wrong_field_is_shown_beside_it_in_russian_and_the_form_keeps_what_was_sent(
    client: AsyncTestClient[Any],
) -> None:
    token = await _csrf(client)
    sent = await client.post(
        "/kit/order",
        headers=ME,
        data={
            "csrf_token": token,
            "name": "Ящики <b>",
            "qty": "много",
            "day": "31.12.2026",
            "kind": "truck",
            "tags": ["cold", "fragile"],
        },
    )
    assert sent.status_code == 400
    html = sent.text
    assert _error_of(html, "qty") == "Введите целое число от 1 до 100."
    assert _error_of(html, "day") == "Введите дату в виде ГГГГ-ММ-ДД."
    assert _error_of(html, "kind") == "Выберите одно из предложенных значений."
    assert _error_of(html, "name") == ""  # the right field has no error
    assert re.search(r'id="f-qty"[^>]*aria-invalid="true" aria-describedby="e-qty"', html)
    # what was sent comes back, escaped, with the ticked boxes still ticked
    assert 'value="Ящики &lt;b&gt;"' in html
    assert 'value="много"' in html
    assert re.search(r'value="cold" checked', html)
    assert re.search(r'value="fragile" checked', html)


async def test_an_apps_own_refusal_is_shown_beside_its_field_with_its_status(
    client: AsyncTestClient[Any],
) -> None:
    token = await _csrf(client)
    sent = await client.post(
        "/kit/order", headers=ME, data={"csrf_token": token, "name": "taken", "qty": "2"}
    )
    assert sent.status_code == 409
    assert _error_of(sent.text, "name") == "This name is taken."


async def test_the_api_names_the_same_fields_in_problem_details(
    client: AsyncTestClient[Any],
) -> None:
    client.cookies.clear()  # the API without a session: no CSRF pair
    bad = await client.post(
        "/api/kit/orders", data={"name": "", "qty": "x", "tags": ["a", "b"], "urgent": "on"}
    )
    assert bad.status_code == 400
    assert bad.headers["content-type"].startswith("application/problem+json")
    body = bad.json()
    assert body["type"] == "urn:kabinet:problem:validation"
    assert body["errors"] == [
        {"field": "name", "message": "Fill this in."},
        {"field": "qty", "message": "Enter a whole number from 1 to 100."},
    ]
    assert body["detail"] == "Check these fields: name, qty."
    taken = await client.post("/api/kit/orders", data={"name": "taken"})
    assert taken.status_code == 409
    assert taken.json()["errors"] == [{"field": "name", "message": "This name is taken."}]
    good = await client.post(
        "/api/kit/orders", data={"name": "ok", "qty": "7", "tags": ["a", "b"], "urgent": "on"}
    )
    assert good.status_code == 201
    assert good.json() == {"name": "ok", "qty": 7, "urgent": True, "tags": ["a", "b"]}


async def test_a_refusal_no_form_shows_is_the_error_page_saying_it(
    client: AsyncTestClient[Any],
) -> None:
    shown = await client.get("/kit/uncaught", headers=ME)
    assert shown.status_code == 409
    assert "This name is taken." in shown.text
    assert "<html" in shown.text


# --- redirects and htmx --------------------------------------------------------------------


async def test_a_browser_gets_303_and_htmx_gets_hx_redirect_both_with_the_flash(
    client: AsyncTestClient[Any],
) -> None:
    token = await _csrf(client)
    data = {"csrf_token": token, "name": "Box", "qty": "3"}
    plain = await client.post("/kit/order", headers=ME, data=data, follow_redirects=False)
    assert plain.status_code == 303
    assert plain.headers["location"] == "/kit/order"
    assert "kabinet_flash=" in plain.headers["set-cookie"]
    assert "Saved 3 x Box" in (await client.get("/kit/order", headers=ME)).text

    htmx = await client.post(
        "/kit/order", headers={**ME, "HX-Request": "true"}, data=data, follow_redirects=False
    )
    assert htmx.status_code == 200
    assert htmx.headers["hx-redirect"] == "/kit/order"
    assert "location" not in htmx.headers
    assert "kabinet_flash=" in htmx.headers["set-cookie"]

    swap = await client.post("/kit/order?swap=1", headers={**ME, "HX-Request": "true"}, data=data)
    assert swap.status_code == 200
    assert '"path":"/kit/order"' in swap.headers["hx-location"].replace(" ", "")


async def test_htmx_gets_the_fragment_and_a_boosted_link_the_whole_page(
    client: AsyncTestClient[Any],
) -> None:
    whole = await client.get("/kit/list", headers=ME)
    assert "<html" in whole.text
    assert 'id="rows-shown"' in whole.text
    part = await client.get("/kit/list", headers={**ME, "HX-Request": "true"})
    assert "<html" not in part.text
    assert 'id="rows-shown"' in part.text
    boosted = await client.get(
        "/kit/list", headers={**ME, "HX-Request": "true", "HX-Boosted": "true"}
    )
    assert "<html" in boosted.text


# --- pages of a list -----------------------------------------------------------------------


def test_paging_arithmetic() -> None:
    paging = Paging.of(None, 2, size=10).counted(35)
    assert (paging.offset, paging.limit, paging.pages) == (10, 10, 4)
    assert (paging.previous, paging.next) == (1, 3)
    assert (paging.first_row, paging.last_row) == (11, 20)
    assert Paging.of(None, 4, size=10).counted(35).last_row == 35
    assert Paging.of(None, 1, size=10).counted(0).pages == 1  # an empty list: one page
    low = Paging.of(None, -5, size=10).counted(35)
    assert (low.page, low.offset, low.previous) == (1, 0, None)
    beyond = Paging.of(None, 99, size=10).counted(35)
    assert (beyond.previous, beyond.next, beyond.first_row) == (4, None, 0)
    assert Paging.of(None, 1, 0).per_page == 1
    assert Paging.of(None, 1, 10_000, most=200).per_page == 200
    assert Paging.of(None, None).page == 1
    assert Paging.of(None, 10**20).page == 2**31 - 1  # a page number no offset overflows
    below = Paging.of(None, 2, size=10, param="orders_page", anchor="orders").counted(35)
    assert (below.url(3), below.url(1)) == ("?orders_page=3#orders", "?#orders")


async def test_the_pager_keeps_the_filters_and_any_page_number_is_a_page_or_a_4xx(
    client: AsyncTestClient[Any],
) -> None:
    second = await client.get("/kit/list?q=кот&page=2", headers=ME)
    assert second.status_code == 200
    assert "rows 11–20 of 35" in second.text
    assert "2 / 4" in second.text
    assert 'href="/kit/list?q=%D0%BA%D0%BE%D1%82"' in second.text  # page 1 left out
    assert 'href="/kit/list?q=%D0%BA%D0%BE%D1%82&amp;page=3"' in second.text
    assert 'hx-target="#rows"' in second.text
    first = await client.get("/kit/list?page=0", headers=ME)
    assert first.status_code == 200
    assert "rows 1–10 of 35" in first.text
    beyond = await client.get("/kit/list?page=99", headers=ME)
    assert beyond.status_code == 200
    assert "99 / 4" in beyond.text
    assert 'href="/kit/list?page=4"' in beyond.text
    assert 'rel="next"' not in beyond.text
    wide = await client.get("/kit/list?per_page=1000", headers=ME)
    assert "rows 1–20 of 35" in wide.text  # bounded by most=20
    for damaged in ("abc", "1.5", "99999999999999999999", ""):
        answer = await client.get(f"/kit/list?page={damaged}", headers=ME)
        assert answer.status_code < 500, damaged
    client.cookies.clear()
    huge = await client.get("/api/kit/rows?page=99999999999999999999")
    assert huge.status_code == 400  # the input guard reads the sent name, ``page``
    assert [e["field"] for e in huge.json()["errors"]] == ["page"]
    api = await client.get("/api/kit/rows?page=abc")
    assert api.status_code == 400
    assert [e["field"] for e in api.json()["errors"]] == ["page"]
    assert (await client.get("/api/kit/rows?page=3&per_page=5")).json() == {
        "offset": 10,
        "limit": 5,
        "pages": 7,
    }


async def test_the_api_documents_the_page_parameters(client: AsyncTestClient[Any]) -> None:
    schema = (await client.get("/api/schema/openapi.json", headers={"X-Test-Person": "1"})).json()
    params = {p["name"]: p for p in schema["paths"]["/api/kit/rows"]["get"]["parameters"]}
    assert params["page"]["in"] == "query"
    assert params["page"]["schema"]["type"] == "integer"
    assert "per_page" in params
