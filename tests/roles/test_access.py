"""Roles, grants and the access service, through the services (no HTTP)."""

from __future__ import annotations

import asyncio

import pytest

from kabinet.access import ALL, ANONYMOUS, Principal
from kabinet.host import Host
from kabinet.roles.access import RolesAccess
from kabinet.roles.services import ROLES, Conflict, NotFound, RoleError, RolesService
from kabinet.testing import PluginFactory

from .conftest import HostFactory, add_person

pytestmark = pytest.mark.smoke

DEMO = """
@hookimpl
def permissions():
    return [
        Permission(code="demo.orders.view", label={"ru": "Заказы", "en": "Orders"},
                   default_roles=("client", "manager", "admin")),
        Permission(code="demo.orders.cancel", label={"ru": "Отмена", "en": "Cancel"},
                   default_roles=("client",)),
        Permission(code="demo.reports.view", label={"ru": "Отчёты", "en": "Reports"},
                   default_roles=("manager",), scope="global"),
        Permission(code="demo.join.request", label={"ru": "Заявка", "en": "Join request"},
                   default_roles=("user",), scope="global"),
    ]
"""


@pytest.fixture
async def demo(plugin_factory: PluginFactory, make_host: HostFactory) -> Host:
    plugin_factory.add("demo", DEMO)
    return await make_host(candidates=plugin_factory.candidates())


def person(person_id: int, scopes: frozenset[str] | None = None) -> Principal:
    return Principal(
        person_id=person_id, kind="person" if scopes is None else "token", scopes=scopes
    )


def demo_of(permissions: frozenset[str]) -> set[str]:
    """The throwaway plugins' permissions (the installed apps declare theirs too)."""
    return {p for p in permissions if p.startswith(("demo.", "more."))}


def roles(host: Host) -> RolesService:
    service = host.services.of(ROLES)
    assert isinstance(service, RolesService)
    return service


async def test_the_roles_plugin_installs_the_access_service(demo: Host) -> None:
    assert isinstance(demo.access, RolesAccess)


async def test_builtin_roles_get_the_default_permissions_plugins_declare(demo: Host) -> None:
    found = {r.code: r for r in await roles(demo).roles()}
    assert list(found)[:4] == ["user", "client", "manager", "admin"]
    assert all(found[c].builtin for c in ("user", "client", "manager", "admin"))
    assert demo_of(found["client"].permissions) == {"demo.orders.view", "demo.orders.cancel"}
    assert demo_of(found["manager"].permissions) == {"demo.orders.view", "demo.reports.view"}
    assert demo_of(found["user"].permissions) == {"demo.join.request"}
    assert {"roles.manage", "host.plugins.view", "demo.orders.view"} <= found["admin"].permissions
    assert "demo.orders.cancel" not in found["admin"].permissions
    assert found["manager"].assigned_only
    assert not found["client"].assigned_only


async def test_an_admins_edit_of_a_builtin_role_survives_restarts_and_new_defaults_arrive(
    plugin_factory: PluginFactory, make_host: HostFactory, fresh_url: str
) -> None:
    plugin_factory.add("demo", DEMO)
    own = {"KABINET__HOST__DATABASE_URL": fresh_url}
    first = await make_host(candidates=plugin_factory.candidates(), env=own)
    client = await roles(first).role_by_code("client")
    await roles(first).set_permissions(client.id, {"demo.orders.view"})
    # The plugin's update declares one more permission for clients.
    plugin_factory.add(
        "more",
        """
        @hookimpl
        def permissions():
            return [Permission(code="more.invoices.view", label={"ru": "Счета", "en": "Invoices"},
                               default_roles=("client",))]
        """,
    )
    second = await make_host(candidates=plugin_factory.candidates(), env=own)
    client = await roles(second).role_by_code("client")
    assert demo_of(client.permissions) == {"demo.orders.view", "more.invoices.view"}
    restored = await roles(second).reset_defaults(client.id)
    assert demo_of(restored.permissions) == {
        "demo.orders.view",
        "demo.orders.cancel",
        "more.invoices.view",
    }


