"""The order sink and an order's lines: a change of the order's own fields leaves its lines
alone, a change of a line alone is applied, and an order stored with a digest of the
whole record (before the lines had their own) gets its lines checked once."""

from __future__ import annotations

import datetime as dt
import itertools
from decimal import Decimal
from typing import Any

import msgspec
import pytest
from sqlalchemy import select, update

from kabinet.host import Host
from kabinet_shipments import models as m
from kabinet_shipments.records import DocumentLine, OrderRecord, ServiceLine, VehicleLine
from kabinet_shipments.samples import ensure_counterparty
from kabinet_shipments.sinks import apply_orders

pytestmark = pytest.mark.smoke
_orgs = itertools.count(710_001)


def _order(cp: str, ext: str, **kw: Any) -> OrderRecord:
    base: dict[str, Any] = {
        "external_id": ext,
        "number": f"N-{ext}",
        "date": dt.datetime(2026, 11, 20, 10, 0),
        "counterparty": cp,
        "status": "in_progress",
        "origin": "Москва",
        "destination": "Казань",
        "cost": Decimal("150000.00"),
        "services": (ServiceLine(name="Перевозка", amount=Decimal(30000)),),
        "vehicles": (VehicleLine(kind="Тент 20 т", plate="А123ВС 77", status="В пути"),),
        "documents": (DocumentLine(kind="ТТН", number="1", file=f"file-{ext}"),),
    }
    base.update(kw)
    return OrderRecord(**base)


async def _apply(host: Host, records: list[OrderRecord]) -> Any:
    async with host.db.session() as s:
        return await apply_orders(host, s, records)


async def _stored(host: Host, ext: str) -> tuple[Any, list[tuple[Any, ...]]]:
    """The order's row and its lines (table, id, values) as stored."""
    async with host.db.reader() as s:
        row = (await s.execute(select(m.order).where(m.order.c.external_id == ext))).one()
        lines: list[tuple[Any, ...]] = []
        for table in (m.order_service, m.vehicle, m.document):
            found = await s.execute(
                select(table).where(table.c.order_id == row.id).order_by(table.c.line)
            )
            lines.extend((table.name, *r) for r in found)
    return row, lines


async def test_a_change_of_the_order_alone_leaves_its_lines_as_they_are(host: Host) -> None:
    org = next(_orgs)
    cp = await ensure_counterparty(host, org)
    first = _order(cp, f"l-{org}-1")
    await _apply(host, [first])
    _row, lines = await _stored(host, first.external_id)

    moved = msgspec.structs.replace(first, location="Тверь", cost=Decimal("151000.00"))
    result = await _apply(host, [moved])
    assert (result.updated, result.unchanged) == (1, 0)
    row, after = await _stored(host, first.external_id)
    assert (row.location, row.cost) == ("Тверь", Decimal("151000.00"))
    assert after == lines  # the same rows, ids and values

    assert (await _apply(host, [moved])).unchanged == 1


async def test_a_change_of_a_line_alone_is_applied(host: Host) -> None:
    org = next(_orgs)
    cp = await ensure_counterparty(host, org)
    first = _order(cp, f"l-{org}-1")
    await _apply(host, [first])
    arrived = msgspec.structs.replace(
        first, vehicles=(msgspec.structs.replace(first.vehicles[0], status="Прибыл"),)
    )
    result = await _apply(host, [arrived])
    assert result.updated == 1
    _row, lines = await _stored(host, first.external_id)
    vehicles = [line for line in lines if line[0] == m.vehicle.name]
    assert len(vehicles) == 1
    assert "Прибыл" in vehicles[0]
    assert (await _apply(host, [arrived])).unchanged == 1


async def test_an_order_stored_with_a_whole_record_digest_gets_its_lines_checked(
    host: Host,
) -> None:
    org = next(_orgs)
    cp = await ensure_counterparty(host, org)
    first = _order(cp, f"l-{org}-1")
    await _apply(host, [first])
    async with host.db.session() as s:
        # As an older portal stored it: one digest of the whole record, and a line that
        # since differs from what the production system sends.
        order_id = await s.scalar(
            select(m.order.c.id).where(m.order.c.external_id == first.external_id)
        )
        await s.execute(
            update(m.order).where(m.order.c.id == order_id).values(digest=first.digest())
        )
        await s.execute(
            update(m.vehicle).where(m.vehicle.c.order_id == order_id).values(status="?")
        )
    result = await _apply(host, [first])
    assert result.updated == 1
    _row, lines = await _stored(host, first.external_id)
    assert any(line[0] == m.vehicle.name and "В пути" in line for line in lines)
    assert (await _apply(host, [first])).unchanged == 1
