"""Removing a person reaches their Keycloak user, as ``[keycloak] erase_user`` says.

Against the fake Keycloak: ``delete`` (the default) removes the user and they cannot sign
in again; ``disable`` keeps a disabled user with nothing personal left and its sessions
ended; ``keep`` leaves Keycloak alone. The call is made after the removal commits, by an
event subscriber: a Keycloak that fails is retried, and one that stays down leaves a
failure for admins to retry, never a removal forgotten.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any
from urllib.parse import urlencode, urlsplit

import httpx
import pytest
from fake_keycloak import FakeKeycloak, User
from keycloak_support import keycloak_env
from sqlalchemy import select, update

from kabinet import models
from kabinet.clock import FrozenClock
from kabinet.errors import SettingsError
from kabinet.host import Host
from kabinet.identity.models import Account
from kabinet.identity.services import IDENTITY
from kabinet.jobs import settle_embedded
from kabinet.keycloak.events import USER_ERASED
from kabinet.keycloak.services import KEYCLOAK
from kabinet.keycloak.settings import KeycloakSettings
from kabinet.pages import CSRF_COOKIE, CSRF_HEADER
from kabinet.personal import erase
from kabinet.roles.services import ROLES
from kabinet.settings import load_raw
from kabinet.web import build_app

pytestmark = pytest.mark.smoke

MakeHost = Callable[[str], Awaitable[Host]]


@pytest.fixture
async def make_host(
    fresh_url: str, fake: FakeKeycloak, clock: FrozenClock
) -> AsyncIterator[MakeHost]:
    """Start a host for ``fake`` with ``[keycloak] erase_user`` as given ("" = default)."""
    started: list[Host] = []

    async def make(erase_user: str) -> Host:
        extra = {"KABINET__KEYCLOAK__ERASE_USER": erase_user} if erase_user else {}
        env = {"KABINET__HOST__DATABASE_URL": fresh_url, **keycloak_env(fake, **extra)}
        h = await Host.create(None, env=env, clock=clock)
        h.services["host.process"] = "test"  # no background relay or job runner
        await h.startup()
        started.append(h)
        return h

    yield make
    for h in started:
        await h.shutdown()


async def linked_person(host: Host, fake: FakeKeycloak, name: str = "Anna Smirnova") -> User:
    """A portal account and its linked Keycloak user (made by the portal's registration),
    signed in at Keycloak; returns the fake's user (``attributes`` name the account)."""
    email = f"{uuid.uuid4().hex[:10]}@example.com"
    phone = f"+7916{uuid.uuid4().int % 10**7:07d}"
    account = await host.services.of(IDENTITY).create_account(
        full_name=name, email=email, phone=phone
    )
    user_id = await host.services.of(KEYCLOAK).sync.create_user(
        email=email,
        full_name=name,
        phone=phone,
        password="correct horse battery",
        email_verified=True,
        account_id=account.id,
    )
    fake.open_session(user_id)
    return fake.users[user_id]


def account_of(user: User) -> int:
    return int(user.attributes["kabinet_account"][0])


async def remove(host: Host, person_id: int) -> None:
    """What the admin's "Remove the person" does: every app's part in one transaction."""
    async with host.db.session() as s:
        await erase(host, s, person_id)


async def handlings(host: Host) -> list[dict[str, Any]]:
    h = models.event_handling
    async with host.db.session() as s:
        found = await s.execute(select(h).where(h.c.subscriber == "keycloak.user.erase"))
        return [dict(r) for r in found.mappings().all()]


async def erase_events(host: Host) -> list[Any]:
    e = models.event
    async with host.db.session() as s:
        return list(await s.scalars(select(e.c.payload).where(e.c.type == USER_ERASED)))


async def keycloak_lets_in(fake: FakeKeycloak, username: str) -> bool:
    """A browser at Keycloak's login for ``username``: True when Keycloak signs them in
    (a redirect back with a code), False when it shows the login form again."""
    fake.auto_login = username
    params = {
        "client_id": fake.client_id,
        "redirect_uri": "http://127.0.0.1:8000/keycloak/callback",
        "response_type": "code",
        "scope": "openid",
        "state": "s" * 32,
        "code_challenge": "c" * 43,
        "code_challenge_method": "S256",
    }
    async with httpx.AsyncClient() as browser:
        r = await browser.get(f"{fake.issuer()}/protocol/openid-connect/auth?{urlencode(params)}")
    fake.auto_login = None
    assert r.status_code in {200, 302}, r.text
    return r.status_code == 302


# -- through the portal: a person who signed in with Keycloak, removed by staff -------------


async def portal_sign_in(client: httpx.AsyncClient, fake: FakeKeycloak, username: str) -> int:
    """``username`` signs in to the portal through Keycloak; returns the status at the end
    (302 back to the portal when signed in, 200 when Keycloak shows its form instead)."""
    fake.auto_login = username
    r = await client.get("/keycloak/login", params={"next": "/"})
    assert r.status_code == 302, r.text
    async with httpx.AsyncClient() as browser:
        at_keycloak = await browser.get(r.headers["location"])
    fake.auto_login = None
    if at_keycloak.status_code != 302:
        return at_keycloak.status_code
    callback = urlsplit(at_keycloak.headers["location"])
    back = await client.get(f"{callback.path}?{callback.query}")
    assert back.status_code == 302, back.text
    return back.status_code


async def test_staff_remove_a_person_and_their_keycloak_user_goes_after_the_commit(
    fresh_url: str, fake: FakeKeycloak, clock: FrozenClock
) -> None:
    host = await Host.create(
        None, env={"KABINET__HOST__DATABASE_URL": fresh_url, **keycloak_env(fake)}, clock=clock
    )
    assert host.plugin_settings("keycloak", KeycloakSettings).erase_user == "delete"
    app = await build_app(host)
    host.services["host.process"] = "test"
    await host.startup()
    ivan = fake.add_user(
        "ivan", email="Ivan.Petrov@example.com", first_name="Ivan", last_name="Petrov"
    )
    olga = fake.add_user("olga", email="olga@example.com", first_name="Olga", last_name="K")
    transport = httpx.ASGITransport(app=app)
    base = "http://testserver.local"
    try:
        async with (
            httpx.AsyncClient(transport=transport, base_url=base) as ivans,
            httpx.AsyncClient(transport=transport, base_url=base) as staff,
        ):
            assert await portal_sign_in(ivans, fake, "ivan") == 302
            assert await portal_sign_in(staff, fake, "olga") == 302
            async with host.db.session() as s:
                ivan_id = await s.scalar(
                    select(Account.id).where(Account.external_subject == ivan.id)
                )
                olga_id = await s.scalar(
                    select(Account.id).where(Account.external_subject == olga.id)
                )
            assert ivan_id is not None
            assert olga_id is not None
            await host.services.of(ROLES).grant(olga_id, "admin")
            await settle_embedded(host)
            assert fake.active_sessions(ivan.id)

            await staff.get("/")  # a page issues the CSRF cookie
            done = await staff.post(
                f"/identity/accounts/{ivan_id}/erase",
                data={"confirm": str(ivan_id)},
                headers={CSRF_HEADER: staff.cookies.get(CSRF_COOKIE) or ""},
            )
            assert done.status_code == 303, done.text
            # Keycloak is not called inside the removal's transaction: the user is still
            # there, and what will remove them is committed with the removal.
            assert ivan.id in fake.users
            [payload] = await erase_events(host)
            assert payload["action"] == "delete"
            assert bytes(payload["user"]).decode() == ivan.id

            await settle_embedded(host)
            assert ivan.id not in fake.users
            assert fake.active_sessions(ivan.id) == []
            assert [h["state"] for h in await handlings(host)] == ["handled"]
            assert olga.id in fake.users  # nobody else's

            # Ivan cannot sign in again: Keycloak shows its form, no account is made.
            async with host.db.session() as s:
                before = list(await s.scalars(select(Account.id).order_by(Account.id)))
            assert await portal_sign_in(ivans, fake, "ivan") == 200
            async with host.db.session() as s:
                assert list(await s.scalars(select(Account.id).order_by(Account.id))) == before
                account = await s.get(Account, ivan_id)
                assert account is not None
                assert (account.external_subject, account.email) == (None, None)
    finally:
        await host.shutdown()


# -- the three settings --------------------------------------------------------------------


async def test_delete_removes_the_user_and_they_cannot_sign_in(
    make_host: MakeHost, fake: FakeKeycloak
) -> None:
    host = await make_host("delete")
    anna = await linked_person(host, fake)
    other = await linked_person(host, fake, "Boris Orlov")
    assert await keycloak_lets_in(fake, anna.username)

    await remove(host, account_of(anna))
    await settle_embedded(host)
    assert anna.id not in fake.users
    assert fake.user_by_name(anna.username) is None
    assert fake.active_sessions(anna.id) == []
    assert not await keycloak_lets_in(fake, anna.username)
    assert other.id in fake.users
    assert fake.active_sessions(other.id)
    assert await host.events.with_errors() == []


async def test_disable_keeps_a_disabled_user_with_nothing_personal(
    make_host: MakeHost, fake: FakeKeycloak
) -> None:
    host = await make_host("disable")
    anna = await linked_person(host, fake)
    assert (anna.first_name, anna.last_name) == ("Anna", "Smirnova")
    assert anna.attributes["phoneNumber"][0].startswith("+7916")
    assert await keycloak_lets_in(fake, anna.username)
    assert fake.active_sessions(anna.id)

    await remove(host, account_of(anna))
    await settle_embedded(host)
    user = fake.users[anna.id]
    assert not user.enabled
    assert (user.email, user.first_name, user.last_name) == ("", "", "")
    assert not user.email_verified
    assert user.attributes == {}
    assert fake.active_sessions(anna.id) == []
    assert ("POST", f"/admin/realms/{fake.realm}/users/{anna.id}/logout") in fake.requests
    assert not await keycloak_lets_in(fake, anna.username)
    assert await host.events.with_errors() == []


async def test_keep_leaves_keycloak_untouched(make_host: MakeHost, fake: FakeKeycloak) -> None:
    host = await make_host("keep")
    anna = await linked_person(host, fake)
    before = anna.representation()
    person_id = account_of(anna)
    calls = len(fake.requests)

    await remove(host, person_id)
    await settle_embedded(host)
    assert fake.users[anna.id].representation() == before
    assert fake.active_sessions(anna.id)
    assert not [r for r in fake.requests[calls:] if anna.id in r[1]]
    assert await erase_events(host) == []
    async with host.db.session() as s:  # the portal's part is removed all the same
        account = await s.get(Account, person_id)
        assert account is not None
        assert (account.external_subject, account.email, account.status) == (
            None,
            None,
            "disabled",
        )


# -- Keycloak away, or ahead of us ---------------------------------------------------------


async def test_a_failing_keycloak_is_retried_and_the_user_goes_later(
    make_host: MakeHost, fake: FakeKeycloak, clock: FrozenClock
) -> None:
    host = await make_host("")
    anna = await linked_person(host, fake)
    fake.fail("DELETE", rf"/users/{anna.id}$", status=503, times=1)

    await remove(host, account_of(anna))
    await settle_embedded(host)
    [row] = await handlings(host)
    assert (row["state"], row["attempts"]) == ("retrying", 1)
    assert "KeycloakDeleteError" in row["last_error"]
    assert anna.id in fake.users  # not yet: and not forgotten

    clock.advance(host.events.backoff_base + 0.1)
    await settle_embedded(host)
    [row] = await handlings(host)
    assert (row["state"], row["attempts"]) == ("handled", 2)
    assert anna.id not in fake.users


async def test_disable_interrupted_half_way_is_finished_by_the_retry(
    make_host: MakeHost, fake: FakeKeycloak, clock: FrozenClock
) -> None:
    host = await make_host("disable")
    anna = await linked_person(host, fake)
    # Keycloak blanks the user, then fails to end its sessions.
    fake.fail("POST", rf"/users/{anna.id}/logout$", status=500, times=1)
    assert fake.active_sessions(anna.id)

    await remove(host, account_of(anna))
    await settle_embedded(host)
    assert [h["state"] for h in await handlings(host)] == ["retrying"]
    assert not fake.users[anna.id].enabled

    clock.advance(host.events.backoff_base + 0.1)
    await settle_embedded(host)
    assert [h["state"] for h in await handlings(host)] == ["handled"]
    logout = ("POST", f"/admin/realms/{fake.realm}/users/{anna.id}/logout")
    assert fake.requests.count(logout) == 2  # the failed one, then the retry's
    assert fake.active_sessions(anna.id) == []
    assert (fake.users[anna.id].email, fake.users[anna.id].attributes) == ("", {})


async def test_keycloak_down_for_long_leaves_a_failure_admins_retry(
    make_host: MakeHost, fake: FakeKeycloak, clock: FrozenClock
) -> None:
    host = await make_host("delete")
    anna = await linked_person(host, fake)
    fake.fail("DELETE", r"/admin/realms/[^/]+/users/", status=503, times=None)

    await remove(host, account_of(anna))
    await settle_embedded(host)
    for _ in range(host.events.max_attempts):
        clock.advance(3700)
        await settle_embedded(host)
    [failed] = await host.events.with_errors()
    assert (failed.subscriber, failed.state) == ("keycloak.user.erase", "failed")
    assert failed.attempts == host.events.max_attempts
    assert anna.id in fake.users

    fake.failures.clear()  # Keycloak is back: an admin retries
    await host.events.retry(failed.event_id, failed.subscriber)
    await settle_embedded(host)
    assert anna.id not in fake.users
    assert await host.events.with_errors() == []


async def test_a_user_already_gone_from_keycloak_is_done(
    make_host: MakeHost, fake: FakeKeycloak
) -> None:
    host = await make_host("disable")
    anna = await linked_person(host, fake)
    person_id = account_of(anna)
    del fake.users[anna.id]  # an admin removed them in Keycloak first

    await remove(host, person_id)
    await settle_embedded(host)
    assert [h["state"] for h in await handlings(host)] == ["handled"]
    assert ("PUT", f"/admin/realms/{fake.realm}/users/{anna.id}") in fake.requests
    # and again, as a redelivery would: no error, nothing else touched
    sync = host.services.of(KEYCLOAK).sync
    await sync.erase_user(anna.id, "delete")
    await sync.erase_user(anna.id, "disable")


async def test_a_federated_user_id_naming_the_person_survives_the_scrub(
    make_host: MakeHost, fake: FakeKeycloak
) -> None:
    """The removal replaces every text naming the person in event payloads; a Keycloak
    user id holding their e-mail address (an LDAP user Keycloak does not import) must
    still reach the subscriber whole."""
    host = await make_host("delete")
    anna = await linked_person(host, fake)
    federated = f"f:{uuid.uuid4()}:{anna.email}"
    local = anna.id
    with fake.lock:
        fake.users[federated] = fake.users.pop(local)
        fake.memberships[federated] = fake.memberships.pop(local)
        fake.user_roles[federated] = fake.user_roles.pop(local)
        for session in fake.active_sessions(local):
            session.user_id = federated
        anna.id = federated
    person_id = account_of(anna)
    async with host.db.session() as s:
        await s.execute(
            update(Account).where(Account.id == person_id).values(external_subject=federated)
        )

    await remove(host, person_id)
    assert anna.email not in str(await erase_events(host))
    await settle_embedded(host)
    assert federated not in fake.users
    assert fake.active_sessions(federated) == []
    assert await host.events.with_errors() == []


async def test_a_late_grant_event_does_not_bring_the_removed_person_back(
    make_host: MakeHost, fake: FakeKeycloak
) -> None:
    host = await make_host("delete")
    anna = await linked_person(host, fake)
    person_id = account_of(anna)
    await host.services.of(ROLES).grant(person_id, "client", 3)  # published, not yet pushed
    users = len(fake.users)

    await remove(host, person_id)
    await settle_embedded(host)
    assert anna.id not in fake.users
    assert len(fake.users) == users - 1  # no "kabinet-<id>" user made for the account left
    assert await host.events.with_errors() == []


# -- settings ------------------------------------------------------------------------------


def test_erase_user_setting_defaults_to_delete_and_refuses_other_values() -> None:
    def validate(**env: str) -> KeycloakSettings:
        raw = load_raw(None, {f"KABINET__KEYCLOAK__{k.upper()}": v for k, v in env.items()})
        return raw.validate("keycloak", KeycloakSettings)

    assert validate().erase_user == "delete"
    assert validate(erase_user="disable").erase_user == "disable"
    assert validate(erase_user="keep").erase_user == "keep"
    with pytest.raises(SettingsError) as caught:
        validate(erase_user="remove")
    assert "[keycloak] erase_user" in str(caught.value)
    assert "'delete', 'disable', 'keep'" in str(caught.value)


async def test_a_bad_erase_user_stops_start_up(
    fresh_url: str, fake: FakeKeycloak, clock: FrozenClock
) -> None:
    env = {
        "KABINET__HOST__DATABASE_URL": fresh_url,
        **keycloak_env(fake, KABINET__KEYCLOAK__ERASE_USER="purge"),
    }
    with pytest.raises(SettingsError) as caught:
        await Host.create(None, env=env, clock=clock)
    assert "[keycloak] erase_user" in str(caught.value)


# -- disable: what stays of the user -----------------------------------------------------


async def test_disable_renames_the_user_where_the_realm_allows_editing_usernames(
    make_host: MakeHost, fake: FakeKeycloak
) -> None:
    """The username the portal gives a user is their e-mail address (or phone): where the
    realm lets admins edit usernames, a disabled user keeps none of it."""
    fake.realm_settings["editUsernameAllowed"] = True
    host = await make_host("disable")
    anna = await linked_person(host, fake)
    other = await linked_person(host, fake, "Boris Orlov")
    old_name = anna.username
    assert "@" in old_name

    await remove(host, account_of(anna))
    await settle_embedded(host)
    user = fake.users[anna.id]
    assert not user.enabled
    assert user.username.startswith("erased-")
    assert fake.user_by_name(old_name) is None
    everything = str(user.representation())
    assert old_name not in everything
    assert "Anna" not in everything
    assert "Smirnova" not in everything
    assert "+7916" not in everything
    assert fake.users[other.id].username == other.username  # nobody else's
    assert await host.events.with_errors() == []
    # A redelivery keeps the name it gave (no second rename).
    given = user.username
    await host.services.of(KEYCLOAK).sync.erase_user(anna.id, "disable")
    assert fake.users[anna.id].username == given


async def test_disable_keeps_the_username_where_the_realm_does_not_allow_editing_it(
    make_host: MakeHost, fake: FakeKeycloak
) -> None:
    """Keycloak's default: an admin cannot change a username (400). The portal does not
    try, so the rest is still blanked and the job does not fail; the username stays."""
    assert fake.realm_settings["editUsernameAllowed"] is False
    host = await make_host("disable")
    anna = await linked_person(host, fake)
    old_name = anna.username

    await remove(host, account_of(anna))
    await settle_embedded(host)
    user = fake.users[anna.id]
    assert (user.enabled, user.username) == (False, old_name)
    assert (user.email, user.first_name, user.last_name, user.attributes) == ("", "", "", {})
    assert [h["state"] for h in await handlings(host)] == ["handled"]
