"""Fixtures of the companies tests: a portal of the host and this app alone.

The other apps are disabled in these tests' settings, so the companies app is tested on
its own (it requires none of them) on a database migrated for exactly that portal.
"""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from kabinet.clock import FrozenClock
from kabinet.host import Host
from kabinet.routematrix import RouteMatrix
from kabinet.testing import create_empty_database, drop_database
from kabinet.web import build_app
from kabinet_companies.services import CompaniesService, companies

OTHERS = ("dictionaries", "notifications", "integration", "shipments")
_numbers = itertools.count(1)


def settings_text(extra: str = "") -> str:
    disabled = "".join(f"[{name}]\nenabled = false\n" for name in OTHERS)
    return f'[host]\nvar_dir = "var"\nsecret_key = "companies-tests"\n{disabled}{extra}'


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


HostFactory = Callable[..., Awaitable[Host]]


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


class Web:
    """One web process: the app in this event loop and helpers to call it as someone."""

    def __init__(self, host: Host, client: httpx.AsyncClient, matrix: RouteMatrix) -> None:
        self.host, self.client, self.matrix = host, client, matrix

    async def session(self, person_id: int) -> str:
        return await self.matrix._session(person_id)

    async def call(
        self, method: str, path: str, session: str | None = None, **kwargs: Any
    ) -> httpx.Response:
        token = await self.matrix.csrf()
        self.client.cookies.clear()
        headers = {"X-CSRF-Token": token, "Cookie": f"kabinet_csrf={token}"}
        if session:
            headers["Cookie"] += f"; {session}"
        return await self.client.request(method, path, headers=headers, **kwargs)


@pytest.fixture
async def web(host: Host) -> AsyncIterator[Web]:
    app = await build_app(host)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://127.0.0.1:8000"
    ) as client:
        yield Web(host, client, RouteMatrix(host, app, client))
