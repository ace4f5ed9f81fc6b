"""Accounts, logins, lock-out, sessions and their timeouts, through the service."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import pytest
from identity_support import PASSWORD, unique_email
from sqlalchemy import select

from kabinet.clock import FrozenClock
from kabinet.host import Host
from kabinet.identity.models import Account, Login, SecurityEvent
from kabinet.identity.services import (
    AccountExists,
    IdentityError,
    IdentityService,
    InvalidInput,
    RateLimited,
)

pytestmark = pytest.mark.smoke
MakeAccount = Callable[..., Awaitable[Account]]


async def test_account_normalises_email_and_phone(identity: IdentityService) -> None:
    email = unique_email("Mixed")
    account = await identity.create_account(
        full_name="Анна", email=email, phone="8 (916) 123-45-" + str(10 + hash(email) % 89)
    )
    assert account.email == email.lower()
    assert account.phone is not None
    assert account.phone.startswith("+7916")
    assert account.status == "active"
    assert not account.email_confirmed
    found = await identity.find_by_email(email.upper())
    assert found is not None
    assert found.id == account.id
    by_phone = await identity.find_by_phone(account.phone)
    assert by_phone is not None
    assert by_phone.id == account.id


async def test_email_is_unique_case_insensitively(
    identity: IdentityService, make_account: MakeAccount
) -> None:
    account = await make_account()
    assert account.email is not None
    with pytest.raises(AccountExists) as err:
        await identity.create_account(full_name="Другой", email=account.email.upper())
    assert err.value.field == "email"


async def test_bad_phone_names_the_field(identity: IdentityService) -> None:
    with pytest.raises(InvalidInput) as err:
        await identity.create_account(full_name="X", email=unique_email(), phone="12")
    assert err.value.field == "phone"


async def test_password_hash_is_argon2id_with_owasp_parameters(
    host: Host, make_account: MakeAccount
) -> None:
    account = await make_account()
    assert account.password_hash is not None
    assert account.password_hash.startswith("$argon2id$v=19$m=19456,t=2,p=1$")
    assert PASSWORD not in account.password_hash


async def test_login_by_email_and_by_phone(
    identity: IdentityService, make_account: MakeAccount
) -> None:
    account = await make_account(phone="+79161112233" if False else None)
    assert account.email is not None
    result = await identity.login(account.email.upper(), PASSWORD, address="10.0.0.1")
    assert result.account.id == account.id
    principal = await identity.resolve_session(result.token)
    assert principal is not None
    assert principal.person_id == account.id
    assert principal.kind == "person"
    assert principal.name == account.full_name


async def test_login_by_phone(identity: IdentityService) -> None:
    import random

    phone = f"+7916{random.randint(1000000, 9999999)}"
    account = await identity.create_account(full_name="Телефон", phone=phone, password=PASSWORD)
    result = await identity.login("8" + phone[2:], PASSWORD)
    assert result.account.id == account.id


async def test_failed_login_same_answer_for_unknown_and_wrong_password(
    identity: IdentityService, make_account: MakeAccount
) -> None:
    account = await make_account()
    assert account.email is not None
    with pytest.raises(IdentityError) as wrong:
        await identity.login(account.email, "wrong password!", address="10.0.0.2")
    with pytest.raises(IdentityError) as unknown:
        await identity.login(unique_email(), "wrong password!", address="10.0.0.2")
    assert type(wrong.value) is type(unknown.value)
    assert wrong.value.message == unknown.value.message == "Wrong login or password."
    async with identity.host.db.reader() as s:
        logins = (await s.scalars(select(Login).where(Login.account_id == account.id))).all()
        events = (
            await s.scalars(
                select(SecurityEvent.action).where(SecurityEvent.subject_id == account.id)
            )
        ).all()
    assert [login.success for login in logins] == [False]
    assert "login.failed" in events


async def test_lockout_after_failures_says_when_and_hides_existence(
    identity: IdentityService, make_account: MakeAccount, clock: FrozenClock
) -> None:
    account = await make_account()
    assert account.email is not None
    nobody = unique_email()
    limit = identity.settings.login_failures_per_account
    for who in (account.email, nobody):
        for _ in range(limit):
            with pytest.raises(IdentityError) as err:
                await identity.login(who, "bad password 1", address=f"10.1.{limit}.1")
            assert not isinstance(err.value, RateLimited)
    locked: list[RateLimited] = []
    for who in (account.email, nobody):
        with pytest.raises(RateLimited) as err:
            await identity.login(who, PASSWORD, address="10.1.9.9")
        locked.append(err.value)
    # same answer, same time to wait, whether the account exists or not
    assert locked[0].message == locked[1].message
    assert locked[0].retry_at == clock.now() + __import__("datetime").timedelta(
        seconds=identity.settings.lockout_seconds
    )
    clock.advance(identity.settings.lockout_seconds)
    result = await identity.login(account.email, PASSWORD, address="10.1.9.9")
    assert result.account.id == account.id
    async with identity.host.db.reader() as s:
        actions = (
            await s.scalars(
                select(SecurityEvent.action).where(SecurityEvent.subject_id == account.id)
            )
        ).all()
    assert "login.locked" in actions


async def test_a_lock_by_email_answers_on_the_phone_as_a_wrong_password_and_holds(
    identity: IdentityService, make_account: MakeAccount, clock: FrozenClock
) -> None:
    """The e-mail's failures spend the account's count: its phone is then refused like a
    wrong password (not a lock: that would tell it is the same account), even with the
    right password, until the window ends; the refusal is logged as a lock's."""
    import random

    phone = f"+7916{random.randint(1000000, 9999999)}"
    account = await make_account(phone=phone)
    assert account.email is not None
    limit = identity.settings.login_failures_per_account
    for _ in range(limit):
        with pytest.raises(IdentityError):
            await identity.login(account.email, "bad password 1", address="10.3.0.1")
    with pytest.raises(RateLimited):
        await identity.login(account.email, PASSWORD, address="10.3.0.2")
    with pytest.raises(IdentityError) as unknown:
        await identity.login(unique_email(), "bad password 1", address="10.3.0.2")
    with pytest.raises(IdentityError) as on_phone:
        await identity.login(phone, PASSWORD, address="10.3.0.3")
    assert type(on_phone.value) is type(unknown.value) is IdentityError
    assert on_phone.value.message == unknown.value.message == "Wrong login or password."
    assert on_phone.value.field == unknown.value.field
    async with identity.host.db.reader() as s:
        reasons = (
            await s.scalars(
                select(SecurityEvent.details).where(
                    SecurityEvent.subject_id == account.id, SecurityEvent.action == "login.failed"
                )
            )
        ).all()
        locks = (
            await s.scalars(
                select(SecurityEvent.id).where(
                    SecurityEvent.subject_id == account.id, SecurityEvent.action == "login.locked"
                )
            )
        ).all()
    assert [r["reason"] for r in reasons] == ["wrong password"] * limit + ["locked"]
    assert len(locks) == 1
    clock.advance(identity.settings.lockout_seconds)
    assert (await identity.login(phone, PASSWORD, address="10.3.0.3")).account.id == account.id


