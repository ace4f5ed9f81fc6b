"""The order and invoice registries: filters, tabs with bounded counts, keyset pages.

A registry query is a plain struct (:class:`OrderQuery`, :class:`InvoiceQuery`) parsed from
the URL, so a link reproduces the view. Pages are keyset pages: the cursor holds the sort
value and the id of the last row shown, and the next page starts after them, so the
thousandth page reads as few rows as the first. Counts are exact up to
``count_bound`` and "bound+" above it (a count stops reading at the bound).

These statements are written by hand, not with :mod:`kabinet.lists`' count-then-offset
page, on purpose: the keyset pages, the bounded tab counts and the search on the trigram
index were measured against raw SQL (``bench/registry.py``, docs/performance.md). A typed
search still goes through ``kabinet.lists.contains``, the portal's one ``LIKE`` escaping.
"""

from __future__ import annotations

import base64
import dataclasses
import datetime as dt
from collections.abc import Sequence
from decimal import Decimal
from typing import Any

import msgspec
from sqlalchemy import Select, and_, func, literal, select, tuple_, union_all
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.sql import ColumnElement

from kabinet import lists
from kabinet.forms import FieldError
from kabinet.inputs import INT_MAX
from kabinet_companies.services import COUNTERPARTY_ROWS, ORGANIZATION_ROWS
from kabinet_shipments import models as m

ORDER_TABS = ("", "registered", "in_progress", "done")
ORDER_STATUSES = ("registered", "in_progress", "done", "cancelled")
ORDER_SORTS = ("date", "number", "cost", "loading_date", "delivery_planned")
INVOICE_TABS = ("", "unpaid", "part_paid", "paid", "overdue")
INVOICE_SORTS = ("date", "number", "amount", "paid", "due_date")
FAR_PAST = dt.date(1, 1, 1)
_DECIMAL_BOUND = Decimal(10) ** 20


class QueryError(FieldError):
    """A parameter of the URL is wrong; ``field`` names it (a 400 naming it on the API; a
    cursor of the right shape that this list did not give: 422)."""

    def __init__(self, message: str, field: str, *, status: int | None = None) -> None:
        super().__init__(message, field, status=status)
        self.field: str = field


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
    late: bool = False  # past the planned delivery and not done (``late=1``)
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


_FIELD_NAMES: dict[type[Any], frozenset[str]] = {}


def _field_names(struct: type[Any]) -> frozenset[str]:
    names = _FIELD_NAMES.get(struct)
    if names is None:
        names = _FIELD_NAMES[struct] = frozenset(f.name for f in msgspec.structs.fields(struct))
    return names


def parse(
    struct: type[Any],
    params: dict[str, str],
    sizes: Sequence[int],
    sorts: Sequence[str],
    tabs: Sequence[str],
) -> Any:
    """A query struct from URL parameters (empty ones ignored); QueryError names the field."""
    data: dict[str, Any] = {}
    fields = _field_names(struct)
    for key, value in params.items():
        if key not in fields or value == "":
            continue
        data[key] = value.strip()
    for key in ("organization", "counterparty", "contract", "size"):
        if key in data:
            if not str(data[key]).isdigit() or not 0 < int(data[key]) <= INT_MAX:
                raise QueryError(f"{key}: a whole number from 1 to {INT_MAX} is expected", key)
            data[key] = int(data[key])
    if "late" in data:
        if data["late"] not in ("1", "0"):
            raise QueryError("late: 1 (late orders only) or 0 is expected", "late")
        data["late"] = data["late"] == "1"
    for key in ("date_from", "date_to"):
        if key in data:
            try:
                data[key] = dt.date.fromisoformat(data[key])
            except ValueError:
                raise QueryError(f"{key}: a date YYYY-MM-DD is expected", key) from None
    query = msgspec.convert(data, struct)
    if query.sort.lstrip("-") not in sorts:
        raise QueryError(f"sort: one of {', '.join(sorts)} (with - for descending)", "sort")
    if query.size not in sizes:
        raise QueryError(f"size: one of {', '.join(map(str, sizes))}", "size")
    if query.status not in tabs and query.status != "cancelled":
        raise QueryError(f"status: one of {', '.join(t for t in tabs if t)}", "status")
    kind = _sort_kind(m.order if struct is OrderQuery else m.invoice, query.sort.lstrip("-"))
    for field in ("after", "before"):
        if getattr(query, field):  # checked here, so a damaged cursor is the caller's 400
            decode_cursor(getattr(query, field), kind, field)
    return query


