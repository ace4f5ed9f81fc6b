"""The Litestar app assembled from the plugins' routers."""

from __future__ import annotations

from typing import Any

from litestar import Litestar, Router, get
from litestar.controller import Controller
from litestar.handlers import BaseRouteHandler
from litestar.response import Response

from kabinet.host import Host
from kabinet.plugins import PluginInfo, require_unique


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


async def collect_routes(host: Host) -> list[Any]:
    """Every plugin's routers; two plugins may not claim one path."""
    results = host.plugins.flat(await host.plugins.acall("routers", host=host))
    claims = [(plugin, path) for plugin, value in results for path in route_prefixes(plugin, value)]
    require_unique("route prefix", claims)
    return [value for _, value in results]


def create_app(host: Host, routes: list[Any]) -> Litestar:
    """The ASGI app: plugin routes plus liveness and readiness."""

    @get("/health", sync_to_thread=False, include_in_schema=False)
    def health() -> dict[str, str]:
        return {"status": "ok"}

    @get("/ready", include_in_schema=False)
    async def ready() -> Response[dict[str, Any]]:
        checks = {}
        for plugin, check in host.health_checks:
            fault = await check.check(host)
            checks[f"{plugin.name}.{check.name}"] = {"ok": fault is None, "error": fault}
        ok = all(c["ok"] for c in checks.values())
        return Response({"ready": ok, "checks": checks}, status_code=200 if ok else 503)

    return Litestar(
        route_handlers=[health, ready, *routes],
        on_startup=[host.startup],
        on_shutdown=[host.shutdown],
        debug=host.settings.host.debug,
    )
