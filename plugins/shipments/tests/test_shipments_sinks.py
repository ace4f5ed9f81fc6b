"""The entity sinks: bulk, idempotent, events once per real change, status history."""

from __future__ import annotations

import datetime as dt
import itertools
import uuid
from decimal import Decimal
from typing import Any

import msgspec
import pytest
from shipments_support import person
from sqlalchemy import func, select, update

from kabinet import models as host_models
from kabinet.clock import FrozenClock
from kabinet.host import Host
from kabinet_shipments import events as ev
from kabinet_shipments import models as m
from kabinet_shipments.demo import generate
from kabinet_shipments.records import (
    BalanceRecord,
    ContractRecord,
    DocumentLine,
    InvoiceRecord,
    OrderRecord,
    RequestAnswerRecord,
    ServiceLine,
    VehicleLine,
)
from kabinet_shipments.samples import ensure_counterparty
from kabinet_shipments.services import SHIPMENTS
from kabinet_shipments.sinks import (
    apply_answers,
    apply_balances,
    apply_contracts,
    apply_invoices,
    apply_orders,
)

pytestmark = pytest.mark.smoke
_orgs = itertools.count(700_001)


async def _events(host: Host, type_: str) -> list[dict[str, Any]]:
    async with host.db.session() as s:
        rows = await s.execute(
            select(host_models.event.c.payload)
            .where(host_models.event.c.type == type_)
            .order_by(host_models.event.c.id)
        )
        return [dict(r.payload) for r in rows]


async def _count(host: Host, table: Any) -> int:
    async with host.db.session() as s:
        return int(await s.scalar(select(func.count()).select_from(table)) or 0)


def _order(cp: str, ext: str, **kw: Any) -> OrderRecord:
    base: dict[str, Any] = {
        "external_id": ext,
        "number": f"N-{ext}",
        "date": dt.datetime(2026, 11, 20, 10, 0),
        "counterparty": cp,
        "status": "registered",
        "origin": "Москва",
        "destination": "Казань",
        "cost": Decimal("150000.00"),
        "services": (ServiceLine(name="Страхование", amount=Decimal(3000)),),
        "vehicles": (VehicleLine(kind="Тент 20 т", plate="А123ВС 77", driver="Иванов"),),
        "documents": (DocumentLine(kind="ТН", number="1", file=f"file-{ext}"),),
    }
    base.update(kw)
    return OrderRecord(**base)


async def _apply(host: Host, fn: Any, records: list[Any]) -> Any:
    async with host.db.session() as s:
        return await fn(host, s, records)


async def test_orders_are_applied_idempotently_with_their_lines(host: Host) -> None:
    org = next(_orgs)
    cp = await ensure_counterparty(host, org)
    first = _order(cp, f"o-{org}-1")
    result = await _apply(host, apply_orders, [first, _order(cp, f"o-{org}-2")])
    assert (result.created, result.updated, result.unchanged) == (2, 0, 0)
    lines_before = [await _count(host, t) for t in (m.order_service, m.vehicle, m.document)]

    again = await _apply(host, apply_orders, [first, _order(cp, f"o-{org}-2")])
    assert (again.created, again.updated, again.unchanged) == (0, 0, 2)
    assert [await _count(host, t) for t in (m.order_service, m.vehicle, m.document)] == lines_before

    async with host.db.session() as s:
        order_id = await s.scalar(
            select(m.order.c.id).where(m.order.c.external_id == first.external_id)
        )
        kept_vehicle = await s.scalar(
            select(m.vehicle.c.id).where(m.vehicle.c.order_id == order_id, m.vehicle.c.line == 1)
        )
        await s.execute(
            update(m.document)
            .where(m.document.c.order_id == order_id)
            .values(requested_at=host.clock.now())
        )
    moved = msgspec.structs.replace(
        first,
        location="Чебоксары",
        vehicles=(first.vehicles[0], VehicleLine(kind="Трал", plate="В456ОР 78")),
        services=(),
    )
    changed = await _apply(host, apply_orders, [moved])
    assert (changed.created, changed.updated, changed.unchanged) == (0, 1, 0)
    async with host.db.session() as s:
        row = (
            await s.execute(select(m.order).where(m.order.c.external_id == first.external_id))
        ).one()
        plates = (
            await s.scalars(
                select(m.vehicle.c.plate)
                .where(m.vehicle.c.order_id == row.id)
                .order_by(m.vehicle.c.line)
            )
        ).all()
        services = await s.scalar(
            select(func.count())
            .select_from(m.order_service)
            .where(m.order_service.c.order_id == row.id)
        )
        vehicle_ids = (
            await s.scalars(select(m.vehicle.c.id).where(m.vehicle.c.order_id == row.id))
        ).all()
        requested = (
            await s.scalars(
                select(m.document.c.requested_at).where(m.document.c.order_id == row.id)
            )
        ).all()
    assert row.location == "Чебоксары"
    assert plates == ["А123ВС 77", "В456ОР 78"]
    assert services == 0
    assert kept_vehicle in vehicle_ids  # an unchanged line is not rewritten
    assert requested  # documents keep requested_at
    assert all(at is not None for at in requested)


