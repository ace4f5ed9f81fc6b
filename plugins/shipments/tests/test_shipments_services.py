"""Services without HTTP: the debt formula, the registry, requests, and who sees what; the
services published under the typed keys of the public module."""

from __future__ import annotations

import datetime as dt
import itertools
from decimal import Decimal
from typing import Any

import msgspec
import pytest
from shipments_support import person
from sqlalchemy import select, update

from kabinet.clock import FrozenClock
from kabinet.host import Host
from kabinet_shipments import models as m
from kabinet_shipments import services
from kabinet_shipments.exports import Exports
from kabinet_shipments.finance import Finance
from kabinet_shipments.records import ContractRecord, InvoiceRecord, OrderRecord
from kabinet_shipments.registry import QueryError
from kabinet_shipments.samples import ensure_counterparty, make_order
from kabinet_shipments.services import (
    EXPORTS,
    FINANCE,
    SHIPMENTS,
    NotFound,
    RequestRefused,
    ShipmentsService,
    file_key,
)
from kabinet_shipments.sinks import apply_contracts, apply_invoices, apply_orders

pytestmark = pytest.mark.smoke
_orgs = itertools.count(800_001)


async def _invoices(host: Host, cp: str, contract: str, rows: list[tuple[Any, ...]]) -> None:
    records = [
        InvoiceRecord(
            external_id=f"{contract}-{n}",
            number=f"СЧ-{n}",
            date=date,
            counterparty=cp,
            contract=contract,
            amount=Decimal(amount),
            paid=Decimal(paid),
            due_date=due,
            payment_status="paid" if paid == amount else ("part_paid" if paid else "unpaid"),
        )
        for n, (date, amount, paid, due) in enumerate(rows)
    ]
    async with host.db.session() as s:
        await apply_contracts(
            host,
            s,
            [
                ContractRecord(
                    external_id=contract, counterparty=cp, number=contract, date=dt.date(2025, 1, 1)
                )
            ],
        )
        await apply_invoices(host, s, records)


async def test_debt_for_the_period_is_the_example_of_the_issue(host: Host) -> None:
    """On 25 November: 1 Nov 100 000 paid 40 000, 10 Nov 50 000 unpaid, 20 Oct 30 000
    unpaid due 30 Oct give 110 000 for the period and 30 000 overdue."""
    org = next(_orgs)
    cp = await ensure_counterparty(host, org)
    nov, oct_ = dt.date(2026, 11, 1), dt.date(2026, 10, 20)
    await _invoices(
        host,
        cp,
        f"debt-{org}",
        [
            (nov, 100_000, 40_000, dt.date(2026, 11, 30)),
            (dt.date(2026, 11, 10), 50_000, 0, dt.date(2026, 11, 20)),
            (oct_, 30_000, 0, dt.date(2026, 10, 30)),
            (dt.date(2026, 10, 5), 20_000, 20_000, dt.date(2026, 10, 15)),  # paid: no debt
            (dt.date(2026, 10, 25), 7_000, 0, dt.date(2026, 11, 30)),  # before, not yet due
        ],
    )
    client = await person(host, "client", org)
    debt = await host.services.of(FINANCE).debt(client)
    assert (debt.start, debt.end) == (dt.date(2026, 11, 1), dt.date(2026, 11, 25))
    assert debt.period == Decimal("110000.00")
    assert debt.overdue == Decimal("30000.00")
    assert [(r.number, r.period, r.overdue) for r in debt.rows] == [
        (f"debt-{org}", Decimal("110000.00"), Decimal("30000.00"))
    ]
    # Another period: October alone holds the 20 Oct and 25 Oct invoices' remainders.
    october = await host.services.of(FINANCE).debt(
        client, dt.date(2026, 10, 1), dt.date(2026, 10, 31)
    )
    assert october.period == Decimal("37000.00")
    # A client of another organization sees none of it.
    other = await person(host, "client", next(_orgs))
    assert (await host.services.of(FINANCE).debt(other)).rows == []


async def _orders(host: Host, org: int, n: int) -> str:
    cp = await ensure_counterparty(host, org)
    statuses = ["registered", "in_progress", "done", "cancelled"]
    records = [
        OrderRecord(
            external_id=f"reg-{org}-{k}",
            number=f"R{org}-{k:04d}",
            date=dt.datetime(2026, 10, 1, 12) + dt.timedelta(hours=k),
            counterparty=cp,
            status=statuses[k % 4],  # type: ignore[arg-type]
            origin="Москва" if k % 2 else "г. Казань",
            destination="Пермь",
            cost=Decimal(1000 + (k * 37) % 500),
            cargo_name="Металлопрокат" if k % 3 == 0 else "Мебель",
        )
        for k in range(n)
    ]
    async with host.db.session() as s:
        await apply_orders(host, s, records)
    return cp


