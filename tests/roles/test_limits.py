"""What a principal may do is the person's grants narrowed by the principal (issue 14):
an API token's organizations, a manager's assigned organizations for staff permissions,
and nobody granting roles to themselves. Through the services (no HTTP)."""

from __future__ import annotations

import pytest

from kabinet.access import ALL, Principal
from kabinet.host import Host
from kabinet.roles.services import Actor, RoleError
from kabinet.testing import PluginFactory

from .conftest import HostFactory, add_person
from .test_access import DEMO, roles

pytestmark = pytest.mark.smoke

ASSIGN = """
ASSIGNED = {}

@hookimpl
def managed_organizations(host, person_id):
    return set(ASSIGNED.get(person_id, ()))
"""


@pytest.fixture
async def demo(plugin_factory: PluginFactory, make_host: HostFactory) -> Host:
    plugin_factory.add("demo", DEMO)
    plugin_factory.add("assign", ASSIGN)
    return await make_host(candidates=plugin_factory.candidates())


@pytest.fixture
def assigned(demo: Host, plugin_factory: PluginFactory) -> dict[int, set[int]]:
    """Manager -> the organizations assigned to them (the managed_organizations hook)."""
    found: dict[int, set[int]] = __import__(f"{plugin_factory.prefix}_assign").ASSIGNED
    return found


def token(person_id: int, organizations: set[int], scopes: set[str] | None = None) -> Principal:
    return Principal(
        person_id=person_id,
        kind="token",
        scopes=frozenset(scopes) if scopes is not None else None,
        organizations=frozenset(organizations),
    )


async def test_a_token_limited_to_an_organization_sees_only_that_one(demo: Host) -> None:
    anna = await add_person(demo, "Anna")
    await roles(demo).grant(anna, "client", 1)
    await roles(demo).grant(anna, "client", 2)
    limited = token(anna, {2})
    assert await demo.access.organizations(limited, "demo.orders.view") == {2}
    assert await demo.access.can(limited, "demo.orders.view", 2)
    assert not await demo.access.can(limited, "demo.orders.view", 1)
    # limited to organizations where the person holds nothing: nothing
    assert await demo.access.organizations(token(anna, {3}), "demo.orders.view") == frozenset()
    # the person herself, by session, still sees both
    me = Principal(person_id=anna, kind="person")
    assert await demo.access.organizations(me, "demo.orders.view") == {1, 2}


async def test_a_token_of_a_global_holder_is_limited_and_never_global(demo: Host) -> None:
    boss = await add_person(demo, "Boss")
    await roles(demo).grant(boss, "admin")
    limited = token(boss, {7})
    assert await demo.access.organizations(limited, "demo.orders.view") == {7}
    assert not await demo.access.can(limited, "demo.orders.view", 8)
    assert not await demo.access.can(limited, "demo.orders.view")
    assert not await demo.access.can(limited, "roles.manage")  # staff-wide: not by a token


async def test_a_token_never_carries_more_than_its_owner_holds_now(demo: Host) -> None:
    dima = await add_person(demo, "Dima")
    given = await roles(demo).grant(dima, "client", 4)
    limited = token(dima, {4}, {"demo.orders.cancel"})
    assert await demo.access.can(limited, "demo.orders.cancel", 4)
    await roles(demo).revoke(given.id)
    assert not await demo.access.can(limited, "demo.orders.cancel", 4)
    assert await demo.access.organizations(limited, "demo.orders.cancel") == frozenset()


async def test_a_managers_staff_permissions_reach_only_the_assigned_organizations(
    demo: Host, assigned: dict[int, set[int]]
) -> None:
    kate, admin = await add_person(demo, "Kate"), await add_person(demo, "Admin")
    await roles(demo).create_role(
        code="chief", name_ru="Шеф", name_en="Chief", permissions=["demo.reports.view"]
    )
    await roles(demo).grant(kate, "manager")
    await roles(demo).grant(admin, "chief")
    assigned[kate] = {3, 4}
    manager = Principal(person_id=kate, kind="person")
    # held staff-wide (the route's rule), but over organizations' objects only in 3 and 4
    assert await demo.access.can(manager, "demo.reports.view")
    assert await demo.access.organizations(manager, "demo.reports.view") == {3, 4}
    assert await demo.access.can(manager, "demo.reports.view", 3)
    assert not await demo.access.can(manager, "demo.reports.view", 1)
    boss = Principal(person_id=admin, kind="person")  # held by a role not assigned_only
    assert await demo.access.organizations(boss, "demo.reports.view") is ALL
    mine = {kate, admin}
    assert await demo.access.people("demo.reports.view", 3) & mine == {kate, admin}
    assert await demo.access.people("demo.reports.view", 1) & mine == {admin}
    assert await demo.access.people("demo.reports.view") & mine == {kate, admin}


async def test_nobody_grants_a_role_to_themselves(demo: Host) -> None:
    kate, admin = await add_person(demo, "Kate"), await add_person(demo, "Admin")
    service = roles(demo)
    await service.grant(admin, "admin")
    with pytest.raises(RoleError) as refused:
        await service.grant(kate, "client", 1, actor=Actor(person_id=kate))
    assert refused.value.field == "person"
    assert refused.value.status == 403
    with pytest.raises(RoleError):
        await service.grant(admin, "client", 1, actor=Actor(person_id=admin))
    assert [g.role.code for g in await service.grants_of(kate)] == []
    # someone else (or the system) may
    await service.grant(kate, "client", 1, actor=Actor(person_id=admin))
    assert [g.role.code for g in await service.grants_of(kate)] == ["client"]
