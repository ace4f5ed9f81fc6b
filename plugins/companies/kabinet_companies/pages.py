"""Pages of the companies app: registration, the person's companies, staff tables and cards.

Thin routes: read the form, call the services, redirect with a flash or render the form
again with each field's error (nothing typed is lost). Texts are in :mod:`.texts`.
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any

from litestar import Request, Response, Router, get, post
from litestar.enums import ScopeType
from litestar.exceptions import NotFoundException
from litestar.middleware import ASGIMiddleware
from litestar.params import FromPath, FromQuery
from litestar.status_codes import HTTP_303_SEE_OTHER

from kabinet.access import ALL_MINE, ORG_COOKIE, Principal, permission, public, signed_in
from kabinet.identity.errors import IdentityError, RateLimited
from kabinet.identity.middleware import address_of
from kabinet.inputs import whole_number
from kabinet.pages import flash, is_staff, page, picker_source, principal_of, safe_next, shell_of
from kabinet.roles.services import RoleError
from kabinet_companies.picker import organization_name
from kabinet_companies.registration import FormErrors
from kabinet_companies.requests import DECIDE, STATUSES
from kabinet_companies.services import (
    ASSIGN,
    CONTACTS_MANAGE,
    CONTACTS_VIEW,
    COUNTERPARTIES,
    CREATE,
    MANAGE,
    VIEW,
    CompaniesService,
    companies,
)
from kabinet_companies.texts import text, texts
from kabinet_companies.validation import CompanyError

if TYPE_CHECKING:
    from litestar.types import ASGIApp, Receive, Scope, Send

    from kabinet.host import Host

Req = Request[Any, Any, Any]
CONSENT = "companies.consent.manage"
PAGE_SIZE = 50
OPEN_PATHS = (
    "/companies/register",
    "/companies/consent",
    "/companies/invitation",
    "/logout",
    "/login",
    "/static/",
    "/health",
    "/ready",
    "/shell/language",
)


def svc(request: Req) -> CompaniesService:
    return companies(shell_of(request).host)


def me(request: Req) -> Principal:
    return principal_of(request.scope)


def my_id(request: Req) -> int:
    person = me(request).person_id
    assert person is not None
    return person


def redirect(location: str) -> Response[str]:
    return Response("", status_code=HTTP_303_SEE_OTHER, headers={"Location": location})


async def form(request: Req) -> dict[str, str]:
    data = await request.form()
    return {k: v for k, v in data.items() if isinstance(v, str)}


def lang(request: Req) -> str:
    return shell_of(request).language(request)


def tr(request: Req, message: str) -> str:
    return text(message, lang(request))


def _int(value: str | None, field: str = "id") -> int | None:
    """An id from a form or the query: ``None`` when empty or not a number; a number no
    row can have is refused naming ``field`` (a 400)."""
    value = (value or "").strip()
    if not value.isdigit():
        return None
    return whole_number(value, field, minimum=1)


async def render(
    request: Req, template: str, *, status_code: int = 200, **ctx: Any
) -> Response[str]:
    return await page(request, template, status_code=status_code, t=texts(lang(request)), **ctx)


# -- the gate: confirm contacts first, agree to a new consent ------------------------------


class GateMiddleware(ASGIMiddleware):
    """A self-registered person does nothing before confirming e-mail and phone, and
    nothing after a new consent version before agreeing to it."""

    scopes = (ScopeType.HTTP,)

    def __init__(self, host: Host) -> None:
        self.host = host

    async def handle(self, scope: Scope, receive: Receive, send: Send, next_app: ASGIApp) -> None:
        principal = principal_of(scope)
        path: str = scope["path"]
        if (
            principal.person_id is None
            or principal.kind != "person"
            or path.startswith(OPEN_PATHS)
            or path == "/"
        ):
            await next_app(scope, receive, send)
            return
        version = int(getattr(principal, "version", 0))
        where = await companies(self.host).registration.gate(principal.person_id, version)
        if where is None:
            await next_app(scope, receive, send)
            return
        target = "/companies/register/confirm" if where == "confirm" else "/companies/consent"
        if path.startswith("/api/"):
            body = (
                b'{"type":"about:blank","title":"Access denied","status":403,'
                b'"detail":"Confirm your e-mail and phone (or agree to the new consent) first."}'
            )
            await _answer(send, 403, [(b"content-type", b"application/problem+json")], body)
            return
        await _answer(send, 303, [(b"location", target.encode())], b"")


async def _answer(send: Send, status: int, headers: list[tuple[bytes, bytes]], body: bytes) -> None:
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body, "more_body": False})


# -- the header's organization switch (a panel in the shell's slot) -------------------------


async def organization_switch(request: Req, host: Host, lang: str, **_: Any) -> str:
    principal = principal_of(request.scope)
    if principal.person_id is None:
        return ""
    service = companies(host)
    mine = await service.organizations_of(principal.person_id)
    if not mine:
        return ""
    current = await service.current_organization(principal.person_id, principal.working_in)
    shell = shell_of(request)
    env = shell.env
    return await env.get_template("companies/_switch.html").render_async(
        mine=mine,
        current=current,
        all_mine=ALL_MINE,
        t=texts(lang),
        csrf_field="csrf_token",
        csrf_token=shell.csrf.token(request),
        next=request.url.path,
    )


async def signup_link(request: Req, host: Host, lang: str, **_: Any) -> str:
    """The shell's "Register" button (home and sign-in pages), for people not signed in."""
    if principal_of(request.scope).is_authenticated:
        return ""
    template = shell_of(request).env.get_template("companies/_signup.html")
    return await template.render_async(t=texts(lang))


