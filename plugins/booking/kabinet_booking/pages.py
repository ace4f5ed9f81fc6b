"""Pages of the booking app (under /booking/), in the shell: "My requests", the new-order
form (drafts kept as the person works, templates, "repeat"), a request's card with its
history, the managers' review and staff acceptance, and the address book."""

from __future__ import annotations

from typing import Annotated, Any, Literal

import msgspec
from litestar import Request, Response, Router, get, post
from litestar.datastructures import UploadFile
from litestar.params import FromPath, QueryParameter

from kabinet.access import permission
from kabinet.forms import FieldError, form_view, read_form
from kabinet.htmx import redirect
from kabinet.pages import page, principal_of, shell_of
from kabinet.paging import PageNo, Paging
from kabinet_booking import places as book
from kabinet_booking import review as rv
from kabinet_booking.forms import OrderFields, check
from kabinet_booking.services import (
    ACCEPT,
    BOOKING,
    CREATE,
    EDITABLE,
    LISTED,
    REVIEW,
    STATES,
    VIEW,
    BookingService,
)
from kabinet_booking.texts import text_for

Req = Request[Any, Any, Any]
State = Annotated[str, QueryParameter(name="state")]


class Action(msgspec.Struct, kw_only=True):
    action: Literal["save", "send", "template"] = "save"
    template_name: Annotated[str, msgspec.Meta(max_length=200)] = ""
    request_id: int | None = None
    """The draft the form already saved as the person typed (a new form's autosave)."""


class Review(msgspec.Struct, kw_only=True):
    decision: Literal["accept", "return"]
    comment: Annotated[str, msgspec.Meta(max_length=2000)] = ""


class PlaceForm(msgspec.Struct, kw_only=True):
    organization_id: int
    name: Annotated[str, msgspec.Meta(max_length=200)] = ""
    address: Annotated[str, msgspec.Meta(max_length=300)] = ""
    contact_name: Annotated[str, msgspec.Meta(max_length=200)] = ""
    contact_phone: Annotated[str, msgspec.Meta(max_length=40)] = ""


def svc(request: Req) -> BookingService:
    return shell_of(request).host.services.of(BOOKING)


def texts(request: Req) -> dict[str, str]:
    return text_for(shell_of(request).language(request))


def values_of(fields: OrderFields) -> dict[str, Any]:
    """The fields as the form shows them (texts; a list for the services)."""
    found: dict[str, Any] = {}
    for name, value in msgspec.structs.asdict(fields).items():
        if isinstance(value, list):
            found[name] = [str(v) for v in value]
        elif value is None:
            found[name] = ""
        elif hasattr(value, "strftime") and not hasattr(value, "year"):
            found[name] = value.strftime("%H:%M")
        else:
            found[name] = str(value)
    return found


async def show_form(
    request: Req,
    *,
    request_id: int | None = None,
    values: dict[str, Any] | None = None,
    error: FieldError | None = None,
    status: int = 200,
) -> Response[Any]:
    service = svc(request)
    principal = principal_of(request.scope)
    lang = shell_of(request).language(request)
    chosen = str((values or {}).get("contract_id", ""))
    choices = await service.choices(
        principal, lang, contract_id=int(chosen) if chosen.isdigit() else None
    )
    contracts = await service.contracts(principal)
    orgs = sorted({c.organization_id for c in contracts})
    async with service.host.db.session() as session:
        saved = [p for o in orgs for p in await book.places(service, session, principal, o, CREATE)]
        kept = [
            t for o in orgs for t in await book.templates(service, session, principal, o, CREATE)
        ]
    if error is not None:
        form = await form_view(request, error, values=values)
    elif values is not None:
        form = await form_view(request, None, values=values)
    else:
        form = None
    return await page(
        request,
        "booking/form.html",
        status_code=status,
        t=texts(request),
        form=form,
        request_id=request_id,
        rules=service.rules(),
        contracts=sorted(choices.contracts.items(), key=lambda kv: kv[1]),
        more_contracts=choices.more_contracts,
        listed=LISTED,
        vehicle_pairs=[(v, v) for v in choices.vehicle_types],
        services=list(choices.services),
        service_pairs=[(v, v) for v in choices.services],
        places=saved,
        templates=kept,
    )