async def test_failures_are_limited_per_address(
    identity: IdentityService, make_account: MakeAccount
) -> None:
    identity.settings.login_failures_per_address = 3
    account = await make_account()
    assert account.email is not None
    for _ in range(3):
        with pytest.raises(IdentityError):
            await identity.login(unique_email(), "nope nope nope", address="10.2.0.1")
    with pytest.raises(RateLimited):
        await identity.login(account.email, PASSWORD, address="10.2.0.1")
    result = await identity.login(account.email, PASSWORD, address="10.2.0.2")
    assert result.account.id == account.id


async def test_session_idle_timeout(
    identity: IdentityService, make_account: MakeAccount, clock: FrozenClock
) -> None:
    account = await make_account()
    assert account.email is not None
    token = (await identity.login(account.email, PASSWORD)).token
    idle = identity.settings.idle_timeout
    clock.advance(idle - 10)
    assert await identity.resolve_session(token) is not None  # activity refreshes it
    clock.advance(idle - 10)
    assert await identity.resolve_session(token) is not None
    clock.advance(idle + 1)
    assert await identity.resolve_session(token) is None
    assert await identity.sessions_of(account.id) == []


async def test_session_absolute_timeout(
    identity: IdentityService, make_account: MakeAccount, clock: FrozenClock
) -> None:
    account = await make_account()
    assert account.email is not None
    token = (await identity.login(account.email, PASSWORD)).token
    step = identity.settings.idle_timeout // 2
    elapsed = 0
    while elapsed + step <= identity.settings.absolute_timeout:
        clock.advance(step)
        elapsed += step
        assert await identity.resolve_session(token) is not None
    clock.advance(step)
    assert await identity.resolve_session(token) is None


async def test_resolving_a_session_writes_only_now_and_then(
    identity: IdentityService, make_account: MakeAccount, clock: FrozenClock
) -> None:
    account = await make_account()
    assert account.email is not None
    token = (await identity.login(account.email, PASSWORD)).token
    writes = 0
    original = identity.sessions.touch

    async def counting(key: str, at: object) -> None:
        nonlocal writes
        writes += 1
        await original(key, at)  # type: ignore[arg-type]

    identity.sessions.touch = counting  # type: ignore[method-assign]
    for _ in range(200):
        clock.advance(1)
        assert await identity.resolve_session(token) is not None
    # 200 requests over 200 s: "last seen" written once a minute, not 200 times
    assert 1 <= writes <= 200 // int(identity.touch_every()) + 1


