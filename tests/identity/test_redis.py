"""Production mode: sessions and limits in Redis, shared by every web process."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from identity_support import PASSWORD, two_processes, unique_email

from kabinet.clock import FrozenClock
from kabinet.identity.ratelimit import RedisLimiter
from kabinet.identity.services import IdentityError, IdentityService, RateLimited
from kabinet.identity.sessions import RedisSessions

pytestmark = pytest.mark.postgres
REDIS = "redis://127.0.0.1:6379/0"


@pytest.fixture
async def processes(
    database_url: str, tmp_path: Path, clock: FrozenClock
) -> AsyncIterator[tuple[IdentityService, IdentityService]]:
    """Two web processes' services (their own memory) on one database and one Redis."""
    async with two_processes(database_url, tmp_path, clock, host__redis_url=REDIS) as both:
        yield both


async def test_sessions_live_in_redis_and_are_shared(
    processes: tuple[IdentityService, IdentityService], clock: FrozenClock
) -> None:
    one, two = processes
    assert isinstance(one.sessions, RedisSessions)
    assert isinstance(one.limiter, RedisLimiter)
    person = await one.create_account(full_name="Редис", email=unique_email(), password=PASSWORD)
    assert person.email is not None
    token = (await one.login(person.email, PASSWORD)).token
    seen = await two.resolve_session(token)
    assert seen is not None
    assert seen.person_id == person.id
    assert [s.account_id for s in await two.sessions_of(person.id)] == [person.id]
    # idle timeout by the host's clock, whatever Redis's own clock says
    clock.advance(one.settings.idle_timeout + 1)
    assert await two.resolve_session(token) is None


async def test_disabling_in_one_process_ends_sessions_in_the_other(
    processes: tuple[IdentityService, IdentityService],
) -> None:
    one, two = processes
    person = await one.create_account(full_name="Блок", email=unique_email(), password=PASSWORD)
    assert person.email is not None
    token = (await one.login(person.email, PASSWORD)).token
    assert await two.resolve_session(token) is not None  # cached in two's memory now
    await one.disable(person.id)
    assert await two.resolve_session(token) is None


async def test_name_change_reaches_the_other_process_by_version(
    processes: tuple[IdentityService, IdentityService],
) -> None:
    one, two = processes
    person = await one.create_account(full_name="Старое", email=unique_email(), password=PASSWORD)
    assert person.email is not None
    token = (await one.login(person.email, PASSWORD)).token
    before = await two.resolve_session(token)
    assert before is not None
    assert before.name == "Старое"
    await one.update_profile(
        person.id,
        full_name="Новое",
        email=person.email,
        phone=None,
        language="ru",
        timezone="Europe/Moscow",
    )
    after = await two.resolve_session(token)
    assert after is not None
    assert after.name == "Новое"
    assert after.version > before.version


async def test_lockout_is_shared_by_processes(
    processes: tuple[IdentityService, IdentityService],
) -> None:
    one, two = processes
    login = unique_email()
    for i in range(one.settings.login_failures_per_account):
        with pytest.raises(IdentityError):
            await (one if i % 2 else two).login(login, "nope nope nope", address="10.9.0.1")
    with pytest.raises(RateLimited):
        await one.login(login, "nope nope nope", address="10.9.0.2")
    with pytest.raises(RateLimited):
        await two.login(login, "nope nope nope", address="10.9.0.3")