@get("/contracts", access=permission(CREATE), include_in_schema=False)
async def contract_options(
    request: Req,
    q: Annotated[str, QueryParameter(name="q", max_length=200)] = "",
    contract_id: Annotated[int | None, QueryParameter(name="contract_id", ge=1)] = None,
) -> Response[Any]:
    """htmx, as a person with more contracts than the form lists types: the options of
    the contract list, those whose number or counterparty's name holds ``q`` (at most
    as many as the form lists), the one chosen kept chosen."""
    service = svc(request)
    principal = principal_of(request.scope)
    found = await service.contracts(principal, search=q, limit=LISTED)
    if contract_id is not None and all(c.id != contract_id for c in found):
        found = await service.contracts(principal, ids=[contract_id]) + found
    return await page(
        request,
        "booking/_contract_options.html",
        t=texts(request),
        contracts=[(c.id, c.label) for c in found],
        chosen=contract_id,
    )


@get("/", access=permission(VIEW), include_in_schema=False)
async def index(request: Req, wanted: State = "", page_no: PageNo = 1) -> Response[Any]:
    """My requests: every request of the person's organizations, filtered by state."""
    service = svc(request)
    principal = principal_of(request.scope)
    state = wanted
    if state and state not in STATES:
        raise FieldError("Choose one of the offered values.", "state")
    paging = Paging.of(request, page_no, size=service.settings.page_size)
    async with service.host.db.session() as session:
        found, total = await service.requests(
            session, principal, state=state, limit=paging.limit, offset=paging.offset
        )
        counts = await service.counts(session, principal)
    return await page(
        request,
        "booking/index.html",
        fragment="booking/_list.html",
        t=texts(request),
        items=found,
        counts=counts,
        states=STATES,
        state=state,
        paging=paging.counted(total),
        may_create=bool(await service.host.access.organizations(principal, CREATE)),
    )


@get("/new", access=permission(CREATE), include_in_schema=False)
async def new(
    request: Req,
    template: Annotated[int | None, QueryParameter(name="template")] = None,
    from_request: Annotated[int | None, QueryParameter(name="from_request")] = None,
    from_order: Annotated[int | None, QueryParameter(name="from_order")] = None,
) -> Response[Any]:
    """The form, empty or filled from a template, a request or an order ("repeat")."""
    service = svc(request)
    principal = principal_of(request.scope)
    fields: OrderFields | None = None
    async with service.host.db.session() as session:
        if template is not None:
            fields = (await book.template(service, session, principal, template, CREATE)).fields
        elif from_request is not None:
            fields = (await service.get(session, principal, from_request, CREATE)).fields
        elif from_order is not None:
            fields = await service.from_order(principal, from_order)
    if fields is not None:
        fields = msgspec.structs.replace(fields, loading_date=None, delivery_date=None)
    return await show_form(request, values=values_of(fields) if fields else None)


async def _post_form(request: Req, request_id: int | None) -> Response[Any]:
    service = svc(request)
    principal = principal_of(request.scope)
    t = texts(request)
    lang = shell_of(request).language(request)
    try:
        action = await read_form(request, Action)
        if request_id is None:
            request_id = action.request_id
        fields = await read_form(request, OrderFields)
        async with service.host.db.session() as session:
            if action.action == "template":
                request_id = await service.save(session, principal, fields, request_id=request_id)
                found = await service.get(session, principal, request_id)
                await book.save_template(
                    service,
                    session,
                    principal,
                    found.organization_id,
                    action.template_name,
                    fields,
                )
            else:
                request_id = await service.save(session, principal, fields, request_id=request_id)
            for upload in (await request.form()).getall("attachments", []):
                if isinstance(upload, UploadFile) and upload.filename:
                    content = await upload.read()
                    if content:
                        await book.attach(
                            service,
                            session,
                            principal,
                            request_id,
                            upload.filename,
                            content,
                            upload.content_type,
                        )
        if action.action == "send":
            choices = await service.choices(principal, lang, contract_id=fields.contract_id)
            async with service.host.db.session() as session:
                await service.send(session, principal, request_id, choices)
            return redirect(request, f"/booking/{request_id}", flash=t["sent_ok"])
    except FieldError as exc:
        return await show_form(request, request_id=request_id, error=exc, status=exc.status)
    flash = t["template_saved"] if action.action == "template" else t["draft_saved"]
    return redirect(request, f"/booking/{request_id}/edit", flash=flash)


