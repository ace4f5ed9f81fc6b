"""Pages of the built-in identity: sign-in, reset, profile, staff accounts, security log.

Routes are thin, on the page kit: read the form into a struct (:func:`read_form`), call
:class:`IdentityService`, render or redirect. Refusals come back as the service's
:class:`IdentityError` (a :class:`~kabinet.forms.FieldError`), shown next to the field it
names (``shell/forms.html``).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Set
from typing import Any

from litestar import Request, Response, Router, get, post
from litestar.exceptions import NotFoundException
from litestar.params import FromPath, FromQuery

from kabinet import i18n
from kabinet.access import AllOrganizations, Principal, permission, public, signed_in
from kabinet.forms import FieldError, FormView, form_view, read_form
from kabinet.htmx import redirect
from kabinet.identity import actions
from kabinet.identity.forms import (
    AccountForm,
    CodeForm,
    LoginForm,
    NewPasswordForm,
    PasswordForm,
    ProfileForm,
    ResetForm,
    StatusForm,
    TokenForm,
)
from kabinet.identity.middleware import address_of
from kabinet.identity.services import (
    IdentityError,
    IdentityService,
    RateLimited,
    identity_service,
)
from kabinet.pages import page, principal_of, safe_next, shell_of
from kabinet.paging import PageNo, Paging

ACCOUNTS = "identity.accounts.manage"
AUDIT = "identity.audit.view"
TOKENS = "identity.tokens.manage"
PAGE_SIZE = 50
LANGUAGE_NAMES = {"ru": "Русский", "en": "English"}
TIMEZONES = [
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
]
Req = Request[Any, Any, Any]


def service(request: Req) -> IdentityService:
    return identity_service(shell_of(request).host)


def _t(request: Req, message: str) -> str:
    return i18n.gettext_(shell_of(request).language(request), message)


def _when(request: Req, value: dt.datetime | None) -> str:
    shell = shell_of(request)
    return i18n.format_datetime(value, shell.language(request), shell.timezone(request), "short")


async def _form(request: Req, exc: FieldError) -> FormView:
    """The form sent, to show again with the refusal beside its field (and when a person
    refused for too many attempts may try again)."""
    found = await form_view(request, exc)
    if isinstance(exc, RateLimited) and exc.retry_at is not None:
        key = exc.field or ""
        found.errors[key] += " " + _t(request, "Try again after {when}.").format(
            when=_when(request, exc.retry_at)
        )
    return found


# --- sign in and out ----------------------------------------------------------------------


def keycloak_login(request: Req, next_path: str | None) -> Response[Any] | None:
    """With Keycloak configured (the ``keycloak`` plugin), sign-in happens there."""
    from kabinet.keycloak.service import login_redirect

    target = login_redirect(shell_of(request).host, safe_next(next_path))
    return redirect(request, target) if target is not None else None


def keycloak_service(host: Any) -> Any:
    from kabinet.keycloak.service import keycloak_service as found

    return found(host)


@get("/login", access=public, include_in_schema=False)
async def login_page(request: Req, next: FromQuery[str] = "/") -> Response[Any]:
    keycloak = keycloak_login(request, next)  # Keycloak configured: sign in there
    if keycloak is not None:
        return keycloak
    return await page(request, "identity/login.html", next=safe_next(next), form=None)


@post("/login", access=public, include_in_schema=False)
async def login(request: Req) -> Response[Any]:
    data = await read_form(request, LoginForm)
    keycloak = keycloak_login(request, data.next)  # no portal passwords then
    if keycloak is not None:
        return keycloak
    svc = service(request)
    target = safe_next(data.next)
    try:
        result = await svc.login(
            data.login,
            data.password,
            address=address_of(request.scope),
            user_agent=request.headers.get("user-agent", ""),
            previous=request.cookies.get(svc.settings.cookie_name),
        )
    except IdentityError as exc:
        return await page(
            request,
            "identity/login.html",
            status_code=exc.status,
            next=target,
            form=await _form(request, exc),
        )
    response = redirect(request, target)
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
async def logout(request: Req) -> Response[Any]:
    svc = service(request)
    token = request.cookies.get(svc.settings.cookie_name)
    keycloak = keycloak_service(shell_of(request).host)
    if token:
        if keycloak is not None:  # ends the Keycloak session behind it too
            await keycloak.logout(token, address=address_of(request.scope))
        else:
            await svc.logout(token, address=address_of(request.scope))
    # With Keycloak, /login leaves for it, which CSP form-action forbids after a form post.
    response = redirect(request, "/login" if keycloak is None else "/")
    response.delete_cookie(svc.settings.cookie_name, path="/")
    return response


# --- password reset -----------------------------------------------------------------------


@get("/reset", access=public, include_in_schema=False)
async def reset_page(request: Req) -> Response[Any]:
    return await page(request, "identity/reset_request.html", sent=False, form=None)


@post("/reset", access=public, include_in_schema=False)
async def reset_request(request: Req) -> Response[Any]:
    data = await read_form(request, ResetForm)
    try:
        await service(request).request_reset(data.login, address=address_of(request.scope))
    except IdentityError as exc:
        return await page(
            request,
            "identity/reset_request.html",
            status_code=exc.status,
            sent=False,
            form=await _form(request, exc),
        )
    return await page(request, "identity/reset_request.html", sent=True, form=None)


@get("/reset/confirm", access=public, include_in_schema=False)
async def reset_confirm_page(request: Req, token: FromQuery[str] = "") -> Response[Any]:
    valid = bool(token) and await service(request).check_reset(token) is not None
    return await page(
        request,
        "identity/reset_confirm.html",
        status_code=200 if valid else 400,
        token=token,
        valid=valid,
        form=None,
    )


@post("/reset/confirm", access=public, include_in_schema=False)
async def reset_confirm(request: Req) -> Response[Any]:
    data = await read_form(request, NewPasswordForm)
    try:
        if data.password != data.password2:
            raise IdentityError("The passwords differ.", field="password2")
        await service(request).reset_password(
            data.token, data.password, address=address_of(request.scope)
        )
    except IdentityError as exc:
        return await page(
            request,
            "identity/reset_confirm.html",
            status_code=exc.status,
            token=data.token,
            valid=exc.field != "token",
            form=await _form(request, exc),
        )
    return redirect(request, "/login?reset=1")


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
    form: FormView | None = None,
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
    held = token_orgs if isinstance(token_orgs, (set, frozenset)) else set()
    languages = host.settings.host.languages
    zones = TIMEZONES if account.timezone in TIMEZONES else [*TIMEZONES, account.timezone]
    return await page(
        request,
        "identity/profile.html",
        status_code=status_code,
        permission_labels=labels,
        organization_names=org_names,
        account=account,
        sessions=sessions,
        form=form,
        notice=notice,
        new_token=new_token,
        section=section,
        can_tokens=can_tokens,
        tokens=tokens,
        when=lambda v: _when(request, v),
        language_options=[(code, LANGUAGE_NAMES.get(code, code)) for code in languages],
        zone_options=[(zone, zone) for zone in zones],
        permission_options=[(code, labels.get(code, code)) for code in permissions],
        organization_options=[(org, org_names.get(org, org)) for org in sorted(held)],
    )


@get("/profile", access=signed_in, include_in_schema=False)
async def profile(request: Req, done: FromQuery[str] = "") -> Response[Any]:
    notices = {
        "saved": "Your profile is saved.",
        "password": "Your password is changed; your other sessions are ended.",
        "others": "Your other sessions are ended.",
        "sent": "We sent you a code.",
        "confirmed": "Confirmed, thank you.",
        "revoked": "The token is revoked.",
    }
    return await _profile(request, notice=_t(request, notices.get(done, "")) if done else "")


async def _refused(request: Req, exc: FieldError, section: str) -> Response[Any]:
    """The profile again, the refusal beside the field of ``section``'s form."""
    return await _profile(
        request, status_code=exc.status, form=await _form(request, exc), section=section
    )


