"""The page shell: templates, the person's language, navigation, panels, flash, CSRF, static.

Pages are rendered with one asynchronous Jinja2 environment whose loader combines the
host's templates (``kabinet/templates/shell/…``) and each plugin's ``template_dir``
(``<plugin>/…``). A route renders a page with :func:`page`::

    @get("/orders", access=permission("shipments.orders.view"))
    async def orders(request: Request) -> Response[str]:
        return await page(request, "shipments/orders.html", orders=...)

Templates are asynchronous so that ``render_panels(slot, **context)`` can await panels and
the access service. Exception handlers are synchronous: a 4xx error page is an
:class:`ErrorPage`, drawn asynchronously as it is sent (:meth:`Shell.render_error`, the
person's own header); a 5xx one by a synchronous twin without panels or navigation, which
is why the base layout reads the navigation from a variable.
"""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import hmac
import json
import re
import secrets
import time
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote, urlsplit

import jinja2
from litestar import Request, Response
from litestar.connection import ASGIConnection
from litestar.datastructures import Cookie
from litestar.exceptions import PermissionDeniedException
from litestar.response.base import ASGIResponse
from markupsafe import Markup

import kabinet
from kabinet import i18n
from kabinet.access import ANONYMOUS, Principal
from kabinet.contrib import NavItem, Panel

if TYPE_CHECKING:
    from kabinet.host import Host
    from kabinet.plugins import PluginInfo

TEMPLATES = Path(__file__).parent / "templates"
STATIC = Path(__file__).parent / "static" / "shell"
STATE_KEY = "kabinet.shell"
CSRF_COOKIE = "kabinet_csrf"
"""The CSRF cookie's base name; under https it is sent as ``__Host-kabinet_csrf``
(:func:`cookie_name`): read the name from ``Csrf.cookie_name``."""
CSRF_HEADER = "x-csrf-token"
CSRF_FIELD = "csrf_token"
HTML = "text/html"
_HASHED = re.compile(r"^(?P<stem>.+)\.(?P<digest>[0-9a-f]{12})(?P<ext>\.[A-Za-z0-9]+)$")
_MISSING = object()


def principal_of(scope: Mapping[str, Any]) -> Principal:
    """The person behind a request: what the identity middleware set, else anonymous."""
    user = scope.get("user")
    return user if isinstance(user, Principal) else ANONYMOUS


def _state(scope: Any) -> dict[str, Any]:
    state: dict[str, Any] = scope.setdefault("state", {})
    return state


# --- where a form may send the browser next -------------------------------------------------

NEXT_MAX = 500
"""The longest ``next=`` path kept (Keycloak's sign-in stores it in a column this wide)."""


def safe_next(target: str | None, default: str = "/") -> str:
    """``target`` if it is a path on this site, else ``default``: the one check for every
    redirect to a place the request names (``next=``, "back to").

    Only an absolute path passes: ``/`` then anything but a second ``/`` or ``\\``. Refused
    as well, since browsers read them as another site: a backslash anywhere (``/\\evil``
    means ``//evil``), a control character or space (browsers drop tabs and newlines, so
    ``/\t/evil`` is ``//evil``), a scheme or host (``https:``, ``javascript:``), and the
    same start percent-encoded once or twice (``/%5Cevil``, ``/%2F/evil``), for a path
    that goes through another ``next=`` (the sign-in page's) is decoded on the way.
    """
    if not target or len(target) > NEXT_MAX:
        return default
    if any(c <= " " or c == "\x7f" or c == "\\" for c in target):
        return default
    seen = target
    for _ in range(3):  # the value itself, then decoded once and twice
        if not seen.startswith("/") or seen[1:2] in ("/", "\\"):
            return default
        parts = urlsplit(seen)
        if parts.scheme or parts.netloc:
            return default
        decoded = "".join(c for c in unquote(seen) if c not in "\t\n\r")
        if decoded == seen:
            break
        seen = decoded
    return target


