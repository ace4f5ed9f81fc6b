"""Organizations and the people in them: the list, an organization's card (its members'
rights, invitations, managers), unassigned counterparties and the contacts list."""

from __future__ import annotations

from typing import Any

from litestar import Response, get, post
from litestar.exceptions import NotFoundException
from litestar.params import FromPath, FromQuery

from kabinet.access import permission
from kabinet.forms import FieldError, FormView, form_view, read_form
from kabinet.htmx import redirect
from kabinet.identity.middleware import address_of
from kabinet.pages import is_staff, picker_source, safe_next, shell_of
from kabinet.paging import PageNo, Paging
from kabinet_companies.forms import Invite, Manager, MemberRoles, Move, Organization
from kabinet_companies.pages import PAGE_SIZE, Req, lang, me, my_id, number, render, said, svc, tr
from kabinet_companies.picker import organization_name
from kabinet_companies.requests import DECIDE
from kabinet_companies.services import (
    ASSIGN,
    CONTACTS_MANAGE,
    CONTACTS_VIEW,
    COUNTERPARTIES,
    CREATE,
    MANAGE,
    VIEW,
)
from kabinet_companies.validation import CompanyError


def _gone(exc: FieldError) -> None:
    """Another organization's object (or none): a 404, as if it did not exist."""
    if exc.status == 404:
        raise NotFoundException() from None


# -- staff: organizations ---------------------------------------------------------------------


@get("/organizations", access=permission(VIEW), include_in_schema=False)
async def organizations_page(
    request: Req,
    q: FromQuery[str] = "",
    manager: FromQuery[str] = "",
    sort: FromQuery[str] = "name",
    page_no: PageNo = 1,
) -> Response[str]:
    service = svc(request)
    paging = Paging.of(request, page_no, size=PAGE_SIZE)
    found = await service.organizations(
        me(request),
        q=q,
        manager_id=number(manager, "manager"),
        sort=sort,
        limit=paging.limit,
        offset=paging.offset,
    )
    staff = await is_staff(request)
    managers = await service.managers()
    return await render(
        request,
        "companies/organizations.html",
        fragment="companies/organizations_table.html",
        page=found,
        q=q,
        manager=manager,
        sort=sort,
        paging=paging.counted(found.total),
        # Clients get no staff filters (the managers' list is the transport company's); the
        # managers of their own organizations stay named in the table.
        managers=managers if staff else [],
        names=dict(managers),
        staff=staff,
        can_create=await shell_of(request).host.access.can(me(request), CREATE),
    )


@post("/organizations", access=permission(CREATE, scope="global"), include_in_schema=False)
async def organization_create(request: Req) -> Response[Any]:
    try:
        data = await read_form(request, Organization)
        org = await svc(request).create_organization(
            data.name, data.inn, data.kpp, actor_id=my_id(request)
        )
    except FieldError as exc:  # back to the list, the reason (and its field) said
        message = " ".join(f"{e.field}: {e.text(lang(request))}" for e in exc.errors)
        return redirect(request, "/companies/organizations", flash=message, category="error")
    return redirect(request, f"/companies/organizations/{org.id}")


async def _card(
    request: Req, org_id: int, *, form: FormView | None = None, status_code: int = 200
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
    roles = await service.grantable_roles() if can["rights"] else []
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
        roles=roles,
        role_options=[(r.code, r.name(lang(request))) for r in roles],
        managers=await service.managers() if can["assign"] else [],
        manager_names=people,
        form=form,
    )


@get("/organizations/{organization_id:int}", access=permission(VIEW), include_in_schema=False)
async def organization_card(request: Req, organization_id: FromPath[int]) -> Response[str]:
    return await _card(request, organization_id)


@post("/organizations/{organization_id:int}", access=permission(MANAGE), include_in_schema=False)
async def organization_save(request: Req, organization_id: FromPath[int]) -> Response[Any]:
    try:
        data = await read_form(request, Organization)
        await svc(request).update_organization(
            me(request), organization_id, data.name, data.inn, data.kpp
        )
    except FieldError as exc:
        _gone(exc)
        if exc.field is None and len(exc.errors) == 1:
            exc.field = "name"
        return await _card(
            request, organization_id, form=await form_view(request, exc), status_code=400
        )
    return redirect(
        request, f"/companies/organizations/{organization_id}", flash=tr(request, "Saved.")
    )


@post(
    "/organizations/{organization_id:int}/members/{person_id:int}",
    access=permission(CONTACTS_MANAGE),
    include_in_schema=False,
)
async def member_roles(
    request: Req, organization_id: FromPath[int], person_id: FromPath[int]
) -> Response[Any]:
    data = await read_form(request, MemberRoles)
    back = safe_next(data.next, f"/companies/organizations/{organization_id}")
    back = back if back.startswith("/companies/") else "/companies/"
    try:
        await svc(request).set_roles(
            me(request), person_id, organization_id, data.roles, address=address_of(request.scope)
        )
    except FieldError as exc:
        _gone(exc)
        return redirect(request, back, flash=said(request, exc), category="error")
    return redirect(request, back, flash=tr(request, "Rights saved."))


