"""Every reference a sink writes stays inside one counterparty (issue 14, point 10).

An invoice, an order, a document's file or an answer that points at another
counterparty's object is refused by key with the reason (the integration app sets it
aside in quarantine) while the rest of its batch is applied; an object that moves to
another counterparty later leaves the links of the old one's records.
"""

from __future__ import annotations

import datetime as dt
import itertools
from decimal import Decimal
from typing import Any

import msgspec
import pytest
from shipments_support import person
from sqlalchemy import select

from kabinet.host import Host
from kabinet_shipments import models as m
from kabinet_shipments.records import (
    ContractRecord,
    DocumentLine,
    InvoiceRecord,
    OrderRecord,
    RequestAnswerRecord,
)
from kabinet_shipments.samples import ensure_counterparty
from kabinet_shipments.services import SHIPMENTS
from kabinet_shipments.sinks import (
    apply_answers,
    apply_contracts,
    apply_invoices,
    apply_orders,
)

pytestmark = pytest.mark.smoke
_orgs = itertools.count(730_001)


async def _apply(host: Host, fn: Any, records: list[Any]) -> Any:
    async with host.db.session() as s:
        return await fn(host, s, records)


async def _two(host: Host) -> tuple[str, str]:
    """Two counterparties of two organizations: A's and B's."""
    return (
        await ensure_counterparty(host, next(_orgs)),
        await ensure_counterparty(host, next(_orgs)),
    )


def _contract(cp: str, ext: str) -> ContractRecord:
    return ContractRecord(
        external_id=ext, counterparty=cp, number=f"Д-{ext}", date=dt.date(2025, 1, 1)
    )


def _order(cp: str, ext: str, **kw: Any) -> OrderRecord:
    base: dict[str, Any] = {
        "external_id": ext,
        "number": f"N-{ext}",
        "date": dt.datetime(2026, 11, 20, 10, 0),
        "counterparty": cp,
        "cost": Decimal(1000),
        "documents": (DocumentLine(kind="ТН", number="1", file=f"file-{ext}"),),
    }
    base.update(kw)
    return OrderRecord(**base)


def _invoice(cp: str, ext: str, **kw: Any) -> InvoiceRecord:
    base: dict[str, Any] = {
        "external_id": ext,
        "number": f"СЧ-{ext}",
        "date": dt.date(2026, 11, 1),
        "counterparty": cp,
        "amount": Decimal(5000),
    }
    base.update(kw)
    return InvoiceRecord(**base)


async def _invoice_row(host: Host, ext: str) -> Any:
    """The invoice as stored, with the external ids of what it links to (None: no row)."""
    async with host.db.reader() as s:
        return (
            await s.execute(
                select(
                    m.invoice.c.id,
                    m.invoice.c.digest,
                    m.order.c.external_id.label("order"),
                    m.contract.c.external_id.label("contract"),
                )
                .select_from(m.invoice)
                .outerjoin(m.order, m.order.c.id == m.invoice.c.order_id)
                .outerjoin(m.contract, m.contract.c.id == m.invoice.c.contract_id)
                .where(m.invoice.c.external_id == ext)
            )
        ).first()


async def _order_contract(host: Host, ext: str) -> str | None:
    async with host.db.reader() as s:
        return (
            await s.execute(
                select(m.contract.c.external_id)
                .select_from(m.order)
                .outerjoin(m.contract, m.contract.c.id == m.order.c.contract_id)
                .where(m.order.c.external_id == ext)
            )
        ).scalar_one_or_none()


