"""The pages on the host's page kit (issue 17, point 3): a refused form shows each error
beside its field and keeps what was sent, entry lists page with ``?page=`` (htmx gets the
table alone), and the API's list parameters are typed (the OpenAPI document shows them)."""

from __future__ import annotations

import html
import re
from urllib.parse import parse_qsl

import pytest
from dictionaries_support import code

from kabinet.pages import CSRF_FIELD, CSRF_HEADER
from kabinet.testing import Portal
from kabinet_dictionaries.kinds import FieldDef
from kabinet_dictionaries.services import Dictionaries

pytestmark = pytest.mark.smoke

PDF = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"


def field_block(page: str, name: str, within: str = "") -> str:
    """The ``<div class="field ...">`` holding the input ``f-<name>`` (the first one after
    ``within``: the structure page has a form per field)."""
    at = page.index(f'id="f-{name}"', page.index(within) if within else 0)
    start = page.rindex('<div class="field', 0, at)
    return page[start : page.index("</div>", at)]


async def test_a_refused_field_form_shows_the_error_beside_its_field_and_keeps_the_form(
    web: Portal, svc: Dictionaries
) -> None:
    client = await web.signed_in(await web.person("admin"))
    token = client.headers[CSRF_HEADER]
    name = code("kit")
    await svc.create_type(code=name, name_ru="Маршруты", name_en="Routes")
    # A precision that is not a number: the kit's message, beside the precision.
    sent = await client.post(
        f"/dictionaries/{name}/fields",
        data={
            CSRF_FIELD: token,
            "code": "km",
            "name_ru": "Километры",
            "name_en": "Km",
            "kind": "number",
            "precision": "два",
            "required": "1",
        },
    )
    assert sent.status_code == 400
    new = 'id="new-field"'
    block = field_block(sent.text, "precision", new)
    assert 'class="field invalid"' in block
    assert 'id="e-precision"' in block
    assert "Введите целое число." in html.unescape(block)
    assert 'value="два"' in block  # what was sent, not the stored field's
    assert 'value="Километры"' in field_block(sent.text, "name_ru", new)
    assert re.search(r'name="required" value="1" checked', sent.text)
    assert '<details class="card" id="new-field" open>' in sent.text
    assert not (await svc.get_type(name)).fields
    # A code the service refuses: its own message, beside the code.
    bad = await client.post(
        f"/dictionaries/{name}/fields",
        data={CSRF_FIELD: token, "code": "1km", "name_ru": "Км", "name_en": "Km"},
    )
    assert bad.status_code == 400
    block = field_block(bad.text, "code", 'id="new-field"')
    assert 'id="e-code"' in block
    assert 'value="1km"' in block
    assert "Код: латинские буквы" in html.unescape(block)
    fine = await client.post(
        f"/dictionaries/{name}/fields",
        data={
            CSRF_FIELD: token,
            "code": "km",
            "name_ru": "Км",
            "name_en": "Km",
            "kind": "number",
            "precision": "1",
        },
    )
    assert fine.status_code == 303
    assert fine.headers["location"] == f"/dictionaries/{name}/structure"
    assert [(f.code, f.precision) for f in (await svc.get_type(name)).fields] == [("km", 1)]


