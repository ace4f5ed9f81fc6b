"""Limits that hold when the attempts come all at once, over HTTP.

Each test fires its requests together (``asyncio.gather`` against the app served in this
event loop) and then checks what an attacker gets: no more evaluations than the limit
allows, whatever the interleaving; the lock holds for the account whatever identifier
names it; with Redis, two web processes share one count.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import httpx
import pytest
from identity_support import PASSWORD, messages, unique_email
from served_support import csrf, sign_in, unique_phone
from sqlalchemy import func, select

from kabinet.clock import FrozenClock
from kabinet.host import Host
from kabinet.identity.models import Account, Code, Login, SecurityEvent
from kabinet.identity.services import identity_service
from kabinet.testing import Portal, PortalFactory

pytestmark = pytest.mark.smoke
REDIS = "redis://127.0.0.1:6379/0"


@pytest.fixture
async def portal(make_portal: PortalFactory) -> Portal:
    """One web process of the host's built-ins, its jobs running as in production."""
    return await make_portal(plugins=[], background=True)


@pytest.fixture
def web(portal: Portal) -> tuple[Host, httpx.AsyncClient]:
    """The host and a browser at the portal, reading the redirects it is sent."""
    return portal.host, portal.browser(follow_redirects=False)


async def _account(host: Host, **kw: str) -> Account:
    kw.setdefault("email", unique_email("limits"))
    return await identity_service(host).create_account(
        full_name="Лимит Одновременный", password=PASSWORD, **kw
    )


async def _failed_logins(host: Host, account_id: int) -> int:
    """Wrong passwords that were checked (each leaves a row in the sign-in history)."""
    async with host.db.reader() as s:
        found = await s.scalar(
            select(func.count())
            .select_from(Login)
            .where(Login.account_id == account_id, Login.success.is_(False))
        )
    return int(found or 0)


async def test_twenty_wrong_codes_at_once_void_the_code(
    web: tuple[Host, httpx.AsyncClient],
) -> None:
    host, client = web
    svc = identity_service(host)
    person = await _account(host)
    assert person.email is not None
    assert (await sign_in(client, person.email)).status_code == 303
    token = await csrf(client, "/identity/profile")
    await svc.send_code(person.id, "confirm_email")
    sent = [m for m in messages(host) if m["account_id"] == person.id]
    code = str(sent[-1]["context"]["code"])
    wrong = "000000" if code != "000000" else "111111"

    def check(value: str) -> object:
        return client.post(
            "/identity/profile/codes/check",
            data={"csrf_token": token, "purpose": "confirm_email", "code": value},
        )

    answers = await asyncio.gather(*(check(wrong) for _ in range(20)))
    assert {a.status_code for a in answers} == {400}
    right = await check(code)  # sequentially refused after 5 wrong tries: so at once too
    assert right.status_code == 400
    account = await svc.get_account(person.id)
    assert account is not None
    assert not account.email_confirmed
    async with host.db.reader() as s:
        attempts = await s.scalar(select(Code.attempts).where(Code.account_id == person.id))
        evaluated = await s.scalar(
            select(func.count())
            .select_from(SecurityEvent)
            .where(SecurityEvent.subject_id == person.id, SecurityEvent.action == "code.wrong")
        )
    limit = svc.settings.code_attempts
    assert evaluated == limit, "every wrong code beyond the limit must be refused unchecked"
    assert attempts == limit


async def test_twenty_five_wrong_passwords_at_once_check_only_five(
    web: tuple[Host, httpx.AsyncClient],
) -> None:
    host, client = web
    person = await _account(host)
    assert person.email is not None
    token = await csrf(client)
    email = person.email
    answers = await asyncio.gather(
        *(sign_in(client, email, "not the password", token=token) for _ in range(25))
    )
    limit = identity_service(host).settings.login_failures_per_account
    codes = sorted(a.status_code for a in answers)
    assert codes == [400] * limit + [429] * (25 - limit)
    assert await _failed_logins(host, person.id) == limit
    assert (await sign_in(client, email, token=token)).status_code == 429  # locked