async def test_status_changes_are_recorded_and_published_once(
    host: Host, clock: FrozenClock
) -> None:
    org = next(_orgs)
    cp = await ensure_counterparty(host, org)
    record = _order(cp, f"s-{org}")
    await _apply(host, apply_orders, [record])
    before = len(await _events(host, "shipments.order.status_changed"))
    clock.advance(minutes=20)
    working = msgspec.structs.replace(record, status="in_progress")
    await _apply(host, apply_orders, [working])
    await _apply(host, apply_orders, [working])  # the same delta again: no second event
    clock.advance(minutes=20)
    done = msgspec.structs.replace(
        working, status="done", delivery_actual=dt.datetime(2026, 11, 25, 1, 10)
    )
    await _apply(host, apply_orders, [done])

    changed = [
        e
        for e in await _events(host, "shipments.order.status_changed")
        if e["organization_id"] == org
    ]
    assert len(await _events(host, "shipments.order.status_changed")) == before + 2
    assert [(e["previous"], e["status"]) for e in changed] == [
        ("registered", "in_progress"),
        ("in_progress", "done"),
    ]
    delivered = [
        e for e in await _events(host, "shipments.order.delivered") if e["organization_id"] == org
    ]
    assert [e["delivered_on"] for e in delivered] == ["2026-11-25"]
    async with host.db.session() as s:
        history = (
            await s.execute(
                select(m.status_change.c.status, m.status_change.c.received_at)
                .join(m.order, m.order.c.id == m.status_change.c.order_id)
                .where(m.order.c.external_id == record.external_id)
                .order_by(m.status_change.c.id)
            )
        ).all()
    assert [h.status for h in history] == ["registered", "in_progress", "done"]
    times = [
        h.received_at.replace(tzinfo=dt.UTC) if h.received_at.tzinfo is None else h.received_at
        for h in history
    ]
    assert times[2] - times[0] == dt.timedelta(minutes=40)


async def test_deleted_is_hidden_and_unknown_references_are_refused(host: Host) -> None:
    org = next(_orgs)
    cp = await ensure_counterparty(host, org)
    record = _order(cp, f"d-{org}")
    await _apply(host, apply_orders, [record])
    result = await _apply(
        host,
        apply_orders,
        [
            msgspec.structs.replace(record, deleted=True),
            _order("no-such-counterparty", f"x-{org}"),
            _order(cp, f"y-{org}", contract="no-such-contract"),
        ],
    )
    assert result.hidden == 1
    assert set(result.rejected) == {f"x-{org}", f"y-{org}"}
    assert "counterparty" in result.rejected[f"x-{org}"]
    async with host.db.session() as s:
        hidden = await s.scalar(
            select(m.order.c.hidden).where(m.order.c.external_id == record.external_id)
        )
        missing = await s.scalar(
            select(func.count()).select_from(m.order).where(m.order.c.external_id == f"x-{org}")
        )
    assert hidden is True
    assert missing == 0


async def test_orders_and_invoices_refuse_unknown_references_in_the_same_words(
    host: Host,
) -> None:
    """Both sinks read the counterparties and contracts a batch names through one helper:
    an unknown counterparty or contract is refused with the same reason by either."""
    org = next(_orgs)
    cp = await ensure_counterparty(host, org)
    contract = ContractRecord(
        external_id=f"rc-{org}", counterparty=cp, number="Д-2", date=dt.date(2025, 1, 1)
    )
    await _apply(host, apply_contracts, [contract])

    def invoice(ext: str, party: str, contract_key: str | None) -> InvoiceRecord:
        return InvoiceRecord(
            external_id=ext,
            number=f"СЧ-{ext}",
            date=dt.date(2026, 11, 1),
            counterparty=party,
            contract=contract_key,
            amount=Decimal(1000),
        )

    orders = await _apply(
        host,
        apply_orders,
        [
            _order("nobody", f"ro1-{org}"),
            _order(cp, f"ro2-{org}", contract="nothing"),
            _order(cp, f"ro3-{org}", contract=contract.external_id),
        ],
    )
    invoices = await _apply(
        host,
        apply_invoices,
        [
            invoice(f"ri1-{org}", "nobody", None),
            invoice(f"ri2-{org}", cp, "nothing"),
            invoice(f"ri3-{org}", cp, contract.external_id),
        ],
    )
    assert (orders.created, invoices.created) == (1, 1)
    expected = ["unknown counterparty 'nobody'", "unknown contract 'nothing'"]
    assert [orders.rejected[f"ro{n}-{org}"] for n in (1, 2)] == expected
    assert [invoices.rejected[f"ri{n}-{org}"] for n in (1, 2)] == expected
    async with host.db.session() as s:
        linked = (
            await s.execute(
                select(m.invoice.c.contract_id, m.contract.c.external_id)
                .join(m.contract, m.contract.c.id == m.invoice.c.contract_id)
                .where(m.invoice.c.external_id == f"ri3-{org}")
            )
        ).one()
    assert linked.external_id == contract.external_id


