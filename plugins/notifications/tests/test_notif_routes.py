"""Every route of the notifications app keeps its access rule (the route matrix, on the
host's built-ins and this app only, so it does not depend on the other apps)."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from notif_support import DEPOT, make_host

from kabinet.clock import FrozenClock
from kabinet.routematrix import RouteMatrix, routes_of
from kabinet.testing import PluginFactory
from kabinet.web import build_app

pytestmark = pytest.mark.smoke


async def test_every_notifications_route_keeps_its_access_rule(
    plugin_factory: PluginFactory, database_url: str, tmp_path: Path, clock: FrozenClock
) -> None:
    plugin_factory.add("depot", DEPOT)
    host = await make_host(plugin_factory, database_url, tmp_path, clock, start=False)
    app = await build_app(host)
    host.services["host.process"] = "test"
    await host.startup()
    try:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1:8000") as c:
            matrix = RouteMatrix(host, app, c)
            mine = [r for r in routes_of(app) if "notifications" in r.path]
            assert len(mine) >= 15
            faults = [f for r in mine for f in await matrix.check(r)]
            assert faults == [], "\n".join(faults)
    finally:
        await host.shutdown()