# -- cursors -----------------------------------------------------------------------------------


def encode_cursor(value: Any, row_id: int) -> str:
    if isinstance(value, dt.date):  # datetime too
        value = value.isoformat()
    elif isinstance(value, Decimal):
        value = str(value)
    raw = msgspec.json.encode([value, row_id])
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str, kind: str, field: str = "after") -> tuple[Any, int]:
    """The sort value and id a cursor holds; :class:`QueryError` naming ``field`` (422) when
    it is damaged (not base64 JSON, the wrong shape or kind, an id no row can have)."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        value, row_id = msgspec.json.decode(raw)
        if kind == "datetime":
            value = dt.datetime.fromisoformat(value)
        elif kind == "date":
            value = dt.date.fromisoformat(value)
        elif kind == "decimal":
            value = Decimal(value)
            if not value.is_finite() or abs(value) >= _DECIMAL_BOUND:
                raise ValueError(value)
        elif isinstance(value, str):
            value = str(value)
        else:
            raise TypeError(value)
        if not isinstance(row_id, int) or not 0 < row_id <= INT_MAX:
            raise ValueError(row_id)
        return value, row_id
    except (ValueError, TypeError, msgspec.DecodeError, ArithmeticError):
        # The API's schema can say only a cursor's shape (base64url): one of that shape
        # that no list gave is refused by the app's rule, a 422 (a page answers 400).
        raise QueryError(
            "the page cursor is not valid; open the first page", field, status=422
        ) from None


def _sort_kind(table: Any, name: str) -> str:
    if name in ("loading_date", "delivery_planned", "due_date"):
        return "date"
    return {"date": "datetime" if table is m.order else "date", "number": "str"}.get(
        name, "decimal"
    )


def _sort_column(table: Any, name: str) -> tuple[ColumnElement[Any], str]:
    column = table.c[name]
    if name in ("loading_date", "delivery_planned", "due_date"):
        return func.coalesce(column, literal(FAR_PAST)), "date"
    return column, _sort_kind(table, name)


@dataclasses.dataclass(frozen=True)
class Window:
    """Where a keyset page starts and which way it reads."""

    column: ColumnElement[Any]
    kind: str
    descending: bool
    backwards: bool
    cursor: str
    size: int

    @property
    def ascending(self) -> bool:
        return (not self.descending) != self.backwards


def window(table: Any, sort: str, size: int, after: str, before: str) -> Window:
    column, kind = _sort_column(table, sort.lstrip("-"))
    return Window(
        column=column,
        kind=kind,
        descending=sort.startswith("-"),
        backwards=bool(before) and not after,
        cursor=after or before,
        size=size,
    )


def _after_cursor(w: Window, column: Any, row_id: Any) -> list[Any]:
    if not w.cursor:
        return []
    value, last_id = decode_cursor(w.cursor, w.kind)
    key, bound = tuple_(column, row_id), tuple_(literal(value), literal(last_id))
    return [key > bound if w.ascending else key < bound]


def _order(w: Window, column: Any, row_id: Any) -> tuple[Any, Any]:
    return (column.asc(), row_id.asc()) if w.ascending else (column.desc(), row_id.desc())


def page_of(rows: list[Any], w: Window) -> Page:
    """The page from up to ``size + 1`` rows read in the window's direction."""
    more = len(rows) > w.size
    rows = rows[: w.size]
    if w.backwards:
        rows.reverse()
    if not rows:
        return Page(rows=[], next=None, previous=None)
    first, last = rows[0], rows[-1]
    has_next = more if not w.backwards else True
    has_previous = bool(w.cursor) if not w.backwards else more
    return Page(
        rows=rows,
        next=encode_cursor(last._sort, last.id) if has_next else None,
        previous=encode_cursor(first._sort, first.id) if has_previous else None,
    )


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
    w = window(table, sort, size, after, before)
    stmt = (
        stmt.where(*_after_cursor(w, w.column, table.c.id))
        .add_columns(w.column.label("_sort"))
        .order_by(*_order(w, w.column, table.c.id))
        .limit(size + 1)
    )
    return page_of(list((await conn.execute(stmt)).all()), w)


