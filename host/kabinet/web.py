"""The Litestar app assembled from the plugins' routers, middleware and shell contributions.

How a request flows (``docs/architecture.md`` tells it at length):

1. :class:`KabinetApp` takes or makes the request id, binds it for every log line, and adds
   the security headers and ``X-Request-ID`` to whatever answer leaves, errors included.
2. Plugins' middleware (the ``middleware`` hook; identity puts the person in
   ``scope["user"]``) runs around the matched route.
3. :func:`access_guard`, the one guard of the app, checks CSRF on unsafe requests and the
   route's declared access rule. Routes without a rule never get here: :func:`check_rules`
   refuses the app's start-up.
4. The handler parses, calls a service and answers JSON or a page (:func:`kabinet.pages.page`).
   The request is one unit of work (:meth:`kabinet.db.Database.unit`): every service it
   calls writes in one transaction, committed before the answer's first byte (rolled back
   for a 5xx).
5. Any exception becomes problem details or an error page (:mod:`kabinet.problems`).
"""

from __future__ import annotations

import dataclasses
import mimetypes
import re
import time
import uuid
from collections.abc import Iterable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from litestar import Litestar, Request, Router, get
from litestar.connection import ASGIConnection
from litestar.controller import Controller
from litestar.exceptions import NotAuthorizedException, NotFoundException, PermissionDeniedException
from litestar.handlers import BaseRouteHandler
from litestar.openapi import OpenAPIConfig
from litestar.openapi.plugins import JsonRenderPlugin
from litestar.params import FromPath
from litestar.plugins.htmx import HTMXPlugin
from litestar.response import File, Response
from litestar.routes import ASGIRoute, HTTPRoute, WebSocketRoute
from litestar.types import Message
from structlog.contextvars import bind_contextvars, reset_contextvars

import kabinet
from kabinet import logging as klogging
from kabinet.access import RULE_KEY, Machine, Permission, Public, Rule, SignedIn, public, signed_in
from kabinet.errors import StartupError
from kabinet.host import Host
from kabinet.inputs import MAX_BODY, MAX_JSON_DEPTH, bad, in_range, json_depth
from kabinet.openapi import OPENAPI_PLUGINS, align_options, declare_errors
from kabinet.pages import (
    STATE_KEY,
    STATIC,
    Csrf,
    Shell,
    StaticFiles,
    flash_cookie_header,
    principal_of,
    serves_https,
)
from kabinet.plugins import PluginInfo, require_unique
from kabinet.problems import EXCEPTION_HANDLERS

UNSAFE = frozenset({"POST", "PUT", "PATCH", "DELETE"})
_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
_HASH_CACHE = "public, max-age=31536000, immutable"


# --- collecting what plugins contribute ----------------------------------------------------


def route_prefixes(plugin: PluginInfo, value: Any) -> list[str]:
    """The paths a router, controller or handler claims."""
    if isinstance(value, Router):
        return [value.path]
    if isinstance(value, type) and issubclass(value, Controller):
        return [getattr(value, "path", "/")]
    if isinstance(value, BaseRouteHandler):
        return sorted(value.paths)
    raise plugin.fail(
        f"routers hook returned {value!r}, not a Litestar router, controller or handler"
    )


@dataclasses.dataclass
class Contributions:
    """What the plugins give the web app, collected once per process."""

    routes: list[tuple[PluginInfo, Any]] = dataclasses.field(default_factory=list)
    middleware: list[tuple[PluginInfo, Any]] = dataclasses.field(default_factory=list)
    navigation: list[tuple[PluginInfo, Any]] = dataclasses.field(default_factory=list)
    panels: list[tuple[PluginInfo, Any]] = dataclasses.field(default_factory=list)
    template_dirs: list[Path] = dataclasses.field(default_factory=list)
    static_dirs: dict[str, Path] = dataclasses.field(default_factory=dict)
    metrics: list[tuple[PluginInfo, Any]] = dataclasses.field(default_factory=list)


async def collect_routes(host: Host) -> list[Any]:
    """Every plugin's routers; two plugins may not claim one path."""
    return [value for _, value in (await collect(host)).routes]


