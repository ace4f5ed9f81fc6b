"""JSON API of the companies app, under ``/api/companies/``. Thin: parse, call, answer.

Refusals are the services' :class:`CompanyError`, answered as problem details naming the
field: 422 for data the app's rules refuse (an ИНН whose check digit is wrong), 404, 409.
A request that does not fit the OpenAPI document is Litestar's 400.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any

import msgspec
from litestar import Request, Response, Router, delete, get, patch, post, put
from litestar.exceptions import NotFoundException
from litestar.params import FromPath, FromQuery, JSONBody

from kabinet.access import ALL, Principal, permission, signed_in
from kabinet.host import Host
from kabinet.inputs import Id, Text, fits
from kabinet.pages import principal_of
from kabinet.problems import VALIDATION_TYPE, problem
from kabinet.roles.services import RoleError
from kabinet_companies import models as m
from kabinet_companies.registration import Invitation
from kabinet_companies.requests import REQUEST_SORTS, LinkRequest
from kabinet_companies.services import (
    ASSIGN,
    CONTACT_SORTS,
    CONTACTS_MANAGE,
    CONTACTS_VIEW,
    COUNTERPARTIES,
    CREATE,
    MANAGE,
    ORGANIZATION_SORTS,
    VIEW,
    CompaniesService,
    Contact,
    Counterparty,
    Membership,
    Organization,
    Page,
    companies,
)
from kabinet_companies.validation import CompanyError

Req = Request[Any, Any, Any]
OrganizationSort = Annotated[str, ORGANIZATION_SORTS.parameter()]
ContactSort = Annotated[str, CONTACT_SORTS.parameter()]
RequestSort = Annotated[str, REQUEST_SORTS.parameter()]
DECIDE = "companies.requests.decide"


_org, _cp, _req, _inv = m.organization.c, m.counterparty.c, m.link_request.c, m.invitation.c
OrgName = Annotated[str, fits(_org.name)]
Inn = Annotated[str, fits(_org.inn)]
Kpp = Annotated[str, fits(_org.kpp)]
Email = Annotated[str, fits(_inv.email)]
Role = Annotated[str, fits(_inv.role)]


class OrganizationIn(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    name: OrgName
    inn: Inn | None = None
    kpp: Kpp | None = None


class CounterpartyIn(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    name: Annotated[str, fits(_cp.name)]
    inn: Inn
    kpp: Kpp | None = None
    full_name: Annotated[str, fits(_cp.full_name)] = ""
    address: Annotated[str, fits(_cp.address)] = ""
    phone: Annotated[str, fits(_cp.phone)] = ""
    email: Email = ""
    organization_id: Id | None = None
    external_id: Annotated[str, fits(_cp.external_id)] | None = None


class MoveIn(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    organization_id: Id | None


class RolesIn(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    roles: list[Role]


class InvitationIn(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    email: Email
    full_name: Annotated[str, fits(_inv.full_name)]
    role: Role = "client"


class LinkRequestIn(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    inn: Inn
    kpp: Kpp | None = None
    new_company: bool = False
    company_name: Annotated[str, fits(_req.company_name)] = ""
    comment: Text = ""


class AcceptIn(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    organization_id: Id | None = None
    role: Role = "client"
    comment: Text = ""


class RejectIn(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    reason: Text


class RequestsPage(msgspec.Struct, kw_only=True):
    total: int
    items: list[LinkRequest]


def refused(request: Req, exc: CompanyError) -> Response[Any]:
    """The services' refusals as problem details naming the field at fault (what fits the
    document but the rules refuse is 422: 400 is for requests that do not fit it)."""
    field = exc.field or "body"
    if exc.status == 400:
        return problem(
            request,
            422,
            title="Invalid request data",
            detail=f"{field}: {exc.message}",
            type_=VALIDATION_TYPE,
            errors=[{"field": field, "message": exc.message}],
        )
    return problem(request, exc.status, detail=f"{field}: {exc.message}")


def _me(request: Req) -> Principal:
    return principal_of(request.scope)


def _svc(request: Req) -> CompaniesService:
    host: Host = request.app.state["kabinet.host"]
    return companies(host)


# -- organizations -------------------------------------------------------------------------


@get("/organizations", access=permission(VIEW))
async def list_organizations(
    request: Req,
    q: FromQuery[str] = "",
    manager: FromQuery[int | None] = None,
    sort: OrganizationSort = "name",
    limit: FromQuery[int] = 50,
    offset: FromQuery[int] = 0,
) -> Page:
    """Organizations you may see; search by name or ИНН, filter by assigned manager."""
    return await _svc(request).organizations(
        _me(request), q=q, manager_id=manager, sort=sort,
        limit=max(1, min(limit, 500)), offset=max(0, offset),
    )  # fmt: skip


@post("/organizations", access=permission(CREATE, scope="global"))
async def create_organization(request: Req, data: JSONBody[OrganizationIn]) -> Organization:
    return await _svc(request).create_organization(
        data.name, data.inn, data.kpp, actor_id=_me(request).person_id
    )


@get("/organizations/{organization_id:int}", access=permission(VIEW))
async def get_organization(request: Req, organization_id: FromPath[int]) -> Organization:
    return await _svc(request).organization(organization_id, _me(request))


@patch("/organizations/{organization_id:int}", access=permission(MANAGE))
async def update_organization(
    request: Req, organization_id: FromPath[int], data: JSONBody[OrganizationIn]
) -> Organization:
    return await _svc(request).update_organization(
        _me(request), organization_id, data.name, data.inn, data.kpp
    )


@get("/organizations/{organization_id:int}/counterparties", access=permission(VIEW))
async def organization_counterparties(request: Req, organization_id: FromPath[int]) -> Page:
    svc = _svc(request)
    await svc.organization(organization_id, _me(request))
    return await svc.counterparties(_me(request), organization_id=organization_id, limit=500)


@get("/organizations/{organization_id:int}/contacts", access=permission(CONTACTS_VIEW))
async def organization_contacts(
    request: Req, organization_id: FromPath[int], q: FromQuery[str] = ""
) -> Page:
    svc = _svc(request)
    if organization_id not in await svc.allowed(_me(request), CONTACTS_VIEW):
        raise NotFoundException("no such organization")
    return await svc.contacts(_me(request), organization_id=organization_id, q=q, limit=500)


@put(
    "/organizations/{organization_id:int}/members/{person_id:int}",
    access=permission(CONTACTS_MANAGE),
)
async def set_member_roles(
    request: Req, organization_id: FromPath[int], person_id: FromPath[int], data: JSONBody[RolesIn]
) -> Membership:
    """Give, change or revoke the person's roles in the organization (the full set)."""
    return await _svc(request).set_roles(_me(request), person_id, organization_id, data.roles)


