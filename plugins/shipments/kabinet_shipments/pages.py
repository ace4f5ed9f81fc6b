"""Pages under ``/shipments/``: the registries, the order and contract cards, requests.

Exporting a view (CSV, XLSX, background exports) is :mod:`kabinet_shipments.export_pages`;
:func:`routers` mounts both.

Thin routes: parse the URL into a query struct, call the services, render. A registry
request from htmx (``HX-Target: registry``) gets only the table part; any other gets the
whole page, so every view is also a plain link.
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Annotated, Any
from urllib.parse import urlencode

from litestar import Request, Response, Router, get, post
from litestar.exceptions import NotFoundException, ValidationException
from litestar.params import FromPath, QueryParameter

from kabinet.access import permission
from kabinet.forms import EMPTY_FORM, FieldError, FormView, form_view, read_form
from kabinet.htmx import htmx_of, redirect
from kabinet.pages import page, principal_of, shell_of
from kabinet.paging import Paging
from kabinet_shipments import labels
from kabinet_shipments.attached_files import invoice_file_key
from kabinet_shipments.finance import CARD_PAGE, Finance
from kabinet_shipments.forms import CHANGE_PREFIX, OrderRequestForm, changes_of
from kabinet_shipments.registry import (
    INVOICE_TABS,
    ORDER_SORTS,
    ORDER_TABS,
    QueryError,
    is_late,
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
from kabinet_shipments.settings import Settings
from kabinet_shipments.structs import OrderLink
from kabinet_shipments.texts import refusal, texts

if TYPE_CHECKING:
    from litestar.types import ControllerRouterHandler

Req = Request[Any, Any, Any]


def service(request: Req) -> ShipmentsService:
    return shell_of(request).host.services.of(SHIPMENTS)


def finance(request: Req) -> Finance:
    return shell_of(request).host.services.of(FINANCE)


def lang_of(request: Req) -> str:
    return shell_of(request).language(request)


def params_of(request: Req) -> dict[str, str]:
    return {k: v for k, v in request.query_params.items() if isinstance(v, str)}


def link(base: str, params: dict[str, str], **changes: str | None) -> str:
    """``base`` with the current parameters, changed; empty values and cursors dropped."""
    merged = {**params, **changes}
    if "after" not in changes and "before" not in changes:
        merged.pop("after", None)
        merged.pop("before", None)
    clean = {k: v for k, v in merged.items() if v}
    return f"{base}?{urlencode(clean)}" if clean else base


def bad_field(field: str, message: str) -> ValidationException:
    """A 400 whose problem details name ``field``."""
    return ValidationException(detail=message, extra=[{"key": field, "message": message}])


def bad_query(exc: QueryError) -> ValidationException:
    return bad_field(exc.field, exc.message)


def is_partial(request: Req) -> bool:
    """htmx asked for the registry's table alone (``HX-Target: registry``)."""
    hx = htmx_of(request)
    return bool(hx) and hx.target == "registry"


def count_label(value: int, bound: int) -> str:
    return f"{bound:,}+".replace(",", "\u00a0") if value > bound else str(value)


# -- the order registry ------------------------------------------------------------------------


def _registry_context(request: Req, query: Any, params: dict[str, str]) -> dict[str, Any]:
    svc = service(request)
    lang = lang_of(request)
    return {
        "t": texts(lang),
        "query": query,
        "params": params,
        "tabs": ORDER_TABS,
        "sorts": ORDER_SORTS,
        "sizes": svc.settings.page_sizes,
        "link": link,
        "status_label": lambda code: labels.label(labels.ORDER_STATUS, code, lang),
        "today": svc.today(),
        "is_late": is_late,
    }


def _parse(request: Req, params: dict[str, str]) -> Any:
    try:
        return service(request).parse_orders(params)
    except QueryError as exc:
        raise bad_query(exc) from exc


