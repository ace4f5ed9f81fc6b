"""Money: the invoice registry, the debt per contract for a period, contract cards, overdue
invoices, and the client's home summary.

The debt for a period [start, end] (by default from the 1st of the month to today), per
contract: the sum of ``amount - paid`` over the contract's invoices dated in the period.
Beside it, the overdue debt: the sum of ``amount - paid`` over the contract's invoices
dated before ``start`` whose due date is before ``today`` and that are not fully paid.
(docs/shipments.md has the worked example: 110 000 for the period, 30 000 overdue.)
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from decimal import Decimal
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from sqlalchemy import and_, case, func, select, update

from kabinet import lists
from kabinet.access import AllOrganizations, Principal
from kabinet.services import ServiceKey
from kabinet_companies.services import COUNTERPARTY_ROWS
from kabinet_shipments import events as ev
from kabinet_shipments import models as m
from kabinet_shipments.attached_files import files_of, invoice_file_key
from kabinet_shipments.registry import (
    INVOICE_SORTS,
    INVOICE_TABS,
    InvoiceQuery,
    Page,
    bounded_count,
    invoice_filters,
    invoice_status,
    invoices_select,
    keyset,
    parse,
)
from kabinet_shipments.services import (
    CONTRACTS,
    INVOICES,
    VIEW,
    NotFound,
    Scope,
    ShipmentsService,
    _aware,
    ask_for_file,
)
from kabinet_shipments.sinks import invoice_event

if TYPE_CHECKING:
    from collections.abc import Collection, Mapping, Sequence

ZERO = Decimal(0)


CARD_PAGE = 10
"""Rows of invoices and of orders per page of a contract's card."""


@dataclasses.dataclass
class ContractDebt:
    contract_id: int | None
    number: str
    currency: str
    period: Decimal
    overdue: Decimal


@dataclasses.dataclass
class Debt:
    start: dt.date
    end: dt.date
    rows: list[ContractDebt]

    @property
    def period(self) -> Decimal:
        return sum((r.period for r in self.rows), ZERO)

    @property
    def overdue(self) -> Decimal:
        return sum((r.overdue for r in self.rows), ZERO)


def month_start(day: dt.date) -> dt.date:
    return day.replace(day=1)


