"""A person removed in the portal cannot sign in again through the Keycloak user they had.

Between the removal's commit and the job that deletes or disables their Keycloak user, the
user still exists and Keycloak still signs them in. The portal refuses that sign-in with a
page in the person's language, makes no account and links none; it ends the Keycloak
session it was handed. A person who registers again (a new Keycloak user) is let in.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from urllib.parse import urlsplit

import httpx
import pytest
from fake_keycloak import FakeKeycloak, User
from keycloak_support import keycloak_env
from sqlalchemy import func, select

from kabinet import i18n
from kabinet.clock import FrozenClock
from kabinet.host import Host
from kabinet.identity.models import Account
from kabinet.jobs import settle_embedded
from kabinet.keycloak.models import erased
from kabinet.personal import erase
from kabinet.web import build_app

pytestmark = pytest.mark.smoke

BASE = "http://testserver.local"


@pytest.fixture
async def started(
    request: pytest.FixtureRequest, fresh_url: str, fake: FakeKeycloak, clock: FrozenClock
) -> AsyncIterator[tuple[Host, httpx.AsyncBaseTransport]]:
    setting = getattr(request, "param", "delete")
    env = {
        "KABINET__HOST__DATABASE_URL": fresh_url,
        **keycloak_env(fake, KABINET__KEYCLOAK__ERASE_USER=setting),
    }
    host = await Host.create(None, env=env, clock=clock)
    app = await build_app(host)
    host.services["host.process"] = "test"  # events and jobs driven by the test
    await host.startup()
    try:
        yield host, httpx.ASGITransport(app=app)
    finally:
        await host.shutdown()


async def sign_in(client: httpx.AsyncClient, fake: FakeKeycloak, user: User) -> httpx.Response:
    """``user`` signs in through Keycloak; the portal's answer at the callback, or
    Keycloak's own answer when Keycloak does not sign them in (its form, 200)."""
    fake.auto_login = user.username
    r = await client.get("/keycloak/login", params={"next": "/"})
    assert r.status_code == 302, r.text
    async with httpx.AsyncClient() as browser:
        at_keycloak = await browser.get(r.headers["location"])
    fake.auto_login = None
    if at_keycloak.status_code != 302:
        return at_keycloak
    back = urlsplit(at_keycloak.headers["location"])
    return await client.get(f"{back.path}?{back.query}")


async def account_ids(host: Host) -> list[int]:
    async with host.db.session() as s:
        return list(await s.scalars(select(Account.id).order_by(Account.id)))


async def account_of(host: Host, user: User) -> Account | None:
    async with host.db.session() as s:
        return (await s.scalars(select(Account).where(Account.external_subject == user.id))).first()


async def remove(host: Host, person_id: int) -> None:
    async with host.db.session() as s:
        await erase(host, s, person_id)


async def test_signing_in_before_the_job_is_refused_and_a_new_registration_works(
    started: tuple[Host, httpx.AsyncBaseTransport], fake: FakeKeycloak
) -> None:
    host, transport = started
    ivan = fake.add_user("ivan", email="ivan@example.com", first_name="Ivan", last_name="Petrov")
    async with httpx.AsyncClient(transport=transport, base_url=BASE) as browser:
        assert (await sign_in(browser, fake, ivan)).status_code == 302
    account = await account_of(host, ivan)
    assert account is not None
    ivan_id = account.id

    await remove(host, ivan_id)
    # Committed; the job that deletes the Keycloak user has not run: Keycloak lets Ivan in.
    assert ivan.id in fake.users
    before = await account_ids(host)
    sessions_before = set(fake.sessions)
    async with httpx.AsyncClient(transport=transport, base_url=BASE) as browser:
        refused = await sign_in(browser, fake, ivan)
        assert refused.status_code == 403, refused.text
        assert 'data-reason="erased"' in refused.text
        assert "Ваша учётная запись удалена из портала" in refused.text  # Russian by default
        assert 'href="/keycloak/login"' not in refused.text  # no "sign in again" loop
        assert not browser.cookies.get("kabinet_session")
        assert (await browser.get("/identity/profile")).status_code in {302, 303, 401}
    # Nor a new account nor a link to the removed one; the Keycloak session it opened ends.
    assert await account_ids(host) == before
    async with host.db.session() as s:
        removed = await s.get(Account, ivan_id)
        assert removed is not None
        assert (removed.external_subject, removed.email, removed.status) == (
            None,
            None,
            "disabled",
        )
    [opened] = [fake.sessions[k] for k in set(fake.sessions) - sessions_before]
    assert opened.user_id == ivan.id
    assert not opened.active

    async with httpx.AsyncClient(
        transport=transport, base_url=BASE, cookies={i18n.LANG_COOKIE: "en"}
    ) as browser:
        refused = await sign_in(browser, fake, ivan)
        assert refused.status_code == 403
        assert "Your account was removed from the portal" in refused.text

    await settle_embedded(host)
    assert ivan.id not in fake.users

    # Ivan registers again: a new Keycloak user (a new id), the same e-mail. Let in.
    again = fake.add_user("ivan", email="ivan@example.com", first_name="Ivan", last_name="P")
    async with httpx.AsyncClient(transport=transport, base_url=BASE) as browser:
        welcome = await sign_in(browser, fake, again)
        assert welcome.status_code == 302, welcome.text
    fresh = await account_of(host, again)
    assert fresh is not None
    assert fresh.id not in before
    assert (fresh.email, fresh.status) == ("ivan@example.com", "active")


@pytest.mark.parametrize("started", ["disable"], indirect=True)
async def test_a_disabled_user_enabled_again_in_keycloak_is_still_refused(
    started: tuple[Host, httpx.AsyncBaseTransport], fake: FakeKeycloak
) -> None:
    host, transport = started
    olga = fake.add_user("olga", email="olga@example.com", first_name="Olga")
    async with httpx.AsyncClient(transport=transport, base_url=BASE) as browser:
        assert (await sign_in(browser, fake, olga)).status_code == 302
    account = await account_of(host, olga)
    assert account is not None

    await remove(host, account.id)
    await settle_embedded(host)
    assert not fake.users[olga.id].enabled
    # A Keycloak admin enables the user again (and gives it an address): still refused.
    fake.users[olga.id].enabled = True
    fake.users[olga.id].email = "olga@example.com"
    fake.users[olga.id].email_verified = True
    before = await account_ids(host)
    async with httpx.AsyncClient(transport=transport, base_url=BASE) as browser:
        assert (await sign_in(browser, fake, olga)).status_code == 403
    assert await account_ids(host) == before


@pytest.mark.parametrize("started", ["keep"], indirect=True)
async def test_keep_lets_the_keycloak_user_in_to_a_new_empty_account(
    started: tuple[Host, httpx.AsyncBaseTransport], fake: FakeKeycloak
) -> None:
    """With ``keep`` the operator keeps the Keycloak user as it is: as documented, signing
    in with it makes a new, empty account (not the removed one)."""
    host, transport = started
    petr = fake.add_user("petr", email="petr@example.com", first_name="Petr")
    async with httpx.AsyncClient(transport=transport, base_url=BASE) as browser:
        assert (await sign_in(browser, fake, petr)).status_code == 302
    account = await account_of(host, petr)
    assert account is not None

    await remove(host, account.id)
    async with host.db.session() as s:
        assert await s.scalar(select(func.count()).select_from(erased)) == 0
    async with httpx.AsyncClient(transport=transport, base_url=BASE) as browser:
        assert (await sign_in(browser, fake, petr)).status_code == 302
    fresh = await account_of(host, petr)
    assert fresh is not None
    assert fresh.id != account.id