@get("/", access=permission(VIEW))
async def orders_page(request: Req) -> Response[str]:
    """The registry. The tab counts are not waited for: the tabs ask for them once the
    page (or the swapped table) is shown (``/shipments/counts``, htmx ``load``)."""
    svc = service(request)
    params = params_of(request)
    query = _parse(request, params)
    principal = principal_of(request.scope)
    everywhere = await svc.scope(principal, VIEW)
    scope = everywhere
    if query.organization is not None:
        scope = await svc.scope(principal, VIEW, query.organization)
    page_, _ = await svc.orders(principal, query, with_names=True, scope=scope)
    partial = is_partial(request)
    context = _registry_context(request, query, params)
    context.update(
        page=page_,
        counts=None,
        many=everywhere.several,
        choices=None if partial else await svc.choices(everywhere, scope),
        last_update=await svc.last_update(),
    )
    if not partial:
        context["plugin_links"] = await _links(request, "shipments_orders_links")
    template = "shipments/_orders.html" if partial else "shipments/orders.html"
    return await page(request, template, **context)


@get("/counts", access=permission(VIEW))
async def order_counts(request: Req) -> Response[str]:
    """The status tabs' counts (a fragment the registry loads after the table)."""
    svc = service(request)
    params = params_of(request)
    query = _parse(request, params)
    counts = await svc.tab_counts(principal_of(request.scope), query)
    context = _registry_context(request, query, params)
    bound = svc.settings.count_bound
    context["counts"] = {k: count_label(v, bound) for k, v in counts.items()}
    return await page(request, "shipments/_counts.html", **context)


# -- the order card ----------------------------------------------------------------------------


async def _card(
    request: Req,
    order_id: int,
    *,
    status: int = 200,
    form: FormView | None = None,
) -> Response[str]:
    lang = lang_of(request)
    try:
        card = await service(request).order_card(principal_of(request.scope), order_id)
    except NotFound:
        raise NotFoundException(f"no order {order_id}") from None
    o = card["order"]
    return await page(
        request,
        "shipments/order.html",
        status_code=status,
        t=texts(lang),
        c=card,
        o=o,
        L=labels,
        lang=lang,
        late=is_late(o.status, o.delivery_planned, service(request).today()),
        form=form or EMPTY_FORM,
        print_forms=await finance(request).print_forms([i.id for i in card["invoices"]]),
        plugin_links=await _links(request, "shipments_order_links", order_id=order_id),
    )


async def _links(request: Req, hook: str, **where: Any) -> list[OrderLink]:
    """What other plugins offer on a page: ``shipments_order_links`` on an order's card,
    ``shipments_orders_links`` on the registry."""
    host = shell_of(request).host
    found = await host.plugins.acall(
        hook, host=host, principal=principal_of(request.scope), lang=lang_of(request), **where
    )
    return [link for result in found for link in (result.value or ())]


@get("/orders/{order_id:int}", access=permission(VIEW))
async def order_page(request: Req, order_id: FromPath[int]) -> Response[str]:
    return await _card(request, order_id)


@get("/orders/{order_id:int}/documents/{document_id:int}", access=permission(VIEW))
async def document_file(request: Req, order_id: FromPath[int], document_id: FromPath[int]) -> Any:
    svc = service(request)
    try:
        doc, key = await svc.document(principal_of(request.scope), order_id, document_id)
    except NotFound:
        raise NotFoundException(f"no document {document_id}") from None
    if key is not None:
        return await svc.host.files.download(key, filename=doc.file_name or None)
    return redirect(
        request,
        f"/shipments/orders/{order_id}",
        flash=texts(lang_of(request))["preparing_long"],
        category="info",
    )


_CHANGE_CODES = ("field_not_allowed", "bad_date", "bad_int")
"""Refusals of a change asked for (the field is the order's: the form's ``new_<field>``)."""


def _refused(exc: RequestRefused, lang: str) -> FieldError:
    """The service's refusal as the form's: its message, the form key, its status."""
    change = exc.code in _CHANGE_CODES or (exc.code == "too_long" and exc.field != "comment")
    return FieldError(
        refusal(exc.code, lang),
        f"{CHANGE_PREFIX}{exc.field}" if change else exc.field or None,
        status=409 if exc.code.startswith(("order_", "open_")) else 422,
    )


