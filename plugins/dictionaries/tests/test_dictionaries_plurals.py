"""Counts with their noun in the person's language, by Babel's plural forms (issue 16,
point 8): "6 полей", "2 записи", "1 запись", never "6 поля" or "2 записей"."""

from __future__ import annotations

import html
import re
from collections.abc import AsyncIterator

import httpx
import pytest
from dictionaries_support import TARIFF_FIELDS, code

from kabinet.host import Host
from kabinet.pages import CSRF_COOKIE
from kabinet.routematrix import RouteMatrix
from kabinet.web import build_app
from kabinet_dictionaries.services import Dictionaries

pytestmark = pytest.mark.smoke

ROW = {"route": "Москва — Тверь", "vehicle": "tent", "price": "15000"}


@pytest.fixture
async def admin_client(host: Host) -> AsyncIterator[tuple[httpx.AsyncClient, str]]:
    app = await build_app(host)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1:8000") as client:
        matrix = RouteMatrix(host, app, client)
        person = await matrix.person("admin")
        await host.services["roles"].grant(person, "admin", None)
        cookie = await matrix.session(person)
        token = await matrix.csrf(cookie)
        yield client, f"{cookie}; {CSRF_COOKIE}={token}"


def _text(page: str) -> str:
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", page)).split())


@pytest.mark.parametrize(
    ("lang", "entries", "fields_said", "entries_said"),
    [
        ("ru", 2, "6 полей", "2 записи"),
        ("ru", 1, "6 полей", "1 запись"),
        ("ru", 5, "6 полей", "5 записей"),
        ("en", 1, "6 fields", "1 entry"),
        ("en", 2, "6 fields", "2 entries"),
    ],
)
async def test_counts_take_the_plural_form_of_their_number(
    admin_client: tuple[httpx.AsyncClient, str],
    svc: Dictionaries,
    lang: str,
    entries: int,
    fields_said: str,
    entries_said: str,
) -> None:
    client, cookie = admin_client
    name = code("plural")
    await svc.create_type(code=name, name_ru="Тарифы", name_en="Tariffs", fields=TARIFF_FIELDS)
    assert len(TARIFF_FIELDS) == 6
    for _ in range(entries):
        await svc.create_entry(name, ROW)
    headers = {"Cookie": f"{cookie}; kabinet_lang={lang}", "Accept-Language": lang}
    index = _text((await client.get("/dictionaries/", headers=headers)).text)
    assert fields_said in index
    listed = _text((await client.get(f"/dictionaries/{name}", headers=headers)).text)
    assert entries_said in listed
    structure = _text((await client.get(f"/dictionaries/{name}/structure", headers=headers)).text)
    assert entries_said in structure


async def test_a_bad_default_is_refused_on_the_default_field_in_the_persons_language(
    svc: Dictionaries,
) -> None:
    """An admin defining a field reads why its default is refused in their language, on
    that field ("Значение по умолчанию: Введите число."), never the English of a parser."""
    from kabinet_dictionaries.errors import DictionaryError
    from kabinet_dictionaries.kinds import FieldDef

    name = code("defaults")
    await svc.create_type(code=name, name_ru="Тарифы", name_en="Tariffs", fields=TARIFF_FIELDS)
    for spec, ru, en in (
        (
            FieldDef(code="load_t", name_ru="Тонн", name_en="Tons", kind="number", default="много"),
            "Значение по умолчанию: Введите число.",
            "The default: Enter a number.",
        ),
        (
            FieldDef(
                code="start_day", name_ru="День", name_en="Day", kind="date", default="32.13.2026"
            ),
            "Значение по умолчанию: Введите дату (ГГГГ-ММ-ДД или ДД.ММ.ГГГГ).",
            "The default: Enter a date (YYYY-MM-DD).",
        ),
        (
            FieldDef(
                code="next_tariff", name_ru="Следующий", name_en="Next", kind="reference",
                reference=name, default="999999",
            ),
            f"Значение по умолчанию: Нет такой записи в справочнике «{name}».",
            f"The default: No such entry in “{name}”.",
        ),
    ):  # fmt: skip
        with pytest.raises(DictionaryError) as refused:
            await svc.add_field(name, spec)
        assert refused.value.field == "default"
        assert refused.value.text("ru") == ru
        assert refused.value.english() == en