@post("/profile", access=signed_in, include_in_schema=False)
async def profile_save(request: Req) -> Response[Any]:
    me = _me(request)
    assert me.person_id is not None
    try:
        data = await read_form(request, ProfileForm)
        account = await service(request).update_profile(
            me.person_id,
            full_name=data.full_name,
            email=data.email or None,
            phone=data.phone or None,
            language=data.language,
            timezone=data.timezone,
            address=address_of(request.scope),
        )
    except FieldError as exc:
        return await _refused(request, exc, "profile")
    response = redirect(request, "/identity/profile?done=saved")
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
async def profile_password(request: Req) -> Response[Any]:
    me = _me(request)
    svc = service(request)
    assert me.person_id is not None
    try:
        data = await read_form(request, PasswordForm)
        if data.new_password != data.new_password2:
            raise IdentityError("The passwords differ.", field="new_password2")
        await svc.change_password(
            me.person_id,
            data.current_password,
            data.new_password,
            keep_token=request.cookies.get(svc.settings.cookie_name),
            address=address_of(request.scope),
        )
    except FieldError as exc:
        return await _refused(request, exc, "password")
    return redirect(request, "/identity/profile?done=password")


@post("/profile/logout-others", access=signed_in, include_in_schema=False)
async def profile_logout_others(request: Req) -> Response[Any]:
    svc = service(request)
    token = request.cookies.get(svc.settings.cookie_name)
    if token:
        await svc.logout_others(token, address=address_of(request.scope))
    return redirect(request, "/identity/profile?done=others")


