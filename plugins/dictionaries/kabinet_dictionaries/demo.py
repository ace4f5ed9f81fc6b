"""Demo data: "Тарифы", "Пункты погрузки" and a small document library (idempotent)."""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING

from kabinet_dictionaries.documents import DocumentMeta
from kabinet_dictionaries.errors import NotFound
from kabinet_dictionaries.kinds import Choice, FieldDef
from kabinet_dictionaries.services import DICTIONARIES, Dictionaries

if TYPE_CHECKING:
    from kabinet.host import Host

VEHICLES = [
    Choice(code="tent", ru="Тент 20 т", en="Curtain-side 20 t"),
    Choice(code="ref", ru="Рефрижератор", en="Refrigerated"),
    Choice(code="van", ru="Фургон 5 т", en="Van 5 t"),
]
TARIFFS = [
    ("Москва — Санкт-Петербург", "tent", "62000.00"),
    ("Москва — Санкт-Петербург", "ref", "71500.00"),
    ("Москва — Казань", "tent", "58000.00"),
    ("Москва — Казань", "van", "31000.00"),
    ("Москва — Екатеринбург", "tent", "118000.00"),
    ("Санкт-Петербург — Новгород", "van", "14500.00"),
]
POINTS = [
    ("Склад «Север»", "Москва, Дмитровское ш., 157", "пн–пт 08:00–20:00", True),
    ("Терминал «Шушары»", "Санкт-Петербург, Московское ш., 44", "круглосуточно", True),
    ("Склад «Восток»", "Казань, ул. Тэцевская, 6", "пн–сб 09:00–18:00", False),
]
PDF = (
    b"%PDF-1.4\n1 0 obj<</Type/Catalog/Pages 2 0 R>>endobj\n"
    b"2 0 obj<</Type/Pages/Kids[]/Count 0>>endobj\ntrailer<</Root 1 0 R>>\n%%EOF\n"
)


async def load(host: Host) -> None:
    svc: Dictionaries = host.services.find(DICTIONARIES) or Dictionaries(host)
    try:
        await svc.get_type("tariffs")
    except NotFound:
        await svc.create_type(
            code="tariffs",
            name_ru="Тарифы",
            name_en="Tariffs",
            fields=[
                FieldDef(
                    code="route", name_ru="Маршрут", name_en="Route", kind="text", required=True
                ),
                FieldDef(
                    code="vehicle",
                    name_ru="Тип ТС",
                    name_en="Vehicle type",
                    kind="choice",
                    required=True,
                    choices=VEHICLES,
                ),
                FieldDef(
                    code="price", name_ru="Цена", name_en="Price", kind="money", required=True
                ),
                FieldDef(
                    code="valid_from", name_ru="Действует с", name_en="Valid from", kind="date"
                ),
            ],
        )
        await svc.set_publication("tariffs", "all")
        for route, vehicle, price in TARIFFS:
            await svc.create_entry(
                "tariffs",
                {"route": route, "vehicle": vehicle, "price": price, "valid_from": "2026-01-01"},
            )
    try:
        await svc.get_type("loading_points")
    except NotFound:
        await svc.create_type(
            code="loading_points",
            name_ru="Пункты погрузки",
            name_en="Loading points",
            fields=[
                FieldDef(
                    code="name",
                    name_ru="Название",
                    name_en="Name",
                    kind="text",
                    required=True,
                    unique=True,
                ),
                FieldDef(
                    code="address", name_ru="Адрес", name_en="Address", kind="text", required=True
                ),
                FieldDef(code="hours", name_ru="Часы работы", name_en="Hours", kind="text"),
                FieldDef(
                    code="ramp",
                    name_ru="Есть рампа",
                    name_en="Loading ramp",
                    kind="bool",
                    default="да",
                ),
            ],
        )
        await svc.set_publication("loading_points", "all")
        for name, address, hours, ramp in POINTS:
            await svc.create_entry(
                "loading_points", {"name": name, "address": address, "hours": hours, "ramp": ramp}
            )
    if not await svc.documents():
        today = host.clock.now().date()
        for title, kind, number in (
            ("Прайс-лист на перевозки 2026", "Прайс-лист", "ПЛ-2026"),
            ("Типовой договор перевозки", "Шаблон договора", "ДП-01"),
            ("Инструкция по заполнению заявки", "Инструкция", ""),
        ):
            await svc.create_document(
                DocumentMeta(
                    title=title,
                    kind=kind,
                    number=number,
                    date=today,
                    valid_from=dt.date(today.year, 1, 1),
                ),
                f"{number or 'instruction'}.pdf",
                PDF,
            )
