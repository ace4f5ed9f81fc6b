"""What a change of roles and grants leaves behind, and who hears of it: other processes,
managers' assignments, the security log and the event outbox."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import select

from kabinet import models
from kabinet.clock import FrozenClock
from kabinet.host import Host
from kabinet.identity.models import SecurityEvent
from kabinet.roles.access import RolesAccess
from kabinet.roles.services import Actor, RolesService
from kabinet.testing import PluginFactory

from .conftest import HostFactory, add_person
from .test_access import DEMO, person, roles

REDIS_URL = "redis://127.0.0.1:6379/0"


def access(host: Host) -> RolesAccess:
    assert isinstance(host.access, RolesAccess)
    return host.access


@pytest.mark.smoke
async def test_a_grant_changed_in_one_process_reaches_another_within_the_recheck_time(
    make_host: HostFactory, clock: FrozenClock
) -> None:
    web1 = await make_host()
    web2 = await make_host()
    recheck = access(web2).recheck_seconds
    grace = await add_person(web1, "Grace")
    p = person(grace)
    assert not await web2.access.can(p, "roles.manage")  # web2 now holds a view of Grace
    await roles(web1).grant(grace, "admin")
    assert await web1.access.can(p, "roles.manage")  # where it changed: at once
    clock.advance(recheck / 2)
    assert not await web2.access.can(p, "roles.manage")  # still trusted, no query yet
    clock.advance(recheck / 2)
    assert await web2.access.can(p, "roles.manage")
    grant = (await roles(web2).grants_of(grace))[0]
    await roles(web2).revoke(grant.id)
    clock.advance(recheck)
    assert not await web1.access.can(p, "roles.manage")


@pytest.mark.smoke
async def test_a_recheck_with_nothing_changed_keeps_the_view(
    make_host: HostFactory, clock: FrozenClock
) -> None:
    web = await make_host()
    heidi = await add_person(web, "Heidi")
    await roles(web).grant(heidi, "admin")
    assert await web.access.can(person(heidi), "roles.manage")
    builds = access(web).builds
    for _ in range(3):
        clock.advance(access(web).recheck_seconds)
        assert await web.access.can(person(heidi), "roles.manage")
    assert access(web).builds == builds


@pytest.mark.smoke
async def test_a_role_edit_reaches_every_holder_in_other_processes(
    make_host: HostFactory, clock: FrozenClock
) -> None:
    web1 = await make_host()
    web2 = await make_host()
    ivan = await add_person(web1, "Ivan")
    role = await roles(web1).create_role(code="auditor", name_ru="Аудитор", name_en="Auditor")
    await roles(web1).grant(ivan, "auditor")
    assert not await web2.access.can(person(ivan), "roles.manage")
    await roles(web1).set_permissions(role.id, ["roles.manage"])
    clock.advance(access(web2).recheck_seconds)
    assert await web2.access.can(person(ivan), "roles.manage")


async def listening_pair(make_host: HostFactory) -> tuple[Host, Host]:
    """Two processes on Redis, each listening to the other's changes."""
    env = {"KABINET__HOST__REDIS_URL": REDIS_URL}
    web1 = await make_host(env=env)
    web2 = await make_host(env=env)
    for web in (web1, web2):
        await asyncio.wait_for(access(web).listening.wait(), 5)
    return web1, web2


async def admin_seen_by(web: Host, person_id: int) -> bool:
    """Whether ``web`` lets the person manage roles within 5 s. No clock moves: only the
    Redis message can make it rebuild. Waits for that, not for time."""
    for _ in range(500):
        if await web.access.can(person(person_id), "roles.manage"):
            return True
        await asyncio.sleep(0.01)
    return False


async def test_with_redis_other_processes_drop_the_view_at_once(
    make_host: HostFactory,
) -> None:
    web1, web2 = await listening_pair(make_host)
    judy = await add_person(web1, "Judy")
    assert not await web2.access.can(person(judy), "roles.manage")
    before = access(web2).builds
    await roles(web1).grant(judy, "admin")
    assert await admin_seen_by(web2, judy)
    assert access(web2).builds == before + 1
    assert access(web2)._ttl == access(web2).recheck_seconds_redis


