"""Staff's pages: the accounts (list, new account, card, status) and the security log."""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any

from litestar import Response, Router, get, post
from litestar.exceptions import NotFoundException
from litestar.params import FromPath, FromQuery

from kabinet import i18n
from kabinet.access import permission
from kabinet.forms import FieldError, FormView, read_form
from kabinet.htmx import redirect
from kabinet.identity import actions, audit_details
from kabinet.identity.forms import AccountForm, StatusForm
from kabinet.identity.middleware import address_of
from kabinet.identity.pages import Req, current_person, local_time, refused_form, service, tr
from kabinet.identity.services import IdentityError
from kabinet.pages import page, shell_of
from kabinet.paging import PageNo, Paging

if TYPE_CHECKING:
    from litestar.types import ControllerRouterHandler

ACCOUNTS = "identity.accounts.manage"
AUDIT = "identity.audit.view"
PAGE_SIZE = 50


# --- staff: accounts ----------------------------------------------------------------------


async def _accounts(
    request: Req,
    paging: Paging,
    *,
    q: str = "",
    status: str = "",
    status_code: int = 200,
    form: FormView | None = None,
) -> Response[Any]:
    rows, total = await service(request).list_accounts(
        search=q,
        status=status if status in {"active", "disabled"} else None,
        limit=paging.limit,
        offset=paging.offset,
    )
    return await page(
        request,
        "identity/accounts.html",
        status_code=status_code,
        fragment="identity/accounts_table.html",
        accounts=rows,
        total=total,
        q=q,
        status=status,
        paging=paging.counted(total),
        form=form,
        when=lambda v: local_time(request, v),
    )


@get("/accounts", access=permission(ACCOUNTS, scope="global"), include_in_schema=False)
async def accounts(
    request: Req,
    q: FromQuery[str] = "",
    status: FromQuery[str] = "",
    page_no: PageNo = 1,
) -> Response[Any]:
    return await _accounts(request, Paging.of(request, page_no, size=PAGE_SIZE), q=q, status=status)


@post("/accounts", access=permission(ACCOUNTS, scope="global"), include_in_schema=False)
async def account_create(request: Req) -> Response[Any]:
    me = current_person(request)
    try:
        data = await read_form(request, AccountForm)
        account = await service(request).create_account(
            full_name=data.full_name,
            email=data.email or None,
            phone=data.phone or None,
            password=data.password or None,
            language=data.language or None,
            actor_id=me.person_id,
            address=address_of(request.scope),
        )
    except FieldError as exc:
        return await _accounts(
            request,
            Paging.of(None, size=PAGE_SIZE),
            status_code=exc.status,
            form=await refused_form(request, exc),
        )
    return redirect(request, f"/identity/accounts/{account.id}")


@get(
    "/accounts/{account_id:int}",
    access=permission(ACCOUNTS, scope="global"),
    include_in_schema=False,
)
async def account_card(request: Req, account_id: FromPath[int]) -> Response[Any]:
    svc = service(request)
    account = await svc.get_account(account_id)
    if account is None:
        raise NotFoundException()
    return await page(
        request,
        "identity/account.html",
        account=account,
        logins=await svc.last_logins(account_id),
        sessions=len(await svc.sessions_of(account_id)),
        when=lambda v: local_time(request, v),
    )


@post(
    "/accounts/{account_id:int}/status",
    access=permission(ACCOUNTS, scope="global"),
    include_in_schema=False,
)
async def account_status(request: Req, account_id: FromPath[int]) -> Response[Any]:
    data = await read_form(request, StatusForm)
    if data.status not in {"active", "disabled"}:
        raise NotFoundException()
    try:
        await service(request).set_status(
            account_id,
            "active" if data.status == "active" else "disabled",
            actor_id=current_person(request).person_id,
            address=address_of(request.scope),
        )
    except IdentityError as exc:
        raise NotFoundException() from exc
    return redirect(request, f"/identity/accounts/{account_id}")