@post("/new", access=permission(CREATE), include_in_schema=False)
async def create(request: Req) -> Response[Any]:
    return await _post_form(request, None)


@get("/{request_id:int}/edit", access=permission(CREATE), include_in_schema=False)
async def edit(request: Req, request_id: FromPath[int]) -> Response[Any]:
    service = svc(request)
    async with service.host.db.session() as session:
        found = await service.get(session, principal_of(request.scope), request_id, CREATE)
    if found.state not in EDITABLE:
        return redirect(request, f"/booking/{request_id}")
    return await show_form(request, request_id=request_id, values=values_of(found.fields))


@post("/{request_id:int}/edit", access=permission(CREATE), include_in_schema=False)
async def update(request: Req, request_id: FromPath[int]) -> Response[Any]:
    return await _post_form(request, request_id)


@post("/autosave", access=permission(CREATE), include_in_schema=False)
async def autosave(request: Req) -> Response[Any]:
    """htmx, as the person types: keep the draft (the first change of a new form makes it,
    and the form is told its id), answer the errors sending would meet."""
    service = svc(request)
    principal = principal_of(request.scope)
    lang = shell_of(request).language(request)
    request_id: int | None = None
    try:
        draft = await read_form(request, Action)
        request_id = draft.request_id
        fields = await read_form(request, OrderFields)
    except FieldError as exc:  # a value of a wrong type: said beside its field
        errors = exc.errors
    else:
        try:
            async with service.host.db.session() as session:
                request_id = await service.save(session, principal, fields, request_id=request_id)
        except FieldError as exc:
            if exc.status != 400:  # another company's request, one sent meanwhile
                raise
            errors = exc.errors  # not yet a draft: no contract chosen among several
        else:
            choices = await service.choices(principal, lang, contract_id=fields.contract_id)
            errors = check(fields, service.rules(), choices, today=service.today())
    return await page(
        request,
        "booking/_status.html",
        t=texts(request),
        errors=[(e.field or "", e.text(lang)) for e in errors],
        now=service.now(),
        request_id=request_id,
    )


@get("/{request_id:int}", access=permission(VIEW), include_in_schema=False)
async def card(request: Req, request_id: FromPath[int]) -> Response[Any]:
    service = svc(request)
    principal = principal_of(request.scope)
    access = service.host.access
    async with service.host.db.session() as session:
        found = await service.get(session, principal, request_id)
    if found.state == "accepted" and found.order_key and found.order_id is None:
        # 1C accepted it before the order it made arrived: found now by its key, if here
        async with service.host.db.session() as session:
            made = await rv.link_order(service, session, request_id)
        if made is not None:
            found.order_id, found.order_number = made
    org = found.organization_id
    wanted = found.fields.contract_id
    found_contracts = (
        [] if wanted is None else await service.contracts(principal, VIEW, ids=[wanted])
    )
    contract = next(iter(found_contracts), None)
    return await page(
        request,
        "booking/card.html",
        t=texts(request),
        r=found,
        contract=contract.label if contract else "",
        rules=service.rules(),
        may_edit=found.state in EDITABLE and await access.can(principal, CREATE, org),
        may_cancel=await access.can(principal, CREATE, org),
        may_review=found.state == "under_review" and await access.can(principal, REVIEW, org),
        may_accept=found.state == "sent" and await access.can(principal, ACCEPT, org),
    )