async def collect(host: Host) -> Contributions:
    """Call the web hooks of every plugin and check what they return."""
    p = host.plugins
    routes = p.flat(await p.acall("routers", host=host))
    claims: dict[tuple[str, str], PluginInfo] = {}
    for plugin, value in routes:
        for path in route_prefixes(plugin, value):
            # One plugin may answer several methods on one path; two plugins may not.
            claims.setdefault((plugin.name, path), plugin)
    require_unique("route prefix", [(plugin, path) for (_, path), plugin in claims.items()])
    found = Contributions(routes=routes)
    found.middleware = p.flat(await p.acall("middleware", host=host))
    found.navigation = p.flat(await p.acall("navigation", host=host))
    found.panels = p.flat(await p.acall("panels", host=host))
    found.template_dirs = [folder for _, folder in await p.afolders("template_dir")]
    found.static_dirs["shell"] = STATIC
    for plugin, folder in await p.afolders("static_dir"):
        if plugin.name in found.static_dirs:
            raise plugin.fail(f"static files /static/{plugin.name}/ are taken")
        found.static_dirs[plugin.name] = folder
    if host.settings.host.metrics_token:  # else no /metrics: nothing to collect
        found.metrics = p.flat(await p.acall("metrics", host=host))
    return found


# --- access -------------------------------------------------------------------------------


def _is_auto_options(handler: BaseRouteHandler) -> bool:
    """Litestar's generated OPTIONS handler (it only lists the allowed methods)."""
    name = getattr(getattr(handler, "fn", None), "__qualname__", "")
    return str(name).endswith("create_options_handler.<locals>.options_handler")


def iter_handlers(app: Litestar) -> Iterable[tuple[str, BaseRouteHandler]]:
    """Every (path, handler) of the assembled app, read from the app itself."""
    for route in app.routes:
        if isinstance(route, HTTPRoute):
            for handler in route.route_handlers:
                yield route.path, handler
        elif isinstance(route, (WebSocketRoute, ASGIRoute)):
            yield route.path, route.route_handler


def _methods(handler: BaseRouteHandler) -> str:
    methods = getattr(handler, "http_methods", None)
    return ", ".join(sorted(methods)) if methods else "WEBSOCKET/ASGI"


def check_rules(app: Litestar, routes: list[tuple[PluginInfo, Any]]) -> None:
    """Refuse start-up when a route handler declares no access rule."""
    owners = sorted(
        ((prefix, plugin) for plugin, value in routes for prefix in route_prefixes(plugin, value)),
        key=lambda pair: -len(pair[0]),
    )
    for path, handler in iter_handlers(app):
        rule = handler.opt.get(RULE_KEY)
        if isinstance(rule, Rule) or _is_auto_options(handler):
            continue
        fault = (
            f"route {_methods(handler)} {path} declares no access rule "
            f"(pass access=public | signed_in | permission(...) | machine(...))"
            if rule is None
            else f"route {_methods(handler)} {path}: access={rule!r} is not an access rule"
        )
        for prefix, plugin in owners:
            if path == prefix or path.startswith(prefix.rstrip("/") + "/") or prefix == "/":
                raise plugin.fail(fault)
        raise StartupError(fault)


def _token_request(connection: ASGIConnection[Any, Any, Any, Any]) -> bool:
    """An API call by a program (a token, or no cookies at all): no CSRF to fear.

    A browser sends cookies along with a forged request; a cross-site page cannot add an
    ``Authorization`` header. Pages always need the token (a form can be forged).
    """
    path: str = connection.scope["path"]
    headers = connection.headers
    return path.startswith("/api/") and ("authorization" in headers or "cookie" not in headers)


async def access_guard(
    connection: ASGIConnection[Any, Any, Any, Any], handler: BaseRouteHandler
) -> None:
    """The one guard: CSRF on unsafe requests, then the route's access rule."""
    rule = handler.opt.get(RULE_KEY)
    method = connection.scope.get("method", "GET")
    if method in UNSAFE and not isinstance(rule, Machine) and not _token_request(connection):
        shell: Shell = connection.app.state[STATE_KEY]
        await shell.csrf.check(connection)
    if rule is None or isinstance(rule, (Public, Machine)):
        # None here is Litestar's generated OPTIONS handler (check_rules refused the rest).
        return
    principal = principal_of(connection.scope)
    if not principal.is_authenticated:
        raise NotAuthorizedException("Sign in to continue.")
    if isinstance(rule, SignedIn):
        if principal.kind == "token" and method in UNSAFE:
            # a token acts only through the permissions it carries, in its organizations
            raise PermissionDeniedException("An API token changes nothing but what it may.")
        return
    if isinstance(rule, Permission):
        host: Host = connection.app.state["kabinet.host"]
        if rule.scope == "global":
            allowed = await host.access.can(principal, rule.code)
        else:
            allowed = bool(await host.access.organizations(principal, rule.code))
        if allowed:
            return
        raise PermissionDeniedException(f"This needs the permission {rule.code}.")
    raise PermissionDeniedException("Access rule not understood.")


