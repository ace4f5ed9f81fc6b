"""Every route of the assembled portal keeps its access rule (kabinet.routematrix).

The routes are read from the app itself, and asked by people, API tokens (limited to one
organization, to one permission) and managers of other organizations; the harness is
tested too: an unguarded route is caught, and so is a route that forgets to filter by
organization, for people, tokens and managers alike, and a staff-wide route that forgets
whose object it acts on.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from litestar import Litestar, get

from kabinet.errors import StartupError
from kabinet.host import Host
from kabinet.routematrix import RouteMatrix, routes_of, unguarded
from kabinet.testing import PluginFactory
from kabinet.web import build_app

pytestmark = pytest.mark.smoke


async def _host(database_url: str, tmp_path: Path, **kwargs: Any) -> Host:
    settings = tmp_path / "settings.toml"
    settings.write_text(
        '[host]\nvar_dir = "var"\nsecret_key = "matrix-secret"\n'
        'metrics_token = "matrix-metrics-token"\n'  # so /metrics is in the matrix too
    )
    return await Host.create(settings, env={"KABINET__HOST__DATABASE_URL": database_url}, **kwargs)


async def _matrix(host: Host) -> AsyncIterator[tuple[Litestar, RouteMatrix]]:
    """The app served in this test's event loop (Litestar's test client runs it in a
    thread of its own, where the host's database connections cannot follow)."""
    app = await build_app(host)
    await host.startup()
    transport = httpx.ASGITransport(app=app)
    try:
        async with httpx.AsyncClient(
            transport=transport, base_url="http://127.0.0.1:8000"
        ) as client:
            yield app, RouteMatrix(host, app, client)
    finally:
        await host.shutdown()


async def test_every_route_of_the_portal_keeps_its_access_rule(
    database_url: str, tmp_path: Path
) -> None:
    host = await _host(database_url, tmp_path)
    async for app, matrix in _matrix(host):
        routes = routes_of(app)
        assert any(r.path == "/roles" for r in routes)  # read from the app, plugins included
        faults = await matrix.run()
        assert faults == [], "\n".join(faults)


LEAKY = """
import itertools
from litestar import delete, get
from litestar.exceptions import NotFoundException
from litestar.params import FromPath
from kabinet.access import permission
from kabinet.routematrix import ManagerSample, RouteSample, SampleRequest
from kabinet.roles.services import ROLES

ITEMS = {}
_ids = itertools.count(1)


MANAGED = {}


@hookimpl
def permissions():
    return [
        Permission(code="leaky.items.view", label={"ru": "Вещи", "en": "Items"}),
        Permission(code="leaky.items.manage", label={"ru": "Вещи", "en": "Items"},
                   scope="global"),
    ]


@hookimpl
def managed_organizations(host, person_id):
    return MANAGED.get(person_id, set())


@hookimpl
def routers(host):
    @get("/api/leaky/items/{item_id:int}", access=permission("leaky.items.view"))
    async def leaky(item_id: FromPath[int]) -> dict:
        if item_id not in ITEMS:
            raise NotFoundException()
        return {"id": item_id}  # forgets the organization

    @get("/api/leaky/checked/{item_id:int}", access=permission("leaky.items.view"))
    async def checked(request: "Request", item_id: FromPath[int]) -> dict:
        allowed = await host.access.organizations(request.scope["user"], "leaky.items.view")
        if ITEMS.get(item_id) not in allowed:
            raise NotFoundException()
        return {"id": item_id}

    @delete("/api/leaky/staff/{item_id:int}", access=permission("leaky.items.manage",
                                                                  scope="global"))
    async def staff(item_id: FromPath[int]) -> None:
        if item_id not in ITEMS:
            raise NotFoundException()  # a staff right that forgets whose item it is

    @delete("/api/leaky/staff-checked/{item_id:int}",
            access=permission("leaky.items.manage", scope="global"))
    async def staff_checked(request: "Request", item_id: FromPath[int]) -> None:
        reach = await host.access.organizations(request.scope["user"], "leaky.items.manage")
        if ITEMS.get(item_id) not in reach:
            raise NotFoundException()

    return [leaky, checked, staff, staff_checked]


async def make(host, organization):
    item = next(_ids)
    ITEMS[item] = organization
    return SampleRequest(params={"item_id": item})


async def assign(host, person_id, organization):
    MANAGED.setdefault(person_id, set()).add(organization)
    await host.services.of(ROLES).person_changed(person_id)


@hookimpl
def route_samples(host):
    return [
        RouteSample(path="/api/leaky/items/{item_id:int}", make=make),
        RouteSample(path="/api/leaky/checked/{item_id:int}", make=make),
        RouteSample(path="/api/leaky/staff/{item_id:int}", make=make, methods=("DELETE",)),
        RouteSample(path="/api/leaky/staff-checked/{item_id:int}", make=make,
                    methods=("DELETE",)),
        ManagerSample(assign=assign),
    ]
"""


async def test_hook_route_samples_and_a_route_that_forgets_the_organization_is_caught(
    database_url: str, tmp_path: Path, plugin_factory: PluginFactory
) -> None:
    plugin_factory.add("leaky", "from litestar import Request\n" + LEAKY)
    host = await _host(database_url, tmp_path, candidates=plugin_factory.candidates())
    async for app, matrix in _matrix(host):
        await matrix.load_samples()
        assert ("/api/leaky/items/{item_id:int}", "GET") in matrix.samples
        by_path = {r.path: r for r in routes_of(app)}
        leaky = await matrix.check(by_path["/api/leaky/items/{item_id:int}"])
        assert leaky == [
            "GET /api/leaky/items/{item_id:int}: a token limited to another organization: "
            "expected 404, got 200",
            "GET /api/leaky/items/{item_id:int}: a manager of other organizations: "
            "expected 404, got 200",
            "GET /api/leaky/items/{item_id:int}: a person of another organization: "
            "expected 404, got 200",
        ]
        assert await matrix.check(by_path["/api/leaky/checked/{item_id:int}"]) == []
        # a staff-wide right that forgets the organization its object is addressed to
        staff = await matrix.check(by_path["/api/leaky/staff/{item_id:int}"])
        assert staff == [
            "DELETE /api/leaky/staff/{item_id:int}: a manager of other organizations: "
            "expected 404, got 204"
        ]
        assert await matrix.check(by_path["/api/leaky/staff-checked/{item_id:int}"]) == []


async def test_an_unguarded_route_is_caught(
    database_url: str, tmp_path: Path, plugin_factory: PluginFactory
) -> None:
    plugin_factory.add(
        "open",
        """
        from litestar import get

        @hookimpl
        def routers(host):
            @get("/api/open/secrets")
            async def secrets() -> dict:
                return {"all": "of them"}

            return [secrets]
        """,
    )
    host = await _host(database_url, tmp_path, candidates=plugin_factory.candidates())
    with pytest.raises(StartupError, match="GET /api/open/secrets declares no access rule"):
        await build_app(host)
    await host.db.dispose()

    @get("/api/open/secrets", sync_to_thread=False)
    def secrets() -> dict[str, str]:
        return {"all": "of them"}

    # An app assembled without the host's check (and without Litestar's own schema routes).
    bare = Litestar(route_handlers=[secrets], openapi_config=None)
    assert unguarded(bare) == [
        "GET /api/open/secrets (test_an_unguarded_route_is_caught.<locals>.secrets): "
        "declares no access rule"
    ]
