"""Fixtures of the companies tests: a portal of the host and this app alone.

The other apps are disabled in these tests' settings, so the companies app is tested on
its own (it requires none of them) on a database migrated for exactly that portal.
"""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from companies_support import HostFactory, Web, settings_text

from kabinet.clock import FrozenClock
from kabinet.host import Host
from kabinet.routematrix import RouteMatrix
from kabinet.testing import create_empty_database, drop_database
from kabinet.web import build_app
from kabinet_companies.services import CompaniesService, companies

_numbers = itertools.count(1)


@pytest.fixture(scope="module")
async def module_url(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[str]:
    tmp = tmp_path_factory.mktemp("companies")
    url = await create_empty_database(tmp)
    settings = tmp / "settings.toml"
    settings.write_text(settings_text())
    host = await Host.create(settings, env={"KABINET__HOST__DATABASE_URL": url})
    try:
        await host.migrations.upgrade()
    finally:
        await host.db.dispose()
    yield url
    await drop_database(url)


@pytest.fixture
async def make_host(
    module_url: str, clock: FrozenClock, tmp_path: Path
) -> AsyncIterator[HostFactory]:
    started: list[Host] = []

    async def make(extra: str = "") -> Host:
        settings = tmp_path / f"settings-{len(started)}.toml"
        settings.write_text(settings_text(extra))
        host = await Host.create(
            settings, env={"KABINET__HOST__DATABASE_URL": module_url}, clock=clock
        )
        await host.startup()
        started.append(host)
        return host

    yield make
    for host in reversed(started):
        await host.shutdown()


@pytest.fixture
async def host(make_host: HostFactory) -> Host:
    return await make_host()


@pytest.fixture
def svc(host: Host) -> CompaniesService:
    return companies(host)


@pytest.fixture
async def web(host: Host) -> AsyncIterator[Web]:
    app = await build_app(host)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://127.0.0.1:8000"
    ) as client:
        yield Web(host, client, RouteMatrix(host, app, client))
