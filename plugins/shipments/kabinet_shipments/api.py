"""JSON API under ``/api/shipments/`` (sessions and API tokens), with OpenAPI and problem details.

The same services and the same scope as the pages: an object outside the caller's
organizations is a 404. List endpoints take the registry's URL parameters and return a
keyset page (``next``/``previous`` cursors for ``after``/``before``).
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import TYPE_CHECKING, Annotated, Any

import msgspec
from litestar import Request, Response, Router, get, post
from litestar.exceptions import ClientException, NotFoundException
from litestar.openapi.datastructures import ResponseSpec
from litestar.params import FromPath, JSONBody
from litestar.status_codes import HTTP_201_CREATED, HTTP_202_ACCEPTED

from kabinet.access import permission
from kabinet.inputs import Text, fits
from kabinet.openapi import problem_response
from kabinet.pages import principal_of
from kabinet_shipments import models as m
from kabinet_shipments.finance import Finance
from kabinet_shipments.forms import (
    After,
    Before,
    ContractId,
    CounterpartyId,
    DateFrom,
    DateTo,
    DebtEnd,
    DebtStart,
    InvoiceSort,
    InvoiceStatus,
    Late,
    OrderSort,
    OrderStatus,
    OrganizationId,
    Place,
    RequestStatus,
    Search,
    Size,
    query_params,
)
from kabinet_shipments.services import (
    CONTRACTS,
    FINANCE,
    INVOICES,
    REQUEST,
    SHIPMENTS,
    VIEW,
    NotFound,
    RequestRefused,
    ShipmentsService,
)
from kabinet_shipments.texts import refusal

if TYPE_CHECKING:
    from litestar.types import ControllerRouterHandler

    from kabinet.host import Host

Req = Request[Any, Any, Any]


class OrderOut(msgspec.Struct, kw_only=True):
    id: int
    number: str
    date: dt.datetime
    status: str
    origin: str
    destination: str
    cargo_name: str
    loading_date: dt.date | None
    """The day of loading in the production system's time zone."""
    delivery_planned: dt.date | None
    delivery_actual: dt.date | None
    loading_at: dt.datetime | None
    """The instant of loading (UTC) where the production system gave a time of day; None
    for a date only."""
    delivery_planned_at: dt.datetime | None
    delivery_actual_at: dt.datetime | None
    location: str
    location_at: dt.datetime | None
    cost: Decimal
    currency: str
    counterparty_id: int
    contract_id: int | None


class OrderPage(msgspec.Struct, kw_only=True):
    items: list[OrderOut]
    next: str | None
    previous: str | None
    counts: dict[str, int]


class ServiceOut(msgspec.Struct, kw_only=True):
    name: str
    quantity: Decimal
    amount: Decimal


class VehicleOut(msgspec.Struct, kw_only=True):
    kind: str
    plate: str
    driver: str
    driver_phone: str
    status: str


class DocumentOut(msgspec.Struct, kw_only=True):
    id: int
    kind: str
    number: str
    date: dt.date | None
    ready: bool
    url: str


class StatusOut(msgspec.Struct, kw_only=True):
    status: str
    received_at: dt.datetime


class RequestOut(msgspec.Struct, kw_only=True):
    id: int
    order_id: int
    kind: str
    status: str
    changes: dict[str, str]
    comment: str
    answer: str
    created_at: dt.datetime


class OrderDetail(OrderOut, kw_only=True):
    cargo_weight: Decimal | None
    cargo_volume: Decimal | None
    cargo_places: int | None
    shipper: str
    consignee: str
    counterparty_name: str
    contract_number: str | None
    history: list[StatusOut]
    services: list[ServiceOut]
    vehicles: list[VehicleOut]
    documents: list[DocumentOut]
    requests: list[RequestOut]


class InvoiceFileOut(msgspec.Struct, kw_only=True):
    """A file attached to an invoice in the production system (its print form)."""

    id: int
    name: str
    url: str
    """Download it here: 200 with the file, or 202 while it is fetched from 1C."""


