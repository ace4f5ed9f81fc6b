"""Roles, grants and account status pushed to Keycloak's admin API by event subscribers."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from fake_keycloak import FakeKeycloak
from sqlalchemy import select

from kabinet import models
from kabinet.clock import FrozenClock
from kabinet.host import Host
from kabinet.identity.models import Account
from kabinet.identity.services import IDENTITY
from kabinet.jobs import settle_embedded
from kabinet.keycloak.services import KEYCLOAK, KeycloakService
from kabinet.roles.services import ROLES

pytestmark = pytest.mark.smoke


async def person(host: Host, name: str = "Anna Smirnova") -> int:
    email = f"{uuid.uuid4().hex[:10]}@example.com"
    account = await host.services.of(IDENTITY).create_account(full_name=name, email=email)
    return int(account.id)


async def subject_of(host: Host, person_id: int) -> str:
    async with host.db.session() as s:
        subject = await s.scalar(select(Account.external_subject).where(Account.id == person_id))
    assert subject, "the account was not linked to a Keycloak user"
    return subject


async def handlings(host: Host, subscriber_prefix: str = "keycloak.") -> list[dict[str, Any]]:
    h = models.event_handling
    async with host.db.session() as s:
        rows = (
            (await s.execute(select(h).where(h.c.subscriber.startswith(subscriber_prefix))))
            .mappings()
            .all()
        )
    return [dict(r) for r in rows]


async def test_grants_become_realm_roles_and_organization_groups(
    host: Host, fake: FakeKeycloak
) -> None:
    roles = host.services.of(ROLES)
    anna = await person(host)
    await roles.grant(anna, "client", 7)
    await roles.grant(anna, "manager", 7)
    await roles.grant(anna, "client", 12)
    await roles.grant(anna, "admin")
    await settle_embedded(host)

    user_id = await subject_of(host, anna)
    user = fake.users[user_id]
    assert user.enabled
    assert user.email.endswith("@example.com")
    assert user.first_name == "Anna"
    assert user.last_name == "Smirnova"
    assert fake.group_paths_of(user_id) == {"/org-7/client", "/org-7/manager", "/org-12/client"}
    assert "admin" in fake.realm_roles_of(user_id)
    assert "client" not in fake.realm_roles_of(user_id)  # held in organizations, not globally
    assert f"default-roles-{fake.realm}" in fake.realm_roles_of(user_id)  # left alone
    assert {"/org-7", "/org-12"} <= fake.group_paths()
    assert all(h["state"] == "handled" for h in await handlings(host))

    # Revoking takes the person out of the group and the realm role, nothing else.
    grants = {(g.role.code, g.organization_id): g.id for g in await roles.grants_of(anna)}
    await roles.revoke(grants[("client", 7)])
    await roles.revoke(grants[("admin", None)])
    await settle_embedded(host)
    assert fake.group_paths_of(user_id) == {"/org-7/manager", "/org-12/client"}
    assert "admin" not in fake.realm_roles_of(user_id)
    assert f"default-roles-{fake.realm}" in fake.realm_roles_of(user_id)
    assert "/org-7/client" in fake.group_paths()  # the group stays for other members


async def test_custom_roles_are_created_described_and_deleted(
    host: Host, fake: FakeKeycloak
) -> None:
    roles = host.services.of(ROLES)
    role = await roles.create_role(code="dispatcher", name_ru="Диспетчер", name_en="Dispatcher")
    await settle_embedded(host)
    assert fake.roles["dispatcher"]["description"] == "Dispatcher / Диспетчер"

    await roles.rename_role(role.id, name_ru="Логист", name_en="Logistician")
    anna = await person(host)
    await roles.grant(anna, "dispatcher", 3)
    await settle_embedded(host)
    assert fake.roles["dispatcher"]["description"] == "Logistician / Логист"
    assert fake.group_paths_of(await subject_of(host, anna)) == {"/org-3/dispatcher"}

    await roles.delete_role(role.id)
    await settle_embedded(host)
    assert "dispatcher" not in fake.roles
    assert "/org-3/dispatcher" not in fake.group_paths()
    assert fake.group_paths_of(await subject_of(host, anna)) == set()


async def test_existing_keycloak_user_is_linked_not_duplicated(
    host: Host, fake: FakeKeycloak
) -> None:
    # The portal confirmed the address and Keycloak verified it: the same person
    # (tests/keycloak/test_keycloak_link_proof.py: nothing less links).
    email = f"{uuid.uuid4().hex[:10]}@example.com"
    account = await host.services.of(IDENTITY).create_account(
        full_name="Anna Smirnova", email=email, email_confirmed=True
    )
    anna = int(account.id)
    existing = fake.add_user(email, email=email, email_verified=True)
    await host.services.of(ROLES).grant(anna, "client", 5)
    await settle_embedded(host)
    assert await subject_of(host, anna) == existing.id
    assert len([u for u in fake.users.values() if u.email == account.email]) == 1
    assert fake.group_paths_of(existing.id) == {"/org-5/client"}


async def test_disabled_account_is_disabled_in_keycloak(host: Host, fake: FakeKeycloak) -> None:
    identity = host.services.of(IDENTITY)
    anna = await person(host)
    await host.services.of(ROLES).grant(anna, "client", 1)
    await settle_embedded(host)
    user_id = await subject_of(host, anna)
    assert fake.users[user_id].enabled

    await identity.disable(anna)
    service = host.services.of(KEYCLOAK)
    assert isinstance(service, KeycloakService)
    # identity publishes no event of its own yet; the push reads the status either way.
    await service.sync.push_person(anna)
    assert not fake.users[user_id].enabled

    await identity.enable(anna)
    await service.sync.push_person(anna)
    assert fake.users[user_id].enabled


async def test_failed_push_is_retried_then_succeeds(
    host: Host, fake: FakeKeycloak, clock: FrozenClock
) -> None:
    anna = await person(host)
    fake.fail("PUT", r"/users/[^/]+/groups/", status=500, times=1)
    await host.services.of(ROLES).grant(anna, "client", 9)
    await settle_embedded(host)
    [row] = await handlings(host)
    assert (row["state"], row["attempts"]) == ("retrying", 1)
    assert "KeycloakPutError" in row["last_error"]
    # The user was created before the failure; the retry finds it instead of a second one.
    account = await host.services.of(IDENTITY).get_account(anna)
    [user_id] = [u.id for u in fake.users.values() if u.email == account.email]
    assert fake.group_paths_of(user_id) == set()

    clock.advance(host.events.backoff_base + 0.1)
    await settle_embedded(host)
    [row] = await handlings(host)
    assert (row["state"], row["attempts"]) == ("handled", 2)
    assert fake.group_paths_of(user_id) == {"/org-9/client"}
    assert await subject_of(host, anna) == user_id
    assert [u.email for u in fake.users.values()].count(account.email) == 1
    assert await host.events.with_errors() == []


async def test_permanent_failure_is_recorded_for_admins(
    host: Host, fake: FakeKeycloak, clock: FrozenClock
) -> None:
    anna = await person(host)
    fake.fail("POST", r"/admin/realms/[^/]+/users$", status=500, times=None)
    await host.services.of(ROLES).grant(anna, "client", 4)
    await settle_embedded(host)
    for _ in range(host.events.max_attempts):
        clock.advance(3700)
        await settle_embedded(host)
    [failed] = await host.events.with_errors()
    assert failed.subscriber == "keycloak.push.roles.grant.given"
    assert failed.state == "failed"
    assert failed.attempts == host.events.max_attempts
    assert "KeycloakPostError" in (failed.last_error or "")
    account = await host.services.of(IDENTITY).get_account(anna)
    assert all(u.email != account.email for u in fake.users.values())

    # Keycloak is back: an admin retries and the push goes through.
    fake.failures.clear()
    await host.events.retry(failed.event_id, failed.subscriber)
    await settle_embedded(host)
    assert fake.group_paths_of(await subject_of(host, anna)) == {"/org-4/client"}


async def test_registration_creates_the_keycloak_user(host: Host, fake: FakeKeycloak) -> None:
    service = host.services.of(KEYCLOAK)
    anna = await person(host)
    account = await host.services.of(IDENTITY).get_account(anna)
    user_id = await service.sync.create_user(
        email=account.email,
        full_name="Anna Smirnova",
        phone="+79161234567",
        password="correct horse battery",
        email_verified=True,
        account_id=anna,
    )
    user = fake.users[user_id]
    assert user.username == account.email
    assert user.password == "correct horse battery"
    assert user.email_verified
    assert user.attributes["phoneNumber"] == ["+79161234567"]
    assert await subject_of(host, anna) == user_id


async def test_readiness_reports_keycloak(host: Host, fake: FakeKeycloak) -> None:
    [check] = [c for p, c in host.health_checks if p.name == "keycloak"]
    assert await check.check(host) is None
    fake.fail("GET", r"/\.well-known/openid-configuration$", status=503, times=None)
    fault = await check.check(host)
    assert fault is not None
    assert "not reachable" in fault