async def test_custom_roles_are_created_renamed_given_permissions_and_deleted(demo: Host) -> None:
    service = roles(demo)
    role = await service.create_role(
        code="accountant",
        name_ru="Бухгалтер",
        name_en="Accountant",
        permissions=["demo.orders.view"],
    )
    assert not role.builtin
    assert role.permissions == {"demo.orders.view"}
    renamed = await service.rename_role(role.id, name_ru="Главбух", name_en="Chief accountant")
    assert (renamed.code, renamed.name("ru"), renamed.name("en")) == (
        "accountant",
        "Главбух",
        "Chief accountant",
    )
    changed = await service.set_permissions(role.id, ["demo.orders.cancel", "demo.orders.view"])
    assert changed.permissions == {"demo.orders.cancel", "demo.orders.view"}
    someone = await add_person(demo)
    await service.grant(someone, "accountant", 7)
    assert await demo.access.can(person(someone), "demo.orders.cancel", 7)
    await service.delete_role(role.id)
    assert "accountant" not in {r.code for r in await service.roles()}
    assert await service.grants_of(someone) == []
    assert not await demo.access.can(person(someone), "demo.orders.cancel", 7)


async def test_bad_role_changes_are_refused_naming_the_field(demo: Host) -> None:
    service = roles(demo)
    with pytest.raises(RoleError) as bad_code:
        await service.create_role(code="Бух", name_ru="Бух", name_en="Acc")
    assert bad_code.value.field == "code"
    with pytest.raises(Conflict) as taken:
        await service.create_role(code="client", name_ru="К", name_en="C")
    assert taken.value.field == "code"
    with pytest.raises(RoleError) as unknown:
        await service.create_role(code="x1", name_ru="X", name_en="X", permissions=["demo.nope"])
    assert unknown.value.field == "permissions"
    assert "demo.nope" in unknown.value.message
    with pytest.raises(RoleError) as empty:
        await service.create_role(code="x2", name_ru=" ", name_en="X")
    assert empty.value.field == "name_ru"
    admin = await service.role_by_code("admin")
    with pytest.raises(RoleError, match="built-in"):
        await service.delete_role(admin.id)
    with pytest.raises(NotFound):
        await service.rename_role(99999, name_ru="a", name_en="b")
    with pytest.raises(NotFound) as nobody:
        await service.grant(99999, "client", 1)
    assert nobody.value.field == "person"
    with pytest.raises(RoleError) as bad_org:
        await service.grant(await add_person(demo), "client", 0)
    assert bad_org.value.field == "organization"


async def test_a_grant_in_one_organization_gives_its_permissions_there_only(demo: Host) -> None:
    alice = await add_person(demo, "Alice")
    await roles(demo).grant(alice, "client", 1)
    p = person(alice)
    assert await demo.access.can(p, "demo.orders.view", 1)
    assert not await demo.access.can(p, "demo.orders.view", 2)
    assert not await demo.access.can(p, "demo.orders.view")  # not globally
    assert await demo.access.organizations(p, "demo.orders.view") == {1}
    assert await demo.access.organizations(p, "roles.manage") == frozenset()
    assert not await demo.access.can(ANONYMOUS, "demo.orders.view", 1)
    assert not await demo.access.can(p, "demo.unknown", 1)


async def test_a_person_holds_different_roles_in_different_organizations(demo: Host) -> None:
    service = roles(demo)
    bob = await add_person(demo, "Bob")
    viewer = await service.create_role(
        code="viewer", name_ru="Наблюдатель", name_en="Viewer", permissions=["demo.orders.view"]
    )
    await service.grant(bob, "client", 1)
    await service.grant(bob, viewer.code, 2)
    p = person(bob)
    assert await demo.access.organizations(p, "demo.orders.view") == {1, 2}
    assert await demo.access.organizations(p, "demo.orders.cancel") == {1}
    assert [(g.role.code, g.organization_id) for g in await service.grants_of(bob)] == [
        ("client", 1),
        ("viewer", 2),
    ]
    with pytest.raises(Conflict):
        await service.grant(bob, "client", 1)


async def test_a_global_grant_reaches_every_organization(demo: Host) -> None:
    carol = await add_person(demo, "Carol")
    await roles(demo).grant(carol, "admin")
    p = person(carol)
    assert await demo.access.organizations(p, "demo.orders.view") is ALL
    assert await demo.access.can(p, "demo.orders.view", 12345)
    assert await demo.access.can(p, "roles.manage")