@post("/orders/{order_id:int}/requests", access=permission(REQUEST))
async def create_request(request: Req, order_id: FromPath[int]) -> Response[str]:
    lang = lang_of(request)
    try:
        data = await read_form(request, OrderRequestForm)
        await service(request).create_request(
            principal_of(request.scope),
            order_id,
            data.kind,
            changes=changes_of(await request.form()),
            comment=data.comment,
        )
    except NotFound:
        raise NotFoundException(f"no order {order_id}") from None
    except RequestRefused as exc:
        error = _refused(exc, lang)
        form = await form_view(request, error)
        return await _card(request, order_id, status=error.status, form=form)
    return redirect(request, f"/shipments/orders/{order_id}", flash=texts(lang)["request_sent"])


# -- invoices and contracts --------------------------------------------------------------------


def _period(params: dict[str, str]) -> tuple[dt.date | None, dt.date | None]:
    found: list[dt.date | None] = []
    for key in ("debt_from", "debt_to"):
        value = params.get(key, "")
        try:
            found.append(dt.date.fromisoformat(value) if value else None)
        except ValueError:
            message = f"{key}: a date YYYY-MM-DD is expected"
            raise ValidationException(
                detail=message, extra=[{"key": key, "message": message}]
            ) from None
    return found[0], found[1]


@get("/invoices", access=permission(INVOICES))
async def invoices_page(request: Req) -> Response[str]:
    fin = finance(request)
    params = params_of(request)
    try:
        query = fin.parse_invoices(params)
    except QueryError as exc:
        raise bad_query(exc) from exc
    # one period: the registry's dates are also the debt's (no second pair of fields)
    principal = principal_of(request.scope)
    page_, scope = await fin.invoices(principal, query, with_names=True)
    counts = await fin.invoice_counts(principal, query)
    lang = lang_of(request)
    context: dict[str, Any] = {
        "t": texts(lang),
        "query": query,
        "params": params,
        "page": page_,
        "counts": {
            k: count_label(v, fin.shipments.settings.count_bound) for k, v in counts.items()
        },
        "tabs": INVOICE_TABS,
        "sizes": fin.shipments.settings.page_sizes,
        "link": link,
        "status_label": lambda code: labels.label(labels.PAYMENT_STATUS, code, lang),
        "many": scope.several,
        "debt": await fin.debt(
            principal, query.date_from, query.date_to, organization_id=query.organization
        ),
        "today": fin.shipments.today(),
        "last_update": await fin.shipments.last_update(),
        "print_forms": await fin.print_forms([r.id for r in page_.rows]),
    }
    template = "shipments/_invoices.html" if is_partial(request) else "shipments/invoices.html"
    return await page(request, template, **context)


@get("/invoices/{invoice_id:int}", access=permission(INVOICES))
async def invoice_page(request: Req, invoice_id: FromPath[int]) -> Response[str]:
    """An invoice's card: its sums, due date and payment, its order and contract."""
    fin = finance(request)
    try:
        row = await fin.invoice(principal_of(request.scope), invoice_id)
    except NotFound:
        raise NotFoundException(f"no invoice {invoice_id}") from None
    lang = lang_of(request)
    today = fin.shipments.today()
    overdue = row.payment_status != "paid" and row.due_date is not None and row.due_date < today
    files = (await fin.print_forms([row.id])).get(row.id, [])
    stored = [await fin.host.files.exists(invoice_file_key(f.file_ref)) for f in files]
    return await page(
        request,
        "shipments/invoice.html",
        t=texts(lang),
        i=row,
        L=labels,
        lang=lang,
        payment="overdue" if overdue else row.payment_status,
        remaining=max(row.amount - row.paid, 0),
        files=[{"row": f, "stored": ok} for f, ok in zip(files, stored, strict=True)],
    )


