"""A dictionary exported from its page is written for the person who asked (issue 16,
point 8): the fields' names as headers and choice labels in their language, dates and
times in their format and time zone (not UTC), numbers as numbers; and the file imports
back unchanged. The API's export stays codes and UTC, for machines."""

from __future__ import annotations

import csv
import datetime as dt
import io

import pytest
from dictionaries_support import TARIFF_FIELDS, code
from openpyxl import load_workbook

from kabinet.testing import Person, Portal
from kabinet_dictionaries.kinds import FieldDef
from kabinet_dictionaries.services import Dictionaries

pytestmark = pytest.mark.smoke

FIELDS = [
    *TARIFF_FIELDS,
    FieldDef(code="checked_at", name_ru="Проверено", name_en="Checked", kind="datetime"),
]
ROW = {
    "route": "Москва — Тверь",
    "vehicle": "tent",
    "price": "15000.50",
    "since": "2026-03-01",
    "active": "да",
    "checked_at": "2026-12-06T20:00:00+00:00",  # 7 December, 06:00 in Vladivostok
}


@pytest.fixture
async def admin(web: Portal) -> Person:
    """An admin living in Vladivostok (UTC+10)."""
    return await web.person("admin", name="Администратор", timezone="Asia/Vladivostok")


@pytest.mark.parametrize(
    ("lang", "headers", "row"),
    [
        (
            "ru",
            ["№", "Маршрут", "Тип ТС", "Цена", "Тонн", "С", "Действует", "Проверено"],
            ["Москва — Тверь", "Тент", "15000,50", "", "01.03.2026", "да", "07.12.2026 06:00"],
        ),
        (
            "en",
            ["ID", "Route", "Vehicle", "Price", "Tons", "Since", "Active", "Checked"],
            ["Москва — Тверь", "Tent", "15000.50", "", "2026-03-01", "yes", "2026-12-07 06:00"],
        ),
    ],
    ids=["ru", "en"],
)
async def test_a_page_export_is_in_the_persons_language_and_zone_and_imports_back(
    web: Portal,
    admin: Person,
    svc: Dictionaries,
    lang: str,
    headers: list[str],
    row: list[str],
) -> None:
    client = await web.signed_in(admin, language=lang)
    name = code("readable")
    await svc.create_type(code=name, name_ru="Тарифы", name_en="Tariffs", fields=FIELDS)
    entry = await svc.create_entry(name, ROW)

    answer = await client.get(f"/dictionaries/{name}/export?format=csv")
    assert answer.status_code == 200
    table = list(csv.reader(io.StringIO(answer.content.decode("utf-8-sig")), delimiter=";"))
    assert table[0] == headers
    assert table[1] == [str(entry.id), *row]

    answer = await client.get(f"/dictionaries/{name}/export?format=xlsx")
    sheet = load_workbook(io.BytesIO(answer.content)).worksheets[0]
    cells = list(sheet.iter_rows(values_only=True))
    assert list(cells[0]) == headers
    values = dict(zip(headers, cells[1], strict=True))
    assert values[headers[-1]] == dt.datetime(2026, 12, 7, 6, 0)  # the reader's time
    assert values[headers[3]] == 15000.5  # a number

    # Each file imports back as it is, read in the same person's zone: nothing changes.
    for data in (answer.content, "\n".join(";".join(r) for r in table).encode()):
        report = await svc.import_table(name, data, language=lang, timezone="Asia/Vladivostok")
        assert (report.updated, report.unchanged, report.failed) == (0, 1, [])


async def test_the_api_export_stays_codes_and_utc(svc: Dictionaries) -> None:
    name = code("machine")
    await svc.create_type(code=name, name_ru="Тарифы", name_en="Tariffs", fields=FIELDS)
    await svc.create_entry(name, ROW)
    text = (await svc.export_table(name, "csv", language="en")).decode("utf-8-sig")
    head, first = text.splitlines()[:2]
    assert head == "id;route;vehicle;price;tons;since;active;checked_at"
    assert first.endswith(";tent;15000.50;;2026-03-01;yes;2026-12-06T20:00:00+00:00")
