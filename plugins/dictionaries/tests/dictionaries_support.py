"""Helpers shared by the dictionaries tests."""

from __future__ import annotations

import uuid

from kabinet_dictionaries.kinds import Choice, FieldDef
from kabinet_dictionaries.services import Dictionaries


def code(prefix: str = "t") -> str:
    return f"{prefix}_{uuid.uuid4().hex[:10]}"


TARIFF_FIELDS = [
    FieldDef(code="route", name_ru="Маршрут", name_en="Route", kind="text", required=True),
    FieldDef(
        code="vehicle",
        name_ru="Тип ТС",
        name_en="Vehicle",
        kind="choice",
        choices=[Choice(code="tent", ru="Тент", en="Tent"), Choice(code="ref", ru="Реф", en="Ref")],
    ),
    FieldDef(code="price", name_ru="Цена", name_en="Price", kind="money", required=True),
    FieldDef(code="tons", name_ru="Тонн", name_en="Tons", kind="number", precision=1),
    FieldDef(code="since", name_ru="С", name_en="Since", kind="date"),
    FieldDef(code="active", name_ru="Действует", name_en="Active", kind="bool"),
]


async def tariffs(svc: Dictionaries) -> str:
    name = code("tariffs")
    await svc.create_type(code=name, name_ru="Тарифы", name_en="Tariffs", fields=TARIFF_FIELDS)
    return name