@delete(
    "/organizations/{organization_id:int}/members/{person_id:int}",
    access=permission(CONTACTS_MANAGE),
    status_code=204,
)
async def remove_member(
    request: Req, organization_id: FromPath[int], person_id: FromPath[int]
) -> None:
    await _svc(request).remove_member(_me(request), person_id, organization_id)


@get("/organizations/{organization_id:int}/invitations", access=permission(CONTACTS_MANAGE))
async def list_invitations(request: Req, organization_id: FromPath[int]) -> list[Invitation]:
    svc = _svc(request)
    if organization_id not in await svc.allowed(_me(request), CONTACTS_MANAGE):
        raise NotFoundException("no such organization")
    return await svc.registration.invitations(organization_id=organization_id)


@post("/organizations/{organization_id:int}/invitations", access=permission(CONTACTS_MANAGE))
async def invite(
    request: Req, organization_id: FromPath[int], data: JSONBody[InvitationIn]
) -> Invitation:
    svc = _svc(request)
    if organization_id not in await svc.allowed(_me(request), CONTACTS_MANAGE):
        raise NotFoundException("no such organization")
    return await svc.registration.invite(
        organization_id=organization_id, email=data.email, full_name=data.full_name,
        role=data.role, actor_id=_me(request).person_id,
    )  # fmt: skip