async def test_a_refused_document_keeps_what_was_sent_and_htmx_is_sent_on(
    web: Portal, svc: Dictionaries
) -> None:
    client = await web.signed_in(await web.person("admin"))
    token = client.headers[CSRF_HEADER]
    before = len(await svc.documents())
    refused = await client.post(
        "/dictionaries/documents/",
        data={CSRF_FIELD: token, "title": "Прайс", "number": "П-17", "date": "31.12.2026"},
        files={"file": ("price.pdf", PDF, "application/pdf")},
    )
    assert refused.status_code == 400
    block = field_block(refused.text, "date")
    assert 'id="e-date"' in block
    assert "Введите дату" in html.unescape(block)
    assert 'value="П-17"' in field_block(refused.text, "number")
    assert len(await svc.documents()) == before
    # htmx is sent to the new document with HX-Redirect (200), the flash kept for it.
    made = await client.post(
        "/dictionaries/documents/",
        data={CSRF_FIELD: token, "title": "Прайс", "date": "2026-12-31"},
        files={"file": ("price.pdf", PDF, "application/pdf")},
        headers={"HX-Request": "true"},
    )
    assert made.status_code == 200
    location = made.headers["hx-redirect"]
    assert re.fullmatch(r"/dictionaries/documents/\d+", location)
    flash = made.headers["set-cookie"].split(";", 1)[0]
    assert flash.startswith("kabinet_flash=")
    shown = await client.get(location)  # with the message the answer's cookie carries
    assert "Файл загружен." in shown.text


async def test_entries_page_with_the_pager_and_htmx_gets_the_table(
    web: Portal, svc: Dictionaries
) -> None:
    client = await web.signed_in(await web.person("admin"))
    name = code("pages")
    await svc.create_type(
        code=name,
        name_ru="Города",
        name_en="Cities",
        fields=[FieldDef(code="city", name_ru="Город", name_en="City", kind="text")],
    )
    for city in ("Астрахань", "Брянск", "Владимир"):
        await svc.create_entry(name, {"city": city})
    svc.settings.page_size = 2
    first = await client.get(f"/dictionaries/{name}?sort=city&f.city.contains=р")
    assert first.status_code == 200
    assert "Астрахань" in first.text
    assert "Брянск" in first.text
    assert "Владимир" not in first.text
    assert '<span aria-current="page">1 / 2</span>' in first.text
    link = html.unescape(re.search(r'<a href="([^"]+)" rel="next"', first.text)[1])  # type: ignore[index]
    path, _, query = link.partition("?")
    assert path == f"/dictionaries/{name}"
    assert sorted(parse_qsl(query)) == [("f.city.contains", "р"), ("page", "2"), ("sort", "city")]
    second = await client.get(link, headers={"HX-Request": "true"})
    assert second.status_code == 200
    assert "Владимир" in second.text
    assert "Брянск" not in second.text
    assert "<html" not in second.text  # the table alone, swapped into #entries
    beyond = await client.get(f"/dictionaries/{name}?page=9")
    assert beyond.status_code == 200
    assert "Астрахань" not in beyond.text
    assert 'rel="prev"' in beyond.text
    damaged = await client.get(f"/dictionaries/{name}?page=второй")
    assert damaged.status_code == 400


async def test_the_api_pages_entries_with_typed_parameters(web: Portal, svc: Dictionaries) -> None:
    client = await web.signed_in(await web.person("admin"))
    name = code("api")
    await svc.create_type(
        code=name,
        name_ru="Города",
        name_en="Cities",
        fields=[FieldDef(code="city", name_ru="Город", name_en="City", kind="text")],
    )
    for city in ("Астрахань", "Брянск", "Владимир"):
        await svc.create_entry(name, {"city": city})
    found = await client.get(f"/api/dictionaries/types/{name}/entries?sort=-city&page=2&per_page=2")
    assert found.status_code == 200, found.text
    body = found.json()
    assert body["total"] == 3
    assert [e["values"]["city"] for e in body["items"]] == ["Астрахань"]
    too_many = await client.get(f"/api/dictionaries/types/{name}/entries?per_page=100000")
    assert len(too_many.json()["items"]) == 3
    wrong = await client.get(f"/api/dictionaries/types/{name}/entries?page=x")
    assert wrong.status_code == 400
    assert wrong.json()["errors"][0]["field"] == "page"
    schema = await client.get("/api/schema/openapi.json")
    assert schema.status_code == 200
    operation = schema.json()["paths"]["/api/dictionaries/types/{code}/entries"]["get"]
    named = {p["name"] for p in operation["parameters"]}
    assert {"q", "sort", "page", "per_page"} <= named