async def test_an_invoice_pointing_at_another_counterpartys_order_or_contract_is_refused(
    host: Host,
) -> None:
    a, b = await _two(host)
    await _apply(host, apply_contracts, [_contract(a, f"ka-{a}"), _contract(b, f"kb-{b}")])
    await _apply(host, apply_orders, [_order(a, f"oa-{a}"), _order(b, f"ob-{b}")])
    good = _invoice(a, f"ia-{a}", contract=f"ka-{a}", order=f"oa-{a}")
    foreign_order = _invoice(a, f"ix-{a}", contract=f"ka-{a}", order=f"ob-{b}")
    foreign_contract = _invoice(a, f"iy-{a}", contract=f"kb-{b}")
    result = await _apply(host, apply_invoices, [good, foreign_order, foreign_contract])

    assert result.created == 1  # the rest of the batch goes through
    assert set(result.rejected) == {foreign_order.external_id, foreign_contract.external_id}
    reason = result.rejected[foreign_order.external_id]
    assert f"order 'ob-{b}'" in reason
    assert f"another counterparty: '{b}', not '{a}'" in reason  # whose it is, the invoice's
    assert f"contract 'kb-{b}'" in result.rejected[foreign_contract.external_id]
    assert await _invoice_row(host, foreign_order.external_id) is None
    assert await _invoice_row(host, foreign_contract.external_id) is None
    stored = await _invoice_row(host, good.external_id)
    assert (stored.order, stored.contract) == (f"oa-{a}", f"ka-{a}")

    # A stored invoice changed to point across is refused too: it keeps its own link.
    moved = msgspec.structs.replace(good, order=f"ob-{b}", amount=Decimal(6000))
    again = await _apply(host, apply_invoices, [moved])
    assert set(again.rejected) == {good.external_id}
    assert (await _invoice_row(host, good.external_id)).order == f"oa-{a}"


async def test_an_order_pointing_at_another_counterpartys_contract_is_refused(
    host: Host,
) -> None:
    a, b = await _two(host)
    await _apply(host, apply_contracts, [_contract(a, f"ka-{a}"), _contract(b, f"kb-{b}")])
    mine = _order(a, f"oa-{a}", contract=f"ka-{a}")
    theirs = _order(a, f"ox-{a}", contract=f"kb-{b}")
    result = await _apply(host, apply_orders, [mine, theirs])
    assert result.created == 1
    assert set(result.rejected) == {theirs.external_id}
    assert f"contract 'kb-{b}'" in result.rejected[theirs.external_id]
    assert await _order_contract(host, mine.external_id) == f"ka-{a}"
    async with host.db.reader() as s:
        found = await s.scalar(
            select(m.order.c.id).where(m.order.c.external_id == theirs.external_id)
        )
    assert found is None


async def test_an_invoice_whose_order_comes_later_is_linked_only_to_its_own_counterpartys(
    host: Host,
) -> None:
    a, b = await _two(host)
    early = _invoice(a, f"ia-{a}", order=f"oa-{a}")
    hijack = _invoice(a, f"ib-{a}", order=f"ob-{b}")
    first = await _apply(host, apply_invoices, [early, hijack])
    # Not received yet: set aside (quarantine retries it), not stored without its link.
    assert set(first.rejected) == {early.external_id, hijack.external_id}
    assert "unknown order" in first.rejected[early.external_id]
    assert await _invoice_row(host, early.external_id) is None

    await _apply(host, apply_orders, [_order(a, f"oa-{a}"), _order(b, f"ob-{b}")])
    later = await _apply(host, apply_invoices, [early, hijack])  # the retry
    assert later.created == 1
    assert set(later.rejected) == {hijack.external_id}
    assert "another counterparty" in later.rejected[hijack.external_id]
    assert (await _invoice_row(host, early.external_id)).order == f"oa-{a}"
    assert await _invoice_row(host, hijack.external_id) is None


async def test_an_order_that_moves_to_another_counterparty_leaves_the_old_ones_invoices(
    host: Host,
) -> None:
    a, b = await _two(host)
    order = _order(b, f"o-{b}")
    await _apply(host, apply_orders, [order])
    invoice = _invoice(b, f"ib-{b}", order=order.external_id)
    assert (await _apply(host, apply_invoices, [invoice])).created == 1
    assert (await _invoice_row(host, invoice.external_id)).order == order.external_id

    # 1C gives the order to A: it goes to A, and B's invoice no longer shows it.
    moved = await _apply(host, apply_orders, [msgspec.structs.replace(order, counterparty=a)])
    assert moved.updated == 1
    assert (await _invoice_row(host, invoice.external_id)).order is None
    # The same invoice received again (unchanged in 1C) is refused now, with the reason.
    again = await _apply(host, apply_invoices, [invoice])
    assert set(again.rejected) == {invoice.external_id}
    assert "another counterparty" in again.rejected[invoice.external_id]
    assert (await _invoice_row(host, invoice.external_id)).order is None


