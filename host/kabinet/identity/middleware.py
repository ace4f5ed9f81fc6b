"""Who is asking: the session cookie (pages and API) or an API token (API only).

The middleware puts a :class:`~kabinet.access.Principal` into ``scope["user"]`` before the
route runs; the web app's guard reads it. A request costs one read of the session (with
the account's version); the person's name, status and language come from process memory
while that version holds. Tokens count only on ``/api/`` and only by the ``Authorization``
header: a browser never sends one by itself, so API calls with a token need no CSRF check.
The key of a signed-in request's session goes into the scope's state too
(:data:`~kabinet.pages.SESSION_STATE`): the CSRF token is bound to it. A page request
(not ``/api/``) also carries the organization chosen in the header
(``Principal.working_in``, from the ``kabinet_org`` cookie), which the access service
applies to everything the person sees.
"""

from __future__ import annotations

import dataclasses
import ipaddress
from typing import TYPE_CHECKING, Any, TypeVar

from litestar.enums import ScopeType
from litestar.middleware import ASGIMiddleware

from kabinet.access import ANONYMOUS, ORG_COOKIE, Principal
from kabinet.identity.services import identity_service
from kabinet.identity.sessions import session_key
from kabinet.pages import SESSION_STATE

if TYPE_CHECKING:
    from litestar.types import ASGIApp, Receive, Scope, Send

    from kabinet.host import Host

ADDRESS_KEY = "kabinet.address"
P = TypeVar("P", bound=Principal)


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope["headers"]:
        if key == name:
            return str(value.decode("latin-1"))
    return None


def cookie_value(scope: Scope, name: str) -> str | None:
    header = _header(scope, b"cookie")
    if not header:
        return None
    for part in header.split(";"):
        key, sep, value = part.strip().partition("=")
        if sep and key == name:
            return value.strip().strip('"') or None
    return None


def client_address(scope: Scope, trusted: frozenset[str]) -> str:
    """The client's address; ``X-Forwarded-For`` is believed only from a trusted proxy."""
    client = scope.get("client")
    peer = str(client[0]) if client else ""
    if peer in trusted:
        forwarded = _header(scope, b"x-forwarded-for")
        if forwarded:
            for hop in reversed([h.strip() for h in forwarded.split(",")]):
                if hop and hop not in trusted:
                    try:
                        return str(ipaddress.ip_address(hop))
                    except ValueError:
                        break
    return peer


def address_of(scope: Any) -> str:
    """The client address the middleware worked out for this request."""
    state = scope.get("state") or {}
    return str(state.get(ADDRESS_KEY, ""))


def working_in(scope: Scope, principal: P) -> P:
    """A page request's principal with the organization chosen in the header (the
    :data:`~kabinet.access.ORG_COOKIE` cookie). The JSON API does not read it: an API
    answer never depends on what a browser tab chose (a token has its own organizations)."""
    if scope["path"].startswith("/api/"):
        return principal
    chosen = cookie_value(scope, ORG_COOKIE) or ""
    if not chosen.isdigit() or len(chosen) > 18:  # "all", nothing, or not an id
        return principal
    return dataclasses.replace(principal, working_in=int(chosen))


class IdentityMiddleware(ASGIMiddleware):
    scopes = (ScopeType.HTTP,)

    def __init__(self, host: Host) -> None:
        self.host = host
        service = identity_service(host)
        self.cookie = service.cookie_name
        self.trusted = frozenset(service.settings.trusted_proxies)

    async def handle(self, scope: Scope, receive: Receive, send: Send, next_app: ASGIApp) -> None:
        service = identity_service(self.host)
        address = client_address(scope, self.trusted)
        scope.setdefault("state", {})[ADDRESS_KEY] = address
        principal = None
        authorization = _header(scope, b"authorization")
        if authorization is not None and scope["path"].startswith("/api/"):
            scheme, _, credentials = authorization.partition(" ")
            if scheme.lower() == "bearer":
                principal = await service.resolve_token(credentials.strip(), address=address)
        else:
            token = cookie_value(scope, self.cookie)
            if token:
                principal = await service.resolve_session(token)
                if principal is not None:  # CSRF tokens are bound to this session
                    scope["state"][SESSION_STATE] = session_key(token)
                    principal = working_in(scope, principal)
        scope["user"] = principal or ANONYMOUS
        await next_app(scope, receive, send)

    async def identify(self, scope: Scope) -> None:
        """Who asks, for a page the middleware did not run for (the error page of an
        address no route matches: Litestar refuses it before any route middleware): the
        session cookie read as :meth:`handle` reads it, but only reading (no "last seen",
        nothing ended). A page only; a token never counts here. On any fault the request
        stays anonymous."""
        if scope["path"] == "/api" or scope["path"].startswith("/api/"):
            return
        state = scope.setdefault("state", {})
        token = cookie_value(scope, self.cookie)
        principal = None
        if token:
            try:
                principal = await identity_service(self.host).peek_session(token)
            except Exception:  # fail closed: the anonymous header
                principal = None
        if principal is None:
            scope["user"] = ANONYMOUS
            return
        state[SESSION_STATE] = session_key(token or "")
        scope["user"] = working_in(scope, principal)