def back_to_list(path: str) -> str:
    """Where to land after switching company on ``path``: the page itself, or, on one
    object's card (a path with an id: ``/shipments/orders/318``), the list it belongs to,
    since the card is another company's object after the switch."""
    parts = path.split("/")
    for index, part in enumerate(parts):
        if part.isdigit():
            return "/".join(parts[:index]) or "/"
    return path


@post("/current", access=signed_in, include_in_schema=False)
async def switch_organization(request: Req) -> Response[str]:
    """The header's switch: a plain form post answered by a 303 back to the page, which the
    browser loads whole (header included) with the new choice; never an htmx swap."""
    data = await form(request)
    value = (data.get("organization") or "").strip()
    chosen = None
    if value != ALL_MINE:
        number = _int(value, "organization")
        chosen = await svc(request).current_organization(my_id(request), number)
    response = redirect(back_to_list(safe_next(data.get("next"))))
    if chosen is None:  # all my companies (also what an id not theirs falls back to)
        response.delete_cookie(ORG_COOKIE, path="/")
    else:
        response.set_cookie(ORG_COOKIE, str(chosen), httponly=True, samesite="lax", path="/")
    return response


# -- step 1: registration -------------------------------------------------------------------


def _form_errors(request: Req, exc: FormErrors) -> dict[str, str]:
    return {k: tr(request, v) for k, v in exc.errors.items()}


@get("/register", access=public, include_in_schema=False)
async def register_page(request: Req) -> Response[str]:
    consent = await svc(request).registration.consent()
    return await render(request, "companies/register.html", values={}, errors={}, consent=consent)


@post("/register", access=public, include_in_schema=False)
async def register(request: Req) -> Response[str]:
    data = await form(request)
    reg = svc(request).registration
    try:
        await reg.register(
            full_name=data.get("full_name", ""),
            email=data.get("email", ""),
            phone=data.get("phone", ""),
            password=data.get("password", ""),
            password2=data.get("password2", ""),
            agreed=data.get("consent") == "yes",
            address=address_of(request.scope),
            language=shell_of(request).language(request),
        )
    except (FormErrors, IdentityError) as exc:
        if isinstance(exc, FormErrors):
            errors = _form_errors(request, exc)
        else:
            errors = {exc.field or "email": tr(request, exc.message)}
        values = {k: v for k, v in data.items() if not k.startswith("password")}
        return await render(
            request,
            "companies/register.html",
            status_code=429 if isinstance(exc, RateLimited) else 400,
            values=values,
            errors=errors,
            consent=await reg.consent(),
        )
    return await _sign_in(request, data.get("email", ""), data.get("password", ""))