async def test_a_contract_that_moves_to_another_counterparty_leaves_the_old_ones_records(
    host: Host,
) -> None:
    a, b = await _two(host)
    contract = _contract(b, f"k-{b}")
    await _apply(host, apply_contracts, [contract])
    order = _order(b, f"o-{b}", contract=contract.external_id)
    await _apply(host, apply_orders, [order])
    invoice = _invoice(b, f"i-{b}", contract=contract.external_id, order=order.external_id)
    await _apply(host, apply_invoices, [invoice])

    await _apply(host, apply_contracts, [msgspec.structs.replace(contract, counterparty=a)])
    assert await _order_contract(host, order.external_id) is None
    stored = await _invoice_row(host, invoice.external_id)
    assert (stored.contract, stored.order) == (None, order.external_id)
    again = await _apply(host, apply_orders, [order])
    assert f"contract '{contract.external_id}'" in again.rejected[order.external_id]


async def test_a_document_file_of_another_counterpartys_order_is_refused(host: Host) -> None:
    a, b = await _two(host)
    theirs = _order(b, f"ob-{b}")
    await _apply(host, apply_orders, [theirs])
    their_file = theirs.documents[0].file
    copied = _order(a, f"oa-{a}", documents=(DocumentLine(kind="ТН", file=their_file),))
    own = _order(a, f"oc-{a}")
    result = await _apply(host, apply_orders, [copied, own])
    assert result.created == 1
    assert set(result.rejected) == {copied.external_id}
    assert f"file {their_file!r}" in result.rejected[copied.external_id]
    # The same file on two orders of one counterparty is fine.
    shared = _order(b, f"od-{b}", documents=(DocumentLine(kind="ТН", file=their_file),))
    assert (await _apply(host, apply_orders, [shared])).created == 1
    # Two counterparties claiming one file in the same batch: neither gets it.
    fresh = f"file-new-{a}"
    pair = [
        _order(a, f"oe-{a}", documents=(DocumentLine(kind="ТН", file=fresh),)),
        _order(b, f"oe-{b}", documents=(DocumentLine(kind="ТН", file=fresh),)),
    ]
    both = await _apply(host, apply_orders, pair)
    assert set(both.rejected) == {p.external_id for p in pair}
    async with host.db.reader() as s:
        holders = (
            await s.scalars(
                select(m.order.c.external_id)
                .join(m.document, m.document.c.order_id == m.order.c.id)
                .where(m.document.c.file_ref.in_([their_file, fresh]))
            )
        ).all()
    assert sorted(holders) == sorted([theirs.external_id, shared.external_id])


async def test_an_answer_naming_another_1c_request_is_refused(host: Host) -> None:
    a, _b = await _two(host)
    org = int(a.rsplit("-", 1)[1])
    order = _order(a, f"or-{a}")
    await _apply(host, apply_orders, [order])
    client = await person(host, "client", org)
    async with host.db.reader() as s:
        order_id = await s.scalar(
            select(m.order.c.id).where(m.order.c.external_id == order.external_id)
        )
    assert order_id is not None
    request_id = await host.services.of(SHIPMENTS).create_request(
        client, order_id, "edit", changes={"consignee": "АО «Восток»"}
    )
    async with host.db.session() as s:
        await s.execute(
            m.request.update().where(m.request.c.id == request_id).values(external_id="1c-req-1")
        )
        key = await s.scalar(select(m.request.c.portal_key).where(m.request.c.id == request_id))
    assert key is not None
    forged = RequestAnswerRecord(
        portal_id=key, status="rejected", answer="чужой", external_id="1c-req-2"
    )
    result = await _apply(host, apply_answers, [forged])
    assert set(result.rejected) == {key}
    async with host.db.reader() as s:
        stored = (await s.execute(select(m.request).where(m.request.c.id == request_id))).one()
    assert (stored.answer, stored.external_id) == ("", "1c-req-1")  # nothing written on it
    own = RequestAnswerRecord(
        portal_id=key, status="accepted", answer="Сделаем", external_id="1c-req-1"
    )
    assert (await _apply(host, apply_answers, [own])).updated == 1