async def test_with_redis_a_grant_in_a_callers_transaction_is_announced_when_it_commits(
    make_host: HostFactory,
) -> None:
    web1, web2 = await listening_pair(make_host)
    kira = await add_person(web1, "Kira")
    assert not await web2.access.can(person(kira), "roles.manage")

    async def failing() -> None:
        async with web1.db.session() as s:
            await roles(web1).grant(kira, "admin", session=s)
            raise RuntimeError("the caller's change failed")

    # rolled back: nothing was given
    with pytest.raises(RuntimeError):
        await failing()
    assert await roles(web1).grants_of(kira) == []
    assert not await web1.access.can(person(kira), "roles.manage")
    # committed with the caller's change: every process hears of it at once
    before = access(web2).builds
    async with web1.db.session() as s:
        await roles(web1).grant(kira, "admin", session=s)
    assert await admin_seen_by(web2, kira)
    assert access(web2).builds == before + 1


@pytest.mark.smoke
async def test_hook_managed_organizations(
    plugin_factory: PluginFactory, make_host: HostFactory, clock: FrozenClock
) -> None:
    plugin_factory.add("demo", DEMO)
    plugin_factory.add(
        "assign",
        """
        ASSIGNED = {}

        @hookimpl
        def managed_organizations(host, person_id):
            return set(ASSIGNED.get(person_id, ()))
        """,
    )
    host = await make_host(candidates=plugin_factory.candidates())
    assigned = __import__(f"{plugin_factory.prefix}_assign").ASSIGNED
    kate, client = await add_person(host, "Kate"), await add_person(host, "Client")
    await roles(host).grant(kate, "manager")
    await roles(host).grant(client, "client", 11)
    assigned[kate] = {11, 12}
    p = person(kate)
    assert await host.access.organizations(p, "demo.orders.view") == {11, 12}
    assert await host.access.can(p, "demo.orders.view", 12)
    assert not await host.access.can(p, "demo.orders.view", 13)
    assert not await host.access.can(p, "demo.orders.view")  # not every organization
    assert await host.access.can(p, "demo.reports.view")  # a staff-wide permission stays so
    mine = {kate, client}
    assert await host.access.people("demo.orders.view", 11) & mine == {kate, client}
    assert await host.access.people("demo.orders.view", 13) & mine == set()
    # The companies app reassigns her and says so; the next check reflects it.
    assigned[kate] = {13}
    await roles(host).person_changed(kate)
    assert await host.access.organizations(p, "demo.orders.view") == {13}


async def test_grants_and_revocations_are_in_the_security_log_and_the_outbox(
    make_host: HostFactory,
) -> None:
    host = await make_host()
    admin, leo = await add_person(host, "Admin"), await add_person(host, "Leo")
    service: RolesService = roles(host)
    by = Actor(person_id=admin, address="203.0.113.7")
    given = await service.grant(leo, "client", 42, actor=by)
    await service.revoke(given.id, actor=by)
    async with host.db.session() as session:
        lines = (
            (
                await session.execute(
                    select(SecurityEvent)
                    .where(SecurityEvent.subject_id == leo)
                    .order_by(SecurityEvent.id)
                )
            )
            .scalars()
            .all()
        )
        outbox = (
            await session.execute(
                select(models.event.c.type, models.event.c.payload)
                .where(models.event.c.type.like("roles.grant.%"))
                .order_by(models.event.c.id)
            )
        ).all()
    assert [(e.action, e.actor_id, e.organization_id, e.address) for e in lines] == [
        ("roles.grant.given", admin, 42, "203.0.113.7"),
        ("roles.grant.revoked", admin, 42, "203.0.113.7"),
    ]
    assert lines[0].details["role"] == "client"
    mine = [(t, p) for t, p in outbox if p["person_id"] == leo]
    assert [t for t, _ in mine] == ["roles.grant.given", "roles.grant.revoked"]
    assert mine[0][1] == {
        "grant_id": given.id,
        "person_id": leo,
        "role": "client",
        "organization_id": 42,
        "actor_id": admin,
    }
