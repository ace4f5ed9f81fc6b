"""Fixtures of the Keycloak tests: a fake Keycloak server and hosts configured for it."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from fake_keycloak import FakeKeycloak
from keycloak_support import keycloak_env

from kabinet.clock import FrozenClock
from kabinet.host import Host
from kabinet.testing import drop_database, migrated_database


@pytest.fixture
def fake() -> Iterator[FakeKeycloak]:
    server = FakeKeycloak().start()
    yield server
    server.stop()


@pytest.fixture
async def fresh_url(tmp_path: Path) -> AsyncIterator[str]:
    """A migrated database of this test alone, so no other test's events are relayed."""
    url = await migrated_database(tmp_path)
    yield url
    await drop_database(url)


@pytest.fixture
async def host(fresh_url: str, fake: FakeKeycloak, clock: FrozenClock) -> AsyncIterator[Host]:
    """A started host configured for ``fake``; events and jobs are driven by the test."""
    h = await Host.create(
        None, env={"KABINET__HOST__DATABASE_URL": fresh_url, **keycloak_env(fake)}, clock=clock
    )
    h.services["host.process"] = "test"  # no background relay or job runner
    await h.startup()
    yield h
    await h.shutdown()
