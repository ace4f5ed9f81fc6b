"""Link requests: step 2 of registration (a person's companies, asking to join one,
taking a request back) and staff deciding them (the list, a request's card)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from litestar import Response, get, post
from litestar.exceptions import NotFoundException
from litestar.params import FromPath, FromQuery

from kabinet.access import permission, signed_in
from kabinet.forms import FieldError, FormView, form_view, read_form
from kabinet.htmx import redirect
from kabinet.identity.middleware import address_of
from kabinet.pages import picker_source
from kabinet.paging import PageNo, Paging
from kabinet_companies.forms import Decide, NewRequest
from kabinet_companies.pages import PAGE_SIZE, Req, lang, me, my_id, number, render, said, svc, tr
from kabinet_companies.picker import organization_name
from kabinet_companies.requests import DECIDE, STATUSES

# -- step 2: my companies and requests ----------------------------------------------------------


async def _my(
    request: Req, *, form: FormView | None = None, status_code: int = 200
) -> Response[str]:
    service = svc(request)
    person = my_id(request)
    return await render(
        request,
        "companies/my.html",
        status_code=status_code,
        memberships=(await service.memberships([person])).get(person, []),
        requests=await service.requests.mine(person),
        role_names={r.code: r.name(lang(request)) for r in await service.roles.roles()},
        form=form,
    )


@get("/my", access=signed_in, include_in_schema=False)
async def my_page(request: Req) -> Response[str]:
    return await _my(request)


@post("/my/requests", access=signed_in, include_in_schema=False)
async def my_request(request: Req) -> Response[Any]:
    try:
        data = await read_form(request, NewRequest)
        await svc(request).requests.create(
            my_id(request),
            inn=data.inn,
            kpp=data.kpp or None,
            company_name=data.company_name,
            comment=data.comment,
            new_company=data.new_company,
        )
    except FieldError as exc:
        if exc.field is None and len(exc.errors) == 1:
            exc.field = "inn"  # what the form is about
        return await _my(request, form=await form_view(request, exc), status_code=400)
    return redirect(
        request,
        "/companies/my",
        flash=tr(request, "Your request is sent; a manager will decide it."),
    )


@post("/my/requests/{request_id:int}/withdraw", access=signed_in, include_in_schema=False)
async def my_request_withdraw(request: Req, request_id: FromPath[int]) -> Response[Any]:
    """The person who sent a request takes it back while it is open (new, in review)."""
    try:
        await svc(request).requests.withdraw(my_id(request), request_id)
    except FieldError as exc:
        return redirect(request, "/companies/my", flash=said(request, exc), category="error")
    return redirect(request, "/companies/my", flash=tr(request, "Your request is withdrawn."))


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
    page_no: PageNo = 1,
) -> Response[str]:
    service = svc(request)
    paging = Paging.of(request, page_no, size=PAGE_SIZE)
    until_at = _date(until)
    items, total = await service.requests.list(
        me(request),
        status=status,
        organization_id=number(organization, "organization"),
        manager_id=number(manager, "manager"),
        since=_date(since),
        until=until_at + dt.timedelta(days=1) if until_at else None,
        q=q,
        sort=sort,
        limit=paging.limit,
        offset=paging.offset,
    )
    return await render(
        request,
        "companies/requests.html",
        fragment="companies/requests_table.html",
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
        paging=paging.counted(total),
    )


async def _request_page(
    request: Req, request_id: int, *, form: FormView | None = None, status_code: int = 200
) -> Response[str]:
    service = svc(request)
    try:
        found = await service.requests.get(me(request), request_id)
    except FieldError:
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
        form=form,
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
async def request_decide(request: Req, request_id: FromPath[int]) -> Response[Any]:
    requests = svc(request).requests
    try:
        data = await read_form(request, Decide)
        if data.decision == "reject":
            await requests.reject(me(request), request_id, reason=data.reason)
            return redirect(
                request,
                f"/companies/requests/{request_id}",
                flash=tr(request, "The request is rejected; the person is told why."),
            )
        if data.decision == "review":
            await requests.review(me(request), request_id)
            return redirect(request, f"/companies/requests/{request_id}")
        accepted = await requests.accept(
            me(request),
            request_id,
            organization_id=data.organization_id,
            role=data.role or "client",
            comment=data.comment,
            address=address_of(request.scope),
        )
    except FieldError as exc:  # RoleError too: the grant refused (to oneself)
        if exc.status == 404:
            raise NotFoundException() from None
        if exc.field is None and len(exc.errors) == 1:
            exc.field = "decision"
        return await _request_page(
            request, request_id, form=await form_view(request, exc), status_code=exc.status
        )
    # Where the person now is: the (perhaps just made) organization's card.
    where = accepted.organization_id
    return redirect(
        request,
        f"/companies/organizations/{where}"
        if where is not None
        else f"/companies/requests/{request_id}",
        flash=tr(request, "The request is accepted; the person has access now."),
    )


HANDLERS = [
    my_page,
    my_request,
    my_request_withdraw,
    requests_page,
    request_page,
    request_decide,
]