# --- cookie names -------------------------------------------------------------------------

HOST_PREFIX = "__Host-"


def serves_https(base_url: str) -> bool:
    """Whether the portal is served over https, as ``[host] base_url`` says: its cookies
    are then ``Secure`` and the session's and CSRF's are named with :data:`HOST_PREFIX`."""
    return base_url.startswith("https://")


def cookie_name(name: str, *, https: bool) -> str:
    """The name a portal cookie is sent under: ``__Host-<name>`` over https, else ``name``.

    A browser keeps a ``__Host-`` cookie only when it is ``Secure``, has ``Path=/`` and no
    ``Domain``, so a sibling subdomain (``evil.example.com`` beside
    ``portal.example.com``) can neither set nor overwrite it: the session and CSRF
    cookies cannot be tossed. Over plain http (local development, the demo) a browser
    would refuse a ``__Host-`` cookie, so the plain name stays. The one rule for the
    session cookie (``IdentityService.cookie_name``) and the CSRF one (``Csrf.cookie_name``).
    """
    return HOST_PREFIX + name if https and not name.startswith(HOST_PREFIX) else name


# --- CSRF: a signed double-submit token, bound to the session ---------------------------

SESSION_STATE = "kabinet.session"
"""Where the identity middleware records the key of the request's session (in the scope's
state); CSRF tokens are bound to it."""


def session_binding(scope: Mapping[str, Any]) -> str:
    """The key of the session the request runs in ("" when it has none)."""
    state = scope.get("state") or {}
    return str(state.get(SESSION_STATE) or "")


class Csrf:
    """Issues and checks the token that every unsafe page request must carry.

    The token lives in an HttpOnly cookie and is echoed by forms (``csrf_token`` field) or
    by htmx (``X-CSRF-Token`` header, set once on ``<body>``). It is ``nonce.signature``,
    the signature an HMAC with the portal's secret over the nonce *and the key of the
    session it was issued in*: a cookie planted by a sibling domain is not accepted, nor
    a token taken from another browser (another session), nor one from before sign-in.
    A page finding the cookie not valid for the current session issues a new one.
    """

    def __init__(self, secret: bytes, secure: bool) -> None:
        self.secret = secret
        self.secure = secure
        self.cookie_name = cookie_name(CSRF_COOKIE, https=secure)
        """The cookie's name (``__Host-kabinet_csrf`` under https)."""

    def _sign(self, nonce: str, binding: str = "") -> str:
        message = f"{nonce}|{binding}".encode()
        return hmac.new(self.secret, message, hashlib.sha256).hexdigest()[:32]

    def issue(self, binding: str = "") -> str:
        """A new token for the session stored under ``binding`` ("" when signed out)."""
        nonce = secrets.token_urlsafe(18)
        return f"{nonce}.{self._sign(nonce, binding)}"

    def valid(self, token: str | None, binding: str = "") -> bool:
        if not token or "." not in token:
            return False
        nonce, _, sig = token.partition(".")
        return hmac.compare_digest(sig, self._sign(nonce, binding))

    def token(self, request: Request[Any, Any, Any]) -> str:
        """The request's token, issuing a new one (set as a cookie by :func:`page`)."""
        state = _state(request.scope)
        current = state.get("kabinet.csrf")
        if current:
            return str(current)
        binding = session_binding(request.scope)
        cookie = request.cookies.get(self.cookie_name)
        if cookie is None or not self.valid(cookie, binding):
            cookie = self.issue(binding)
            state["kabinet.csrf_new"] = True
        state["kabinet.csrf"] = cookie
        return cookie

    def cookie(self, request: Request[Any, Any, Any]) -> Cookie | None:
        state = _state(request.scope)
        if not state.get("kabinet.csrf_new"):
            return None
        return Cookie(
            key=self.cookie_name,
            value=state["kabinet.csrf"],
            httponly=True,
            samesite="lax",
            secure=self.secure,
            path="/",
        )

    async def check(self, connection: ASGIConnection[Any, Any, Any, Any]) -> None:
        """Refuse (403) an unsafe request whose token is missing, differs from the cookie,
        or was not issued in this request's session."""
        cookie = connection.cookies.get(self.cookie_name)
        sent = connection.headers.get(CSRF_HEADER)
        if sent is None:
            content_type = connection.headers.get("content-type", "")
            if content_type.startswith(
                ("application/x-www-form-urlencoded", "multipart/form-data")
            ):
                form = await Request(connection.scope, connection.receive).form()
                value = form.get(CSRF_FIELD)
                sent = value if isinstance(value, str) else None
        binding = session_binding(connection.scope)
        if not (
            cookie
            and sent
            and self.valid(cookie, binding)
            and hmac.compare_digest(cookie.encode(), sent.encode())
        ):
            raise PermissionDeniedException(
                "The form has expired or did not come from this site. Reload the page and retry."
            )


