"""Pages of the built-in identity: sign-in, reset, profile, staff accounts, security log.

Routes are thin: read the form, call :class:`IdentityService`, render or redirect. Refusals
come back as the service's :class:`IdentityError`, shown next to the field it names.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Set
from typing import Any

from litestar import Request, Response, Router, get, post
from litestar.exceptions import NotFoundException
from litestar.params import FromPath, FromQuery
from litestar.status_codes import HTTP_303_SEE_OTHER

from kabinet import i18n
from kabinet.access import AllOrganizations, Principal, permission, public, signed_in
from kabinet.identity.middleware import address_of
from kabinet.identity.services import (
    IdentityError,
    IdentityService,
    RateLimited,
    identity_service,
)
from kabinet.pages import page, principal_of, safe_next, shell_of

ACCOUNTS = "identity.accounts.manage"
AUDIT = "identity.audit.view"
TOKENS = "identity.tokens.manage"
PAGE_SIZE = 50
Req = Request[Any, Any, Any]


def service(request: Req) -> IdentityService:
    return identity_service(shell_of(request).host)


def redirect(location: str) -> Response[str]:
    return Response("", status_code=HTTP_303_SEE_OTHER, headers={"Location": location})


async def form(request: Req) -> dict[str, str]:
    data = await request.form()
    return {k: v for k, v in data.items() if isinstance(v, str)}


def _t(request: Req, message: str) -> str:
    return i18n.gettext_(shell_of(request).language(request), message)


def _when(request: Req, value: dt.datetime | None) -> str:
    shell = shell_of(request)
    return i18n.format_datetime(value, shell.language(request), shell.timezone(request), "short")


def _error(request: Req, exc: IdentityError) -> dict[str, str]:
    text = _t(request, exc.message)
    if isinstance(exc, RateLimited) and exc.retry_at is not None:
        text += " " + _t(request, "Try again after {when}.").format(
            when=_when(request, exc.retry_at)
        )
    return {"field": exc.field or "", "message": text}


def _status(exc: IdentityError) -> int:
    return 429 if isinstance(exc, RateLimited) else 400


# --- sign in and out ----------------------------------------------------------------------


def keycloak_login(request: Req, next_path: str | None) -> Response[str] | None:
    """With Keycloak configured (the ``keycloak`` plugin), sign-in happens there."""
    from kabinet.keycloak.service import login_redirect

    target = login_redirect(shell_of(request).host, safe_next(next_path))
    return redirect(target) if target is not None else None


def keycloak_service(host: Any) -> Any:
    from kabinet.keycloak.service import keycloak_service as found

    return found(host)


@get("/login", access=public, include_in_schema=False)
async def login_page(request: Req, next: FromQuery[str] = "/") -> Response[str]:
    keycloak = keycloak_login(request, next)  # Keycloak configured: sign in there
    if keycloak is not None:
        return keycloak
    return await page(request, "identity/login.html", next=safe_next(next), login="", error=None)


@post("/login", access=public, include_in_schema=False)
async def login(request: Req) -> Response[str]:
    data = await form(request)
    keycloak = keycloak_login(request, data.get("next"))  # no portal passwords then
    if keycloak is not None:
        return keycloak
    svc = service(request)
    target = safe_next(data.get("next"))
    try:
        result = await svc.login(
            data.get("login", ""),
            data.get("password", ""),
            address=address_of(request.scope),
            user_agent=request.headers.get("user-agent", ""),
            previous=request.cookies.get(svc.settings.cookie_name),
        )
    except IdentityError as exc:
        return await page(
            request,
            "identity/login.html",
            status_code=_status(exc),
            next=target,
            login=data.get("login", ""),
            error=_error(request, exc),
        )
    response = redirect(target)
    base = shell_of(request).host.settings.host
    response.set_cookie(
        svc.settings.cookie_name,
        result.token,
        max_age=svc.settings.absolute_timeout,
        httponly=True,
        samesite="lax",
        secure=base.base_url.startswith("https://"),
        path="/",
    )
    response.set_cookie(
        i18n.LANG_COOKIE,
        result.account.language,
        max_age=365 * 86400,
        httponly=True,
        samesite="lax",
        path="/",
    )
    return response


@post("/logout", access=public, include_in_schema=False)
async def logout(request: Req) -> Response[str]:
    svc = service(request)
    token = request.cookies.get(svc.settings.cookie_name)
    keycloak = keycloak_service(shell_of(request).host)
    if token:
        if keycloak is not None:  # ends the Keycloak session behind it too
            await keycloak.logout(token, address=address_of(request.scope))
        else:
            await svc.logout(token, address=address_of(request.scope))
    # With Keycloak, /login leaves for it, which CSP form-action forbids after a form post.
    response = redirect("/login" if keycloak is None else "/")
    response.delete_cookie(svc.settings.cookie_name, path="/")
    return response


# --- password reset -----------------------------------------------------------------------


@get("/reset", access=public, include_in_schema=False)
async def reset_page(request: Req) -> Response[str]:
    return await page(request, "identity/reset_request.html", sent=False, error=None, login="")


@post("/reset", access=public, include_in_schema=False)
async def reset_request(request: Req) -> Response[str]:
    data = await form(request)
    try:
        await service(request).request_reset(
            data.get("login", ""), address=address_of(request.scope)
        )
    except IdentityError as exc:
        return await page(
            request,
            "identity/reset_request.html",
            status_code=_status(exc),
            sent=False,
            error=_error(request, exc),
            login=data.get("login", ""),
        )
    return await page(request, "identity/reset_request.html", sent=True, error=None, login="")


@get("/reset/confirm", access=public, include_in_schema=False)
async def reset_confirm_page(request: Req, token: FromQuery[str] = "") -> Response[str]:
    valid = bool(token) and await service(request).check_reset(token) is not None
    return await page(
        request,
        "identity/reset_confirm.html",
        status_code=200 if valid else 400,
        token=token,
        valid=valid,
        error=None,
    )


@post("/reset/confirm", access=public, include_in_schema=False)
async def reset_confirm(request: Req) -> Response[str]:
    data = await form(request)
    token = data.get("token", "")
    try:
        if data.get("password", "") != data.get("password2", ""):
            raise IdentityError("The passwords differ.", field="password2")
        await service(request).reset_password(
            token, data.get("password", ""), address=address_of(request.scope)
        )
    except IdentityError as exc:
        return await page(
            request,
            "identity/reset_confirm.html",
            status_code=_status(exc),
            token=token,
            valid=exc.field != "token",
            error=_error(request, exc),
        )
    return redirect("/login?reset=1")


# --- my profile ---------------------------------------------------------------------------


def _me(request: Req) -> Principal:
    principal = principal_of(request.scope)
    assert principal.person_id is not None
    return principal


def _overlap(one: Set[int] | AllOrganizations, other: Set[int] | AllOrganizations) -> bool:
    """Do two sets of organizations (either may be ``ALL``) share one?"""
    if isinstance(one, AllOrganizations) or isinstance(other, AllOrganizations):
        return bool(one) and bool(other)
    return bool(set(one) & set(other))


async def _profile(
    request: Req,
    *,
    status_code: int = 200,
    error: dict[str, str] | None = None,
    notice: str = "",
    new_token: str = "",
    section: str = "",
) -> Response[str]:
    svc = service(request)
    me = _me(request)
    assert me.person_id is not None
    account = await svc.get_account(me.person_id)
    if account is None:
        raise NotFoundException()
    host = shell_of(request).host
    current = request.cookies.get(svc.settings.cookie_name)
    current_key = svc.session_key(current) if current else ""
    sessions = [
        {
            "current": s.key == current_key,
            "created": _when(request, s.created_at),
            "seen": _when(request, s.last_seen_at),
            "address": s.address,
            "agent": s.user_agent,
        }
        for s in await svc.sessions_of(account.id)
    ]
    token_orgs = await host.access.organizations(me, TOKENS)
    can_tokens = bool(token_orgs)
    tokens = await svc.tokens_of(account.id) if can_tokens else []
    # A token's rights are chosen from what the person holds where they may make tokens.
    permissions = []
    for code, (_p, perm) in sorted(host.permissions.items()):
        held = await host.access.organizations(me, code) if can_tokens else frozenset()
        if perm.scope == "organization" and held and _overlap(held, token_orgs):
            permissions.append(code)
    # Rights and organizations as people know them: a permission's label in their language,
    # an organization's name (from the app that owns organizations), never codes and ids.
    lang = shell_of(request).language(request)
    labels = {
        code: i18n.localized(perm.label, lang) for code, (_p, perm) in host.permissions.items()
    }
    org_ids = set(token_orgs) if isinstance(token_orgs, (set, frozenset)) else set()
    for t in tokens:
        org_ids.update(t.organizations or ())
    org_names: dict[int, str] = {}
    for found in await host.plugins.acall("organization_names", host=host, ids=sorted(org_ids)):
        org_names.update(found.value)
    return await page(
        request,
        "identity/profile.html",
        status_code=status_code,
        permission_labels=labels,
        organization_names=org_names,
        account=account,
        sessions=sessions,
        error=error,
        notice=notice,
        new_token=new_token,
        section=section,
        can_tokens=can_tokens,
        tokens=tokens,
        token_permissions=permissions,
        token_organizations=sorted(token_orgs) if isinstance(token_orgs, (set, frozenset)) else [],
        when=lambda v: _when(request, v),
        timezones=[
            "Europe/Kaliningrad",
            "Europe/Moscow",
            "Europe/Samara",
            "Asia/Yekaterinburg",
            "Asia/Omsk",
            "Asia/Novosibirsk",
            "Asia/Krasnoyarsk",
            "Asia/Irkutsk",
            "Asia/Yakutsk",
            "Asia/Vladivostok",
            "Asia/Magadan",
            "Asia/Kamchatka",
            "UTC",
        ],
    )


@get("/profile", access=signed_in, include_in_schema=False)
async def profile(request: Req, done: FromQuery[str] = "") -> Response[str]:
    notices = {
        "saved": "Your profile is saved.",
        "password": "Your password is changed; your other sessions are ended.",
        "others": "Your other sessions are ended.",
        "sent": "We sent you a code.",
        "confirmed": "Confirmed, thank you.",
        "revoked": "The token is revoked.",
    }
    return await _profile(request, notice=_t(request, notices.get(done, "")) if done else "")


@post("/profile", access=signed_in, include_in_schema=False)
async def profile_save(request: Req) -> Response[str]:
    data = await form(request)
    me = _me(request)
    assert me.person_id is not None
    try:
        account = await service(request).update_profile(
            me.person_id,
            full_name=data.get("full_name", ""),
            email=data.get("email") or None,
            phone=data.get("phone") or None,
            language=data.get("language", ""),
            timezone=data.get("timezone", ""),
            address=address_of(request.scope),
        )
    except IdentityError as exc:
        return await _profile(
            request, status_code=_status(exc), error=_error(request, exc), section="profile"
        )
    response = redirect("/identity/profile?done=saved")
    response.set_cookie(
        i18n.LANG_COOKIE,
        account.language,
        max_age=365 * 86400,
        httponly=True,
        samesite="lax",
        path="/",
    )
    return response


@post("/profile/password", access=signed_in, include_in_schema=False)
async def profile_password(request: Req) -> Response[str]:
    data = await form(request)
    me = _me(request)
    svc = service(request)
    assert me.person_id is not None
    try:
        if data.get("new_password", "") != data.get("new_password2", ""):
            raise IdentityError("The passwords differ.", field="new_password2")
        await svc.change_password(
            me.person_id,
            data.get("current_password", ""),
            data.get("new_password", ""),
            keep_token=request.cookies.get(svc.settings.cookie_name),
            address=address_of(request.scope),
        )
    except IdentityError as exc:
        return await _profile(
            request, status_code=_status(exc), error=_error(request, exc), section="password"
        )
    return redirect("/identity/profile?done=password")


@post("/profile/logout-others", access=signed_in, include_in_schema=False)
async def profile_logout_others(request: Req) -> Response[str]:
    svc = service(request)
    token = request.cookies.get(svc.settings.cookie_name)
    if token:
        await svc.logout_others(token, address=address_of(request.scope))
    return redirect("/identity/profile?done=others")


@post("/profile/codes/send", access=signed_in, include_in_schema=False)
async def profile_code_send(request: Req) -> Response[str]:
    data = await form(request)
    me = _me(request)
    assert me.person_id is not None
    try:
        await service(request).send_code(
            me.person_id, data.get("purpose", ""), address=address_of(request.scope)
        )
    except IdentityError as exc:
        return await _profile(
            request, status_code=_status(exc), error=_error(request, exc), section="contacts"
        )
    return redirect("/identity/profile?done=sent")


@post("/profile/codes/check", access=signed_in, include_in_schema=False)
async def profile_code_check(request: Req) -> Response[str]:
    data = await form(request)
    me = _me(request)
    assert me.person_id is not None
    try:
        await service(request).check_code(
            me.person_id,
            data.get("purpose", ""),
            data.get("code", ""),
            address=address_of(request.scope),
        )
    except IdentityError as exc:
        return await _profile(
            request, status_code=_status(exc), error=_error(request, exc), section="contacts"
        )
    return redirect("/identity/profile?done=confirmed")


@post("/profile/tokens", access=permission(TOKENS), include_in_schema=False)
async def profile_token_create(request: Req) -> Response[str]:
    data = await request.form()
    try:
        orgs = [int(v) for v in data.getall("organizations", []) if str(v).isdigit()]
        made = await service(request).create_token(
            _me(request),
            str(data.get("name", "")),
            [str(v) for v in data.getall("permissions", [])],
            orgs,
            address=address_of(request.scope),
        )
    except IdentityError as exc:
        return await _profile(
            request, status_code=_status(exc), error=_error(request, exc), section="tokens"
        )
    return await _profile(request, new_token=made.token, section="tokens")


@post("/profile/tokens/{token_id:int}/revoke", access=permission(TOKENS), include_in_schema=False)
async def profile_token_revoke(request: Req, token_id: FromPath[int]) -> Response[str]:
    me = _me(request)
    assert me.person_id is not None
    try:
        await service(request).revoke_token(
            me.person_id, token_id, address=address_of(request.scope)
        )
    except IdentityError as exc:
        raise NotFoundException() from exc
    return redirect("/identity/profile?done=revoked")


# --- staff: accounts ----------------------------------------------------------------------


@get("/accounts", access=permission(ACCOUNTS, scope="global"), include_in_schema=False)
async def accounts(
    request: Req,
    q: FromQuery[str] = "",
    status: FromQuery[str] = "",
    page_no: FromQuery[int] = 1,
) -> Response[str]:
    page_no = max(1, page_no)
    rows, total = await service(request).list_accounts(
        search=q,
        status=status if status in {"active", "disabled"} else None,
        limit=PAGE_SIZE,
        offset=(page_no - 1) * PAGE_SIZE,
    )
    template = (
        "identity/accounts_table.html"
        if request.headers.get("hx-request")
        else "identity/accounts.html"
    )
    return await page(
        request,
        template,
        accounts=rows,
        total=total,
        q=q,
        status=status,
        page_no=page_no,
        pages=max(1, -(-total // PAGE_SIZE)),
        error=None,
        values={},
        when=lambda v: _when(request, v),
    )


@post("/accounts", access=permission(ACCOUNTS, scope="global"), include_in_schema=False)
async def account_create(request: Req) -> Response[str]:
    data = await form(request)
    me = _me(request)
    try:
        account = await service(request).create_account(
            full_name=data.get("full_name", ""),
            email=data.get("email") or None,
            phone=data.get("phone") or None,
            password=data.get("password") or None,
            language=data.get("language") or None,
            actor_id=me.person_id,
            address=address_of(request.scope),
        )
    except IdentityError as exc:
        rows, total = await service(request).list_accounts(limit=PAGE_SIZE)
        return await page(
            request,
            "identity/accounts.html",
            status_code=_status(exc),
            accounts=rows,
            total=total,
            q="",
            status="",
            page_no=1,
            pages=max(1, -(-total // PAGE_SIZE)),
            error=_error(request, exc),
            values={k: v for k, v in data.items() if k != "password"},
            when=lambda v: _when(request, v),
        )
    return redirect(f"/identity/accounts/{account.id}")


@get(
    "/accounts/{account_id:int}",
    access=permission(ACCOUNTS, scope="global"),
    include_in_schema=False,
)
async def account_card(request: Req, account_id: FromPath[int]) -> Response[str]:
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
        when=lambda v: _when(request, v),
    )


@post(
    "/accounts/{account_id:int}/status",
    access=permission(ACCOUNTS, scope="global"),
    include_in_schema=False,
)
async def account_status(request: Req, account_id: FromPath[int]) -> Response[str]:
    data = await form(request)
    status = data.get("status", "")
    if status not in {"active", "disabled"}:
        raise NotFoundException()
    try:
        await service(request).set_status(
            account_id,
            "active" if status == "active" else "disabled",
            actor_id=_me(request).person_id,
            address=address_of(request.scope),
        )
    except IdentityError as exc:
        raise NotFoundException() from exc
    return redirect(f"/identity/accounts/{account_id}")


# --- staff: security log ------------------------------------------------------------------


def _date(value: str, tz: str = "UTC") -> dt.datetime | None:
    """The start of a day given as ``YYYY-MM-DD``, in time zone ``tz`` (the reader's)."""
    try:
        day = dt.date.fromisoformat(value)
    except ValueError:
        return None
    return dt.datetime.combine(day, dt.time(), tzinfo=i18n.zone(tz))


@get("/audit", access=permission(AUDIT, scope="global"), include_in_schema=False)
async def audit(
    request: Req,
    action: FromQuery[str] = "",
    person: FromQuery[str] = "",
    organization: FromQuery[str] = "",
    since: FromQuery[str] = "",
    until: FromQuery[str] = "",
    page_no: FromQuery[int] = 1,
) -> Response[str]:
    svc = service(request)
    page_no = max(1, page_no)
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
        person_id=person_id,
        organization_id=int(organization) if organization.strip().isdigit() else None,
        since=_date(since, reader),
        until=until_at + dt.timedelta(days=1) if until_at else None,
        limit=PAGE_SIZE,
        offset=(page_no - 1) * PAGE_SIZE,
    )
    names = await svc.names([r.actor_id for r in rows] + [r.subject_id for r in rows])
    host = shell_of(request).host
    org_ids = sorted({r.organization_id for r in rows if r.organization_id})
    org_names: dict[int, str] = {}
    for answer in await host.plugins.acall("organization_names", host=host, ids=org_ids):
        org_names.update(answer.value)
    template = (
        "identity/audit_table.html" if request.headers.get("hx-request") else "identity/audit.html"
    )
    return await page(
        request,
        template,
        events=rows,
        names=names,
        organization_names=org_names,
        total=total,
        page_no=page_no,
        pages=max(1, -(-total // PAGE_SIZE)),
        filters={
            "action": action,
            "person": person,
            "organization": organization,
            "since": since,
            "until": until,
        },
        when=lambda v: _when(request, v),
    )


def routers() -> list[Any]:
    """Sign-in at the site's root (``/login``, ``/logout``); the rest under ``/identity``."""
    return [
        login_page,
        login,
        logout,
        Router(
            "/identity",
            route_handlers=[
                reset_page,
                reset_request,
                reset_confirm_page,
                reset_confirm,
                profile,
                profile_save,
                profile_password,
                profile_logout_others,
                profile_code_send,
                profile_code_check,
                profile_token_create,
                profile_token_revoke,
                accounts,
                account_create,
                account_card,
                account_status,
                audit,
            ],
        ),
    ]