async def _sign_in(request: Req, login: str, password: str) -> Response[str]:
    """Start the new person's session, as identity's own login does."""
    identity = svc(request).registration.identity
    result = await identity.login(
        login,
        password,
        address=address_of(request.scope),
        user_agent=request.headers.get("user-agent", ""),
    )
    response = redirect("/companies/register/confirm")
    response.set_cookie(
        identity.settings.cookie_name,
        result.token,
        max_age=identity.settings.absolute_timeout,
        httponly=True,
        samesite="lax",
        secure=shell_of(request).host.settings.host.base_url.startswith("https://"),
        path="/",
    )
    return response


async def _confirm(
    request: Req, *, errors: dict[str, str] | None = None, status_code: int = 200
) -> Response[str]:
    identity = svc(request).registration.identity
    account = await identity.get_account(my_id(request))
    if account is None:
        raise NotFoundException()
    return await render(
        request,
        "companies/confirm.html",
        status_code=status_code,
        account=account,
        errors=errors or {},
    )


@get("/register/confirm", access=signed_in, include_in_schema=False)
async def confirm_page(request: Req) -> Response[str]:
    if not await svc(request).registration.pending(my_id(request)):
        return redirect("/companies/my")
    return await _confirm(request)


@post("/register/confirm", access=signed_in, include_in_schema=False)
async def confirm(request: Req) -> Response[str]:
    data = await form(request)
    reg = svc(request).registration
    purpose = data.get("purpose", "")
    field = "email_code" if purpose == "confirm_email" else "phone_code"
    try:
        if data.get("action") == "resend":
            await reg.identity.send_code(my_id(request), purpose, address=address_of(request.scope))
            flash(request, tr(request, "We sent you a new code."), "success")
        else:
            await reg.identity.check_code(
                my_id(request), purpose, data.get("code", ""), address=address_of(request.scope)
            )
    except IdentityError as exc:
        return await _confirm(request, errors={field: tr(request, exc.message)}, status_code=400)
    if await reg.confirmed(my_id(request)):
        flash(request, tr(request, "Registration complete: ask to join your company."), "success")
        return redirect("/companies/my")
    return redirect("/companies/register/confirm")


@get("/consent", access=signed_in, include_in_schema=False)
async def consent_page(request: Req) -> Response[str]:
    return await render(
        request, "companies/consent.html", consent=await svc(request).registration.consent()
    )


@post("/consent", access=signed_in, include_in_schema=False)
async def consent_agree(request: Req) -> Response[str]:
    data = await form(request)
    if data.get("consent") != "yes":
        return await render(
            request,
            "companies/consent.html",
            status_code=400,
            consent=await svc(request).registration.consent(),
            error=tr(request, "Agree to the processing of personal data to register."),
        )
    await svc(request).registration.agree(my_id(request), address_of(request.scope))
    return redirect("/")


# -- invitations (the invitee's side) ---------------------------------------------------------


@get("/invitation", access=public, include_in_schema=False)
async def invitation_page(request: Req, token: FromQuery[str] = "") -> Response[str]:
    reg = svc(request).registration
    found = await reg.by_token(token, any_status=True) if token else None
    usable = found if found is not None and found.status == "pending" else None
    return await render(
        request,
        "companies/invitation.html",
        status_code=200 if usable else (410 if found else 404),
        invitation=usable,
        gone=found.status if found else "unknown",
        token=token,
        values={},
        errors={},
        consent=await reg.consent(),
    )