async def test_registry_pages_sorts_filters_and_counts(host: Host) -> None:
    org = next(_orgs)
    await _orders(host, org, 60)
    client = await person(host, "client", org)
    svc = host.services.of(SHIPMENTS)
    counts = await svc.tab_counts(client, svc.parse_orders({}))
    assert counts == {"": 60, "registered": 15, "in_progress": 15, "done": 15}

    # Every order once over the pages, in cost order (ties by id), both ways.
    for sort in ("cost", "-cost", "number", "-date", "loading_date"):
        seen: list[Any] = []
        query = svc.parse_orders({"sort": sort, "size": "25"})
        while True:
            page, _ = await svc.orders(client, query)
            seen.extend(page.rows)
            if not page.next:
                break
            query = msgspec.structs.replace(query, after=page.next)
        assert len(seen) == 60
        assert len({r.id for r in seen}) == 60
        column = sort.lstrip("-")
        keys = [(getattr(r, column) or dt.date(1, 1, 1), r.id) for r in seen]
        assert keys == sorted(keys, reverse=sort.startswith("-"))
    # Back from the third page to the second gives the second page again.
    q = svc.parse_orders({"sort": "cost", "size": "25"})
    p1, _ = await svc.orders(client, q)
    p2, _ = await svc.orders(client, msgspec.structs.replace(q, after=p1.next))
    back, _ = await svc.orders(client, msgspec.structs.replace(q, before=p2.previous))
    assert [r.id for r in back.rows] == [r.id for r in p1.rows]

    query = svc.parse_orders({"status": "cancelled", "origin": "моск", "q": "металл"})
    page, _ = await svc.orders(client, query)
    assert page.rows
    assert all(
        r.status == "cancelled" and r.origin == "Москва" and r.cargo_name == "Металлопрокат"
        for r in page.rows
    )
    # the start of the place, in any case, "г." or not; what is typed is never a pattern
    for typed, found in (
        ("МОСК", 30),
        (" москва ", 30),
        ("г. Москва", 30),
        ("казань", 30),
        ("Г. КАЗ", 30),
        ("ква", 0),
        ("мос.", 0),
        ("%", 0),
        ("_", 0),
    ):
        counts = await svc.tab_counts(client, svc.parse_orders({"origin": typed}))
        assert counts[""] == found, typed
    counts = await svc.tab_counts(client, svc.parse_orders({"destination": "пер", "origin": "к"}))
    assert counts[""] == 30
    # the search takes % and _ as themselves (kabinet.lists.contains), in any case
    assert (await svc.tab_counts(client, svc.parse_orders({"q": "МЕТАЛЛ"})))[""] > 0
    for typed in ("%", "_", "металл%", "металл_прокат"):
        counts = await svc.tab_counts(client, svc.parse_orders({"q": typed}))
        assert counts[""] == 0, typed
    with pytest.raises(QueryError) as bad:
        svc.parse_orders({"sort": "driver"})
    assert bad.value.field == "sort"
    with pytest.raises(QueryError):
        svc.parse_orders({"date_from": "25.11.2026"})


async def test_counts_are_bounded(host: Host, monkeypatch: pytest.MonkeyPatch) -> None:
    org = next(_orgs)
    await _orders(host, org, 12)
    client = await person(host, "client", org)
    svc = host.services.of(SHIPMENTS)
    monkeypatch.setattr(svc.settings, "count_bound", 5)
    counts = await svc.tab_counts(client, svc.parse_orders({}))
    assert counts[""] == 6  # "5+": stops reading past the bound
    assert counts["done"] == 3


async def test_a_client_sees_only_their_organizations_objects(host: Host) -> None:
    mine, theirs = next(_orgs), next(_orgs)
    ids = await make_order(host, mine)
    other = await make_order(host, theirs)
    client = await person(host, "client", mine)
    svc = host.services.of(SHIPMENTS)
    card = await svc.order_card(client, ids["order_id"])
    assert card["order"].id == ids["order_id"]
    with pytest.raises(NotFound):
        await svc.order_card(client, other["order_id"])
    with pytest.raises(NotFound):
        await svc.document(client, other["order_id"], other["document_id"])
    with pytest.raises(NotFound):
        await svc.create_request(client, other["order_id"], "cancel", comment="чужая")
    with pytest.raises(NotFound):
        await host.services.of(FINANCE).contract_card(client, other["contract_id"])
    page, _ = await svc.orders(client, svc.parse_orders({}))
    assert {r.id for r in page.rows} == {ids["order_id"]}
    nobody = await person(host, None, None)
    page, _ = await svc.orders(nobody, svc.parse_orders({}))
    assert page.rows == []


