"""Pages of the built-in identity: sign-in and out, password reset, and the helpers every
identity page shares (the profile is in :mod:`.profile_pages`, staff's accounts and
security log in :mod:`.account_pages`, a person's data in :mod:`.personal_pages`).

Routes are thin, on the page kit: read the form into a struct (:func:`read_form`), call
:class:`IdentityService`, render or redirect. Refusals come back as the service's
:class:`IdentityError` (a :class:`~kabinet.forms.FieldError`), shown next to the field it
names (``shell/forms.html``).
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any

from litestar import Request, Response, Router, get, post
from litestar.params import FromQuery

from kabinet import i18n
from kabinet.access import Principal, public
from kabinet.forms import FieldError, FormView, form_view, read_form
from kabinet.htmx import redirect
from kabinet.identity.forms import LoginForm, NewPasswordForm, ResetForm
from kabinet.identity.middleware import address_of
from kabinet.identity.services import IdentityError, IdentityService, RateLimited, identity_service
from kabinet.pages import page, principal_of, safe_next, serves_https, shell_of

if TYPE_CHECKING:
    from litestar.types import ControllerRouterHandler

Req = Request[Any, Any, Any]


def service(request: Req) -> IdentityService:
    return identity_service(shell_of(request).host)


def tr(request: Req, message: str) -> str:
    return i18n.gettext_(shell_of(request).language(request), message)


def local_time(request: Req, value: dt.datetime | None) -> str:
    shell = shell_of(request)
    return i18n.format_datetime(value, shell.language(request), shell.timezone(request), "short")


def current_person(request: Req) -> Principal:
    """The signed-in person of a page that requires one."""
    principal = principal_of(request.scope)
    assert principal.person_id is not None
    return principal


async def refused_form(request: Req, exc: FieldError) -> FormView:
    """The form sent, to show again with the refusal beside its field (and when a person
    refused for too many attempts may try again)."""
    found = await form_view(request, exc)
    if isinstance(exc, RateLimited) and exc.retry_at is not None:
        key = exc.field or ""
        found.errors[key] += " " + tr(request, "Try again after {when}.").format(
            when=local_time(request, exc.retry_at)
        )
    return found


# --- sign in and out ----------------------------------------------------------------------


def keycloak_login(request: Req, next_path: str | None) -> Response[Any] | None:
    """With Keycloak configured (the ``keycloak`` plugin), sign-in happens there."""
    from kabinet.keycloak.services import login_redirect

    target = login_redirect(shell_of(request).host, safe_next(next_path))
    return redirect(request, target) if target is not None else None


def keycloak_service(host: Any) -> Any:
    from kabinet.keycloak.services import keycloak_service as found

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
            previous=request.cookies.get(svc.cookie_name),
        )
    except IdentityError as exc:
        return await page(
            request,
            "identity/login.html",
            status_code=exc.status,
            next=target,
            form=await refused_form(request, exc),
        )
    response = redirect(request, target)
    base = shell_of(request).host.settings.host
    response.set_cookie(
        svc.cookie_name,
        result.token,
        max_age=svc.settings.absolute_timeout,
        httponly=True,
        samesite="lax",
        secure=serves_https(base.base_url),
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
    token = request.cookies.get(svc.cookie_name)
    keycloak = keycloak_service(shell_of(request).host)
    if token:
        if keycloak is not None:  # ends the Keycloak session behind it too
            await keycloak.logout(token, address=address_of(request.scope))
        else:
            await svc.logout(token, address=address_of(request.scope))
    # With Keycloak, /login leaves for it, which CSP form-action forbids after a form post.
    response = redirect(request, "/login" if keycloak is None else "/")
    response.delete_cookie(svc.cookie_name, path="/")
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
            form=await refused_form(request, exc),
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
            form=await refused_form(request, exc),
        )
    return redirect(request, "/login?reset=1")


def routers() -> list[ControllerRouterHandler]:
    """Sign-in at the site's root (``/login``, ``/logout``); the reset under ``/identity``."""
    return [
        login_page,
        login,
        logout,
        Router(
            "/identity",
            route_handlers=[reset_page, reset_request, reset_confirm_page, reset_confirm],
        ),
    ]