# --- static files with content-hashed names ---------------------------------------------


class StaticFiles:
    """Static folders per plugin, served at ``/static/<plugin>/`` under hashed names.

    ``url("shell", "kabinet.css")`` gives ``/static/shell/kabinet.<hash>.css``: the hash of
    the content, so the file can be cached for a year and a new release gets a new URL.
    """

    def __init__(self, dirs: Mapping[str, Path]) -> None:
        self.dirs = {name: path.resolve() for name, path in dirs.items()}
        self._digests: dict[tuple[Path, float, int], str] = {}
        self._urls: dict[tuple[str, str], tuple[float, str]] = {}

    def file(self, plugin: str, rel: str) -> Path | None:
        root = self.dirs.get(plugin)
        if root is None or "\x00" in rel:
            return None
        path = (root / rel).resolve()
        if not path.is_relative_to(root) or not path.is_file():
            return None
        return path

    def digest(self, path: Path) -> str:
        stat = path.stat()
        key = (path, stat.st_mtime, stat.st_size)
        value = self._digests.get(key)
        if value is None:
            value = hashlib.sha256(path.read_bytes()).hexdigest()[:12]
            self._digests[key] = value
        return value

    def url(self, plugin: str, rel: str) -> str:
        """The hashed URL; worked out again at most once a second per file (a page asks for
        several, and a changed file gets its new URL within that second)."""
        now = time.monotonic()
        known = self._urls.get((plugin, rel))
        if known is not None and known[0] > now:
            return known[1]
        url = self._url(plugin, rel)
        self._urls[(plugin, rel)] = (now + 1.0, url)
        return url

    def _url(self, plugin: str, rel: str) -> str:
        path = self.file(plugin, rel)
        if path is None:
            return f"/static/{plugin}/{rel}"
        folder, _, name = rel.rpartition("/")
        stem, dot, ext = name.rpartition(".")
        hashed = f"{stem}.{self.digest(path)}.{ext}" if dot else f"{name}.{self.digest(path)}"
        return f"/static/{plugin}/{folder + '/' if folder else ''}{hashed}"

    def resolve(self, plugin: str, rel: str) -> tuple[Path, bool] | None:
        """The file for a requested name, and whether the name carried its current hash."""
        folder, _, name = rel.rpartition("/")
        match = _HASHED.match(name)
        if match:
            real = f"{folder + '/' if folder else ''}{match['stem']}{match['ext']}"
            path = self.file(plugin, real)
            if path is not None:
                return path, self.digest(path) == match["digest"]
        path = self.file(plugin, rel)
        return (path, False) if path is not None else None


# --- the shell ----------------------------------------------------------------------------