class InvoiceOut(msgspec.Struct, kw_only=True):
    id: int
    number: str
    date: dt.date
    amount: Decimal
    paid: Decimal
    currency: str
    due_date: dt.date | None
    payment_status: str
    contract_id: int | None
    contract_number: str | None
    order_id: int | None
    order_number: str | None
    files: list[InvoiceFileOut] = msgspec.field(default_factory=list)
    """Its print forms (PDF) and any other file 1C attached to it."""


class InvoicePage(msgspec.Struct, kw_only=True):
    items: list[InvoiceOut]
    next: str | None
    previous: str | None


class ContractOut(msgspec.Struct, kw_only=True):
    id: int
    number: str
    date: dt.date
    status: str
    start_date: dt.date | None
    end_date: dt.date | None
    currency: str
    credit_limit: Decimal
    balance: Decimal | None
    balance_at: dt.datetime | None
    counterparty_name: str


class DebtRow(msgspec.Struct, kw_only=True):
    contract_id: int | None
    number: str
    currency: str
    period: Decimal
    overdue: Decimal


class DebtOut(msgspec.Struct, kw_only=True):
    start: dt.date
    end: dt.date
    period: Decimal
    overdue: Decimal
    contracts: list[DebtRow]


FieldName = Annotated[str, msgspec.Meta(max_length=64)]
"""The name of an order's field a request changes."""


