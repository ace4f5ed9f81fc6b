"""Fixtures of the roles tests: a fresh migrated database, started hosts, people."""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import insert

from kabinet.clock import FrozenClock
from kabinet.host import Host
from kabinet.identity.models import Account
from kabinet.testing import drop_database, migrated_database

_numbers = itertools.count(1)


@pytest.fixture(scope="module")
async def module_url(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[str]:
    """A migrated database for one test module (tests there use their own people)."""
    url = await migrated_database(tmp_path_factory.mktemp("roles"))
    yield url
    await drop_database(url)


@pytest.fixture
async def fresh_url(tmp_path: Path) -> AsyncIterator[str]:
    """A migrated database of this test alone (for tests that edit built-in roles)."""
    url = await migrated_database(tmp_path)
    yield url
    await drop_database(url)


HostFactory = Callable[..., Awaitable[Host]]


@pytest.fixture
async def make_host(module_url: str, clock: FrozenClock) -> AsyncIterator[HostFactory]:
    """Start hosts (processes) on the test's database; all are shut down at the end."""
    started: list[Host] = []

    async def make(**kwargs: Any) -> Host:
        env = {"KABINET__HOST__DATABASE_URL": module_url, **kwargs.pop("env", {})}
        host = await Host.create(None, env=env, clock=clock, **kwargs)
        await host.startup()
        started.append(host)
        return host

    yield make
    for host in reversed(started):
        await host.shutdown()


@pytest.fixture
async def host(make_host: HostFactory) -> Host:
    return await make_host()


async def add_person(host: Host, name: str = "Person") -> int:
    """An account, straight into identity's table (how it was made is not the point here)."""
    n = next(_numbers)
    async with host.db.session() as session:
        person_id = await session.scalar(
            insert(Account)
            .values(
                full_name=f"{name} {n}", email=f"p{n}@example.test", created_at=host.clock.now()
            )
            .returning(Account.id)
        )
    assert person_id is not None
    return int(person_id)