@dataclasses.dataclass
class Shell:
    """Everything a page needs from the host, built once with the app."""

    host: Host
    template_dirs: list[Path]
    static: StaticFiles
    navigation: list[tuple[PluginInfo, NavItem]]
    panels: list[tuple[PluginInfo, Panel]]
    csrf: Csrf
    env: jinja2.Environment = dataclasses.field(init=False)
    sync_env: jinja2.Environment = dataclasses.field(init=False)
    identify: list[Callable[[Any], Awaitable[None]]] = dataclasses.field(default_factory=list)
    """Who asks, for an error page no route middleware ran for: each middleware's
    ``identify(scope)`` (identity's reads the session cookie, only reading)."""

    def __post_init__(self) -> None:
        self.navigation.sort(key=lambda pair: (pair[1].order, pair[1].path))
        self.panels.sort(key=lambda pair: (pair[1].slot, pair[1].order, pair[1].name))
        self.env = self._environment(is_async=True)
        self.sync_env = self._environment(is_async=False)

    def _environment(self, *, is_async: bool) -> jinja2.Environment:
        env = jinja2.Environment(
            loader=jinja2.FileSystemLoader([TEMPLATES, *self.template_dirs]),
            autoescape=True,
            enable_async=is_async,
            extensions=["jinja2.ext.i18n"],
            trim_blocks=True,
            lstrip_blocks=True,
            auto_reload=self.host.settings.host.debug,
        )
        env.install_gettext_callables(  # type: ignore[attr-defined]
            gettext=_gettext, ngettext=_ngettext, newstyle=True
        )
        from kabinet.shell.header import header_nav

        env.globals.update(
            header_nav=header_nav,
            static=self.static.url,
            version=kabinet.__version__,
            localized=i18n.localized,
            # Error pages render synchronously: they show no panels (a coroutine there
            # would never be awaited).
            render_panels=self._render_panels if is_async else _no_panels,
            flashes=_pop_flashes,
        )
        env.filters.update(
            datetime=_fmt_datetime, date=_fmt_date, number=_fmt_number, money=_fmt_money
        )
        return env

    # person-specific facts

    def language(self, request: Request[Any, Any, Any]) -> str:
        state = _state(request.scope)
        lang = state.get("kabinet.lang")
        if lang is None:
            settings = self.host.settings.host
            lang = i18n.negotiate(
                request.cookies.get(i18n.LANG_COOKIE),
                request.headers.get("accept-language"),
                settings.languages,
                settings.language,
            )
            state["kabinet.lang"] = lang
        return str(lang)

    def timezone(self, request: Request[Any, Any, Any]) -> str:
        own = getattr(principal_of(request.scope), "timezone", None)
        return own if isinstance(own, str) and own else self.host.settings.host.timezone

    async def allowed(self, principal: Principal, code: str | None) -> bool:
        """Whether ``principal`` may see an entry guarded by permission ``code``."""
        if not principal.is_authenticated:
            return False
        if code is None:
            return True
        known = self.host.permissions.get(code)
        if known is not None and known[1].scope == "global":
            return await self.host.access.can(principal, code)
        return bool(await self.host.access.organizations(principal, code))

    async def nav_for(self, request: Request[Any, Any, Any]) -> list[dict[str, Any]]:
        principal = principal_of(request.scope)
        lang = self.language(request)
        path = request.url.path
        items: list[dict[str, Any]] = []
        platform = i18n.gettext_(lang, "Platform")
        for plugin, item in self.navigation:
            if await self.allowed(principal, item.permission):
                items.append(
                    {
                        "path": item.path,
                        "label": i18n.localized(item.label, lang),
                        "icon": item.icon,
                        "section": item.section,
                        "active": False,
                        # the app's name: the header groups by it (the host's own: one)
                        "group": platform
                        if plugin.builtin
                        else i18n.localized(plugin.manifest.title, lang),
                    }
                )
        # The entry whose path is the longest start of this page's is the current one:
        # on /shipments/invoices that is "Invoices", not "Orders" (/shipments/) too. The
        # router hands pages their path without its last slash (/dictionaries/documents for
        # the entry /dictionaries/documents/), so both are compared as folders.
        here = _folder(path)
        within = [i for i in items if here.startswith(_folder(i["path"]))]
        if within:
            max(within, key=lambda i: len(i["path"]))["active"] = True
        return items

    @jinja2.pass_context
    async def _render_panels(
        self, ctx: jinja2.runtime.Context, slot: str, bare: bool = False, **context: Any
    ) -> str:
        """Every panel of ``slot``; ``bare`` leaves out the section and heading (the header)."""
        request: Request[Any, Any, Any] = ctx["request"]
        principal = principal_of(request.scope)
        parts = []
        for _, panel in self.panels:
            if panel.slot != slot or not await self.allowed_panel(principal, panel):
                continue
            html = panel.render(request=request, host=self.host, lang=ctx["lang"], **context)
            if isinstance(html, Awaitable):
                html = await html
            if bare:
                parts.append(Markup(html))  # noqa: S704 - the panel escaped it (a template)
                continue
            title = i18n.localized(panel.title, ctx["lang"]) if panel.title else ""
            heading = Markup("<h2>{}</h2>").format(title) if title else Markup("")
            parts.append(
                Markup('<section class="panel" data-panel="{}">{}{}</section>').format(
                    # A panel's renderer returns HTML it has escaped itself (a template).
                    panel.name,
                    heading,
                    Markup(html),  # noqa: S704
                )
            )
        return Markup("").join(parts)

    async def allowed_panel(self, principal: Principal, panel: Panel) -> bool:
        return panel.permission is None or await self.allowed(principal, panel.permission)

    def context(self, request: Request[Any, Any, Any]) -> dict[str, Any]:
        settings = self.host.settings.host
        return {
            "request": request,
            "lang": self.language(request),
            "tz": self.timezone(request),
            "languages": settings.languages,
            "principal": principal_of(request.scope),
            "csrf_token": self.csrf.token(request),
            "csrf_field": CSRF_FIELD,
            "nav": [],
        }

    def _response(
        self, request: Request[Any, Any, Any], html: str, status_code: int
    ) -> Response[str]:
        response = Response(
            html,
            status_code=status_code,
            media_type=HTML,
            headers={
                "Cache-Control": "no-cache, private",
                "Content-Language": self.language(request),
                "Vary": "Cookie, Accept-Language",
            },
        )
        cookie = self.csrf.cookie(request)
        if cookie is not None:
            response.set_cookie(cookie)
        return response

    async def render(
        self, request: Request[Any, Any, Any], name: str, context: Mapping[str, Any], status: int
    ) -> Response[str]:
        ctx = self.context(request)
        ctx["nav"] = await self.nav_for(request)
        ctx.update(context)
        html = await self.env.get_template(name).render_async(ctx)
        return self._response(request, html, status)

    def render_sync(
        self, request: Request[Any, Any, Any], name: str, context: Mapping[str, Any], status: int
    ) -> Response[str]:
        """For exception handlers, which Litestar calls synchronously (no navigation)."""
        ctx = self.context(request)
        ctx.update(context)
        html = self.sync_env.get_template(name).render(ctx)
        return self._response(request, html, status)

    async def render_error(
        self, request: Request[Any, Any, Any], name: str, context: Mapping[str, Any], status: int
    ) -> Response[str]:
        """An error page in the person's own shell (their sections, company, name, sign
        out), drawn when it is sent (:class:`ErrorPage`). Where no route middleware ran
        (an address no route matches, a method the route does not take) the person is
        found by :attr:`identify`, only reading; on any fault the page falls back to the
        anonymous header. Anonymous visitors get the page :meth:`render_sync` draws."""
        scope: Any = request.scope  # a dict: "user" is there once a middleware ran
        found_here = False
        if "user" not in scope:  # Litestar refused the request before the route middleware
            found_here = await self._identify(scope)
        if principal_of(scope).is_authenticated:
            try:
                return await self.render(request, name, context, status)
            except Exception:
                _log().exception("error page in the person's shell failed")
                if found_here:
                    _forget_person(scope)
        return self.render_sync(request, name, context, status)

    async def _identify(self, scope: Any) -> bool:
        try:
            for identify in self.identify:
                await identify(scope)
        except Exception:
            _log().exception("finding the person for an error page failed")
            _forget_person(scope)
        return principal_of(scope).is_authenticated