class Finance:
    """Invoices, debts and contracts, over the person's scope."""

    def __init__(self, shipments: ShipmentsService) -> None:
        self.shipments = shipments
        self.host = shipments.host

    def parse_invoices(self, params: Mapping[str, str]) -> InvoiceQuery:
        s = self.shipments.settings
        values = dict(params)
        values.setdefault("size", str(s.page_size))
        query: InvoiceQuery = parse(InvoiceQuery, values, s.page_sizes, INVOICE_SORTS, INVOICE_TABS)
        return query

    async def invoices(
        self, principal: Principal, query: InvoiceQuery, *, with_names: bool = False
    ) -> tuple[Page, Scope]:
        scope = await self.shipments.scope(principal, INVOICES, query.organization)
        if scope.empty:
            return Page([], None, None), scope
        today = self.shipments.today()
        conds = invoice_filters(query, scope.counterparties, today)
        if query.status:
            conds.append(invoice_status(query.status, today))
        stmt = invoices_select(conds, with_names)
        async with self.host.db.read_connection() as conn:
            page = await keyset(
                conn, stmt, m.invoice, query.sort, query.size, query.after, query.before
            )
        return page, scope

    async def invoice_counts(self, principal: Principal, query: InvoiceQuery) -> dict[str, int]:
        scope = await self.shipments.scope(principal, INVOICES, query.organization)
        if scope.empty:
            return dict.fromkeys(INVOICE_TABS, 0)
        today = self.shipments.today()
        conds = invoice_filters(query, scope.counterparties, today)
        bound = self.shipments.settings.count_bound
        found: dict[str, int] = {}
        async with self.host.db.read_connection() as conn:
            for tab in INVOICE_TABS:
                tab_conds = [*conds, invoice_status(tab, today)] if tab else conds
                stmt = select(m.invoice.c.id).where(*tab_conds)
                found[tab] = await bounded_count(conn, stmt, bound)
        return found

    async def invoice(self, principal: Principal, invoice_id: int) -> Any:
        scope = await self.shipments.scope(principal, INVOICES)
        stmt = invoices_select(
            [m.invoice.c.id == invoice_id, m.invoice.c.hidden.is_(False)], with_names=True
        )
        if scope.counterparties is not None:
            stmt = stmt.where(m.invoice.c.counterparty_id.in_(scope.counterparties))
        async with self.host.db.read_connection() as conn:
            row = (await conn.execute(stmt)).first()
        if row is None or scope.empty:
            raise NotFound(f"no invoice {invoice_id}")
        return row

    async def print_forms(self, invoice_ids: Sequence[int]) -> dict[int, list[Any]]:
        """The files attached to these invoices (their print forms), by invoice id; the
        caller has checked that the person sees the invoices. Read in the request's unit
        of work (``host.db.reader()``), like the order card that asks: a request that holds
        the unit's connection must not wait for a second one from the pool."""
        async with self.host.db.reader() as session:
            return await files_of(await session.connection(), invoice_ids)

    async def invoice_file(
        self, principal: Principal, invoice_id: int, file_id: int
    ) -> tuple[Any, str | None]:
        """A file of a visible invoice and its storage key, or ``None`` while it is fetched
        from the production system (asked for once, however often the person clicks, until
        ASK_AGAIN has passed)."""
        await self.invoice(principal, invoice_id)  # NotFound outside the person's scope
        f = m.invoice_file
        async with self.host.db.session() as session:
            conn = await session.connection()
            row = (
                await conn.execute(select(f).where(f.c.id == file_id, f.c.invoice_id == invoice_id))
            ).first()
            if row is None:
                raise NotFound(f"no file {file_id} of invoice {invoice_id}")
            key = invoice_file_key(row.file_ref)
            if await self.host.files.exists(key):
                return row, key
            if ask_for_file(row.requested_at, self.host.clock.now()):
                await conn.execute(
                    update(f).where(f.c.id == row.id).values(requested_at=self.host.clock.now())
                )
                external_id = (
                    await conn.execute(
                        select(m.invoice.c.external_id).where(m.invoice.c.id == invoice_id)
                    )
                ).scalar_one()
                await self.host.events.publish(
                    session,
                    ev.INVOICE_FILE_REQUESTED,
                    ev.InvoiceFileRequested(
                        invoice_id=invoice_id,
                        invoice_external_id=external_id,
                        file_ref=row.file_ref,
                        key=key,
                    ),
                )
            return row, None

    # -- the debt ------------------------------------------------------------------------------

    async def debt(
        self,
        principal: Principal,
        start: dt.date | None = None,
        end: dt.date | None = None,
        *,
        contract_id: int | None = None,
        organization_id: int | None = None,
    ) -> Debt:
        """The debt per contract for [start, end] and the overdue debt from before it."""
        today = self.shipments.today()
        start = start or month_start(today)
        end = end or today
        scope = await self.shipments.scope(principal, INVOICES, organization_id)
        if scope.empty:
            return Debt(start, end, [])
        i = m.invoice
        remainder = i.c.amount - i.c.paid
        in_period = and_(i.c.date >= start, i.c.date <= end)
        overdue = and_(i.c.date < start, i.c.due_date < today, i.c.paid < i.c.amount)
        stmt = (
            select(
                i.c.contract_id,
                func.coalesce(m.contract.c.number, "").label("number"),
                i.c.currency,
                func.sum(case((in_period, remainder), else_=0)).label("period"),
                func.sum(case((overdue, remainder), else_=0)).label("overdue"),
            )
            .outerjoin(m.contract, m.contract.c.id == i.c.contract_id)
            .where(i.c.hidden.is_(False), i.c.date <= end, (in_period | overdue))
            .group_by(i.c.contract_id, m.contract.c.number, i.c.currency)
            .order_by(m.contract.c.number)
        )
        if scope.counterparties is not None:
            stmt = stmt.where(i.c.counterparty_id.in_(scope.counterparties))
        if contract_id is not None:
            stmt = stmt.where(i.c.contract_id == contract_id)
        async with self.host.db.read_connection() as conn:
            rows = (await conn.execute(stmt)).all()
        return Debt(
            start,
            end,
            [
                ContractDebt(
                    r.contract_id, r.number, r.currency, _money(r.period), _money(r.overdue)
                )
                for r in rows
            ],
        )

    # -- contracts -----------------------------------------------------------------------------

    async def contracts(self, principal: Principal) -> list[Any]:
        scope = await self.shipments.scope(principal, CONTRACTS)
        if scope.empty:
            return []
        stmt = (
            select(m.contract, COUNTERPARTY_ROWS.c.name.label("counterparty_name"))
            .join(COUNTERPARTY_ROWS, COUNTERPARTY_ROWS.c.id == m.contract.c.counterparty_id)
            .where(m.contract.c.hidden.is_(False))
            .order_by(m.contract.c.date.desc(), m.contract.c.id.desc())
            .limit(500)
        )
        if scope.counterparties is not None:
            stmt = stmt.where(m.contract.c.counterparty_id.in_(scope.counterparties))
        async with self.host.db.read_connection() as conn:
            return list((await conn.execute(stmt)).all())

    async def contract_choices(
        self,
        principal: Principal,
        code: str,
        *,
        search: str = "",
        ids: Collection[int] | None = None,
        limit: int | None = None,
    ) -> list[dict[str, Any]]:
        """Contracts to pick from (a form's list; another app's, such as booking's): those
        not hidden of the counterparties in ``principal``'s scope under ``code``, each with
        its key in the production system (``external_id``), its counterparty's name
        (``counterparty_name``) and ``organization_id``, by that
        name and the number. ``search``: those whose number or counterparty's name contains
        it (any case); ``ids``: only those; ``limit``: at most that many (None: all). One
        statement, the scope in it (the counterparties of the person's organizations), in
        the request's unit of work: a caller holding the unit's connection (a form being
        saved) takes no second one from the pool."""
        orgs = await self.host.access.organizations(principal, code)
        if not orgs or (ids is not None and not ids):
            return []
        k, cp = m.contract.c, COUNTERPARTY_ROWS.c
        stmt = (
            select(
                k.id,
                k.number,
                k.external_id,
                k.counterparty_id,
                cp.name.label("counterparty_name"),
                cp.organization_id,
            )
            .join(COUNTERPARTY_ROWS, cp.id == k.counterparty_id)
            .where(
                ~k.hidden, cp.organization_id.is_not(None), lists.search(search, k.number, cp.name)
            )
            .order_by(cp.name, k.number, k.id)
            .limit(limit)
        )
        if not isinstance(orgs, AllOrganizations):
            stmt = stmt.where(cp.organization_id.in_(sorted(orgs)))
        if ids is not None:
            stmt = stmt.where(k.id.in_(sorted(ids)))
        async with self.host.db.reader() as session:
            return [dict(r._mapping) for r in await session.execute(stmt)]

    async def contract_card(
        self,
        principal: Principal,
        contract_id: int,
        start: dt.date | None = None,
        end: dt.date | None = None,
        *,
        invoices_page: int = 1,
        orders_page: int = 1,
    ) -> dict[str, Any]:
        """The contract, its debt and a page (``CARD_PAGE`` rows, 1-based) of its invoices
        and of its orders; ``more_*`` says whether a next page exists, ``*_total`` how many
        there are."""
        scope = await self.shipments.scope(principal, CONTRACTS)
        stmt = (
            select(
                m.contract,
                COUNTERPARTY_ROWS.c.name.label("counterparty_name"),
                COUNTERPARTY_ROWS.c.inn.label("counterparty_inn"),
            )
            .join(COUNTERPARTY_ROWS, COUNTERPARTY_ROWS.c.id == m.contract.c.counterparty_id)
            .where(m.contract.c.id == contract_id, m.contract.c.hidden.is_(False))
        )
        if scope.counterparties is not None:
            stmt = stmt.where(m.contract.c.counterparty_id.in_(scope.counterparties))
        async with self.host.db.read_connection() as conn:
            row = (await conn.execute(stmt)).first()
            if row is None or scope.empty:
                raise NotFound(f"no contract {contract_id}")
            invoice_conds = (m.invoice.c.contract_id == contract_id, m.invoice.c.hidden.is_(False))
            order_conds = (m.order.c.contract_id == contract_id, m.order.c.hidden.is_(False))
            invoices_total = (
                await conn.execute(
                    select(func.count()).select_from(m.invoice).where(*invoice_conds)
                )
            ).scalar_one()
            orders_total = (
                await conn.execute(select(func.count()).select_from(m.order).where(*order_conds))
            ).scalar_one()
            invoices = (
                await conn.execute(
                    select(m.invoice)
                    .where(*invoice_conds)
                    .order_by(m.invoice.c.date.desc(), m.invoice.c.id.desc())
                    .offset((invoices_page - 1) * CARD_PAGE)
                    .limit(CARD_PAGE + 1)
                )
            ).all()
            orders = (
                await conn.execute(
                    select(
                        m.order.c.id,
                        m.order.c.number,
                        m.order.c.date,
                        m.order.c.status,
                        m.order.c.origin,
                        m.order.c.destination,
                        m.order.c.cost,
                        m.order.c.currency,
                    )
                    .where(*order_conds)
                    .order_by(m.order.c.date.desc(), m.order.c.id.desc())
                    .offset((orders_page - 1) * CARD_PAGE)
                    .limit(CARD_PAGE + 1)
                )
            ).all()
        debt = await self.debt(principal, start, end, contract_id=contract_id)
        return {
            "contract": row,
            "balance_at": _aware(row.balance_at) if row.balance_at else None,
            "debt": debt,
            "invoices": invoices[:CARD_PAGE],
            "orders": orders[:CARD_PAGE],
            "more_invoices": len(invoices) > CARD_PAGE,
            "more_orders": len(orders) > CARD_PAGE,
            "invoices_page": invoices_page,
            "orders_page": orders_page,
            "invoices_total": int(invoices_total),
            "orders_total": int(orders_total),
            "page_size": CARD_PAGE,
        }

    # -- overdue invoices ------------------------------------------------------------------

    async def mark_overdue(self) -> int:
        """Publish "invoice overdue" once for each invoice unpaid past its due date."""
        today = self.shipments.today()
        now = self.host.clock.now()
        i = m.invoice
        published = 0
        async with self.host.db.session() as session:
            conn = await session.connection()
            rows = (
                await conn.execute(
                    select(i, COUNTERPARTY_ROWS.c.organization_id)
                    .join(COUNTERPARTY_ROWS, COUNTERPARTY_ROWS.c.id == i.c.counterparty_id)
                    .where(
                        i.c.overdue_at.is_(None),
                        i.c.hidden.is_(False),
                        i.c.due_date < today,
                        i.c.paid < i.c.amount,
                    )
                    .limit(5000)
                )
            ).all()
            for row in rows:
                if row.organization_id is not None:
                    await session.execute(update(i).where(i.c.id == row.id).values(overdue_at=now))
                    await self.host.events.publish(
                        session,
                        ev.INVOICE_OVERDUE,
                        invoice_event(
                            row, row.organization_id, changed_at=self._overdue_since(row)
                        ),
                    )
                    published += 1
        return published

    def _overdue_since(self, row: Any) -> str:
        """When an invoice became overdue (the portal's midnight after its due date, or
        when the portal received it if later): nobody linked since hears of it."""
        zone = ZoneInfo(self.host.settings.host.timezone)
        midnight = dt.datetime.combine(row.due_date + dt.timedelta(days=1), dt.time(), zone)
        received = _aware(row.created_at) if row.created_at else midnight
        return max(midnight, received).astimezone(dt.UTC).isoformat()

    # -- the client's home -----------------------------------------------------------------

    async def home(self, principal: Principal) -> dict[str, Any]:
        """Orders by status, debt, changes since the previous visit, the last update."""
        assert principal.person_id is not None
        service = self.shipments
        now = self.host.clock.now()
        since = await self._visit(principal.person_id, now)
        counts = await service.tab_counts(principal, service.parse_orders({}))
        scope = await service.scope(principal, VIEW)
        changes: list[Any] = []
        invoices: list[Any] = []
        answers: list[Any] = []
        if not scope.empty and since is not None:
            async with self.host.db.read_connection() as conn:
                changes = list(
                    (
                        await conn.execute(
                            _scoped(
                                select(
                                    m.status_change.c.status,
                                    m.status_change.c.received_at,
                                    m.order.c.id,
                                    m.order.c.number,
                                )
                                .join(m.order, m.order.c.id == m.status_change.c.order_id)
                                .where(
                                    m.status_change.c.received_at > since,
                                    m.status_change.c.previous.is_not(None),
                                )
                                .order_by(m.status_change.c.received_at.desc())
                                .limit(10),
                                m.order,
                                scope,
                            )
                        )
                    ).all()
                )
                invoices = list(
                    (
                        await conn.execute(
                            _scoped(
                                select(m.invoice)
                                .where(m.invoice.c.created_at > since)
                                .order_by(m.invoice.c.created_at.desc())
                                .limit(10),
                                m.invoice,
                                scope,
                            )
                        )
                    ).all()
                )
                answers = list(
                    (
                        await conn.execute(
                            _scoped(
                                select(
                                    m.request_event.c.status,
                                    m.request_event.c.text,
                                    m.request_event.c.at,
                                    m.request.c.kind,
                                    m.order.c.id,
                                    m.order.c.number,
                                )
                                .join(m.request, m.request.c.id == m.request_event.c.request_id)
                                .join(m.order, m.order.c.id == m.request.c.order_id)
                                .where(
                                    m.request_event.c.at > since,
                                    m.request_event.c.status != "pending",
                                )
                                .order_by(m.request_event.c.at.desc())
                                .limit(10),
                                m.order,
                                scope,
                            )
                        )
                    ).all()
                )
        debt = await self.debt(principal)
        return {
            "counts": counts,
            "debt": debt,
            "since": since,
            "changes": changes,
            "new_invoices": invoices,
            "answers": answers,
            "last_update": await service.last_update(),
        }

    async def _visit(self, person_id: int, now: dt.datetime) -> dt.datetime | None:
        """The previous visit; a new visit starts after half an hour away."""
        v = m.visit
        async with self.host.db.session() as session:
            row = (await session.execute(select(v).where(v.c.person_id == person_id))).first()
            if row is None:
                await session.execute(
                    v.insert().values(person_id=person_id, previous=None, current=now)
                )
                return None
            current = _aware(row.current)
            if now - current > dt.timedelta(minutes=30):
                await session.execute(
                    update(v)
                    .where(v.c.person_id == person_id)
                    .values(previous=current, current=now)
                )
                return current
            return _aware(row.previous) if row.previous else None


def _scoped(stmt: Any, table: Any, scope: Scope) -> Any:
    if scope.counterparties is None:
        return stmt
    return stmt.where(table.c.counterparty_id.in_(scope.counterparties))


def _money(value: Any) -> Decimal:
    return Decimal(value or 0).quantize(Decimal("0.01"))


FINANCE: ServiceKey[Finance] = ServiceKey("shipments.finance", Finance)
"""Published by the app's ``startup``; re-exported by :mod:`kabinet_shipments.services`."""