@post("/{request_id:int}/cancel", access=permission(CREATE), include_in_schema=False)
async def cancel(request: Req, request_id: FromPath[int]) -> Response[Any]:
    service = svc(request)
    async with service.host.db.session() as session:
        await service.cancel(session, principal_of(request.scope), request_id)
    return redirect(request, f"/booking/{request_id}", flash=texts(request)["cancelled_ok"])


@post("/{request_id:int}/review", access=permission(REVIEW), include_in_schema=False)
async def review(request: Req, request_id: FromPath[int]) -> Response[Any]:
    service = svc(request)
    data = await read_form(request, Review)
    async with service.host.db.session() as session:
        await rv.review(
            service,
            session,
            principal_of(request.scope),
            request_id,
            accept=data.decision == "accept",
            comment=data.comment,
        )
    t = texts(request)
    done = t["accepted_ok"] if data.decision == "accept" else t["returned_ok"]
    return redirect(request, f"/booking/{request_id}", flash=done)


@post("/{request_id:int}/accept", access=permission(ACCEPT), include_in_schema=False)
async def accept(request: Req, request_id: FromPath[int]) -> Response[Any]:
    """Staff, without a production system: accept as 1C would (the order is created)."""
    service = svc(request)
    async with service.host.db.session() as session:
        await rv.accept_in_portal(service, session, principal_of(request.scope), request_id)
    return redirect(request, f"/booking/{request_id}", flash=texts(request)["accepted_ok"])


@get(
    "/{request_id:int}/files/{attachment_id:int}", access=permission(VIEW), include_in_schema=False
)
async def attachment_file(
    request: Req, request_id: FromPath[int], attachment_id: FromPath[int]
) -> Any:
    service = svc(request)
    async with service.host.db.session() as session:
        row = await book.attachment(
            service, session, principal_of(request.scope), request_id, attachment_id
        )
    return await service.host.files.download(row.key, filename=row.name)


@get("/places", access=permission(VIEW), include_in_schema=False)
async def places_page(request: Req) -> Response[Any]:
    return await _places(request)


async def _places(request: Req, error: FieldError | None = None) -> Response[Any]:
    service = svc(request)
    principal = principal_of(request.scope)
    orgs = await service.host.access.organizations(principal, VIEW)
    mine = sorted(orgs) if isinstance(orgs, (set, frozenset)) else []
    async with service.host.db.session() as session:
        found = [p for o in mine for p in await book.places(service, session, principal, o)]
    names = dict(await service.organization_names(principal))
    return await page(
        request,
        "booking/places.html",
        status_code=error.status if error else 200,
        t=texts(request),
        places=found,
        organizations=mine,
        org_options=[(o, names.get(o, str(o))) for o in mine],
        form=await form_view(request, error) if error else None,
    )


@post("/places", access=permission(CREATE), include_in_schema=False)
async def place_save(request: Req) -> Response[Any]:
    service = svc(request)
    try:
        data = await read_form(request, PlaceForm)
        async with service.host.db.session() as session:
            await book.save_place(
                service,
                session,
                principal_of(request.scope),
                data.organization_id,
                name=data.name,
                address=data.address,
                contact_name=data.contact_name,
                contact_phone=data.contact_phone,
            )
    except FieldError as exc:
        return await _places(request, exc)
    return redirect(request, "/booking/places", flash=texts(request)["place_saved"])


async def home_panel(request: Req, host: Any, lang: str, **context: Any) -> str:
    """Counts of the person's requests on the portal's home page."""
    service = host.services.of(BOOKING)
    async with host.db.session() as session:
        counts = await service.counts(session, principal_of(request.scope))
    shell = shell_of(request)
    ctx = shell.context(request)
    ctx.update(t=text_for(lang), counts=counts, states=STATES)
    html: str = await shell.env.get_template("booking/_home.html").render_async(ctx)
    return html


def router() -> Router:
    from kabinet_booking.import_pages import HANDLERS

    return Router(
        path="/booking",
        route_handlers=[
            *HANDLERS,
            index,
            contract_options,
            new,
            create,
            edit,
            update,
            autosave,
            card,
            cancel,
            review,
            accept,
            attachment_file,
            places_page,
            place_save,
        ],
    )