def order_page_statement(
    query: OrderQuery, conds: list[Any], with_names: bool
) -> tuple[Select[Any], Window]:
    """The registry's page as one statement, and the window to cut its rows with.

    A deferred join: the page's ids are found first from the registry's indexes alone
    (``shipments_order`` has partial covering indexes ``WHERE NOT hidden`` with every
    column a filter or a sort reads), then only those rows are read from the table.
    The bench's raw handler runs this same statement.
    """
    o = m.order
    w = window(o, query.sort, query.size, query.after, query.before)
    keys = (
        select(o.c.id.label("key_id"), w.column.label("key_sort"))
        .where(*conds, *_after_cursor(w, w.column, o.c.id))
        .order_by(*_order(w, w.column, o.c.id))
        .limit(query.size + 1)
        .subquery("page_keys")
    )
    stmt = orders_select([], with_names, keys.join(o, o.c.id == keys.c.key_id))
    stmt = stmt.add_columns(keys.c.key_sort.label("_sort")).order_by(
        *_order(w, keys.c.key_sort, keys.c.key_id)
    )
    return stmt, w


async def order_page(
    conn: AsyncConnection, query: OrderQuery, conds: list[Any], with_names: bool
) -> Page:
    stmt, w = order_page_statement(query, conds, with_names)
    return page_of(list((await conn.execute(stmt)).all()), w)


async def bounded_count(conn: AsyncConnection, stmt: Select[Any], bound: int) -> int:
    """Exact up to ``bound``; ``bound + 1`` means "more than bound"."""
    limited = stmt.with_only_columns(literal(1)).order_by(None).limit(bound + 1).subquery()
    return int((await conn.execute(select(func.count()).select_from(limited))).scalar_one())


def tab_counts_statement(conds: list[Any], bound: int) -> Any:
    """One statement counting each status up to ``bound + 1`` (``UNION ALL`` of bounded
    counts): each reads only its status's entries of the registry index, so all of them
    together read at most the matching orders once."""
    o = m.order
    parts = []
    for status in ORDER_STATUSES:
        limited = (
            select(literal(1).label("one"))
            .select_from(o)
            .where(*conds, o.c.status == status)
            .limit(bound + 1)
            .subquery()
        )
        parts.append(
            select(literal(status).label("status"), func.count().label("n")).select_from(limited)
        )
    return union_all(*parts)


def tab_counts_of(rows: Sequence[Any], bound: int) -> dict[str, int]:
    """Tab -> count from the statement's rows; "all" is the sum, ``bound + 1`` above it."""
    by_status = {r[0]: int(r[1]) for r in rows}
    found = {tab: by_status.get(tab, 0) for tab in ORDER_TABS if tab}
    found[""] = min(sum(by_status.values()), bound + 1)
    return {tab: found[tab] for tab in ORDER_TABS}


# -- filters -----------------------------------------------------------------------------------


LATE_STATUSES = ("registered", "in_progress")


def is_late(status: str, delivery_planned: dt.date | None, today: dt.date) -> bool:
    """Past its planned delivery day and not done (nor cancelled): what ``late=1`` finds."""
    return status in LATE_STATUSES and delivery_planned is not None and delivery_planned < today