@post(
    "/organizations/{organization_id:int}/invitations",
    access=permission(CONTACTS_MANAGE),
    include_in_schema=False,
)
async def invitation_create(request: Req, organization_id: FromPath[int]) -> Response[Any]:
    service = svc(request)
    if organization_id not in await service.allowed(me(request), CONTACTS_MANAGE):
        raise NotFoundException()
    try:
        data = await read_form(request, Invite)
        await service.registration.invite(
            organization_id=organization_id,
            email=data.email,
            full_name=data.full_name,
            role=data.role,
            actor_id=my_id(request),
        )
    except FieldError as exc:
        if exc.field is None and len(exc.errors) == 1:
            exc.field = "email"
        return await _card(
            request, organization_id, form=await form_view(request, exc), status_code=400
        )
    return redirect(
        request,
        f"/companies/organizations/{organization_id}#invitations",
        flash=tr(request, "The invitation is sent."),
    )


async def _invitation_action(
    request: Req, organization_id: int, invitation_id: int, action: str
) -> Response[Any]:
    service = svc(request)
    if organization_id not in await service.allowed(me(request), CONTACTS_MANAGE):
        raise NotFoundException()
    back = f"/companies/organizations/{organization_id}#invitations"
    try:
        found = await service.registration.invitation(invitation_id)
        if found.organization_id != organization_id:
            raise NotFoundException()
        if action == "resend":
            await service.registration.resend(invitation_id)
        else:
            await service.registration.revoke(invitation_id)
    except FieldError as exc:
        _gone(exc)
        return redirect(request, back, flash=said(request, exc), category="error")
    return redirect(request, back)


@post(
    "/organizations/{organization_id:int}/invitations/{invitation_id:int}/resend",
    access=permission(CONTACTS_MANAGE),
    include_in_schema=False,
)
async def invitation_resend(
    request: Req, organization_id: FromPath[int], invitation_id: FromPath[int]
) -> Response[Any]:
    return await _invitation_action(request, organization_id, invitation_id, "resend")


@post(
    "/organizations/{organization_id:int}/invitations/{invitation_id:int}/revoke",
    access=permission(CONTACTS_MANAGE),
    include_in_schema=False,
)
async def invitation_revoke(
    request: Req, organization_id: FromPath[int], invitation_id: FromPath[int]
) -> Response[Any]:
    return await _invitation_action(request, organization_id, invitation_id, "revoke")


@post(
    "/organizations/{organization_id:int}/managers",
    access=permission(ASSIGN, scope="global"),
    include_in_schema=False,
)
async def organization_managers(request: Req, organization_id: FromPath[int]) -> Response[Any]:
    back = f"/companies/organizations/{organization_id}"
    try:
        data = await read_form(request, Manager)
        if data.person_id is None:
            raise CompanyError("choose a manager", "person_id")
        await svc(request).assign_manager(
            me(request), organization_id, data.person_id, assign=data.action != "remove"
        )
    except FieldError as exc:
        _gone(exc)
        return redirect(request, back, flash=said(request, exc), category="error")
    return redirect(request, back)


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
async def counterparty_move(request: Req, counterparty_id: FromPath[int]) -> Response[Any]:
    back = "/companies/counterparties"
    try:
        data = await read_form(request, Move)
        back = safe_next(data.next, back)
        target = data.organization_id
        await svc(request).move_counterparty(me(request), counterparty_id, target)
    except FieldError as exc:
        _gone(exc)
        message = " ".join(f"{e.field}: {e.text(lang(request))}" for e in exc.errors)
        return redirect(request, back, flash=message, category="error")
    return redirect(
        request,
        f"/companies/organizations/{target}" if target else "/companies/counterparties",
        flash=tr(request, "Saved."),
    )


@post(
    "/counterparties/{counterparty_id:int}/new-organization",
    access=permission(COUNTERPARTIES, scope="global"),
    include_in_schema=False,
)
async def counterparty_organization(request: Req, counterparty_id: FromPath[int]) -> Response[Any]:
    try:
        org = await svc(request).organization_from_counterparty(me(request), counterparty_id)
    except FieldError as exc:
        _gone(exc)
        return redirect(
            request, "/companies/counterparties", flash=said(request, exc), category="error"
        )
    return redirect(request, f"/companies/organizations/{org.id}")


# -- staff: contacts ------------------------------------------------------------------------------


@get("/contacts", access=permission(CONTACTS_VIEW), include_in_schema=False)
async def contacts_page(
    request: Req,
    q: FromQuery[str] = "",
    organization: FromQuery[str] = "",
    role: FromQuery[str] = "",
    sort: FromQuery[str] = "name",
    page_no: PageNo = 1,
) -> Response[str]:
    service = svc(request)
    paging = Paging.of(request, page_no, size=PAGE_SIZE)
    found = await service.contacts(
        me(request),
        q=q,
        organization_id=number(organization, "organization"),
        role=role,
        sort=sort,
        limit=paging.limit,
        offset=paging.offset,
    )
    return await render(
        request,
        "companies/contacts.html",
        fragment="companies/contacts_table.html",
        page=found,
        q=q,
        organization=organization,
        organization_name=await organization_name(service, me(request), organization),
        picker=picker_source(request, "organizations"),
        role=role,
        sort=sort,
        paging=paging.counted(found.total),
        roles=await service.grantable_roles(),
        manageable=await service.allowed(me(request), CONTACTS_MANAGE),
    )


HANDLERS = [
    organizations_page,
    organization_create,
    organization_card,
    organization_save,
    member_roles,
    invitation_create,
    invitation_resend,
    invitation_revoke,
    organization_managers,
    counterparties_page,
    counterparty_move,
    counterparty_organization,
    contacts_page,
]