def _log() -> Any:
    from kabinet.logging import get_logger

    return get_logger("kabinet.web")


def _forget_person(scope: Any) -> None:
    """Back to anonymous (fail closed): the person, their session and the CSRF token
    bound to it."""
    scope["user"] = ANONYMOUS
    state = _state(scope)
    for key in (SESSION_STATE, "kabinet.csrf", "kabinet.csrf_new"):
        state.pop(key, None)


class ErrorPage(Response[str]):
    """An error page to be drawn in the person's shell when it is sent.

    Litestar calls exception handlers synchronously, while the header's sections, the
    company switch and the session of a request no middleware saw need the database
    (asynchronous): the handler returns this, and the page is rendered by
    :meth:`Shell.render_error` as the answer goes out. Headers and cookies set on it
    (``Allow`` of a 405) are kept."""

    def __init__(
        self,
        shell: Shell,
        request: Request[Any, Any, Any],
        template: str,
        context: Mapping[str, Any],
        status: int,
    ) -> None:
        super().__init__("", status_code=status, media_type=HTML)
        self.shell = shell
        self.request = request
        self.template = template
        self.context = dict(context)
        self.status = status

    def to_asgi_response(
        self, app: Any, request: Request[Any, Any, Any], **kwargs: Any
    ) -> ASGIResponse:
        return _DrawnWhenSent(self, request, kwargs)