# --- staff: security log ------------------------------------------------------------------


def _action(request: Req, code: str) -> str | None:
    """A security event's label in the reader's language (None: a code without one)."""
    known = actions.label(code)
    return tr(request, known) if known else None


def _date(value: str, tz: str = "UTC") -> dt.datetime | None:
    """The start of a day given as ``YYYY-MM-DD``, in time zone ``tz`` (the reader's)."""
    try:
        day = dt.date.fromisoformat(value)
    except ValueError:
        return None
    return dt.datetime.combine(day, dt.time(), tzinfo=i18n.zone(tz))


async def _role_names(request: Req, lang: str) -> dict[str, str]:
    """Each role's code and its name in ``lang`` (none without the roles app)."""
    from kabinet.roles.services import ROLES

    roles = shell_of(request).host.services.find(ROLES)  # identity does not require roles
    if roles is None:
        return {}
    return {r.code: r.name(lang) for r in await roles.roles()}


@get("/audit", access=permission(AUDIT, scope="global"), include_in_schema=False)
async def audit(
    request: Req,
    action: FromQuery[str] = "",
    person: FromQuery[str] = "",
    organization: FromQuery[str] = "",
    since: FromQuery[str] = "",
    until: FromQuery[str] = "",
    page_no: PageNo = 1,
) -> Response[Any]:
    svc = service(request)
    paging = Paging.of(request, page_no, size=PAGE_SIZE)
    person_id: int | None = None
    if person.strip().isdigit():
        person_id = int(person)
    elif person.strip():
        found = await svc.find_by_login(person.strip())
        person_id = found.id if found else -1
    reader = shell_of(request).timezone(request)  # the days are the reader's own
    until_at = _date(until, reader)
    rows, total = await svc.security_events(
        action=action.strip() or None,
        exact=action.strip() in actions.ACTIONS,  # a choice of the list: that code alone
        person_id=person_id,
        organization_id=int(organization) if organization.strip().isdigit() else None,
        since=_date(since, reader),
        until=until_at + dt.timedelta(days=1) if until_at else None,
        limit=paging.limit,
        offset=paging.offset,
    )
    names = await svc.names([r.actor_id for r in rows] + [r.subject_id for r in rows])
    host = shell_of(request).host
    org_ids = sorted(
        {r.organization_id for r in rows if r.organization_id}
        | {  # a token's organizations, named in its details
            o
            for r in rows
            for o in (r.details or {}).get("organizations") or ()
            if isinstance(o, int)
        }
    )
    org_names: dict[int, str] = {}
    for answer in await host.plugins.acall("organization_names", host=host, ids=org_ids):
        org_names.update(answer.value)
    lang = shell_of(request).language(request)
    role_names = await _role_names(request, lang)
    permission_names = {
        code: i18n.localized(perm.label, lang) for code, (_, perm) in host.permissions.items()
    }
    details = {
        r.id: audit_details.describe(
            r.details or {},
            lang=lang,
            tz=reader,
            roles=role_names,
            permissions=permission_names,
            organizations=org_names,
        )
        for r in rows
    }
    known = [(code, tr(request, label)) for code, label in actions.ACTIONS.items()]
    return await page(
        request,
        "identity/audit.html",
        fragment="identity/audit_table.html",
        events=rows,
        names=names,
        organization_names=org_names,
        action_label=lambda code: _action(request, code),
        details=details,
        actions=known,
        action_codes=set(actions.ACTIONS),
        total=total,
        paging=paging.counted(total),
        filters={
            "action": action,
            "person": person,
            "organization": organization,
            "since": since,
            "until": until,
        },
        when=lambda v: local_time(request, v),
    )


def routers() -> list[ControllerRouterHandler]:
    return [
        Router(
            "/identity",
            route_handlers=[accounts, account_create, account_card, account_status, audit],
        )
    ]