@put(
    "/organizations/{organization_id:int}/managers/{person_id:int}",
    access=permission(ASSIGN, scope="global"),
)
async def assign_manager(
    request: Req, organization_id: FromPath[int], person_id: FromPath[int]
) -> Organization:
    return await _svc(request).assign_manager(_me(request), organization_id, person_id)


@delete(
    "/organizations/{organization_id:int}/managers/{person_id:int}",
    access=permission(ASSIGN, scope="global"),
    status_code=204,
)
async def unassign_manager(
    request: Req, organization_id: FromPath[int], person_id: FromPath[int]
) -> None:
    await _svc(request).assign_manager(_me(request), organization_id, person_id, assign=False)


# -- counterparties ------------------------------------------------------------------------


@get("/counterparties", access=permission(VIEW))
async def list_counterparties(
    request: Req,
    q: FromQuery[str] = "",
    unassigned: FromQuery[bool] = False,
    limit: FromQuery[int] = 50,
    offset: FromQuery[int] = 0,
) -> Page:
    return await _svc(request).counterparties(
        _me(request), q=q, unassigned=unassigned, limit=max(1, min(limit, 500)),
        offset=max(0, offset),
    )  # fmt: skip


@post("/counterparties", access=permission(COUNTERPARTIES, scope="global"))
async def create_counterparty(request: Req, data: JSONBody[CounterpartyIn]) -> Counterparty:
    return await _svc(request).create_counterparty(_me(request), **msgspec.structs.asdict(data))


@get("/counterparties/{counterparty_id:int}", access=permission(VIEW))
async def get_counterparty(request: Req, counterparty_id: FromPath[int]) -> Counterparty:
    return await _svc(request).counterparty(_me(request), counterparty_id)


@put("/counterparties/{counterparty_id:int}/organization", access=permission(MANAGE))
async def move_counterparty(
    request: Req, counterparty_id: FromPath[int], data: JSONBody[MoveIn]
) -> Counterparty:
    """Attach, move or (staff) detach: its orders and documents follow at once."""
    return await _svc(request).move_counterparty(
        _me(request), counterparty_id, data.organization_id
    )


@post(
    "/counterparties/{counterparty_id:int}/new-organization",
    access=permission(COUNTERPARTIES, scope="global"),
    status_code=201,
)
async def organization_from_counterparty(
    request: Req, counterparty_id: FromPath[int]
) -> Organization:
    return await _svc(request).organization_from_counterparty(_me(request), counterparty_id)


# -- contacts and memberships ----------------------------------------------------------------


@get("/contacts", access=permission(CONTACTS_VIEW))
async def list_contacts(
    request: Req,
    q: FromQuery[str] = "",
    organization: FromQuery[int | None] = None,
    role: FromQuery[str] = "",
    sort: ContactSort = "name",
    limit: FromQuery[int] = 50,
    offset: FromQuery[int] = 0,
) -> Page:
    return await _svc(request).contacts(
        _me(request), q=q, organization_id=organization, role=role, sort=sort,
        limit=max(1, min(limit, 500)), offset=max(0, offset),
    )  # fmt: skip


@get("/contacts/{person_id:int}", access=permission(CONTACTS_VIEW))
async def get_contact(request: Req, person_id: FromPath[int]) -> Contact:
    return await _svc(request).contact(_me(request), person_id)


@get("/memberships", access=signed_in)
async def my_memberships(request: Req) -> list[Membership]:
    """Your organizations and your roles in each."""
    me = _me(request)
    assert me.person_id is not None
    # a token limited to organizations shows only those
    limit = ALL if me.organizations is None else me.organizations
    found = await _svc(request).memberships([me.person_id], limit)
    return found.get(me.person_id, [])


# -- link requests ---------------------------------------------------------------------------


@get("/my/link-requests", access=signed_in)
async def my_requests(request: Req) -> list[LinkRequest]:
    me = _me(request)
    assert me.person_id is not None
    return await _svc(request).requests.mine(me.person_id)