@post("/invitation", access=public, include_in_schema=False)
async def invitation_accept(request: Req) -> Response[str]:
    data = await form(request)
    reg = svc(request).registration
    token = data.get("token", "")
    try:
        account = await reg.accept_invitation(
            token,
            phone=data.get("phone", ""),
            password=data.get("password", ""),
            password2=data.get("password2", ""),
            agreed=data.get("consent") == "yes",
            address=address_of(request.scope),
        )
    except (FormErrors, IdentityError) as exc:
        errors = (
            _form_errors(request, exc)
            if isinstance(exc, FormErrors)
            else {exc.field or "phone": tr(request, exc.message)}
        )
        return await render(
            request,
            "companies/invitation.html",
            status_code=400,
            invitation=await reg.by_token(token),
            gone=getattr(await reg.by_token(token, any_status=True), "status", "unknown"),
            token=token,
            values={"phone": data.get("phone", "")},
            errors=errors,
            consent=await reg.consent(),
        )
    return await _sign_in(request, account.email or "", data.get("password", ""))


# -- step 2: my companies and requests ----------------------------------------------------------


async def _my(
    request: Req, *, errors: dict[str, str] | None = None, values: dict[str, str] | None = None
) -> Response[str]:
    service = svc(request)
    person = my_id(request)
    return await render(
        request,
        "companies/my.html",
        status_code=400 if errors else 200,
        memberships=(await service.memberships([person])).get(person, []),
        requests=await service.requests.mine(person),
        role_names={
            r.code: r.name(shell_of(request).language(request)) for r in await service.roles.roles()
        },
        errors=errors or {},
        values=values or {},
    )


@get("/my", access=signed_in, include_in_schema=False)
async def my_page(request: Req) -> Response[str]:
    return await _my(request)


@post("/my/requests", access=signed_in, include_in_schema=False)
async def my_request(request: Req) -> Response[str]:
    data = await form(request)
    try:
        await svc(request).requests.create(
            my_id(request),
            inn=data.get("inn", ""),
            kpp=data.get("kpp") or None,
            company_name=data.get("company_name", ""),
            comment=data.get("comment", ""),
            new_company=data.get("new_company") == "yes",
        )
    except CompanyError as exc:
        return await _my(
            request, errors={exc.field or "inn": tr(request, exc.message)}, values=data
        )
    flash(request, tr(request, "Your request is sent; a manager will decide it."), "success")
    return redirect("/companies/my")


@post("/my/requests/{request_id:int}/withdraw", access=signed_in, include_in_schema=False)
async def my_request_withdraw(request: Req, request_id: FromPath[int]) -> Response[str]:
    """The person who sent a request takes it back while it is open (new, in review)."""
    try:
        await svc(request).requests.withdraw(my_id(request), request_id)
    except CompanyError as exc:
        flash(request, tr(request, exc.message), "error")
        return redirect("/companies/my")
    flash(request, tr(request, "Your request is withdrawn."), "success")
    return redirect("/companies/my")


# -- staff: organizations ---------------------------------------------------------------------


