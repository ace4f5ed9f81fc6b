"""One-time codes confirming e-mail and phone: expiry, attempts, resend, single use."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from identity_support import messages
from sqlalchemy import select

from kabinet.clock import FrozenClock
from kabinet.host import Host
from kabinet.identity.models import Account, Code, SecurityEvent
from kabinet.identity.services import CodeRejected, IdentityService, RateLimited

pytestmark = pytest.mark.smoke
MakeAccount = Callable[..., Awaitable[Account]]


def last_code(host: Host, account: Account, channel: str = "email") -> str:
    sent = [m for m in messages(host) if m["account_id"] == account.id and m["channel"] == channel]
    assert sent, "no message was written"
    code = sent[-1]["context"]["code"]
    assert code in sent[-1]["body"]
    return str(code)


async def test_code_confirms_the_email_once(
    host: Host, identity: IdentityService, make_account: MakeAccount
) -> None:
    account = await make_account()
    row = await identity.send_code(account.id, "confirm_email")
    code = last_code(host, account)
    assert len(code) == 6
    assert code.isdigit()
    assert row.code_hash != code
    assert code not in row.code_hash
    await identity.check_code(account.id, "confirm_email", code)
    confirmed = await identity.get_account(account.id)
    assert confirmed is not None
    assert confirmed.email_confirmed
    with pytest.raises(CodeRejected) as again:
        await identity.check_code(account.id, "confirm_email", code)
    assert again.value.reason == "expired"


async def test_phone_code_goes_by_sms(host: Host, identity: IdentityService) -> None:
    import random

    account = await identity.create_account(
        full_name="Смс", phone=f"+7903{random.randint(1000000, 9999999)}"
    )
    await identity.send_code(account.id, "confirm_phone")
    sms = [m for m in messages(host) if m["account_id"] == account.id][-1]
    assert sms["channel"] == "sms"
    assert sms["to"] == account.phone
    await identity.check_code(account.id, "confirm_phone", sms["context"]["code"])
    confirmed = await identity.get_account(account.id)
    assert confirmed is not None
    assert confirmed.phone_confirmed


async def test_code_expires_after_ten_minutes(
    host: Host, identity: IdentityService, make_account: MakeAccount, clock: FrozenClock
) -> None:
    account = await make_account()
    await identity.send_code(account.id, "confirm_email")
    code = last_code(host, account)
    clock.advance(minutes=10, seconds=1)
    with pytest.raises(CodeRejected) as err:
        await identity.check_code(account.id, "confirm_email", code)
    assert err.value.reason == "expired"
    still = await identity.get_account(account.id)
    assert still is not None
    assert not still.email_confirmed


async def test_at_most_five_attempts(
    host: Host, identity: IdentityService, make_account: MakeAccount
) -> None:
    account = await make_account()
    await identity.send_code(account.id, "confirm_email")
    code = last_code(host, account)
    wrong = "000000" if code != "000000" else "111111"
    remaining = []
    for _ in range(5):
        with pytest.raises(CodeRejected) as err:
            await identity.check_code(account.id, "confirm_email", wrong)
        remaining.append(err.value.remaining)
    assert remaining == [4, 3, 2, 1, 0]
    with pytest.raises(CodeRejected) as err:
        await identity.check_code(account.id, "confirm_email", code)  # right, but too late
    assert err.value.reason == "attempts"


async def test_resend_no_sooner_than_a_minute_and_replaces_the_old_code(
    host: Host, identity: IdentityService, make_account: MakeAccount, clock: FrozenClock
) -> None:
    account = await make_account()
    await identity.send_code(account.id, "confirm_email")
    first = last_code(host, account)
    clock.advance(59)
    with pytest.raises(RateLimited) as err:
        await identity.send_code(account.id, "confirm_email")
    assert err.value.retry_at == clock.now() + __import__("datetime").timedelta(seconds=1)
    clock.advance(1)
    await identity.send_code(account.id, "confirm_email")
    second = last_code(host, account)
    if first != second:
        with pytest.raises(CodeRejected):
            await identity.check_code(account.id, "confirm_email", first)
    await identity.check_code(account.id, "confirm_email", second)


async def test_code_sending_is_rate_limited_per_hour(
    identity: IdentityService, make_account: MakeAccount, clock: FrozenClock
) -> None:
    account = await make_account()
    for _ in range(identity.settings.codes_per_hour):
        await identity.send_code(account.id, "confirm_email")
        clock.advance(61)
    with pytest.raises(RateLimited):
        await identity.send_code(account.id, "confirm_email")


async def test_the_code_rests_only_hashed_and_events_carry_a_reference(
    host: Host, identity: IdentityService, make_account: MakeAccount
) -> None:
    account = await make_account()
    await identity.send_code(account.id, "confirm_email")
    code = last_code(host, account)
    async with host.db.reader() as s:
        rows = (await s.scalars(select(Code).where(Code.account_id == account.id))).all()
        events = (
            await s.scalars(select(SecurityEvent).where(SecurityEvent.subject_id == account.id))
        ).all()
    for row in rows:
        assert code not in (row.code_hash, row.target)
    sent = [e for e in events if e.action == "code.sent"]
    assert sent
    assert sent[0].details["code_id"] == rows[-1].id
    assert all(code not in str(e.details) for e in events)


COURIER = """
TAKEN = []

