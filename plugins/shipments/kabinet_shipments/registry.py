"""The order and invoice registries: filters, tabs with bounded counts, keyset pages.

A registry query is a plain struct (:class:`OrderQuery`, :class:`InvoiceQuery`) parsed from
the URL, so a link reproduces the view. Pages are keyset pages: the cursor holds the sort
value and the id of the last row shown, and the next page starts after them, so the
thousandth page reads as few rows as the first. Counts are exact up to
``count_bound`` and "bound+" above it (a count stops reading at the bound).
"""

from __future__ import annotations

import base64
import dataclasses
import datetime as dt
from collections.abc import Sequence
from decimal import Decimal
from typing import Any

import msgspec
from sqlalchemy import Select, and_, func, literal, or_, select, tuple_
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.sql import ColumnElement

from kabinet_companies.models import counterparty, organization
from kabinet_shipments import models as m

ORDER_TABS = ("", "registered", "in_progress", "done")
ORDER_SORTS = ("date", "number", "cost", "loading_date", "delivery_planned")
INVOICE_TABS = ("", "unpaid", "part_paid", "paid", "overdue")
INVOICE_SORTS = ("date", "number", "amount", "paid", "due_date")
FAR_PAST = dt.date(1, 1, 1)


class QueryError(ValueError):
    """A parameter of the URL is wrong; ``field`` names it."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.message = message


class OrderQuery(msgspec.Struct, kw_only=True):
    """What the order registry shows: every parameter is in the URL."""

    status: str = ""
    date_from: dt.date | None = None
    date_to: dt.date | None = None
    origin: str = ""
    destination: str = ""
    q: str = ""
    organization: int | None = None
    counterparty: int | None = None
    contract: int | None = None
    sort: str = "-date"
    size: int = 25
    after: str = ""
    before: str = ""


class InvoiceQuery(msgspec.Struct, kw_only=True):
    status: str = ""
    date_from: dt.date | None = None
    date_to: dt.date | None = None
    q: str = ""
    organization: int | None = None
    counterparty: int | None = None
    contract: int | None = None
    sort: str = "-date"
    size: int = 25
    after: str = ""
    before: str = ""


@dataclasses.dataclass
class Page:
    rows: list[Any]
    next: str | None
    previous: str | None


def parse(
    struct: type[Any],
    params: dict[str, str],
    sizes: Sequence[int],
    sorts: Sequence[str],
    tabs: Sequence[str],
) -> Any:
    """A query struct from URL parameters (empty ones ignored); QueryError names the field."""
    data: dict[str, Any] = {}
    fields = {f.name: f for f in msgspec.structs.fields(struct)}
    for key, value in params.items():
        if key not in fields or value == "":
            continue
        data[key] = value.strip()
    for key in ("organization", "counterparty", "contract", "size"):
        if key in data:
            if not str(data[key]).isdigit():
                raise QueryError(key, f"{key}: a positive whole number is expected")
            data[key] = int(data[key])
    for key in ("date_from", "date_to"):
        if key in data:
            try:
                data[key] = dt.date.fromisoformat(data[key])
            except ValueError:
                raise QueryError(key, f"{key}: a date YYYY-MM-DD is expected") from None
    query = msgspec.convert(data, struct)
    if query.sort.lstrip("-") not in sorts:
        raise QueryError("sort", f"sort: one of {', '.join(sorts)} (with - for descending)")
    if query.size not in sizes:
        raise QueryError("size", f"size: one of {', '.join(map(str, sizes))}")
    if query.status not in tabs and query.status != "cancelled":
        raise QueryError("status", f"status: one of {', '.join(t for t in tabs if t)}")
    return query


# -- cursors -----------------------------------------------------------------------------------


def encode_cursor(value: Any, row_id: int) -> str:
    if isinstance(value, dt.date):  # datetime too
        value = value.isoformat()
    elif isinstance(value, Decimal):
        value = str(value)
    raw = msgspec.json.encode([value, row_id])
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str, kind: str) -> tuple[Any, int]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        value, row_id = msgspec.json.decode(raw)
        if kind == "datetime":
            value = dt.datetime.fromisoformat(value)
        elif kind == "date":
            value = dt.date.fromisoformat(value)
        elif kind == "decimal":
            value = Decimal(value)
        else:
            value = str(value)
        return value, int(row_id)
    except (ValueError, TypeError, msgspec.DecodeError, ArithmeticError):
        raise QueryError("after", "the page cursor is not valid; open the first page") from None


def _sort_column(table: Any, name: str) -> tuple[ColumnElement[Any], str]:
    column = table.c[name]
    if name in ("loading_date", "delivery_planned", "due_date"):
        return func.coalesce(column, literal(FAR_PAST)), "date"
    kind = {"date": "datetime" if table is m.order else "date", "number": "str"}.get(
        name, "decimal"
    )
    return column, kind


async def keyset(
    conn: AsyncConnection,
    stmt: Select[Any],
    table: Any,
    sort: str,
    size: int,
    after: str,
    before: str,
) -> Page:
    """One page of ``stmt`` ordered by ``sort`` then id, after or before a cursor."""
    name = sort.lstrip("-")
    descending = sort.startswith("-")
    column, kind = _sort_column(table, name)
    key = tuple_(column, table.c.id)
    backwards = bool(before) and not after
    cursor = after or before
    if cursor:
        value, row_id = decode_cursor(cursor, kind)
        later = (not descending) != backwards
        bound = tuple_(literal(value), literal(row_id))
        stmt = stmt.where(key > bound if later else key < bound)
    ascending = (not descending) != backwards
    order = (column.asc(), table.c.id.asc()) if ascending else (column.desc(), table.c.id.desc())
    stmt = stmt.add_columns(column.label("_sort")).order_by(*order).limit(size + 1)
    rows = list((await conn.execute(stmt)).all())
    more = len(rows) > size
    rows = rows[:size]
    if backwards:
        rows.reverse()
    if not rows:
        return Page(rows=[], next=None, previous=None)
    first, last = rows[0], rows[-1]
    has_next = more if not backwards else True
    has_previous = bool(cursor) if not backwards else more
    return Page(
        rows=rows,
        next=encode_cursor(last._sort, last.id) if has_next else None,
        previous=encode_cursor(first._sort, first.id) if has_previous else None,
    )


async def bounded_count(conn: AsyncConnection, stmt: Select[Any], bound: int) -> int:
    """Exact up to ``bound``; ``bound + 1`` means "more than bound"."""
    limited = stmt.with_only_columns(literal(1)).order_by(None).limit(bound + 1).subquery()
    return int((await conn.execute(select(func.count()).select_from(limited))).scalar_one())


# -- filters -----------------------------------------------------------------------------------


def order_filters(query: OrderQuery, counterparties: Sequence[int] | None) -> list[Any]:
    """Conditions of the query except the status (tabs count each status separately)."""
    o = m.order
    conds: list[Any] = [o.c.hidden.is_(False)]
    if counterparties is not None:
        conds.append(o.c.counterparty_id.in_(counterparties))
    if query.counterparty is not None:
        conds.append(o.c.counterparty_id == query.counterparty)
    if query.contract is not None:
        conds.append(o.c.contract_id == query.contract)
    if query.date_from is not None:
        conds.append(o.c.date >= _start_of(query.date_from))
    if query.date_to is not None:
        conds.append(o.c.date < _start_of(query.date_to + dt.timedelta(days=1)))
    if query.origin:
        conds.append(_contains(o.c.origin, query.origin))
    if query.destination:
        conds.append(_contains(o.c.destination, query.destination))
    if query.q:
        conds.append(o.c.search.contains(query.q.lower(), autoescape=True))
    return conds


def _contains(column: Any, text: str) -> Any:
    """Case-insensitive on PostgreSQL; SQLite's lower() knows only ASCII, so the text as
    typed and capitalised (city names) match there too."""
    variants = {text.lower(), text, text[:1].upper() + text[1:].lower()}
    return or_(
        func.lower(column).contains(text.lower(), autoescape=True),
        *[column.contains(v, autoescape=True) for v in sorted(variants)],
    )


def _start_of(day: dt.date) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(), tzinfo=dt.UTC)


def invoice_filters(
    query: InvoiceQuery, counterparties: Sequence[int] | None, today: dt.date
) -> list[Any]:
    i = m.invoice
    conds: list[Any] = [i.c.hidden.is_(False)]
    if counterparties is not None:
        conds.append(i.c.counterparty_id.in_(counterparties))
    if query.counterparty is not None:
        conds.append(i.c.counterparty_id == query.counterparty)
    if query.contract is not None:
        conds.append(i.c.contract_id == query.contract)
    if query.date_from is not None:
        conds.append(i.c.date >= query.date_from)
    if query.date_to is not None:
        conds.append(i.c.date <= query.date_to)
    if query.q:
        conds.append(func.lower(i.c.number).contains(query.q.lower(), autoescape=True))
    return conds


def invoice_status(status: str, today: dt.date) -> Any:
    i = m.invoice
    if status == "overdue":
        return and_(i.c.payment_status != "paid", i.c.due_date < today)
    return i.c.payment_status == status


ORDER_COLUMNS = (
    m.order.c.id,
    m.order.c.number,
    m.order.c.date,
    m.order.c.status,
    m.order.c.origin,
    m.order.c.destination,
    m.order.c.cargo_name,
    m.order.c.loading_date,
    m.order.c.delivery_planned,
    m.order.c.delivery_actual,
    m.order.c.location,
    m.order.c.location_at,
    m.order.c.cost,
    m.order.c.currency,
    m.order.c.counterparty_id,
    m.order.c.contract_id,
)


def orders_select(conds: list[Any], with_names: bool) -> Select[Any]:
    stmt = select(*ORDER_COLUMNS)
    if with_names:
        stmt = (
            stmt.join(counterparty, counterparty.c.id == m.order.c.counterparty_id)
            .outerjoin(organization, organization.c.id == counterparty.c.organization_id)
            .add_columns(
                counterparty.c.name.label("counterparty_name"),
                organization.c.name.label("organization_name"),
            )
        )
    return stmt.where(*conds)


INVOICE_COLUMNS = (
    m.invoice.c.id,
    m.invoice.c.number,
    m.invoice.c.date,
    m.invoice.c.amount,
    m.invoice.c.paid,
    m.invoice.c.currency,
    m.invoice.c.due_date,
    m.invoice.c.payment_status,
    m.invoice.c.contract_id,
    m.invoice.c.order_id,
    m.invoice.c.counterparty_id,
)


def invoices_select(conds: list[Any], with_names: bool) -> Select[Any]:
    stmt = (
        select(*INVOICE_COLUMNS)
        .outerjoin(m.contract, m.contract.c.id == m.invoice.c.contract_id)
        .outerjoin(m.order, m.order.c.id == m.invoice.c.order_id)
        .add_columns(
            m.contract.c.number.label("contract_number"),
            m.order.c.number.label("order_number"),
        )
    )
    if with_names:
        stmt = (
            stmt.join(counterparty, counterparty.c.id == m.invoice.c.counterparty_id)
            .outerjoin(organization, organization.c.id == counterparty.c.organization_id)
            .add_columns(
                counterparty.c.name.label("counterparty_name"),
                organization.c.name.label("organization_name"),
            )
        )
    return stmt.where(*conds)


def any_of(*conds: Any) -> Any:
    return or_(*conds)