@get("/organizations", access=permission(VIEW), include_in_schema=False)
async def organizations_page(
    request: Req,
    q: FromQuery[str] = "",
    manager: FromQuery[str] = "",
    sort: FromQuery[str] = "name",
    page_no: FromQuery[int] = 1,
) -> Response[str]:
    service = svc(request)
    page_no = max(1, page_no)
    found = await service.organizations(
        me(request),
        q=q,
        manager_id=_int(manager, "manager"),
        sort=sort,
        limit=PAGE_SIZE,
        offset=(page_no - 1) * PAGE_SIZE,
    )
    staff = await is_staff(request)
    managers = await service.managers()
    template = (
        "companies/organizations_table.html"
        if request.headers.get("hx-request")
        else "companies/organizations.html"
    )
    return await render(
        request,
        template,
        page=found,
        q=q,
        manager=manager,
        sort=sort,
        page_no=page_no,
        pages=max(1, -(-found.total // PAGE_SIZE)),
        # Clients get no staff filters (the managers' list is the transport company's); the
        # managers of their own organizations stay named in the table.
        managers=managers if staff else [],
        names=dict(managers),
        staff=staff,
        can_create=await shell_of(request).host.access.can(me(request), CREATE),
        errors={},
    )


@post("/organizations", access=permission(CREATE, scope="global"), include_in_schema=False)
async def organization_create(request: Req) -> Response[str]:
    data = await form(request)
    try:
        org = await svc(request).create_organization(
            data.get("name", ""), data.get("inn"), data.get("kpp"), actor_id=my_id(request)
        )
    except CompanyError as exc:
        flash(request, f"{exc.field}: {tr(request, exc.message)}", "error")
        return redirect("/companies/organizations")
    return redirect(f"/companies/organizations/{org.id}")


async def _card(
    request: Req, org_id: int, *, errors: dict[str, str] | None = None, status_code: int = 200
) -> Response[str]:
    service = svc(request)
    principal = me(request)
    host = shell_of(request).host
    try:
        org = await service.organization(org_id, principal)
    except CompanyError:
        raise NotFoundException() from None
    can = {
        "manage": org_id in await service.allowed(principal, MANAGE),
        "contacts": org_id in await service.allowed(principal, CONTACTS_VIEW),
        "rights": org_id in await service.allowed(principal, CONTACTS_MANAGE),
        "assign": await host.access.can(principal, ASSIGN),
        "decide": await host.access.can(principal, DECIDE),
    }
    contacts = (
        await service.contacts(principal, organization_id=org_id, limit=500)
        if can["contacts"]
        else None
    )
    requests = (
        (await service.requests.list(principal, organization_id=org_id, limit=100))[0]
        if can["decide"]
        else []
    )
    people = await service.registration.identity.names(org.managers)
    return await render(
        request,
        "companies/organization.html",
        status_code=status_code,
        org=org,
        can=can,
        counterparties=(await service.counterparties(principal, organization_id=org_id, limit=500)),
        contacts=contacts,
        requests=requests,
        invitations=await service.registration.invitations(organization_id=org_id)
        if can["rights"]
        else [],
        roles=await service.grantable_roles() if can["rights"] else [],
        managers=await service.managers() if can["assign"] else [],
        manager_names=people,
        errors=errors or {},
    )


@get("/organizations/{organization_id:int}", access=permission(VIEW), include_in_schema=False)
async def organization_card(request: Req, organization_id: FromPath[int]) -> Response[str]:
    return await _card(request, organization_id)


@post("/organizations/{organization_id:int}", access=permission(MANAGE), include_in_schema=False)
async def organization_save(request: Req, organization_id: FromPath[int]) -> Response[str]:
    data = await form(request)
    try:
        await svc(request).update_organization(
            me(request), organization_id, data.get("name", ""), data.get("inn"), data.get("kpp")
        )
    except CompanyError as exc:
        if exc.status == 404:
            raise NotFoundException() from None
        return await _card(
            request,
            organization_id,
            errors={exc.field or "name": tr(request, exc.message)},
            status_code=400,
        )
    flash(request, tr(request, "Saved."), "success")
    return redirect(f"/companies/organizations/{organization_id}")


@post(
    "/organizations/{organization_id:int}/members/{person_id:int}",
    access=permission(CONTACTS_MANAGE),
    include_in_schema=False,
)
async def member_roles(
    request: Req, organization_id: FromPath[int], person_id: FromPath[int]
) -> Response[str]:
    data = await request.form()
    roles = [str(v) for v in data.getall("roles", [])]
    try:
        await svc(request).set_roles(
            me(request), person_id, organization_id, roles, address=address_of(request.scope)
        )
    except CompanyError as exc:
        if exc.status == 404:
            raise NotFoundException() from None
        flash(request, tr(request, exc.message), "error")
    else:
        flash(request, tr(request, "Rights saved."), "success")
    back = safe_next(data.get("next"), f"/companies/organizations/{organization_id}")
    return redirect(back if back.startswith("/companies/") else "/companies/")


@post(
    "/organizations/{organization_id:int}/invitations",
    access=permission(CONTACTS_MANAGE),
    include_in_schema=False,
)
async def invitation_create(request: Req, organization_id: FromPath[int]) -> Response[str]:
    data = await form(request)
    service = svc(request)
    if organization_id not in await service.allowed(me(request), CONTACTS_MANAGE):
        raise NotFoundException()
    try:
        await service.registration.invite(
            organization_id=organization_id,
            email=data.get("email", ""),
            full_name=data.get("full_name", ""),
            role=data.get("role", "client"),
            actor_id=my_id(request),
        )
    except CompanyError as exc:
        return await _card(
            request,
            organization_id,
            errors={exc.field or "email": tr(request, exc.message)},
            status_code=400,
        )
    flash(request, tr(request, "The invitation is sent."), "success")
    return redirect(f"/companies/organizations/{organization_id}#invitations")


async def _invitation_action(
    request: Req, organization_id: int, invitation_id: int, action: str
) -> Response[str]:
    service = svc(request)
    if organization_id not in await service.allowed(me(request), CONTACTS_MANAGE):
        raise NotFoundException()
    try:
        found = await service.registration.invitation(invitation_id)
        if found.organization_id != organization_id:
            raise NotFoundException()
        if action == "resend":
            await service.registration.resend(invitation_id)
        else:
            await service.registration.revoke(invitation_id)
    except CompanyError as exc:
        if exc.status == 404:
            raise NotFoundException() from None
        flash(request, tr(request, exc.message), "error")
    return redirect(f"/companies/organizations/{organization_id}#invitations")


@post(
    "/organizations/{organization_id:int}/invitations/{invitation_id:int}/resend",
    access=permission(CONTACTS_MANAGE),
    include_in_schema=False,
)
async def invitation_resend(
    request: Req, organization_id: FromPath[int], invitation_id: FromPath[int]
) -> Response[str]:
    return await _invitation_action(request, organization_id, invitation_id, "resend")


@post(
    "/organizations/{organization_id:int}/invitations/{invitation_id:int}/revoke",
    access=permission(CONTACTS_MANAGE),
    include_in_schema=False,
)
async def invitation_revoke(
    request: Req, organization_id: FromPath[int], invitation_id: FromPath[int]
) -> Response[str]:
    return await _invitation_action(request, organization_id, invitation_id, "revoke")


@post(
    "/organizations/{organization_id:int}/managers",
    access=permission(ASSIGN, scope="global"),
    include_in_schema=False,
)
async def organization_managers(request: Req, organization_id: FromPath[int]) -> Response[str]:
    data = await form(request)
    person = _int(data.get("person_id"), "person_id")
    try:
        if person is None:
            raise CompanyError("choose a manager", "person_id")
        await svc(request).assign_manager(
            me(request), organization_id, person, assign=data.get("action") != "remove"
        )
    except CompanyError as exc:
        if exc.status == 404:
            raise NotFoundException() from None
        flash(request, tr(request, exc.message), "error")
    return redirect(f"/companies/organizations/{organization_id}")


# -- staff: counterparties ---------------------------------------------------------------------


@get(
    "/counterparties",
    access=permission(COUNTERPARTIES, scope="global"),
    include_in_schema=False,
)
async def counterparties_page(request: Req, q: FromQuery[str] = "") -> Response[str]:
    service = svc(request)
    found = await service.counterparties(me(request), unassigned=True, q=q, limit=200)
    orgs = await service.organizations(me(request), limit=500)
    return await render(
        request,
        "companies/counterparties.html",
        page=found,
        q=q,
        organizations=[(o.id, o.name) for o in orgs.items],
        picker=picker_source(request, "organizations"),
    )


@post(
    "/counterparties/{counterparty_id:int}/move",
    access=permission(MANAGE),
    include_in_schema=False,
)
async def counterparty_move(request: Req, counterparty_id: FromPath[int]) -> Response[str]:
    data = await form(request)
    target = _int(data.get("organization_id"), "organization_id")
    try:
        await svc(request).move_counterparty(me(request), counterparty_id, target)
    except CompanyError as exc:
        if exc.status == 404:
            raise NotFoundException() from None
        flash(request, f"{exc.field}: {tr(request, exc.message)}", "error")
        return redirect(safe_next(data.get("next"), "/companies/counterparties"))
    flash(request, tr(request, "Saved."), "success")
    return redirect(f"/companies/organizations/{target}" if target else "/companies/counterparties")


@post(
    "/counterparties/{counterparty_id:int}/new-organization",
    access=permission(COUNTERPARTIES, scope="global"),
    include_in_schema=False,
)
async def counterparty_organization(request: Req, counterparty_id: FromPath[int]) -> Response[str]:
    try:
        org = await svc(request).organization_from_counterparty(me(request), counterparty_id)
    except CompanyError as exc:
        if exc.status == 404:
            raise NotFoundException() from None
        flash(request, tr(request, exc.message), "error")
        return redirect("/companies/counterparties")
    return redirect(f"/companies/organizations/{org.id}")


# -- staff: contacts ------------------------------------------------------------------------------


@get("/contacts", access=permission(CONTACTS_VIEW), include_in_schema=False)
async def contacts_page(
    request: Req,
    q: FromQuery[str] = "",
    organization: FromQuery[str] = "",
    role: FromQuery[str] = "",
    sort: FromQuery[str] = "name",
    page_no: FromQuery[int] = 1,
) -> Response[str]:
    service = svc(request)
    page_no = max(1, page_no)
    found = await service.contacts(
        me(request),
        q=q,
        organization_id=_int(organization, "organization"),
        role=role,
        sort=sort,
        limit=PAGE_SIZE,
        offset=(page_no - 1) * PAGE_SIZE,
    )
    manageable = await service.allowed(me(request), CONTACTS_MANAGE)
    template = (
        "companies/contacts_table.html"
        if request.headers.get("hx-request")
        else "companies/contacts.html"
    )
    return await render(
        request,
        template,
        page=found,
        q=q,
        organization=organization,
        organization_name=await organization_name(service, me(request), organization),
        picker=picker_source(request, "organizations"),
        role=role,
        sort=sort,
        page_no=page_no,
        pages=max(1, -(-found.total // PAGE_SIZE)),
        roles=await service.grantable_roles(),
        manageable=manageable,
    )


# -- staff: link requests -------------------------------------------------------------------------


def _date(value: str) -> dt.datetime | None:
    try:
        return dt.datetime.combine(dt.date.fromisoformat(value), dt.time(), tzinfo=dt.UTC)
    except ValueError:
        return None


@get("/requests", access=permission(DECIDE, scope="global"), include_in_schema=False)
async def requests_page(
    request: Req,
    status: FromQuery[str] = "open",
    organization: FromQuery[str] = "",
    manager: FromQuery[str] = "",
    since: FromQuery[str] = "",
    until: FromQuery[str] = "",
    q: FromQuery[str] = "",
    sort: FromQuery[str] = "-created",
    page_no: FromQuery[int] = 1,
) -> Response[str]:
    service = svc(request)
    page_no = max(1, page_no)
    until_at = _date(until)
    items, total = await service.requests.list(
        me(request),
        status=status,
        organization_id=_int(organization, "organization"),
        manager_id=_int(manager, "manager"),
        since=_date(since),
        until=until_at + dt.timedelta(days=1) if until_at else None,
        q=q,
        sort=sort,
        limit=PAGE_SIZE,
        offset=(page_no - 1) * PAGE_SIZE,
    )
    template = (
        "companies/requests_table.html"
        if request.headers.get("hx-request")
        else "companies/requests.html"
    )
    return await render(
        request,
        template,
        items=items,
        total=total,
        statuses=STATUSES,
        filters={
            "status": status,
            "organization": organization,
            "manager": manager,
            "since": since,
            "until": until,
            "q": q,
            "sort": sort,
        },
        managers=await service.managers(),
        organization_name=await organization_name(service, me(request), organization),
        picker=picker_source(request, "organizations"),
        page_no=page_no,
        pages=max(1, -(-total // PAGE_SIZE)),
    )


async def _request_page(
    request: Req, request_id: int, *, errors: dict[str, str] | None = None, status_code: int = 200
) -> Response[str]:
    service = svc(request)
    try:
        found = await service.requests.get(me(request), request_id)
    except CompanyError:
        raise NotFoundException() from None
    orgs = await service.organizations(me(request), limit=500)
    return await render(
        request,
        "companies/request.html",
        status_code=status_code,
        item=found,
        roles=await service.grantable_roles(),
        organizations=[(o.id, o.name) for o in orgs.items],
        picker=picker_source(request, "organizations"),
        errors=errors or {},
    )


@get(
    "/requests/{request_id:int}", access=permission(DECIDE, scope="global"), include_in_schema=False
)
async def request_page(request: Req, request_id: FromPath[int]) -> Response[str]:
    return await _request_page(request, request_id)


@post(
    "/requests/{request_id:int}/decide",
    access=permission(DECIDE, scope="global"),
    include_in_schema=False,
)
async def request_decide(request: Req, request_id: FromPath[int]) -> Response[str]:
    data = await form(request)
    requests = svc(request).requests
    try:
        if data.get("decision") == "reject":
            await requests.reject(me(request), request_id, reason=data.get("reason", ""))
            flash(
                request, tr(request, "The request is rejected; the person is told why."), "success"
            )
        elif data.get("decision") == "review":
            await requests.review(me(request), request_id)
        else:
            accepted = await requests.accept(
                me(request),
                request_id,
                organization_id=_int(data.get("organization_id"), "organization_id"),
                role=data.get("role") or "client",
                comment=data.get("comment", ""),
                address=address_of(request.scope),
            )
            flash(
                request,
                tr(request, "The request is accepted; the person has access now."),
                "success",
            )
            if accepted.organization_id is not None:
                # Where the person now is: the (perhaps just made) organization's card.
                return redirect(f"/companies/organizations/{accepted.organization_id}")
    except (CompanyError, RoleError) as exc:  # RoleError: the grant refused (to oneself)
        if exc.status == 404:
            raise NotFoundException() from None
        field = (exc.field if isinstance(exc, CompanyError) else None) or "decision"
        return await _request_page(
            request,
            request_id,
            errors={field: tr(request, exc.message)},
            status_code=exc.status,
        )
    return redirect(f"/companies/requests/{request_id}")


# -- admin: consent text ---------------------------------------------------------------------------


@get("/consent/edit", access=permission(CONSENT, scope="global"), include_in_schema=False)
async def consent_edit_page(request: Req) -> Response[str]:
    reg = svc(request).registration
    return await render(
        request,
        "companies/consent_edit.html",
        consent=await reg.consent(),
        versions=await reg.consent_versions(),
        errors={},
    )


@post("/consent/edit", access=permission(CONSENT, scope="global"), include_in_schema=False)
async def consent_edit(request: Req) -> Response[str]:
    data = await form(request)
    reg = svc(request).registration
    try:
        await reg.publish_consent(data.get("text_ru", ""), data.get("text_en", ""), my_id(request))
    except FormErrors as exc:
        return await render(
            request,
            "companies/consent_edit.html",
            status_code=400,
            consent=await reg.consent(),
            versions=await reg.consent_versions(),
            errors=_form_errors(request, exc),
        )
    flash(
        request, tr(request, "A new version is published; people will be asked again."), "success"
    )
    return redirect("/companies/consent/edit")


def routers() -> list[Any]:
    return [
        Router(
            "/companies",
            route_handlers=[
                switch_organization, register_page, register, confirm_page, confirm,
                consent_page, consent_agree, invitation_page, invitation_accept, my_page,
                my_request, my_request_withdraw, organizations_page, organization_create,
                organization_card,
                organization_save, member_roles, invitation_create, invitation_resend,
                invitation_revoke, organization_managers, counterparties_page,
                counterparty_move, counterparty_organization, contacts_page, requests_page,
                request_page, request_decide, consent_edit_page, consent_edit,
            ],
        )
    ]  # fmt: skip