async def test_failures_by_email_do_not_tell_that_the_phone_is_the_same_account(
    web: tuple[Host, httpx.AsyncClient],
) -> None:
    """The e-mail's lock shows on the e-mail only: the phone of the same account answers
    exactly as a wrong password does (not 429, nor any other word), yet no password is
    accepted on it while the account's count is spent; the phone then locks after its own
    count, like any identifier (of an account or not)."""
    host, client = web
    person = await _account(host, phone=unique_phone())
    assert person.email is not None
    assert person.phone is not None
    token = await csrf(client)
    limit = identity_service(host).settings.login_failures_per_account
    for _ in range(limit):
        failed = await sign_in(client, person.email.upper(), "not the password", token=token)
        assert failed.status_code == 400
    assert (await sign_in(client, person.email, token=token)).status_code == 429
    stranger = unique_phone()  # a phone of no account, tried once like the phone
    wrong = await sign_in(client, stranger, "not the password", token=token)
    by_phone = await sign_in(client, person.phone, token=token)  # the right password
    assert by_phone.status_code == wrong.status_code == 400
    assert _said(by_phone.text) == _said(wrong.text)
    assert "kabinet_session" not in by_phone.headers.get("set-cookie", "")
    national = "8" + person.phone.removeprefix("+7")  # the same number as typed at home
    again = await sign_in(client, national, token=token)
    assert again.status_code == 400
    assert "kabinet_session" not in again.headers.get("set-cookie", "")
    assert await _failed_logins(host, person.id) == limit + 2
    for _ in range(limit - 2):  # the phone's own count, spent like the stranger's
        assert (await sign_in(client, person.phone, token=token)).status_code == 400
        assert (await sign_in(client, stranger, "nope nope", token=token)).status_code == 400
    assert (await sign_in(client, stranger, "nope nope", token=token)).status_code == 400
    assert (await sign_in(client, person.phone, token=token)).status_code == 429
    assert (await sign_in(client, stranger, "nope nope", token=token)).status_code == 429


def _said(page: str) -> str:
    """The sign-in page as answered, without what differs from one answer to the next
    anyway (the form's values: the login typed, the token; nonces)."""
    import re

    return re.sub(r'(?:value|nonce|content)="[^"]*"', "", page)


async def test_an_unknown_login_is_locked_like_a_known_one(
    web: tuple[Host, httpx.AsyncClient],
) -> None:
    host, client = web
    token = await csrf(client)
    nobody = unique_email("nobody")
    limit = identity_service(host).settings.login_failures_per_account
    answers = await asyncio.gather(
        *(sign_in(client, nobody, "not the password", token=token) for _ in range(limit + 3))
    )
    assert sorted(a.status_code for a in answers) == [400] * limit + [429] * 3


@contextlib.asynccontextmanager
async def _two_processes(
    make_portal: PortalFactory,
) -> AsyncIterator[tuple[tuple[Host, httpx.AsyncClient], tuple[Host, httpx.AsyncClient]]]:
    """Two web processes (each its own memory) on one database and one Redis."""
    pair = []
    for _ in range(2):
        settings = {"host": {"redis_url": REDIS}}
        found = await make_portal(plugins=[], background=True, settings=settings)
        pair.append((found.host, found.browser(follow_redirects=False)))
    yield pair[0], pair[1]


async def test_two_processes_share_one_count_in_redis(make_portal: PortalFactory) -> None:
    async with _two_processes(make_portal) as ((host, one), (_, two)):
        person = await _account(host, phone=unique_phone())
        assert person.email is not None
        assert person.phone is not None
        email, phone = person.email, person.phone
        limit = identity_service(host).settings.login_failures_per_account
        tokens = [await csrf(one), await csrf(two)]
        clients = [one, two]
        answers = await asyncio.gather(
            *(
                sign_in(clients[i % 2], email, "not the password", token=tokens[i % 2])
                for i in range(limit * 3)
            )
        )
        assert sorted(a.status_code for a in answers) == [400] * limit + [429] * (limit * 2)
        assert await _failed_logins(host, person.id) == limit
        for client, token in zip(clients, tokens, strict=True):
            # the account's count is spent in both: the phone is refused (as a wrong
            # password would be: the e-mail's lock does not tell on it)
            refused = await sign_in(client, phone, token=token)
            assert refused.status_code == 400
            assert "kabinet_session" not in refused.headers.get("set-cookie", "")


async def test_the_lock_ends_with_its_window_and_a_success_clears_the_count(
    portal: Portal, web: tuple[Host, httpx.AsyncClient], clock: FrozenClock
) -> None:
    host, client = web
    person = await _account(host, phone=unique_phone())
    assert person.email is not None
    assert person.phone is not None
    settings = identity_service(host).settings
    token = await csrf(client)
    for _ in range(settings.login_failures_per_account - 1):
        assert (await sign_in(client, person.email, "nope nope", token=token)).status_code == 400
    async with portal.browser(follow_redirects=False) as other:
        assert (await sign_in(other, person.phone)).status_code == 303  # clears the count
    for _ in range(settings.login_failures_per_account):
        assert (await sign_in(client, person.email, "nope nope", token=token)).status_code == 400
    assert (await sign_in(client, person.email, token=token)).status_code == 429
    clock.advance(settings.lockout_seconds)
    async with portal.browser(follow_redirects=False) as later:
        assert (await sign_in(later, person.phone)).status_code == 303
