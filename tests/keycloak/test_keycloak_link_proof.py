"""A portal account is linked to a Keycloak user that already exists only on proof.

Someone registering in the portal with another person's e-mail address, where that person
already has a Keycloak user, must not be linked to that user (staff removing the
registrant would then delete or disable the other person's Keycloak user, and the two
identities would be mixed). The portal links an account to an existing Keycloak user only
when the user carries the portal's own mark for that account, or when the portal has
confirmed the address itself and Keycloak has verified the same address.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from fake_keycloak import ADMIN_PASSWORD, CLIENT_SECRET, FakeKeycloak, User
from keycloak_support import keycloak_env
from sqlalchemy import select

from kabinet import models
from kabinet.clock import FrozenClock
from kabinet.host import Host
from kabinet.identity.models import Account
from kabinet.identity.services import IDENTITY
from kabinet.jobs import settle_embedded
from kabinet.keycloak.services import KEYCLOAK, KeycloakService
from kabinet.keycloak.sync import LinkRefused
from kabinet.roles.services import ROLES
from kabinet.testing import PortalFactory
from kabinet.web import build_app

pytestmark = pytest.mark.smoke


def settings_of(fake: FakeKeycloak) -> dict[str, Any]:
    return {
        "keycloak": {
            "server_url": fake.url,
            "realm": fake.realm,
            "client_id": fake.client_id,
            "client_secret": CLIENT_SECRET,
            "admin_username": fake.admin_username,
            "admin_password": ADMIN_PASSWORD,
        }
    }


def victim_of(fake: FakeKeycloak, *, verified: bool = True) -> User:
    """A person who already has a Keycloak user (made in Keycloak, not by the portal)."""
    email = f"victim-{uuid.uuid4().hex[:8]}@example.com"
    return fake.add_user(
        email,
        email=email,
        password="the victim's own password",
        first_name="Vera",
        last_name="Lebedeva",
        email_verified=verified,
    )


def sync_of(host: Host) -> Any:
    service = host.services.of(KEYCLOAK)
    assert isinstance(service, KeycloakService)
    return service.sync


async def linked_to(host: Host, subject: str) -> list[int]:
    async with host.db.session() as s:
        found = await s.scalars(select(Account.id).where(Account.external_subject == subject))
        return list(found)


async def subject_of(host: Host, person_id: int) -> str | None:
    async with host.db.session() as s:
        return await s.scalar(select(Account.external_subject).where(Account.id == person_id))


async def test_registering_with_a_keycloak_users_address_is_refused_over_http(
    make_portal: PortalFactory, fake: FakeKeycloak
) -> None:
    portal = await make_portal(settings=settings_of(fake))
    host = portal.host
    victim = victim_of(fake)
    before = victim.representation()
    form = {
        "full_name": "Mallory Attacker",
        "email": victim.email.upper(),  # any spelling of the address
        "phone": f"+7916{uuid.uuid4().int % 10**7:07d}",
        "password": "the attacker's password 1",
        "password2": "the attacker's password 1",
        "consent": "yes",
    }

    answer = await portal.client.post("/companies/register", data=form)
    # A clear refusal beside the address, in the person's language (Russian by default).
    assert answer.status_code == 400, answer.text
    assert "Эта почта уже зарегистрирована." in answer.text
    assert 'id="e-email"' in answer.text
    english = await portal.client.post(
        "/companies/register", data=form, headers={"Accept-Language": "en"}
    )
    assert english.status_code == 400, english.text
    assert "This e-mail address is already registered." in english.text

    # No account, no session, no link; the victim's Keycloak user exactly as it was.
    assert await host.services.of(IDENTITY).find_by_email(victim.email) is None
    assert await linked_to(host, victim.id) == []
    assert fake.users[victim.id].representation() == before
    assert fake.users[victim.id].password == "the victim's own password"
    assert [u.id for u in fake.users.values() if u.email == victim.email] == [victim.id]


async def test_a_registration_racing_a_keycloak_user_is_not_linked_to_it(
    make_portal: PortalFactory, fake: FakeKeycloak
) -> None:
    # The address is free when the form is checked; Keycloak gets the user just before
    # the portal creates its own (the 409 path of create_user).
    portal = await make_portal(settings=settings_of(fake), web=False)
    host = portal.host
    identity = host.services.of(IDENTITY)
    victim = victim_of(fake)
    before = victim.representation()
    mallory = await identity.create_account(
        full_name="Mallory Attacker", email=victim.email, password="attacker-pass-1"
    )

    with pytest.raises(LinkRefused):
        await sync_of(host).create_user(
            email=victim.email,
            full_name="Mallory Attacker",
            password="attacker-pass-1",
            email_verified=False,  # the registration's code is not entered yet
            account_id=mallory.id,
        )
    assert await subject_of(host, mallory.id) is None
    assert fake.users[victim.id].representation() == before
    assert fake.users[victim.id].password == "the victim's own password"
    events, _ = await identity.security_events(action="keycloak.link_refused")
    assert [e.subject_id for e in events] == [mallory.id]

    # The registration page's path answers the same race with no error: the account
    # stays unlinked and Keycloak's user untouched.
    from kabinet_companies.services import companies

    await companies(host).registration._keycloak_user(mallory, "attacker-pass-1")
    assert await subject_of(host, mallory.id) is None
    assert fake.users[victim.id].representation() == before


@pytest.mark.parametrize(
    ("portal_confirmed", "keycloak_verified"),
    [(False, True), (True, False), (False, False)],
    ids=["portal-unconfirmed", "keycloak-unverified", "neither"],
)
async def test_a_push_does_not_take_a_keycloak_user_by_an_unproven_address(
    host: Host, fake: FakeKeycloak, portal_confirmed: bool, keycloak_verified: bool
) -> None:
    victim = victim_of(fake, verified=keycloak_verified)
    before = victim.representation()
    groups_before = fake.group_paths_of(victim.id)
    roles_before = fake.realm_roles_of(victim.id)
    mallory = await host.services.of(IDENTITY).create_account(
        full_name="Mallory Attacker", email=victim.email, email_confirmed=portal_confirmed
    )
    await host.services.of(ROLES).grant(mallory.id, "admin")
    await host.services.of(ROLES).grant(mallory.id, "client", 5)
    await settle_embedded(host)

    assert await subject_of(host, mallory.id) is None
    assert fake.users[victim.id].representation() == before
    assert fake.group_paths_of(victim.id) == groups_before
    assert fake.realm_roles_of(victim.id) == roles_before
    assert [u.id for u in fake.users.values() if u.email == victim.email] == [victim.id]
    # Admins see the push that was refused, with the reason.
    h = models.event_handling
    async with host.db.session() as s:
        rows = (
            (await s.execute(select(h).where(h.c.subscriber.startswith("keycloak.push."))))
            .mappings()
            .all()
        )
    assert rows
    assert all(r["state"] in ("retrying", "failed") for r in rows)
    assert all("LinkRefused" in (r["last_error"] or "") for r in rows)


async def test_a_confirmed_address_and_a_verified_user_are_linked(
    host: Host, fake: FakeKeycloak
) -> None:
    # The portal confirmed the address (a code, an invitation), Keycloak verified it.
    person = victim_of(fake)
    account = await host.services.of(IDENTITY).create_account(
        full_name="Vera Lebedeva", email=person.email, email_confirmed=True
    )
    await host.services.of(ROLES).grant(account.id, "client", 5)
    await settle_embedded(host)
    assert await subject_of(host, account.id) == person.id
    assert fake.group_paths_of(person.id) == {"/org-5/client"}
    assert await host.events.with_errors() == []

    # An invitee (the link confirmed the address) whose Keycloak user exists: linked too,
    # and Keycloak's user keeps its own password.
    invitee = victim_of(fake)
    made = await host.services.of(IDENTITY).create_account(
        full_name="Ivan Petrov", email=invitee.email, email_confirmed=True
    )
    user_id = await sync_of(host).create_user(
        email=invitee.email,
        full_name="Ivan Petrov",
        password="a new password 1",
        email_verified=True,
        account_id=made.id,
    )
    assert user_id == invitee.id
    assert await subject_of(host, made.id) == invitee.id
    assert fake.users[invitee.id].password == "the victim's own password"


async def test_the_user_the_portal_made_for_the_account_is_found_again(
    host: Host, fake: FakeKeycloak
) -> None:
    # Unconfirmed address, but the user carries the portal's mark for this very account
    # (made by an earlier push whose transaction was rolled back): it is the same person.
    account = await host.services.of(IDENTITY).create_account(
        full_name="Anna Smirnova", email=f"{uuid.uuid4().hex[:8]}@example.com"
    )
    sync = sync_of(host)
    made = await sync.create_user(
        email=account.email, full_name="Anna Smirnova", email_verified=False
    )
    fake.users[made].attributes["kabinet_account"] = [str(account.id)]
    await sync.push_person(account.id)
    assert await subject_of(host, account.id) == made
    # Another account's mark is no proof.
    other = await host.services.of(IDENTITY).create_account(
        full_name="Mallory", phone="+79160009988"
    )
    stranger = fake.add_user("+79160009988", email_verified=True)
    stranger.attributes["kabinet_account"] = [str(account.id)]
    with pytest.raises(LinkRefused):
        await sync.push_person(other.id)
    assert await subject_of(host, other.id) is None


@pytest.fixture
async def web(
    fresh_url: str, fake: FakeKeycloak, clock: FrozenClock
) -> AsyncIterator[tuple[Host, httpx.AsyncBaseTransport]]:
    host = await Host.create(
        None, env={"KABINET__HOST__DATABASE_URL": fresh_url, **keycloak_env(fake)}, clock=clock
    )
    app = await build_app(host)
    host.services["host.process"] = "test"  # events and jobs driven by the test
    await host.startup()
    try:
        yield host, httpx.ASGITransport(app=app)
    finally:
        await host.shutdown()


async def keycloak_sign_in(
    client: httpx.AsyncClient, fake: FakeKeycloak, user: User
) -> httpx.Response:
    fake.auto_login = user.username
    r = await client.get("/keycloak/login", params={"next": "/"})
    assert r.status_code == 302, r.text
    async with httpx.AsyncClient() as browser:
        at_keycloak = await browser.get(r.headers["location"])
    fake.auto_login = None
    assert at_keycloak.status_code == 302, at_keycloak.text
    back = urlsplit(at_keycloak.headers["location"])
    return await client.get(f"{back.path}?{back.query}")


async def test_signing_in_does_not_take_an_account_whose_address_nobody_confirmed(
    web: tuple[Host, httpx.AsyncBaseTransport], fake: FakeKeycloak
) -> None:
    # The other direction: the registrant's unconfirmed account exists first (it could
    # not be linked), then the address's owner signs in through Keycloak.
    host, transport = web
    victim = victim_of(fake)
    mallory = await host.services.of(IDENTITY).create_account(
        full_name="Mallory Attacker", email=victim.email, password="attacker-pass-1"
    )
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver.local") as c:
        answer = await keycloak_sign_in(c, fake, victim)
    assert answer.status_code == 409, answer.text
    assert 'data-reason="email_taken"' in answer.text
    assert await subject_of(host, mallory.id) is None
    assert await linked_to(host, victim.id) == []
