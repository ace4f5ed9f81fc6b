"""Removing a person the portal never linked to a Keycloak user, and Keycloak users the
portal never saw.

A person who never signed in through Keycloak (no ``external_subject``, no Keycloak session)
publishes nothing and the removal calls no Keycloak: it neither fails nor waits, even with
Keycloak down. A Keycloak user with their e-mail address that the portal never saw is not
looked for (an address is no proof it is the same person) and stays as it is, for an
operator to handle in Keycloak; should it sign in later, it gets a new, empty account,
never the removed one.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from urllib.parse import urlsplit

import httpx
import pytest
from fake_keycloak import FakeKeycloak, User
from keycloak_support import keycloak_env
from sqlalchemy import select
from structlog.testing import capture_logs

from kabinet import models
from kabinet.clock import FrozenClock
from kabinet.host import Host
from kabinet.identity.models import Account
from kabinet.identity.services import IDENTITY
from kabinet.jobs import settle_embedded
from kabinet.personal import erase
from kabinet.web import build_app

pytestmark = pytest.mark.smoke

BASE = "http://testserver.local"


@pytest.fixture
async def started(
    fresh_url: str, fake: FakeKeycloak, clock: FrozenClock
) -> AsyncIterator[tuple[Host, httpx.AsyncBaseTransport]]:
    env = {"KABINET__HOST__DATABASE_URL": fresh_url, **keycloak_env(fake)}
    host = await Host.create(None, env=env, clock=clock)
    app = await build_app(host)
    host.services["host.process"] = "test"  # events and jobs driven by the test
    await host.startup()
    try:
        yield host, httpx.ASGITransport(app=app)
    finally:
        await host.shutdown()


async def sign_in(client: httpx.AsyncClient, fake: FakeKeycloak, user: User) -> int:
    fake.auto_login = user.username
    r = await client.get("/keycloak/login", params={"next": "/"})
    assert r.status_code == 302, r.text
    async with httpx.AsyncClient() as browser:
        at_keycloak = await browser.get(r.headers["location"])
    fake.auto_login = None
    assert at_keycloak.status_code == 302, at_keycloak.text
    back = urlsplit(at_keycloak.headers["location"])
    return (await client.get(f"{back.path}?{back.query}")).status_code


async def test_a_person_never_linked_is_removed_without_keycloak_and_a_stranger_is_left(
    started: tuple[Host, httpx.AsyncBaseTransport], fake: FakeKeycloak
) -> None:
    host, transport = started
    # Made in the portal (built-in registration, before Keycloak): never signed in there.
    account = await host.services.of(IDENTITY).create_account(
        full_name="Vera Lebedeva", email="vera@example.com", phone="+79161234567"
    )
    # A Keycloak user with her address, made in Keycloak by someone: the portal never saw it.
    stranger = fake.add_user(
        "vera", email="vera@example.com", first_name="Vera", last_name="Lebedeva"
    )
    before = stranger.representation()
    for method in ("GET", "POST", "PUT", "DELETE"):  # Keycloak is down
        fake.fail(method, r".*", status=503, times=None)
    calls = len(fake.requests)

    with capture_logs() as logs:
        async with host.db.session() as s:
            done = await erase(host, s, account.id)
        await settle_embedded(host)
    assert done is not None
    assert len(fake.requests) == calls  # Keycloak was not asked anything
    e, h = models.event, models.event_handling
    async with host.db.session() as s:
        assert list(await s.scalars(select(e.c.id).where(e.c.type == "keycloak.user.erased"))) == []
        handled = await s.scalars(select(h.c.subscriber))
        assert "keycloak.user.erase" not in list(handled)
        removed = await s.get(Account, account.id)
        assert removed is not None
        assert (removed.email, removed.external_subject, removed.status) == (
            None,
            None,
            "disabled",
        )
    assert await host.events.with_errors() == []
    # The operator is told that nothing was done in Keycloak for this person.
    [note] = [entry for entry in logs if entry["event"] == "keycloak.user_erase_unlinked"]
    assert note["person"] == account.id
    assert note["log_level"] == "warning"
    assert "vera" not in str(note)

    fake.failures.clear()
    assert fake.users[stranger.id].representation() == before  # left to the operator
    # Should the stranger sign in: a new, empty account, never the removed one.
    async with httpx.AsyncClient(transport=transport, base_url=BASE) as browser:
        assert await sign_in(browser, fake, stranger) == 302
    async with host.db.session() as s:
        new = (
            await s.scalars(select(Account).where(Account.external_subject == stranger.id))
        ).one()
        removed = await s.get(Account, account.id)
    assert new.id != account.id
    assert removed is not None
    assert (removed.email, removed.external_subject) == (None, None)
