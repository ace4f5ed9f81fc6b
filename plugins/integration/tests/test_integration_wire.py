"""The fast path (1C JSON decoded straight into the sinks' structs) against the general one
(JSON to dicts, mapped, converted): the same record for every object, and a fallback to
the general path, which gives the reason, for every object the general path refuses."""

from __future__ import annotations

import json
from typing import Any

import msgspec
import pytest

from kabinet.host import Host
from kabinet_integration import models as m
from kabinet_integration.mapping import SETS, Fallback, MappingError, decode, finish
from kabinet_integration.sync import integration
from kabinet_integration_testing import EMPTY, Generated, OneCServer, select_fields

pytestmark = pytest.mark.smoke
ORDERS = "Document_ЗаявкаНаПеревозку"

BROKEN: list[dict[str, Any]] = [
    {"Статус": "Потеряна"},  # an unknown status value
    {"Контрагент_Key": EMPTY},  # an empty reference where one is required
    {"Date": "0001-01-01T00:00:00"},  # an empty date where one is required
    {"ГрузМест": "много"},  # not a number
    {"ДатаПогрузки": "2025-13-01T00:00:00"},  # no such date
    {"Стоимость": None},
    {"ДатаПогрузки": 20250201},
]
FINE: list[dict[str, Any]] = [
    {"Договор_Key": "", "Документы": None, "ДатаДоставкиФакт": None},
    {"ДислокацияДата": "0001-01-01T00:00:00", "Дислокация": ""},
    {"ГрузМест": 12, "Стоимость": 1500, "ГрузВес": "1250.5"},
]


def general(plan: Any, raw: bytes) -> Any:
    try:
        return decode(plan, json.loads(raw))
    except MappingError as exc:
        return ("refused", str(exc))


def fast(plan: Any, raw: bytes) -> Any:
    try:
        return finish(plan.wire, plan.wire.decoder.decode(raw))
    except (Fallback, msgspec.ValidationError):
        return None  # falls back to the general path


async def test_the_fast_path_gives_what_the_general_path_gives(
    host: Host, onec: OneCServer, generated: Generated
) -> None:
    orders = [onec.data.get(ORDERS, ref) or {} for ref in generated.orders]
    for order, change in zip(orders, [*BROKEN, *FINE], strict=False):
        onec.data.put(ORDERS, {**order, **change})
    plans = await integration(host).plans(integration(host).source("onec"))
    compared = fell_back = 0
    for entity in ("counterparty", "contract", "order", "invoice"):
        plan = plans[entity]
        assert plan.wire is not None, entity  # the reference configuration has one
        for obj in onec.data.sets[SETS[entity]].values():
            raw = json.dumps(select_fields(obj, None), ensure_ascii=False).encode()
            expected, got = general(plan, raw), fast(plan, raw)
            if got is None:
                fell_back += 1
                assert isinstance(expected, tuple), (entity, expected)
            else:
                compared += 1
                assert got == expected
                wire = plan.wire.decoder.decode(raw)
                assert getattr(wire, plan.wire.ref) == obj["Ref_Key"]
                assert getattr(wire, plan.wire.version) == obj["DataVersion"]
    assert fell_back == len(BROKEN)
    assert compared == 3 + 3 + 12 + 6 - len(BROKEN)


async def test_a_refused_record_keeps_its_object_as_1c_sent_it(
    host: Host, onec: OneCServer, generated: Generated
) -> None:
    """Fetched on the fast path, refused: quarantined with every field 1C sent."""
    order = onec.data.get(ORDERS, generated.orders[0]) or {}
    onec.data.put(ORDERS, {**order, "Статус": "Потеряна"})
    out = await integration(host).run("onec")
    assert out.state == "succeeded", out.error
    async with host.db.reader() as s:
        rows = {r.entity: r for r in await s.execute(m.quarantine.select())}
    row = rows["order"]
    assert row.ref == generated.orders[0]
    # Its invoice waits for it (an invoice is linked only to an order received and checked).
    assert set(rows) == {"order", "invoice"}
    assert f"unknown order {generated.orders[0]!r}" in rows["invoice"].reason
    assert "Потеряна" in row.reason
    assert row.payload["Статус"] == "Потеряна"
    assert row.payload["Posted"] is True  # a field no sink takes: the object as sent
    assert row.payload["Услуги"][0]["Услуга"] == "Перевозка"