async def test_invoices_contracts_balances_and_answers(host: Host, clock: FrozenClock) -> None:
    org = next(_orgs)
    cp = await ensure_counterparty(host, org)
    contract = ContractRecord(
        external_id=f"c-{org}", counterparty=cp, number="Д-1", date=dt.date(2025, 1, 1)
    )
    assert (await _apply(host, apply_contracts, [contract])).created == 1
    assert (await _apply(host, apply_contracts, [contract])).unchanged == 1
    invoice = InvoiceRecord(
        external_id=f"i-{org}",
        number="СЧ-1",
        date=dt.date(2026, 11, 1),
        counterparty=cp,
        contract=contract.external_id,
        amount=Decimal(100_000),
        due_date=dt.date(2026, 11, 30),
    )
    await _apply(host, apply_invoices, [invoice])
    await _apply(host, apply_invoices, [invoice])
    paid = msgspec.structs.replace(invoice, paid=Decimal(40_000), payment_status="part_paid")
    assert (await _apply(host, apply_invoices, [paid])).updated == 1
    created = [
        e for e in await _events(host, "shipments.invoice.created") if e["organization_id"] == org
    ]
    assert [e["number"] for e in created] == ["СЧ-1"]

    balance = BalanceRecord(
        contract=contract.external_id,
        balance=Decimal("12345.67"),
        at=dt.datetime(2026, 11, 25, 11, 0),
    )
    assert (await _apply(host, apply_balances, [balance])).updated == 1
    assert (await _apply(host, apply_balances, [balance])).unchanged == 1
    async with host.db.session() as s:
        row = (
            await s.execute(
                select(m.contract).where(m.contract.c.external_id == contract.external_id)
            )
        ).one()
    assert row.balance == Decimal("12345.67")
    at = row.balance_at if row.balance_at.tzinfo else row.balance_at.replace(tzinfo=dt.UTC)
    assert at == dt.datetime(2026, 11, 25, 8, 0, tzinfo=dt.UTC)  # 11:00 in Moscow

    order = _order(cp, f"r-{org}")
    await _apply(host, apply_orders, [order])
    client = await person(host, "client", org)
    async with host.db.session() as s:
        order_id = await s.scalar(
            select(m.order.c.id).where(m.order.c.external_id == order.external_id)
        )
    assert order_id is not None
    request_id = await host.services.of(SHIPMENTS).create_request(
        client, order_id, "edit", changes={"consignee": "АО «Восток»"}
    )
    async with host.db.session() as s:
        key = await s.scalar(select(m.request.c.portal_key).where(m.request.c.id == request_id))
    assert key is not None
    # 1C knows the request by its key (a UUID), not by its row id, which every portal
    # writing to the same 1C has too; another portal's key is none of this one's business.
    by_id = RequestAnswerRecord(portal_id=str(request_id), status="rejected", answer="чужой")
    others = RequestAnswerRecord(portal_id=str(uuid.uuid4()), status="rejected", answer="чужой")
    result = await _apply(host, apply_answers, [by_id, others])
    assert (result.updated, set(result.rejected)) == (0, {str(request_id)})
    answer = RequestAnswerRecord(portal_id=key, status="accepted", answer="Сделаем")
    assert (await _apply(host, apply_answers, [answer])).updated == 1
    assert (await _apply(host, apply_answers, [answer])).unchanged == 1
    answered = [
        e
        for e in await _events(host, "shipments.request.answered")
        if e["request_id"] == request_id
    ]
    assert [(e["status"], e["person_id"], e["answer"]) for e in answered] == [
        ("accepted", client.person_id, "Сделаем")
    ]


async def test_generated_data_is_realistic_and_loads_through_the_sinks(host: Host) -> None:
    org = next(_orgs)
    cp = await ensure_counterparty(host, org)
    batch = generate([cp], 40, dt.date(2026, 11, 25), seed=3, prefix=f"G{org}")
    assert {o.status for o in batch.orders} >= {"registered", "in_progress", "done"}
    assert {i.payment_status for i in batch.invoices} == {"paid", "part_paid", "unpaid"}
    assert all(o.origin != o.destination for o in batch.orders)
    assert all(v.plate for o in batch.orders for v in o.vehicles)
    async with host.db.session() as s:
        await apply_contracts(host, s, batch.contracts)
        orders = await apply_orders(host, s, batch.orders)
        invoices = await apply_invoices(host, s, batch.invoices)
    assert (orders.created, invoices.created) == (40, len(batch.invoices))
    async with host.db.session() as s:
        again = await apply_orders(host, s, batch.orders)
    assert again.unchanged == 40


async def test_the_demos_history_tells_nobody(host: Host) -> None:
    # The demo loads history, like a first load from 1C: every event it publishes says
    # nobody is to be told, so starting the demo floods no client with old invoices.
    from kabinet_shipments.demo import apply

    org = next(_orgs)
    cp = await ensure_counterparty(host, org)
    batch = generate([cp], 12, dt.date(2026, 11, 25), seed=5, prefix=f"Q{org}")
    await apply(host, batch)
    created = [e for e in await _events(host, ev.INVOICE_CREATED) if e["organization_id"] == org]
    assert len(created) == len(batch.invoices)
    assert {e["notify"] for e in created} == {False}
