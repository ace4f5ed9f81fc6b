"""The profile: a person's own details, password, sessions, confirmation codes and API
tokens."""

from __future__ import annotations

from collections.abc import Set
from typing import TYPE_CHECKING, Any

from litestar import Response, Router, get, post
from litestar.exceptions import NotFoundException
from litestar.params import FromPath, FromQuery

from kabinet import i18n
from kabinet.access import AllOrganizations, permission, signed_in
from kabinet.forms import FieldError, FormView, read_form
from kabinet.htmx import redirect
from kabinet.identity import agents
from kabinet.identity.forms import CodeForm, PasswordForm, ProfileForm, TokenForm
from kabinet.identity.middleware import address_of
from kabinet.identity.pages import Req, current_person, local_time, refused_form, service, tr
from kabinet.identity.services import IdentityError
from kabinet.pages import page, shell_of

if TYPE_CHECKING:
    from litestar.types import ControllerRouterHandler

TOKENS = "identity.tokens.manage"
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


# --- my profile ---------------------------------------------------------------------------


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
    me = current_person(request)
    assert me.person_id is not None
    account = await svc.get_account(me.person_id)
    if account is None:
        raise NotFoundException()
    host = shell_of(request).host
    current = request.cookies.get(svc.cookie_name)
    current_key = svc.session_key(current) if current else ""
    sessions = [
        {
            "current": s.key == current_key,
            "created": local_time(request, s.created_at),
            "seen": local_time(request, s.last_seen_at),
            "address": s.address,
            "agent": s.user_agent,
            "browser": agents.summary(s.user_agent),
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
        when=lambda v: local_time(request, v),
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
    return await _profile(request, notice=tr(request, notices.get(done, "")) if done else "")


async def _refused(request: Req, exc: FieldError, section: str) -> Response[Any]:
    """The profile again, the refusal beside the field of ``section``'s form."""
    return await _profile(
        request, status_code=exc.status, form=await refused_form(request, exc), section=section
    )


@post("/profile", access=signed_in, include_in_schema=False)
async def profile_save(request: Req) -> Response[Any]:
    me = current_person(request)
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
    me = current_person(request)
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
            keep_token=request.cookies.get(svc.cookie_name),
            address=address_of(request.scope),
        )
    except FieldError as exc:
        return await _refused(request, exc, "password")
    return redirect(request, "/identity/profile?done=password")


@post("/profile/logout-others", access=signed_in, include_in_schema=False)
async def profile_logout_others(request: Req) -> Response[Any]:
    svc = service(request)
    token = request.cookies.get(svc.cookie_name)
    if token:
        await svc.logout_others(token, address=address_of(request.scope))
    return redirect(request, "/identity/profile?done=others")


@post("/profile/codes/send", access=signed_in, include_in_schema=False)
async def profile_code_send(request: Req) -> Response[Any]:
    me = current_person(request)
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
    me = current_person(request)
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
            current_person(request),
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
    me = current_person(request)
    assert me.person_id is not None
    try:
        await service(request).revoke_token(
            me.person_id, token_id, address=address_of(request.scope)
        )
    except IdentityError as exc:
        raise NotFoundException() from exc
    return redirect(request, "/identity/profile?done=revoked")


def routers() -> list[ControllerRouterHandler]:
    return [
        Router(
            "/identity",
            route_handlers=[
                profile,
                profile_save,
                profile_password,
                profile_logout_others,
                profile_code_send,
                profile_code_check,
                profile_token_create,
                profile_token_revoke,
            ],
        )
    ]