async def test_requests_are_pending_and_refused_with_reasons(host: Host) -> None:
    org = next(_orgs)
    ids = await make_order(host, org)
    client = await person(host, "client", org)
    svc = host.services.of(SHIPMENTS)
    order_id = ids["order_id"]
    with pytest.raises(RequestRefused) as refused:
        await svc.create_request(client, order_id, "edit", changes={"cost": "1"})
    assert (refused.value.code, refused.value.field) == ("field_not_allowed", "cost")
    with pytest.raises(RequestRefused) as refused:
        await svc.create_request(client, order_id, "edit", changes={"delivery_planned": "завтра"})
    assert refused.value.code == "bad_date"
    with pytest.raises(RequestRefused) as refused:
        await svc.create_request(client, order_id, "cancel")
    assert refused.value.code == "comment_required"

    first = await svc.create_request(client, order_id, "cancel", comment="Не нужна")
    with pytest.raises(RequestRefused) as refused:
        await svc.create_request(client, order_id, "cancel", comment="Ещё раз")
    assert refused.value.code == "open_cancel"
    edit = await svc.create_request(
        client, order_id, "edit", changes={"delivery_planned": "2026-12-01"}
    )
    card = await svc.order_card(client, order_id)
    assert [(r["row"].id, r["row"].status) for r in card["requests"]] == [
        (edit, "pending"),
        (first, "pending"),
    ]
    done = await make_order(host, org, status="done")
    with pytest.raises(RequestRefused) as refused:
        await svc.create_request(client, done["order_id"], "cancel", comment="поздно")
    assert refused.value.code == "order_done"


async def test_the_order_and_its_card_are_read_in_the_unit_of_work(host: Host) -> None:
    """Read through host.db.reader(): inside a unit of work (a request) the order and its
    card see what the unit wrote before committing; outside one they read on their own;
    another organization's order is not found either way."""
    org, theirs = next(_orgs), next(_orgs)
    order_id = (await make_order(host, org))["order_id"]
    other = (await make_order(host, theirs))["order_id"]
    client = await person(host, "client", org)
    svc = host.services.of(SHIPMENTS)
    assert (await svc.order_card(client, order_id))["requests"] == []  # outside a unit
    async with host.db.unit():
        asked = await svc.create_request(client, order_id, "cancel", comment="Не нужна")
        async with host.db.session() as s:
            await s.execute(
                update(m.order).where(m.order.c.id == order_id).values(location="Склад 7")
            )
        card = await svc.order_card(client, order_id)
        assert [r["row"].id for r in card["requests"]] == [asked]
        assert card["open_kinds"] == {"cancel"}
        assert card["order"].location == "Склад 7"
        assert (await svc.order(client, order_id)).location == "Склад 7"
        with pytest.raises(NotFound):
            await svc.order_card(client, other)
        with pytest.raises(NotFound):
            await svc.order(client, other)
        assert (await svc.order(client, order_id)).location == "Склад 7"  # the unit goes on
    assert (await svc.order(client, order_id)).location == "Склад 7"  # committed
    with pytest.raises(NotFound):
        await svc.order(client, other)


async def test_a_missing_file_is_asked_for_once(host: Host) -> None:
    org = next(_orgs)
    ids = await make_order(host, org)
    client = await person(host, "client", org)
    svc = host.services.of(SHIPMENTS)
    _, key = await svc.document(client, ids["order_id"], ids["document_id"])
    assert key is not None
    await host.files.delete(key)
    for _ in range(2):
        doc, key = await svc.document(client, ids["order_id"], ids["document_id"])
        assert key is None
    from kabinet import models as host_models

    async with host.db.session() as s:
        asked = (
            await s.execute(
                select(host_models.event.c.payload).where(
                    host_models.event.c.type == "shipments.document.requested"
                )
            )
        ).all()
        requested_at = await s.scalar(
            select(m.document.c.requested_at).where(m.document.c.id == ids["document_id"])
        )
    assert [p.payload["key"] for p in asked if p.payload["document_id"] == ids["document_id"]] == [
        file_key(doc.file_ref)
    ]
    assert requested_at is not None


async def test_overdue_invoices_are_published_once(host: Host, clock: FrozenClock) -> None:
    org = next(_orgs)
    cp = await ensure_counterparty(host, org)
    await _invoices(
        host, cp, f"late-{org}", [(dt.date(2026, 11, 1), 5_000, 0, dt.date(2026, 11, 24))]
    )
    finance = host.services.of(FINANCE)
    assert await finance.mark_overdue() >= 1
    assert await finance.mark_overdue() == 0


async def test_the_services_are_published_under_their_keys(host: Host) -> None:
    shipments = host.services.of(SHIPMENTS)
    assert isinstance(shipments, ShipmentsService)
    assert (SHIPMENTS.name, FINANCE.name, EXPORTS.name) == (
        "shipments",
        "shipments.finance",
        "shipments.exports",
    )
    finance = host.services.of(FINANCE)
    exports = host.services.of(EXPORTS)
    assert isinstance(finance, Finance)
    assert isinstance(exports, Exports)
    assert finance.shipments is shipments
    assert exports.shipments is shipments
    assert host.services.of(SHIPMENTS) is shipments  # code not moved yet reads it by name


def test_the_public_module_names_only_its_keys() -> None:
    assert services.FINANCE is FINANCE
    assert services.EXPORTS is EXPORTS
    with pytest.raises(AttributeError, match="NOPE"):
        services.NOPE  # noqa: B018
