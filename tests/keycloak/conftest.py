"""Fixtures of the Keycloak tests: a fake Keycloak server and hosts configured for it."""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from kabinet.clock import FrozenClock
from kabinet.host import Host
from kabinet.testing import drop_database, migrated_database

sys.path.insert(0, str(Path(__file__).parent))

from fake_keycloak import ADMIN_PASSWORD, CLIENT_SECRET, FakeKeycloak


def keycloak_env(fake: FakeKeycloak, **extra: str) -> dict[str, str]:
    """Settings (as environment variables) pointing the portal at ``fake``."""
    return {
        "KABINET__KEYCLOAK__SERVER_URL": fake.url,
        "KABINET__KEYCLOAK__REALM": fake.realm,
        "KABINET__KEYCLOAK__CLIENT_ID": fake.client_id,
        "KABINET__KEYCLOAK__CLIENT_SECRET": CLIENT_SECRET,
        "KABINET__KEYCLOAK__ADMIN_USERNAME": fake.admin_username,
        "KABINET__KEYCLOAK__ADMIN_PASSWORD": ADMIN_PASSWORD,
        **extra,
    }


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