@get("/invoices/{invoice_id:int}/files/{file_id:int}", access=permission(INVOICES))
async def invoice_file(request: Req, invoice_id: FromPath[int], file_id: FromPath[int]) -> Any:
    """A file attached to an invoice (its print form): downloaded when stored, else asked
    for from the production system (back to the card, saying so)."""
    fin = finance(request)
    try:
        row, key = await fin.invoice_file(principal_of(request.scope), invoice_id, file_id)
    except NotFound:
        raise NotFoundException(f"no file {file_id} of invoice {invoice_id}") from None
    if key is not None:
        return await fin.host.files.download(key, filename=row.file_name or None)
    return redirect(
        request,
        f"/shipments/invoices/{invoice_id}",
        flash=texts(lang_of(request))["preparing_long"],
        category="info",
    )


CARD_PAGE_MAX = 100_000
"""The last page of a contract card's list asked for (beyond: 400 naming it)."""
InvoicesPage = Annotated[
    int,
    QueryParameter(
        name="invoices_page",
        required=False,
        ge=1,
        le=CARD_PAGE_MAX,
        description="The page of the contract's invoices, from 1.",
    ),
]
OrdersPage = Annotated[
    int,
    QueryParameter(
        name="orders_page",
        required=False,
        ge=1,
        le=CARD_PAGE_MAX,
        description="The page of the contract's orders, from 1.",
    ),
]


@get("/contracts", access=permission(CONTRACTS))
async def contracts_page(request: Req) -> Response[str]:
    lang = lang_of(request)
    rows = await finance(request).contracts(principal_of(request.scope))
    return await page(
        request, "shipments/contracts.html", t=texts(lang), rows=rows, L=labels, lang=lang
    )


@get("/contracts/{contract_id:int}", access=permission(CONTRACTS))
async def contract_page(
    request: Req,
    contract_id: FromPath[int],
    invoices_no: InvoicesPage = 1,
    orders_no: OrdersPage = 1,
) -> Response[str]:
    """A contract's card: its debt for a period, and its invoices and orders, each list
    paged on its own (``invoices_page``, ``orders_page``)."""
    lang = lang_of(request)
    params = params_of(request)
    start, end = _period(params)
    invoices = Paging.of(
        request, invoices_no, size=CARD_PAGE, param="invoices_page", anchor="contract-invoices"
    )
    orders = Paging.of(
        request, orders_no, size=CARD_PAGE, param="orders_page", anchor="contract-orders"
    )
    try:
        card = await finance(request).contract_card(
            principal_of(request.scope),
            contract_id,
            start,
            end,
            invoices_page=invoices.page,
            orders_page=orders.page,
        )
    except NotFound:
        raise NotFoundException(f"no contract {contract_id}") from None
    return await page(
        request,
        "shipments/contract.html",
        t=texts(lang),
        c=card,
        print_forms=await finance(request).print_forms([i.id for i in card["invoices"]]),
        k=card["contract"],
        L=labels,
        lang=lang,
        params=params,
        link=link,
        invoices_paging=invoices.counted(card["invoices_total"]),
        orders_paging=orders.counted(card["orders_total"]),
    )


# -- the home panel ------------------------------------------------------------------------------


async def home_panel(request: Req, host: Any, lang: str, **context: Any) -> str:
    """The client's organization at a glance, on the portal's home page."""
    principal = principal_of(request.scope)
    summary = await host.services.of(FINANCE).home(principal)
    shell = shell_of(request)
    ctx = shell.context(request)
    ctx.update(
        t=texts(lang),
        s=summary,
        L=labels,
        lang=lang,
        tabs=ORDER_TABS,
        bound=host.plugin_settings("shipments", Settings).count_bound,
        count_label=count_label,
    )
    html: str = await shell.env.get_template("shipments/_home.html").render_async(ctx)
    return html


def routers() -> list[ControllerRouterHandler]:
    # Imported here: export_pages uses this module's helpers (link, params_of, bad_query).
    from kabinet_shipments.export_pages import (
        export_csv,
        export_file,
        export_page,
        export_status,
        export_xlsx,
        start_export,
    )

    return [
        Router(
            "/shipments",
            route_handlers=[
                orders_page,
                order_counts,
                export_csv,
                export_xlsx,
                start_export,
                export_page,
                export_status,
                export_file,
                order_page,
                document_file,
                create_request,
                invoices_page,
                invoice_page,
                invoice_file,
                contracts_page,
                contract_page,
            ],
            include_in_schema=False,
        )
    ]