@post("/profile/codes/send", access=signed_in, include_in_schema=False)
async def profile_code_send(request: Req) -> Response[Any]:
    me = _me(request)
    assert me.person_id is not None
    try:
        data = await read_form(request, CodeForm)
        await service(request).send_code(
            me.person_id, data.purpose, address=address_of(request.scope)
        )
    except FieldError as exc:
        return await _refused(request, exc, "contacts")
    return redirect(request, "/identity/profile?done=sent")


@post("/profile/codes/check", access=signed_in, include_in_schema=False)
async def profile_code_check(request: Req) -> Response[Any]:
    me = _me(request)
    assert me.person_id is not None
    try:
        data = await read_form(request, CodeForm)
        await service(request).check_code(
            me.person_id, data.purpose, data.code, address=address_of(request.scope)
        )
    except FieldError as exc:
        return await _refused(request, exc, "contacts")
    return redirect(request, "/identity/profile?done=confirmed")


@post("/profile/tokens", access=permission(TOKENS), include_in_schema=False)
async def profile_token_create(request: Req) -> Response[Any]:
    try:
        data = await read_form(request, TokenForm)
        made = await service(request).create_token(
            _me(request),
            data.name,
            data.permissions,
            data.organizations,
            address=address_of(request.scope),
        )
    except FieldError as exc:
        return await _refused(request, exc, "tokens")
    return await _profile(request, new_token=made.token, section="tokens")


@post("/profile/tokens/{token_id:int}/revoke", access=permission(TOKENS), include_in_schema=False)
async def profile_token_revoke(request: Req, token_id: FromPath[int]) -> Response[Any]:
    me = _me(request)
    assert me.person_id is not None
    try:
        await service(request).revoke_token(
            me.person_id, token_id, address=address_of(request.scope)
        )
    except IdentityError as exc:
        raise NotFoundException() from exc
    return redirect(request, "/identity/profile?done=revoked")


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
        when=lambda v: _when(request, v),
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
    me = _me(request)
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
            form=await _form(request, exc),
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
        when=lambda v: _when(request, v),
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
            actor_id=_me(request).person_id,
            address=address_of(request.scope),
        )
    except IdentityError as exc:
        raise NotFoundException() from exc
    return redirect(request, f"/identity/accounts/{account_id}")


# --- staff: security log ------------------------------------------------------------------


def _action(request: Req, code: str) -> str | None:
    """A security event's label in the reader's language (None: a code without one)."""
    known = actions.label(code)
    return _t(request, known) if known else None


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
        person_id=person_id,
        organization_id=int(organization) if organization.strip().isdigit() else None,
        since=_date(since, reader),
        until=until_at + dt.timedelta(days=1) if until_at else None,
        limit=paging.limit,
        offset=paging.offset,
    )
    names = await svc.names([r.actor_id for r in rows] + [r.subject_id for r in rows])
    host = shell_of(request).host
    org_ids = sorted({r.organization_id for r in rows if r.organization_id})
    org_names: dict[int, str] = {}
    for answer in await host.plugins.acall("organization_names", host=host, ids=org_ids):
        org_names.update(answer.value)
    return await page(
        request,
        "identity/audit.html",
        fragment="identity/audit_table.html",
        events=rows,
        names=names,
        organization_names=org_names,
        action_label=lambda code: _action(request, code),
        total=total,
        paging=paging.counted(total),
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