class _DrawnWhenSent(ASGIResponse):
    def __init__(
        self, page: ErrorPage, request: Request[Any, Any, Any], options: dict[str, Any]
    ) -> None:
        super().__init__(status_code=page.status_code)
        self.page = page
        self.request = request
        self.options = options

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        page = self.page
        status = page.status
        try:
            response = await page.shell.render_error(
                page.request, page.template, page.context, status
            )
        except Exception:  # the error page itself failed: still answer, plainly
            _log().exception("error page failed")
            title = str(page.context.get("title", ""))
            response = Response(f"{status} {title}", status_code=status, media_type="text/plain")
        response.headers.update(page.headers)
        for cookie in page.cookies:
            response.set_cookie(cookie)
        await response.to_asgi_response(None, self.request, **self.options)(scope, receive, send)


def shell_of(request: Request[Any, Any, Any]) -> Shell:
    shell: Shell = request.app.state[STATE_KEY]
    return shell


async def page(
    request: Request[Any, Any, Any],
    template: str,
    *,
    status_code: int = 200,
    fragment: str | None = None,
    **context: Any,
) -> Response[str]:
    """Render ``template`` in the shell for this person (language, navigation, CSRF);
    ``fragment`` instead when htmx asks for a part of the page (:mod:`kabinet.htmx`)."""
    from kabinet.htmx import wants_fragment

    template = fragment if fragment is not None and wants_fragment(request) else template
    return await shell_of(request).render(request, template, context, status_code)


async def is_staff(request: Request[Any, Any, Any]) -> bool:
    """Whether this request's person holds any staff-wide (global-scoped) permission: staff
    of the transport company, who get staff pages (their own welcome, staff filters), not
    the client's."""
    principal = principal_of(request.scope)
    if not principal.is_authenticated:
        return False
    host = shell_of(request).host
    for code, (_, perm) in sorted(host.permissions.items()):
        if perm.scope == "global" and await host.access.can(principal, code):
            return True
    return False


PICKERS = "kabinet.pickers"


def picker_source(request: Request[Any, Any, Any], kind: str) -> str | None:
    """Where the picker (``shell/picker.html``) searches ``kind`` (``organizations``,
    ``people``, ``counterparties``): the route ``/api/<app>/pick/<kind>`` of the app that
    owns them, or ``None`` when no installed app answers one (the form keeps its number
    field). Read once from the assembled app, so the host names no app."""
    app = request.app
    found: dict[str, str] | None = app.state.get(PICKERS)
    if found is None:
        found = {}
        for route in app.routes:
            parts = route.path.strip("/").split("/")
            if len(parts) == 4 and parts[0] == "api" and parts[2] == "pick":
                found.setdefault(parts[3], route.path)
        app.state[PICKERS] = found
    return found.get(kind)


