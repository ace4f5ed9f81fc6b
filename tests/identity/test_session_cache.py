"""Sessions in the database are kept in process memory for a short while.

A signed-in request must not cost a database query: a process trusts a session it has read
for ``session_cache_seconds`` (2 s by default), changes it makes itself count at once, and
changes another process makes count within that time.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from identity_support import PASSWORD, make_host, two_processes, unique_email
from sqlalchemy import select

from kabinet.clock import FrozenClock
from kabinet.identity.models import Session as SessionRow
from kabinet.identity.services import IdentityService
from kabinet.identity.sessions import CachedSessions, session_key

pytestmark = pytest.mark.smoke


@pytest.fixture
async def processes(
    database_url: str, tmp_path: Path, clock: FrozenClock
) -> AsyncIterator[tuple[IdentityService, IdentityService]]:
    """Two processes' identity services (each its own memory) on one database, no Redis."""
    async with two_processes(database_url, tmp_path, clock) as both:
        yield both


async def signed_in(service: IdentityService) -> tuple[int, str]:
    email = unique_email()
    person = await service.create_account(full_name="Кэш", email=email, password=PASSWORD)
    return person.id, (await service.login(email, PASSWORD)).token


async def test_requests_within_the_cache_time_do_not_read_the_database(
    processes: tuple[IdentityService, IdentityService], clock: FrozenClock
) -> None:
    one, _ = processes
    store = one.sessions
    assert isinstance(store, CachedSessions)
    person_id, token = await signed_in(one)
    reads = store.reads
    for _ in range(50):
        seen = await one.resolve_session(token)
        assert seen is not None
        assert seen.person_id == person_id
    assert store.reads - reads == 1
    clock.advance(one.settings.session_cache_seconds)
    assert await one.resolve_session(token) is not None
    assert store.reads - reads == 2


async def test_requests_arriving_together_share_one_read(
    processes: tuple[IdentityService, IdentityService], clock: FrozenClock
) -> None:
    one, _ = processes
    store = one.sessions
    assert isinstance(store, CachedSessions)
    person_id, token = await signed_in(one)
    for _ in range(2):  # the first read, and a recheck when the cached one went stale
        reads = store.reads
        seen = await asyncio.gather(*(one.resolve_session(token) for _ in range(32)))
        assert [p.person_id if p else None for p in seen] == [person_id] * 32
        assert store.reads - reads == 1
        clock.advance(one.settings.session_cache_seconds)


async def test_sign_out_in_this_process_counts_at_once(
    processes: tuple[IdentityService, IdentityService],
) -> None:
    one, _ = processes
    _, token = await signed_in(one)
    assert await one.resolve_session(token) is not None
    await one.logout(token)
    assert await one.resolve_session(token) is None


async def test_a_session_ended_elsewhere_stops_counting_within_the_cache_time(
    processes: tuple[IdentityService, IdentityService], clock: FrozenClock
) -> None:
    one, two = processes
    _, token = await signed_in(one)
    assert await two.resolve_session(token) is not None  # now in two's memory
    await one.logout(token)
    clock.advance(two.settings.session_cache_seconds)
    assert await two.resolve_session(token) is None


async def test_disabling_elsewhere_ends_the_session_within_the_cache_time(
    processes: tuple[IdentityService, IdentityService], clock: FrozenClock
) -> None:
    one, two = processes
    person_id, token = await signed_in(one)
    assert await two.resolve_session(token) is not None
    await one.disable(person_id)
    assert await one.resolve_session(token) is None  # the process that disabled: at once
    clock.advance(two.settings.session_cache_seconds)
    assert await two.resolve_session(token) is None


async def test_idle_timeout_and_last_seen_still_hold_with_the_cache(
    processes: tuple[IdentityService, IdentityService], clock: FrozenClock
) -> None:
    one, _ = processes
    _, token = await signed_in(one)
    assert await one.resolve_session(token) is not None
    signed_in_at = clock.now()
    clock.advance(one.touch_every() + 1)
    assert await one.resolve_session(token) is not None  # refreshes "last seen"
    async with one.host.db.reader() as s:
        last_seen = await s.scalar(
            select(SessionRow.last_seen_at).where(SessionRow.id == session_key(token))
        )
    assert last_seen is not None
    assert last_seen.replace(tzinfo=dt.UTC) > signed_in_at
    # Still in the cache a moment later: the idle timeout is counted from the touch.
    clock.advance(one.settings.idle_timeout - 1)
    assert await one.resolve_session(token) is not None
    clock.advance(one.settings.idle_timeout + 1)
    assert await one.resolve_session(token) is None


async def test_cache_can_be_turned_off(
    database_url: str, tmp_path: Path, clock: FrozenClock
) -> None:
    host = await make_host(database_url, tmp_path, clock, identity__session_cache_seconds="0")
    service = IdentityService(host)
    try:
        assert not isinstance(service.sessions, CachedSessions)
        _, token = await signed_in(service)
        assert await service.resolve_session(token) is not None
    finally:
        await service.close()
        await host.db.dispose()