@hookimpl
def deliver_message(host, message):
    TAKEN.append(message)
    return True
"""
"""A plugin that takes every message it is offered and keeps it in ``TAKEN``."""


async def send_a_code_through(
    plugin_factory: object,
    couriers: tuple[str, ...],
    database_url: str,
    tmp_path: object,
    clock: FrozenClock,
) -> tuple[Host, list[list[Any]], Account]:
    """Install ``couriers`` and send a confirmation code; returns the host, what each
    courier took (in the order of ``plugin_factory.modules``) and the account."""
    import sys
    from pathlib import Path

    from kabinet.testing import PluginFactory

    assert isinstance(plugin_factory, PluginFactory)
    for name in couriers:
        plugin_factory.add(name, COURIER)
    settings = Path(str(tmp_path)) / "settings.toml"
    settings.write_text('[host]\nvar_dir = "var"\nsecret_key = "x"\n')
    host = await Host.create(
        settings,
        env={"KABINET__HOST__DATABASE_URL": database_url},
        clock=clock,
        candidates=plugin_factory.candidates(),
    )
    identity = IdentityService(host)
    try:
        account = await identity.create_account(
            full_name="Курьер", email=f"courier-{id(host)}@example.com"
        )
        await identity.send_code(account.id, "confirm_email")
    finally:
        await identity.close()
    return host, [sys.modules[m].TAKEN for m in plugin_factory.modules], account


async def test_hook_deliver_message(
    plugin_factory: object, database_url: str, tmp_path: object, clock: FrozenClock
) -> None:
    """A plugin that takes the message gets it whole; then nothing goes to the folder."""
    host, [taken], account = await send_a_code_through(
        plugin_factory, ("courier",), database_url, tmp_path, clock
    )
    try:
        assert len(taken) == 1
        message = taken[0]
        assert message.kind == "identity.code"
        assert message.to == account.email
        assert message.secrets == ("code",)
        assert message.masked()["code"] == "***"
        assert message.context["code"] in message.body
        assert messages(host) == []
    finally:
        await host.db.dispose()


async def test_a_message_goes_to_the_first_plugin_that_takes_it_only(
    plugin_factory: object, database_url: str, tmp_path: object, clock: FrozenClock
) -> None:
    """Two plugins able to deliver: the code is sent once, not twice."""
    host, taken, _ = await send_a_code_through(
        plugin_factory, ("courier_a", "courier_b"), database_url, tmp_path, clock
    )
    try:
        assert sorted(len(t) for t in taken) == [0, 1]
        assert messages(host) == []
    finally:
        await host.db.dispose()