def language(request: Request[Any, Any, Any]) -> str:
    """The language of this request's person."""
    return shell_of(request).language(request)


FLASH_COOKIE = "kabinet_flash"
"""Carries flash messages across a redirect (a form post, then the page it leads to)."""


def flash(request: Request[Any, Any, Any], message: str, category: str = "info") -> None:
    """Show ``message`` on the next page this person sees.

    Shown by the page this request renders; when it answers with a redirect instead, the
    web app carries the message in a short-lived cookie to the next page.
    """
    item = {"message": message, "category": category}
    _state(request.scope).setdefault("kabinet.flashes", []).append(item)


def flash_cookie_header(scope: Mapping[str, Any]) -> bytes | None:
    """The ``Set-Cookie`` value for this response: pending messages, or clearing shown ones."""
    state = scope.get("state") or {}
    pending = state.get("kabinet.flashes")
    if pending:
        data = base64.urlsafe_b64encode(json.dumps(pending[-5:]).encode()).decode()
        return f"{FLASH_COOKIE}={data}; Path=/; Max-Age=120; HttpOnly; SameSite=Lax".encode()
    if state.get("kabinet.flash_shown"):
        return f"{FLASH_COOKIE}=; Path=/; Max-Age=0; HttpOnly; SameSite=Lax".encode()
    return None


def _carried_flashes(request: Request[Any, Any, Any]) -> list[dict[str, str]]:
    raw = request.cookies.get(FLASH_COOKIE)
    if not raw:
        return []
    _state(request.scope)["kabinet.flash_shown"] = True
    try:
        items = json.loads(base64.urlsafe_b64decode(raw.encode()))
    except (ValueError, TypeError):
        return []
    if not isinstance(items, list):
        return []
    return [
        {"message": str(i.get("message", "")), "category": str(i.get("category", "info"))}
        for i in items
        if isinstance(i, dict)
    ]


def _no_panels(*_args: Any, **_kwargs: Any) -> str:
    return ""


@jinja2.pass_context
def _pop_flashes(ctx: jinja2.runtime.Context) -> list[dict[str, str]]:
    request: Request[Any, Any, Any] = ctx["request"]
    items: list[dict[str, str]] = _state(request.scope).pop("kabinet.flashes", [])
    return [*_carried_flashes(request), *items]


def _folder(path: str) -> str:
    return path.rstrip("/") + "/"


@jinja2.pass_context
def _gettext(ctx: jinja2.runtime.Context, message: str) -> str:
    return i18n.gettext_(ctx.get("lang", "en"), message)


@jinja2.pass_context
def _ngettext(ctx: jinja2.runtime.Context, singular: str, plural: str, n: int) -> str:
    return i18n.ngettext_(ctx.get("lang", "en"), singular, plural, n)


@jinja2.pass_context
def _fmt_datetime(ctx: jinja2.runtime.Context, value: Any, fmt: str = "medium") -> str:
    return i18n.format_datetime(value, ctx["lang"], ctx["tz"], fmt)


@jinja2.pass_context
def _fmt_date(ctx: jinja2.runtime.Context, value: Any, fmt: str = "medium") -> str:
    return i18n.format_date(value, ctx["lang"], ctx["tz"], fmt)


@jinja2.pass_context
def _fmt_number(ctx: jinja2.runtime.Context, value: Any) -> str:
    return i18n.format_number(value, ctx["lang"])


@jinja2.pass_context
def _fmt_money(ctx: jinja2.runtime.Context, value: Any, currency: str = "RUB") -> str:
    return i18n.format_money(value, currency, ctx["lang"])
