"""The Keycloak sign-in routes: thin; the rules are in :mod:`kabinet.keycloak.login`.

``/keycloak/login`` sends the browser to Keycloak; ``/keycloak/callback`` is where Keycloak
sends it back (register ``<base_url>/keycloak/callback`` as the client's redirect URI);
``/keycloak/logout`` ends the portal session and the Keycloak session behind it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from litestar import Controller, Request, Response, get, post
from litestar.status_codes import HTTP_302_FOUND, HTTP_303_SEE_OTHER

from kabinet import i18n
from kabinet.access import public
from kabinet.identity.middleware import address_of
from kabinet.keycloak.errors import LoginError
from kabinet.pages import language, page, safe_next

if TYPE_CHECKING:
    from kabinet.keycloak.services import KeycloakService

LOGIN_COOKIE = "kabinet_keycloak_login"

MESSAGES: dict[str, dict[str, str]] = {
    "not_configured": {
        "ru": "Вход через Keycloak не настроен.",
        "en": "Sign-in through Keycloak is not configured.",
    },
    "no_login": {
        "ru": "Этот вход начат не в этом браузере или устарел. Войдите ещё раз.",
        "en": "This sign-in was not started in this browser or has expired. Sign in again.",
    },
    "state": {
        "ru": "Ответ Keycloak не относится к этому входу. Войдите ещё раз.",
        "en": "Keycloak's answer does not belong to this sign-in. Sign in again.",
    },
    "nonce": {
        "ru": "Ответ Keycloak не относится к этому входу. Войдите ещё раз.",
        "en": "Keycloak's answer does not belong to this sign-in. Sign in again.",
    },
    "disabled": {
        "ru": "Ваша учётная запись отключена. Обратитесь к администратору.",
        "en": "Your account is disabled. Ask an administrator.",
    },
    "erased": {
        "ru": "Ваша учётная запись удалена из портала, войти с ней нельзя. "
        "Если вы хотите снова пользоваться порталом, обратитесь к администратору.",
        "en": "Your account was removed from the portal and cannot sign in. "
        "To use the portal again, ask an administrator.",
    },
    "unavailable": {
        "ru": "Keycloak сейчас недоступен. Попробуйте через минуту.",
        "en": "Keycloak is not reachable. Try again in a minute.",
    },
}
GENERIC = {
    "ru": "Не удалось войти через Keycloak. Войдите ещё раз.",
    "en": "Signing in through Keycloak failed. Sign in again.",
}
TITLE = {"ru": "Вход не выполнен", "en": "Not signed in"}
AGAIN = {"ru": "Войти ещё раз", "en": "Sign in again"}


def service_of(request: Request[Any, Any, Any]) -> KeycloakService | None:
    from kabinet.keycloak.services import keycloak_service

    return keycloak_service(request.app.state["kabinet.host"])


def _secure(request: Request[Any, Any, Any]) -> bool:
    host = request.app.state["kabinet.host"]
    return request.url.scheme == "https" or host.settings.host.base_url.startswith("https://")


async def _refused(request: Request[Any, Any, Any], error: LoginError) -> Response[str]:
    lang = language(request)
    pick = "ru" if lang == "ru" else "en"
    message = MESSAGES.get(error.reason, GENERIC)[pick]
    response = await page(
        request,
        "keycloak/error.html",
        status_code=error.status,
        status=error.status,
        title=TITLE[pick],
        message=message,
        reason=error.reason,
        again=AGAIN[pick],
    )
    response.delete_cookie(LOGIN_COOKIE, path="/keycloak")
    return response


def _client(request: Request[Any, Any, Any]) -> tuple[str, str]:
    """The client's address (behind trusted proxies too, as identity reads it) and agent."""
    return address_of(request.scope), request.headers.get("user-agent", "")


class KeycloakRoutes(Controller):
    path = "/keycloak"
    include_in_schema = False

    @get("/login", access=public)
    async def login(self, request: Request[Any, Any, Any]) -> Response[Any]:
        """Leave for Keycloak's sign-in page with a fresh state, nonce and PKCE challenge."""
        next = request.query_params.get("next") or "/"
        service = service_of(request)
        if service is None:
            return await _refused(request, LoginError("not_configured", "", 404))
        try:
            browser, url = await service.flow.begin(service.callback_url(), safe_next(next))
        except LoginError as error:
            return await _refused(request, error)
        response: Response[Any] = Response(
            "", status_code=HTTP_302_FOUND, headers={"Location": url, "Cache-Control": "no-store"}
        )
        response.set_cookie(
            LOGIN_COOKIE,
            browser,
            max_age=service.settings.login_timeout,
            path="/keycloak",
            httponly=True,
            samesite="lax",
            secure=_secure(request),
        )
        return response

    @get("/callback", access=public)
    async def callback(self, request: Request[Any, Any, Any]) -> Response[Any]:
        """Keycloak's answer: check it, sign the person in, go where they were going."""
        service = service_of(request)
        if service is None:
            return await _refused(request, LoginError("not_configured", "", 404))
        params = {k: str(v) for k, v in request.query_params.items()}
        address, agent = _client(request)
        try:
            person, next_path = await service.flow.complete(
                request.cookies.get(LOGIN_COOKIE), params
            )
        except LoginError as error:
            return await _refused(request, error)
        try:
            signed = await service.accounts.sign_in(person, address=address, user_agent=agent)
            # The session this browser had (as anyone) ends with the new one.
            await service.accounts.identity.end_previous_session(
                request.cookies.get(service.cookie_name), address=address
            )
        except LoginError as error:
            if error.reason == "erased" and person.refresh_token:
                # Nor does the browser stay signed in at Keycloak as the removed person.
                await service.flow.end_keycloak_session(person.refresh_token)
            return await _refused(request, error)
        response: Response[Any] = Response(
            "", status_code=HTTP_302_FOUND, headers={"Location": next_path}
        )
        response.delete_cookie(LOGIN_COOKIE, path="/keycloak")
        # The same cookies as identity's own login sets.
        response.set_cookie(
            service.cookie_name,
            signed.token,
            max_age=service.session_lifetime,
            path="/",
            httponly=True,
            samesite="lax",
            secure=_secure(request),
        )
        response.set_cookie(
            i18n.LANG_COOKIE,
            signed.language,
            max_age=365 * 86400,
            httponly=True,
            samesite="lax",
            path="/",
        )
        return response

    @post("/logout", access=public, status_code=HTTP_303_SEE_OTHER)
    async def logout(self, request: Request[Any, Any, Any]) -> Response[Any]:
        """End this browser's portal session and the Keycloak session behind it."""
        service = service_of(request)
        address, _agent = _client(request)
        if service is not None:
            token = request.cookies.get(service.cookie_name)
            if token:
                await service.logout(token, address=address)
        response: Response[Any] = Response(
            "", status_code=HTTP_303_SEE_OTHER, headers={"Location": "/"}
        )
        if service is not None:
            response.delete_cookie(service.cookie_name, path="/")
        return response