class NewRequest(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    kind: Annotated[str, fits(m.request.c.kind)]
    changes: dict[FieldName, Annotated[str, fits(m.order.c.destination)]] = msgspec.field(
        default_factory=dict
    )
    comment: Text = ""


class Created(msgspec.Struct, kw_only=True):
    id: int
    status: str


def _svc(request: Req) -> ShipmentsService:
    host: Host = request.app.state["kabinet.host"]
    return host.services.of(SHIPMENTS)


def _fin(request: Req) -> Finance:
    host: Host = request.app.state["kabinet.host"]
    return host.services.of(FINANCE)


def _out(struct: type[Any], row: Any) -> Any:
    names = [f.name for f in msgspec.structs.fields(struct)]
    return struct(**{n: _aware(getattr(row, n)) for n in names})


def _aware(value: Any) -> Any:
    """A stored time with its zone (SQLite gives back naive UTC times)."""
    if isinstance(value, dt.datetime) and value.tzinfo is None:
        return value.replace(tzinfo=dt.UTC)
    return value


CURSOR_REFUSED = {
    422: problem_response(
        422,
        "A page cursor (after, before) of the right shape that this list did not give: "
        "problem details naming it; open the first page.",
    )
}


@get("/orders", access=permission(VIEW), responses=CURSOR_REFUSED)
async def list_orders(
    request: Req,
    status: OrderStatus = "",
    date_from: DateFrom = None,
    date_to: DateTo = None,
    origin: Place = "",
    destination: Place = "",
    q: Search = "",
    organization: OrganizationId = None,
    counterparty: CounterpartyId = None,
    contract: ContractId = None,
    late: Late = "",
    sort: OrderSort = "-date",
    size: Size = None,
    after: After = "",
    before: Before = "",
) -> OrderPage:
    """Orders in the caller's organizations: the registry's filters, sort and keyset page
    (a wrong parameter: 400 naming it)."""
    svc = _svc(request)
    query = svc.parse_orders(
        query_params(
            {
                "status": status,
                "date_from": date_from,
                "date_to": date_to,
                "origin": origin,
                "destination": destination,
                "q": q,
                "organization": organization,
                "counterparty": counterparty,
                "contract": contract,
                "late": late,
                "sort": sort,
                "size": size,
                "after": after,
                "before": before,
            }
        )
    )
    principal = principal_of(request.scope)
    page, _ = await svc.orders(principal, query)
    counts = await svc.tab_counts(principal, query)
    return OrderPage(
        items=[_out(OrderOut, r) for r in page.rows],
        next=page.next,
        previous=page.previous,
        counts={k or "all": v for k, v in counts.items()},
    )


@get("/orders/{order_id:int}", access=permission(VIEW))
async def get_order(request: Req, order_id: FromPath[int]) -> OrderDetail:
    """One order with its history, services, vehicles, documents and requests."""
    try:
        card = await _svc(request).order_card(principal_of(request.scope), order_id)
    except NotFound:
        raise NotFoundException(f"no order {order_id}") from None
    o = card["order"]
    base = {f.name: _aware(getattr(o, f.name)) for f in msgspec.structs.fields(OrderOut)}
    return OrderDetail(
        **base,
        cargo_weight=o.cargo_weight,
        cargo_volume=o.cargo_volume,
        cargo_places=o.cargo_places,
        shipper=o.shipper,
        consignee=o.consignee,
        counterparty_name=o.counterparty_name,
        contract_number=o.contract_number,
        history=[StatusOut(status=h.status, received_at=h.received_at) for h in card["history"]],
        services=[_out(ServiceOut, s) for s in card["services"]],
        vehicles=[_out(VehicleOut, v) for v in card["vehicles"]],
        documents=[
            DocumentOut(
                id=d["row"].id,
                kind=d["row"].kind,
                number=d["row"].number,
                date=d["row"].date,
                ready=d["stored"],
                url=f"/shipments/orders/{order_id}/documents/{d['row'].id}",
            )
            for d in card["documents"]
        ],
        requests=[_request_out(r["row"]) for r in card["requests"]],
    )


def _request_out(row: Any) -> RequestOut:
    return RequestOut(
        id=row.id,
        order_id=row.order_id,
        kind=row.kind,
        status=row.status,
        changes=dict(row.changes or {}),
        comment=row.comment,
        answer=row.answer,
        created_at=row.created_at,
    )


@post("/orders/{order_id:int}/requests", access=permission(REQUEST), status_code=HTTP_201_CREATED)
async def post_request(
    request: Req, order_id: FromPath[int], data: JSONBody[NewRequest]
) -> Created:
    """Ask to change (``kind=edit`` with ``changes``) or cancel an order; answered later."""
    try:
        request_id = await _svc(request).create_request(
            principal_of(request.scope),
            order_id,
            data.kind,
            changes=data.changes,
            comment=data.comment,
        )
    except NotFound:
        raise NotFoundException(f"no order {order_id}") from None
    except RequestRefused as exc:
        message = refusal(exc.code, "en")
        field = (
            f"changes.{exc.field}"
            if exc.code in ("field_not_allowed", "bad_date", "bad_int")
            else exc.field
        )
        status = 409 if exc.code.startswith(("order_", "open_")) else 422
        raise ClientException(
            detail=message, status_code=status, extra=[{"key": field, "message": message}]
        ) from None
    return Created(id=request_id, status="pending")


@get("/requests", access=permission(VIEW))
async def list_requests(request: Req, status: RequestStatus = "") -> list[RequestOut]:
    """The caller's organizations' edit and cancel requests, newest first."""
    rows = await _svc(request).requests(principal_of(request.scope), status=status)
    return [_request_out(r) for r in rows]


@get("/invoices", access=permission(INVOICES), responses=CURSOR_REFUSED)
async def list_invoices(
    request: Req,
    status: InvoiceStatus = "",
    date_from: DateFrom = None,
    date_to: DateTo = None,
    q: Search = "",
    organization: OrganizationId = None,
    counterparty: CounterpartyId = None,
    contract: ContractId = None,
    sort: InvoiceSort = "-date",
    size: Size = None,
    after: After = "",
    before: Before = "",
) -> InvoicePage:
    """Invoices in the caller's organizations: filters, sort and keyset page (a wrong
    parameter: 400 naming it)."""
    fin = _fin(request)
    query = fin.parse_invoices(
        query_params(
            {
                "status": status,
                "date_from": date_from,
                "date_to": date_to,
                "q": q,
                "organization": organization,
                "counterparty": counterparty,
                "contract": contract,
                "sort": sort,
                "size": size,
                "after": after,
                "before": before,
            }
        )
    )
    page, _ = await fin.invoices(principal_of(request.scope), query)
    files = await fin.print_forms([r.id for r in page.rows])
    return InvoicePage(
        items=[_invoice_out(r, files.get(r.id, [])) for r in page.rows],
        next=page.next,
        previous=page.previous,
    )


@get("/invoices/{invoice_id:int}", access=permission(INVOICES))
async def get_invoice(request: Req, invoice_id: FromPath[int]) -> InvoiceOut:
    fin = _fin(request)
    try:
        row = await fin.invoice(principal_of(request.scope), invoice_id)
    except NotFound:
        raise NotFoundException(f"no invoice {invoice_id}") from None
    return _invoice_out(row, (await fin.print_forms([row.id])).get(row.id, []))


class Preparing(msgspec.Struct, kw_only=True):
    """A file not stored yet: asked for from the production system."""

    status: str = "preparing"
    detail: str = "the file is being fetched from the production system; ask again later"


@get(
    "/invoices/{invoice_id:int}/files/{file_id:int}",
    access=permission(INVOICES),
    content_types=("*/*",),
    responses={
        202: ResponseSpec(
            data_container=Preparing,
            description="Being fetched from the production system: ask again after "
            "Retry-After seconds.",
        )
    },
)
async def get_invoice_file(request: Req, invoice_id: FromPath[int], file_id: FromPath[int]) -> Any:
    """A file of an invoice (its print form): the file when stored; else 202, asked for
    from the production system (ask again after ``Retry-After`` seconds)."""
    fin = _fin(request)
    try:
        row, key = await fin.invoice_file(principal_of(request.scope), invoice_id, file_id)
    except NotFound:
        raise NotFoundException(f"no file {file_id} of invoice {invoice_id}") from None
    if key is not None:
        return await fin.host.files.download(key, filename=row.file_name or None)
    return Response(Preparing(), status_code=HTTP_202_ACCEPTED, headers={"Retry-After": "5"})


def _invoice_out(row: Any, files: list[Any]) -> InvoiceOut:
    names = [f.name for f in msgspec.structs.fields(InvoiceOut) if f.name != "files"]
    return InvoiceOut(
        **{n: _aware(getattr(row, n)) for n in names},
        files=[
            InvoiceFileOut(
                id=f.id, name=f.file_name, url=f"/api/shipments/invoices/{row.id}/files/{f.id}"
            )
            for f in files
        ],
    )


@get("/debt", access=permission(INVOICES))
async def get_debt(request: Req, start: DebtStart = None, end: DebtEnd = None) -> DebtOut:
    """The debt per contract for ``start``..``end`` (default: this month) and overdue."""
    debt = await _fin(request).debt(principal_of(request.scope), start, end)
    return DebtOut(
        start=debt.start,
        end=debt.end,
        period=debt.period,
        overdue=debt.overdue,
        contracts=[
            DebtRow(
                contract_id=r.contract_id,
                number=r.number,
                currency=r.currency,
                period=r.period,
                overdue=r.overdue,
            )
            for r in debt.rows
        ],
    )


@get("/contracts", access=permission(CONTRACTS))
async def list_contracts(request: Req) -> list[ContractOut]:
    rows = await _fin(request).contracts(principal_of(request.scope))
    return [_out(ContractOut, r) for r in rows]


@get("/contracts/{contract_id:int}", access=permission(CONTRACTS))
async def get_contract(request: Req, contract_id: FromPath[int]) -> ContractOut:
    try:
        card = await _fin(request).contract_card(principal_of(request.scope), contract_id)
    except NotFound:
        raise NotFoundException(f"no contract {contract_id}") from None
    out: ContractOut = _out(ContractOut, card["contract"])
    return out


def routers() -> list[ControllerRouterHandler]:
    return [
        Router(
            "/api/shipments",
            route_handlers=[
                list_orders,
                get_order,
                post_request,
                list_requests,
                list_invoices,
                get_invoice,
                get_invoice_file,
                get_debt,
                list_contracts,
                get_contract,
            ],
            tags=["shipments"],
        )
    ]
