"""Fixtures of the shipments tests: a migrated database per module, a started host, people."""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from kabinet.clock import FrozenClock
from kabinet.host import Host
from kabinet.testing import drop_database, migrated_database

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