@post("/my/link-requests", access=signed_in)
async def create_request(request: Req, data: JSONBody[LinkRequestIn]) -> LinkRequest:
    """Ask to join a company by ИНН (+КПП), or as a new company."""
    me = _me(request)
    assert me.person_id is not None
    return await _svc(request).requests.create(
        me.person_id, inn=data.inn, kpp=data.kpp, company_name=data.company_name,
        comment=data.comment, new_company=data.new_company,
    )  # fmt: skip


@post("/my/link-requests/{request_id:int}/withdraw", access=signed_in, status_code=200)
async def withdraw_request(request: Req, request_id: FromPath[int]) -> LinkRequest:
    me = _me(request)
    assert me.person_id is not None
    return await _svc(request).requests.withdraw(me.person_id, request_id)


def _day(value: dt.date | None) -> dt.datetime | None:
    return None if value is None else dt.datetime.combine(value, dt.time(), tzinfo=dt.UTC)


@get("/link-requests", access=permission(DECIDE, scope="global"))
async def list_requests(
    request: Req,
    status: FromQuery[str] = "",
    organization: FromQuery[int | None] = None,
    manager: FromQuery[int | None] = None,
    since: FromQuery[dt.date | None] = None,
    until: FromQuery[dt.date | None] = None,
    q: FromQuery[str] = "",
    sort: RequestSort = "-created",
    limit: FromQuery[int] = 50,
    offset: FromQuery[int] = 0,
) -> RequestsPage:
    """All link requests you may decide, with statuses and decision history."""
    until_at = _day(until)
    items, total = await _svc(request).requests.list(
        _me(request), status=status, organization_id=organization, manager_id=manager,
        since=_day(since), until=until_at + dt.timedelta(days=1) if until_at else None,
        q=q, sort=sort, limit=max(1, min(limit, 500)), offset=max(0, offset),
    )  # fmt: skip
    return RequestsPage(total=total, items=items)


@get("/link-requests/{request_id:int}", access=permission(DECIDE, scope="global"))
async def get_request(request: Req, request_id: FromPath[int]) -> LinkRequest:
    return await _svc(request).requests.get(_me(request), request_id)


@post("/link-requests/{request_id:int}/accept", access=permission(DECIDE, scope="global"))
async def accept_request(
    request: Req, request_id: FromPath[int], data: JSONBody[AcceptIn]
) -> LinkRequest:
    """Accept: the person gets ``role`` (client by default) in the organization at once."""
    return await _svc(request).requests.accept(
        _me(request), request_id, organization_id=data.organization_id, role=data.role,
        comment=data.comment,
    )  # fmt: skip


@post("/link-requests/{request_id:int}/reject", access=permission(DECIDE, scope="global"))
async def reject_request(
    request: Req, request_id: FromPath[int], data: JSONBody[RejectIn]
) -> LinkRequest:
    return await _svc(request).requests.reject(_me(request), request_id, reason=data.reason)


def refused_grant(request: Req, exc: RoleError) -> Response[Any]:
    """A grant the roles service refused inside a change of this app (nobody gives
    themselves a role, e.g. by accepting their own request to join): the same answer."""
    found = CompanyError(exc.message, exc.field)
    found.status = exc.status
    return refused(request, found)


def router() -> Router:
    return Router(
        "/api/companies",
        tags=["companies"],
        exception_handlers={CompanyError: refused, RoleError: refused_grant},
        route_handlers=[
            list_organizations, create_organization, get_organization, update_organization,
            organization_counterparties, organization_contacts, set_member_roles, remove_member,
            list_invitations, invite, assign_manager, unassign_manager, list_counterparties,
            create_counterparty, get_counterparty, move_counterparty,
            organization_from_counterparty, list_contacts, get_contact, my_memberships,
            my_requests, create_request, withdraw_request, list_requests, get_request,
            accept_request, reject_request,
        ],
    )  # fmt: skip