# --- input --------------------------------------------------------------------------------

_WHOLE = re.compile(r"^\s*[+-]?\d+\s*$")


def _is_int(field: Any) -> bool:
    types = field.inner_types if field.is_union else (field,)
    return any(t.is_subclass_of(int) and not t.is_subclass_of(bool) for t in types)


def _query_ints(handler: BaseRouteHandler) -> list[str]:
    """The query parameters ``handler`` declares as whole numbers."""
    names = []
    for name, field in handler.parsed_fn_signature.parameters.items():
        kwarg = field.kwarg_definition
        if name == "data" or getattr(kwarg, "header", None) or getattr(kwarg, "cookie", None):
            continue
        if _is_int(field):
            # the name sent: Parameter(query=...) or QueryParameter(name=...), else its own
            names.append(getattr(kwarg, "query", None) or getattr(kwarg, "name", None) or name)
    return names


def _reads_json(handler: BaseRouteHandler, content_type: str) -> bool:
    """Whether the body may be decoded as JSON: a handler declaring ``data`` decodes it
    whatever the request says it is; a form handler reads only forms."""
    data = handler.parsed_fn_signature.parameters.get("data")
    if data is not None:
        media = getattr(data.kwarg_definition, "media_type", None) or "application/json"
        return str(getattr(media, "value", media)).endswith("json")
    return not content_type.startswith("multipart/")


async def input_guard(
    connection: ASGIConnection[Any, Any, Any, Any], handler: BaseRouteHandler
) -> None:
    """Bounds every request before its handler decodes anything (:mod:`kabinet.inputs`):
    whole numbers in the path and in declared query parameters fit an ``integer`` column,
    and a body decoded as JSON nests at most ``MAX_JSON_DEPTH`` deep. A refusal is a 400
    naming the field."""
    for name, value in connection.path_params.items():
        if isinstance(value, int) and not in_range(value):
            raise bad(name, "no such number: it is beyond any id")
    params = connection.query_params
    for name in _query_ints(handler):
        for text in params.getall(name, []):
            if _WHOLE.match(text) and not in_range(int(text)):
                raise bad(name, "the number is out of range")
    if connection.scope.get("method") in UNSAFE and _reads_json(
        handler, connection.headers.get("content-type", "")
    ):
        body = await Request[Any, Any, Any](connection.scope, connection.receive).body()
        if json_depth(body) > MAX_JSON_DEPTH:
            raise bad("body", f"JSON may nest at most {MAX_JSON_DEPTH} levels deep")


# --- the app ---------------------------------------------------------------------------------


def form_action_sources(host: Host) -> list[str]:
    """Where forms may lead: this portal, and Keycloak's origin when it signs people in
    (a form posted to /login or /logout is redirected there, which CSP checks too)."""
    sources = ["'self'"]
    keycloak = host.settings.plugins.get("keycloak")
    server = str(getattr(keycloak, "server_url", "") or "")
    if server:
        parts = urlsplit(server)
        sources.append(f"{parts.scheme}://{parts.netloc}")
    return sources


def security_headers(host: Host) -> list[tuple[bytes, bytes]]:
    settings = host.settings.host
    csp = (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "font-src 'self'; connect-src 'self'; object-src 'none'; base-uri 'self'; "
        f"form-action {' '.join(form_action_sources(host))}; frame-ancestors 'none'"
    )
    headers = [
        (b"content-security-policy", csp.encode()),
        (b"x-content-type-options", b"nosniff"),
        (b"referrer-policy", b"strict-origin-when-cross-origin"),
        (b"x-frame-options", b"DENY"),
        (b"cross-origin-opener-policy", b"same-origin"),
    ]
    if settings.hsts or settings.base_url.startswith("https://"):
        headers.append((b"strict-transport-security", b"max-age=31536000; includeSubDomains"))
    return headers


def served_over_https(scope: Any, https: bool, proxies: frozenset[str]) -> bool:
    """Whether the browser speaks https to the portal: ``base_url`` says so (``https``),
    the server saw it, or a trusted proxy (``[identity] trusted_proxies``) says it did."""
    if https or scope.get("scheme") == "https":
        return True
    client = scope.get("client")
    if not client or str(client[0]) not in proxies:
        return False
    for name, value in scope["headers"]:
        if name == b"x-forwarded-proto":
            return bool(value.split(b",")[0].strip().lower() == b"https")
    return False


def _secure_cookie(value: bytes) -> bytes:
    attributes = [part.strip().lower() for part in value.split(b";")[1:]]
    return value if b"secure" in attributes else value + b"; Secure"