async def test_a_grant_in_an_organization_never_gives_a_staff_wide_permission(
    demo: Host,
) -> None:
    service = roles(demo)
    dave = await add_person(demo, "Dave")
    await service.create_role(
        code="boss", name_ru="Шеф", name_en="Boss", permissions=["roles.manage", "demo.orders.view"]
    )
    await service.grant(dave, "boss", 3)
    assert await demo.access.can(person(dave), "demo.orders.view", 3)
    assert not await demo.access.can(person(dave), "roles.manage")
    assert await demo.access.organizations(person(dave), "roles.manage") == frozenset()


async def test_people_who_may_do_a_permission_in_an_organization(demo: Host) -> None:
    service = roles(demo)
    in_one, in_two, staff, plain = [await add_person(demo) for _ in range(4)]
    await service.grant(in_one, "client", 1)
    await service.grant(in_two, "client", 2)
    await service.grant(staff, "admin")
    await service.grant(plain, "user")
    mine = {in_one, in_two, staff, plain}  # the module's database has other people too

    async def people(code: str, organization: int | None = None) -> set[int]:
        return await demo.access.people(code, organization) & mine

    assert await people("demo.orders.cancel", 1) == {in_one}
    assert await people("demo.orders.view", 1) == {in_one, staff}
    assert await people("demo.orders.view") == {staff}
    assert await people("roles.manage", 1) == {staff}
    assert await people("demo.join.request") == {plain}
    assert await people("demo.unknown", 1) == set()


async def test_an_api_tokens_scopes_limit_the_persons_permissions(demo: Host) -> None:
    erin = await add_person(demo, "Erin")
    await roles(demo).grant(erin, "client", 5)
    token = person(erin, scopes=frozenset({"demo.orders.view"}))
    assert await demo.access.can(token, "demo.orders.view", 5)
    assert not await demo.access.can(token, "demo.orders.cancel", 5)
    assert await demo.access.organizations(token, "demo.orders.cancel") == frozenset()
    unlimited = person(erin)
    assert await demo.access.can(unlimited, "demo.orders.cancel", 5)


async def test_checks_are_answered_from_memory_until_something_changes(demo: Host) -> None:
    access = demo.access
    assert isinstance(access, RolesAccess)
    frank = await add_person(demo, "Frank")
    await roles(demo).grant(frank, "client", 1)
    before = access.builds
    for _ in range(50):
        assert await access.can(person(frank), "demo.orders.view", 1)
    assert access.builds == before + 1
    await roles(demo).grant(frank, "client", 2)
    assert await access.can(person(frank), "demo.orders.view", 2)  # this process: at once
    assert access.builds == before + 2


async def test_concurrent_checks_of_a_person_build_one_view(demo: Host) -> None:
    """Requests arriving together for a person not yet in memory share one build."""
    access = demo.access
    assert isinstance(access, RolesAccess)
    gina = await add_person(demo, "Gina")
    await roles(demo).grant(gina, "client", 3)
    before = access.builds
    answers = await asyncio.gather(
        *(access.can(person(gina), "demo.orders.view", 3) for _ in range(32))
    )
    assert answers == [True] * 32
    assert access.builds == before + 1


async def test_a_disabled_plugins_permissions_stay_on_a_role_edited_meanwhile(
    plugin_factory: PluginFactory, make_host: HostFactory, fresh_url: str
) -> None:
    plugin_factory.add("demo", DEMO)
    own = {"KABINET__HOST__DATABASE_URL": fresh_url}
    with_demo = await make_host(candidates=plugin_factory.candidates(), env=own)
    client = await roles(with_demo).role_by_code("client")
    assert "demo.orders.view" in client.permissions
    # The demo plugin is disabled; an admin edits the role, sending its permissions back.
    without = await make_host(
        candidates=plugin_factory.candidates(), env={**own, "KABINET__DEMO__ENABLED": "false"}
    )
    client = await roles(without).role_by_code("client")
    kept = await roles(without).set_permissions(client.id, set(client.permissions))
    assert "demo.orders.view" in kept.permissions
    with pytest.raises(RoleError, match="unknown permission"):
        await roles(without).set_permissions(client.id, {*client.permissions, "nope.x.view"})