def order_filters(
    query: OrderQuery,
    counterparties: Sequence[int] | None,
    today: dt.date | None = None,
    zone: dt.tzinfo = dt.UTC,
) -> list[Any]:
    """Conditions of the query except the status (tabs count each status separately).
    The period's days are the reader's, in time zone ``zone`` (an order's date is shown as
    the reader's local day, and found by the same day).

    ``NOT hidden`` is written the way the registry's partial indexes are (``WHERE NOT
    hidden``; ``hidden = 0`` on SQLite), so that the planner may use them. ``late`` reads
    the status and the planned delivery, both in ``ix_shipments_order_registry`` (a key
    column and an included one), so it is answered from that index per counterparty and
    status; ``today`` is the portal's day (the service's clock)."""
    o = m.order
    conds: list[Any] = [~o.c.hidden]
    if counterparties is not None:
        conds.append(o.c.counterparty_id.in_(counterparties))
    if query.counterparty is not None:
        conds.append(o.c.counterparty_id == query.counterparty)
    if query.contract is not None:
        conds.append(o.c.contract_id == query.contract)
    if query.date_from is not None:
        conds.append(o.c.date >= _start_of(query.date_from, zone))
    if query.date_to is not None:
        conds.append(o.c.date < _start_of(query.date_to + dt.timedelta(days=1), zone))
    if query.origin:
        conds.append(_starts_with(o.c.origin_key, query.origin))
    if query.destination:
        conds.append(_starts_with(o.c.destination_key, query.destination))
    if query.q:
        # the search column is lower case already (its trigram index wants it bare)
        conds.append(lists.contains(o.c.search, query.q.lower()))
    if query.late:
        conds.append(o.c.status.in_(LATE_STATUSES))
        conds.append(o.c.delivery_planned < (today or dt.date.today()))
    return conds


def _starts_with(key: Any, typed: str) -> Any:
    """A route point whose key (``models.place_key``) starts with what was typed, in any
    case: a range of the key (byte order on both databases), so an index can walk it
    whatever the plan's parameters, and what is typed is never a pattern."""
    prefix = m.place_key(typed)
    if not prefix:
        return literal(True)
    last = ord(prefix[-1]) + 1
    if last > 0x10FFFF:
        return key >= prefix
    if 0xD800 <= last <= 0xDFFF:  # surrogates are no characters: the next one is U+E000
        last = 0xE000
    return and_(key >= prefix, key < prefix[:-1] + chr(last))


def _start_of(day: dt.date, zone: dt.tzinfo = dt.UTC) -> dt.datetime:
    """The day's first instant in ``zone``, in UTC (as the dates are stored)."""
    return dt.datetime.combine(day, dt.time(), tzinfo=zone).astimezone(dt.UTC)


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
        conds.append(lists.contains(i.c.number, query.q.lower(), folded=True))
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
    m.order.c.loading_at,
    m.order.c.delivery_planned_at,
    m.order.c.delivery_actual_at,
    m.order.c.location,
    m.order.c.location_at,
    m.order.c.cost,
    m.order.c.currency,
    m.order.c.counterparty_id,
    m.order.c.contract_id,
)


def orders_select(conds: list[Any], with_names: bool, source: Any = None) -> Select[Any]:
    stmt = select(*ORDER_COLUMNS).select_from(source if source is not None else m.order)
    if with_names:
        stmt = (
            stmt.join(COUNTERPARTY_ROWS, COUNTERPARTY_ROWS.c.id == m.order.c.counterparty_id)
            .outerjoin(
                ORGANIZATION_ROWS, ORGANIZATION_ROWS.c.id == COUNTERPARTY_ROWS.c.organization_id
            )
            .add_columns(
                COUNTERPARTY_ROWS.c.name.label("counterparty_name"),
                ORGANIZATION_ROWS.c.name.label("organization_name"),
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
            stmt.join(COUNTERPARTY_ROWS, COUNTERPARTY_ROWS.c.id == m.invoice.c.counterparty_id)
            .outerjoin(
                ORGANIZATION_ROWS, ORGANIZATION_ROWS.c.id == COUNTERPARTY_ROWS.c.organization_id
            )
            .add_columns(
                COUNTERPARTY_ROWS.c.name.label("counterparty_name"),
                ORGANIZATION_ROWS.c.name.label("organization_name"),
            )
        )
    return stmt.where(*conds)