async def test_fresh_session_id_at_every_login(
    identity: IdentityService, make_account: MakeAccount
) -> None:
    account = await make_account()
    assert account.email is not None
    first = await identity.login(account.email, PASSWORD)
    second = await identity.login(account.email, PASSWORD)
    assert first.token != second.token
    assert len(await identity.sessions_of(account.id)) == 2


async def test_disabling_ends_sessions_at_once(
    identity: IdentityService, make_account: MakeAccount
) -> None:
    account = await make_account()
    assert account.email is not None
    token = (await identity.login(account.email, PASSWORD)).token
    assert await identity.resolve_session(token) is not None
    await identity.disable(account.id, actor_id=None)
    assert await identity.resolve_session(token) is None
    with pytest.raises(IdentityError):
        await identity.login(account.email, PASSWORD)
    await identity.enable(account.id, actor_id=None)
    assert (await identity.login(account.email, PASSWORD)).account.id == account.id


async def test_logout_and_logout_others(
    identity: IdentityService, make_account: MakeAccount
) -> None:
    account = await make_account()
    assert account.email is not None
    mine = (await identity.login(account.email, PASSWORD)).token
    other = (await identity.login(account.email, PASSWORD)).token
    third = (await identity.login(account.email, PASSWORD)).token
    assert await identity.logout_others(mine) == 2
    assert await identity.resolve_session(other) is None
    assert await identity.resolve_session(third) is None
    assert await identity.resolve_session(mine) is not None
    await identity.logout(mine)
    assert await identity.resolve_session(mine) is None


async def test_change_password_asks_the_current_one(
    identity: IdentityService, make_account: MakeAccount
) -> None:
    account = await make_account()
    assert account.email is not None
    mine = (await identity.login(account.email, PASSWORD)).token
    other = (await identity.login(account.email, PASSWORD)).token
    with pytest.raises(IdentityError) as err:
        await identity.change_password(account.id, "not it at all", "new password 123")
    assert err.value.field == "current_password"
    with pytest.raises(InvalidInput) as short:
        await identity.change_password(account.id, PASSWORD, "short")
    assert short.value.field == "new_password"
    await identity.change_password(account.id, PASSWORD, "new password 123", keep_token=mine)
    assert await identity.resolve_session(mine) is not None
    assert await identity.resolve_session(other) is None
    with pytest.raises(IdentityError):
        await identity.login(account.email, PASSWORD)
    assert (await identity.login(account.email, "new password 123")).account.id == account.id


async def test_rehash_when_parameters_change(
    database_url: str, tmp_path: object, clock: FrozenClock, make_account: MakeAccount
) -> None:
    from pathlib import Path

    from identity_support import make_host

    account = await make_account()
    assert account.email is not None
    stronger = await make_host(
        database_url, Path(str(tmp_path)), clock, identity__argon2_time_cost="3"
    )
    try:
        service = IdentityService(stronger)
        await service.login(account.email, PASSWORD)
        refreshed = await service.get_account(account.id)
        assert refreshed is not None
        assert refreshed.password_hash is not None
        assert ",t=3," in refreshed.password_hash
        await service.close()
    finally:
        await stronger.db.dispose()


def test_settings_refuse_weaker_than_owasp() -> None:
    import msgspec

    from kabinet.errors import SettingsError
    from kabinet.identity.settings import IdentitySettings

    with pytest.raises(SettingsError, match="OWASP"):
        msgspec.convert({"argon2_memory_kib": 4096}, IdentitySettings)


async def test_status_and_profile_changes_are_published_as_events(
    host: Host, identity: IdentityService, make_account: MakeAccount
) -> None:
    """Keycloak and the companies' contact copies follow accounts through these events."""
    from kabinet import models

    account = await make_account()
    await identity.disable(account.id)
    await identity.enable(account.id)
    await identity.update_profile(
        account.id,
        full_name="Новое Имя",
        email=account.email,
        phone=account.phone,
        language="ru",
        timezone="Europe/Moscow",
    )
    async with host.db.session() as s:
        rows = (
            await s.execute(
                select(models.event.c.type, models.event.c.payload)
                .where(models.event.c.type.like("identity.account.%"))
                .order_by(models.event.c.id)  # in the order they were published
            )
        ).all()
    mine = [t for t, payload in rows if payload == {"account_id": account.id}]
    assert mine == [
        "identity.account.disabled",
        "identity.account.enabled",
        "identity.account.updated",
    ]


async def test_hashing_threads_run_below_the_web_threads_priority(
    identity: IdentityService,
) -> None:
    """A flood of sign-in attempts must slow sign-ins, not every page (Linux niceness)."""
    import asyncio
    import os
    import threading

    hasher = identity.hasher

    def niceness() -> int:
        return os.getpriority(os.PRIO_PROCESS, threading.get_native_id())

    loop = asyncio.get_running_loop()
    pool_nice = await loop.run_in_executor(hasher._pool, niceness)
    assert pool_nice >= niceness() + 5
