"""Fixtures of the shipments tests: a migrated database per module, a started host, people,
and the demo the browser tests share."""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from kabinet.clock import FrozenClock
from kabinet.host import Host
from kabinet.testing import drop_database, kabinet_server, migrated_database, require_chromium

NOW = dt.datetime(2026, 11, 25, 9, 0, tzinfo=dt.UTC)


@pytest.fixture(scope="module")
async def shipments_url(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[str]:
    url = await migrated_database(tmp_path_factory.mktemp("shipments"))
    yield url
    await drop_database(url)


@pytest.fixture
def clock() -> FrozenClock:
    return FrozenClock(NOW)


@pytest.fixture
async def host(shipments_url: str, clock: FrozenClock, tmp_path: Path) -> AsyncIterator[Host]:
    settings = tmp_path / "settings.toml"
    settings.write_text('[host]\nvar_dir = "var"\nsecret_key = "shipments-secret"\n')
    host = await Host.create(
        settings, env={"KABINET__HOST__DATABASE_URL": shipments_url}, clock=clock
    )
    await host.startup()
    yield host
    await host.shutdown()


@pytest.fixture(scope="session")
def shipments_demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """``kabinet demo`` with this app and companies only (no dictionaries, notifications or
    integration), built once for the browser tests that need nothing else: the cards and
    the answers (each built its own before, about 12 s apiece)."""
    require_chromium()  # before starting a server no browser test could use
    folder = tmp_path_factory.mktemp("shipments-demo")
    var = folder / "var"
    others = ("dictionaries", "notifications", "integration", "booking")
    disabled = "".join(f"[{name}]\nenabled = false\n" for name in others)
    (folder / "settings.toml").write_text(f'[host]\nvar_dir = "{var}"\n{disabled}')
    env = {**os.environ, "KABINET_DEMO_DIR": str(var)}
    with kabinet_server(folder, "--settings", "settings.toml", "demo", env=env) as url:
        yield url