def response_headers(
    headers: Iterable[tuple[bytes, bytes]], *, https: bool
) -> list[tuple[bytes, bytes]]:
    """An answer's headers as they leave: ``Cache-Control: no-store`` unless the answer
    says how it may be cached (pages, static files do), so API answers, downloads,
    errors and redirects stay out of every cache; under https every cookie ``Secure``."""
    out = list(headers)
    if not any(name.lower() == b"cache-control" for name, _ in out):
        out.append((b"cache-control", b"no-store"))
    if https:
        out = [
            (name, _secure_cookie(value) if name.lower() == b"set-cookie" else value)
            for name, value in out
        ]
    return out


class KabinetApp(Litestar):
    """Litestar, wrapped so that every answer (404s and errors too) gets the request id,
    the security headers, its cache and cookie rules (:func:`response_headers`) and one
    log line."""

    def __init__(self, *, host: Host, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.kabinet_host = host
        self._headers = security_headers(host)
        self._https = serves_https(host.settings.host.base_url)
        identity = host.settings.plugins.get("identity")
        self._proxies = frozenset(getattr(identity, "trusted_proxies", None) or ())
        self._log = klogging.get_logger("kabinet.web")
        self._access_log = host.settings.host.access_log
        self.metrics: Any = None
        """:class:`kabinet.metrics.Metrics` when ``[host] metrics_token`` is set."""

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await super().__call__(scope, receive, send)
            return
        rid = ""
        for name, value in scope["headers"]:
            if name == b"x-request-id":
                rid = value.decode("latin-1")
                break
        if not _REQUEST_ID.match(rid):
            rid = uuid.uuid4().hex
        scope.setdefault("state", {})["request_id"] = rid
        tokens = bind_contextvars(request_id=rid)
        extra = [*self._headers, (b"x-request-id", rid.encode())]
        status = 500
        started = time.perf_counter()
        https = served_over_https(scope, self._https, self._proxies)

        async def send_with_headers(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                # The request's unit of work ends before its answer's first byte: a
                # redirect's next request sees what this one wrote; a 5xx keeps nothing.
                await (unit.commit() if status < 500 else unit.rollback())
                carried = flash_cookie_header(scope)
                cookie = [] if carried is None else [(b"set-cookie", carried)]
                message["headers"] = response_headers(
                    [*message.get("headers", ()), *extra, *cookie], https=https
                )
            await send(message)

        try:
            async with self.kabinet_host.db.unit() as unit:
                await super().__call__(scope, receive, send_with_headers)
        finally:
            elapsed = time.perf_counter() - started
            if self.metrics is not None:
                self.metrics.observe(scope, status, elapsed)
            if self._access_log:
                self._log.info(
                    "request",
                    method=scope["method"],
                    path=scope["path"],
                    status=status,
                    ms=round(elapsed * 1000, 2),
                )
            reset_contextvars(**tokens)


def _static_handler(static: StaticFiles) -> Any:
    @get("/static/{plugin:str}/{file:path}", access=public, include_in_schema=False)
    async def static_file(plugin: FromPath[str], file: FromPath[str]) -> File:
        found = static.resolve(plugin, file.lstrip("/"))
        if found is None:
            raise NotFoundException()
        path, hashed = found
        return File(
            path,
            media_type=mimetypes.guess_type(path.name)[0] or "application/octet-stream",
            content_disposition_type="inline",
            headers={"Cache-Control": _HASH_CACHE if hashed else "no-cache"},
        )

    return static_file


def _health_routes(host: Host) -> list[Any]:
    from kabinet.health import run_checks

    @get("/health", access=public, sync_to_thread=False, include_in_schema=False)
    def health() -> dict[str, str]:
        """Liveness: the process answers."""
        return {"status": "ok"}

    @get("/ready", access=public, include_in_schema=False)
    async def ready() -> Response[dict[str, Any]]:
        """Readiness, for the load balancer: this process can serve (its database and
        migrations, Redis when configured, plugins' readiness checks). Alerts about
        outside systems (the 1C sync) are not asked: they are on ``/health/checks``."""
        results = await run_checks(host, alerts=False)
        ok = all(r.fault is None for r in results)
        return Response(
            {
                "status": "ready" if ok else "not ready",
                "checks": {r.name: r.report() for r in results},
            },
            status_code=200 if ok else 503,
            headers={"Cache-Control": "no-store"},
        )

    @get("/health/checks", access=public, include_in_schema=False)
    async def checks() -> Response[dict[str, Any]]:
        """For monitoring: every check, readiness and alerts (503 while one fails; never
        point a load balancer here)."""
        results = await run_checks(host)
        ok = all(r.fault is None for r in results)
        return Response(
            {
                "status": "ok" if ok else "failing",
                "checks": {r.name: r.report(kind=True) for r in results},
            },
            status_code=200 if ok else 503,
            headers={"Cache-Control": "no-store"},
        )

    return [health, ready, checks]


def _openapi(host: Host) -> OpenAPIConfig | None:
    settings = host.settings.host
    if not settings.openapi:
        return None
    rule = public if settings.openapi_public else signed_in
    return OpenAPIConfig(
        title="Kabinet API",
        version=kabinet.__version__,
        path="/api/schema",
        render_plugins=[JsonRenderPlugin(path=["/", "/openapi.json"])],
        openapi_router=Router(
            "/api/schema", route_handlers=[], include_in_schema=False, opt={RULE_KEY: rule}
        ),
    )


async def build_app(host: Host) -> KabinetApp:
    """The app factory used by ``kabinet serve`` and ``kabinet demo``."""
    return create_app(host, await collect(host))


def create_app(host: Host, found: Contributions | list[Any]) -> KabinetApp:
    """The ASGI app from collected contributions (a bare list of routes is accepted too)."""
    if isinstance(found, list):
        found = Contributions(routes=[(_unknown(), r) for r in found])
        found.static_dirs["shell"] = STATIC
    settings = host.settings.host
    klogging.configure_host(host)
    static = StaticFiles(found.static_dirs)
    shell = Shell(
        host=host,
        template_dirs=found.template_dirs,
        static=static,
        navigation=list(found.navigation),
        panels=list(found.panels),
        csrf=Csrf(host.keys.derive("csrf"), secure=serves_https(settings.base_url)),
        # An error page of an address no route matches is drawn without the route
        # middleware: a middleware that knows who asks may offer ``identify(scope)``,
        # only reading (identity's), for the page to be in the person's shell.
        identify=[
            m.identify for _, m in found.middleware if callable(getattr(m, "identify", None))
        ],
    )
    metrics = _metrics(host, found)
    app = KabinetApp(
        host=host,
        route_handlers=[*_health_routes(host), _static_handler(static)]
        + ([] if metrics is None else metrics.routes())
        + [value for _, value in found.routes],
        middleware=[m for _, m in found.middleware],
        dependencies=_dependencies(host),
        guards=[access_guard, input_guard],
        request_max_body_size=MAX_BODY,
        exception_handlers=EXCEPTION_HANDLERS,
        openapi_config=_openapi(host),
        plugins=[*OPENAPI_PLUGINS, HTMXPlugin()],  # request.htmx (kabinet.htmx)
        on_startup=[host.startup],
        on_shutdown=[host.shutdown],
        state=_state(host, shell),
        # Litestar logs no exception itself: kabinet.problems does, without the frames'
        # locals and through kabinet.logging.redact.
        logging_config=None,
        debug=False,
    )
    app.metrics = metrics
    check_rules(app, found.routes)
    declare_errors(iter_handlers(app))
    align_options(app.routes)
    return app


def _metrics(host: Host, found: Contributions) -> Any:
    """``/metrics`` and its collectors, when ``[host] metrics_token`` is set (kabinet.metrics)."""
    if not host.settings.host.metrics_token:
        return None
    from kabinet.metrics import Metrics, host_collectors

    return Metrics(host, [*host_collectors(), *(c for _, c in found.metrics)])


def _dependencies(host: Host) -> dict[str, Any]:
    """What every route may take as a parameter: ``host`` and ``session``, the request's
    unit of work (:meth:`kabinet.db.Database.unit`); a plugin's router adds its services
    with :func:`kabinet.services.inject`."""
    from litestar.di import Provide
    from sqlalchemy.ext.asyncio import AsyncSession

    from kabinet.host import Host as HostType

    def provide_host() -> HostType:
        return host

    def provide_session() -> AsyncSession:
        return host.db.unit_session()

    provide_host.__annotations__ = {"return": HostType}
    provide_session.__annotations__ = {"return": AsyncSession}
    return {
        "host": Provide(provide_host, sync_to_thread=False),
        "session": Provide(provide_session, sync_to_thread=False),
    }


def _state(host: Host, shell: Shell) -> Any:
    from litestar.datastructures import State

    return State({"kabinet.host": host, STATE_KEY: shell})


def _unknown() -> PluginInfo:
    from kabinet.contrib import Manifest

    return PluginInfo(
        name="?",
        entry_point="",
        obj=None,
        manifest=Manifest(name="?", version="", title={}),
        enabled=True,
    )
