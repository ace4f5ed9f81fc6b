"""Fixtures of the integration tests: a portal with companies, shipments and this app,
and a local 1C server (real HTTP on a free 127.0.0.1 port) holding generated data."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path

import httpx
import pytest
from integration_support import settings_text, wipe

from kabinet.clock import FrozenClock
from kabinet.host import Host
from kabinet.jobs import stop_embedded
from kabinet.testing import create_empty_database, drop_database
from kabinet.web import build_app
from kabinet_integration_testing import Generated, OneCData, OneCServer, generate


@pytest.fixture(scope="module")
async def module_url(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[str]:
    tmp = tmp_path_factory.mktemp("integration")
    url = await create_empty_database(tmp)
    settings = tmp / "settings.toml"
    settings.write_text(settings_text("http://127.0.0.1:1/x"))
    host = await Host.create(settings, env={"KABINET__HOST__DATABASE_URL": url})
    try:
        await host.migrations.upgrade()
    finally:
        await host.db.dispose()
    yield url
    await drop_database(url)


@pytest.fixture
def onec() -> Iterator[OneCServer]:
    with OneCServer(OneCData()) as server:
        yield server


@pytest.fixture
def generated(onec: OneCServer) -> Generated:
    return generate(onec.data)


HostFactory = Callable[..., Awaitable[Host]]


@pytest.fixture
async def make_host(
    module_url: str, clock: FrozenClock, tmp_path: Path, onec: OneCServer
) -> AsyncIterator[HostFactory]:
    started: list[Host] = []

    async def make(
        extra: str = "", source: str = "", base_url: str | None = None, background: bool = False
    ) -> Host:
        """A started portal; without ``background`` its embedded relay, job runner and
        scheduler are stopped, so a test that moves the clock runs no sync behind its back
        (it relays and drains itself)."""
        settings = tmp_path / f"settings-{len(started)}.toml"
        settings.write_text(settings_text(base_url or onec.base_url, extra, source))
        host = await Host.create(
            settings, env={"KABINET__HOST__DATABASE_URL": module_url}, clock=clock
        )
        await host.startup()
        if not background:
            await stop_embedded(host)
        started.append(host)
        return host

    yield make
    for host in reversed(started):
        await host.shutdown()


@pytest.fixture
async def host(make_host: HostFactory) -> AsyncIterator[Host]:
    host = await make_host()
    yield host
    await wipe(host)


@pytest.fixture
async def web(host: Host) -> AsyncIterator[httpx.AsyncClient]:
    """The portal's app in process: an HTTP client whose cookie jar is one browser's."""
    app = await build_app(host)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://127.0.0.1:8000"
    ) as http:
        yield http
