"""How the route matrix reaches the roles page's objects (the ``route_samples`` hook)."""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING

from kabinet.identity.services import IDENTITY
from kabinet.roles.services import ROLES, RolesService
from kabinet.routematrix import RouteSample, SampleRequest

if TYPE_CHECKING:
    from kabinet.host import Host


def _roles(host: Host) -> RolesService:
    found: RolesService = host.services.of(ROLES)
    return found


def _code() -> str:
    return f"sample_{uuid.uuid4().hex[:12]}"


async def _role(host: Host) -> int:
    role = await _roles(host).create_role(code=_code(), name_ru="Образец", name_en="Sample")
    return role.id


async def _person(host: Host) -> int:
    account = await host.services.of(IDENTITY).create_account(
        full_name="Образец", email=f"{_code()}@example.test"
    )
    return int(account.id)


async def new_role(host: Host, organization: int) -> SampleRequest:
    return SampleRequest(form={"code": _code(), "name_ru": "Новая", "name_en": "New"})


async def matrix(host: Host, organization: int) -> SampleRequest:
    """Saves the matrix as it is (a sample must not strip anyone of their permissions)."""
    roles = await _roles(host).roles()
    return SampleRequest(
        form={
            "roles": [str(r.id) for r in roles],
            "p": [f"{r.id}:{code}" for r in roles for code in sorted(r.permissions)],
        }
    )


async def role(host: Host, organization: int) -> SampleRequest:
    return SampleRequest(
        params={"role_id": await _role(host)}, form={"name_ru": "Р", "name_en": "R"}
    )


async def builtin_role(host: Host, organization: int) -> SampleRequest:
    user = await _roles(host).role_by_code("user")
    return SampleRequest(params={"role_id": user.id})


async def find(host: Host, organization: int) -> SampleRequest:
    return SampleRequest(query={"q": str(await _person(host))})


async def person(host: Host, organization: int) -> SampleRequest:
    return SampleRequest(
        params={"person_id": await _person(host)},
        form={"role": "client", "organization": str(organization)},
    )


async def grant(host: Host, organization: int) -> SampleRequest:
    person_id = await _person(host)
    given = await _roles(host).grant(person_id, "client", organization)
    return SampleRequest(params={"person_id": person_id, "grant_id": given.id})


# Roles and grants are the admins' tools for the whole portal: no organization's object.
SAMPLES = [
    RouteSample(path=path, make=make, methods=methods, addressed=False)
    for path, make, methods in [
        ("/roles", new_role, ("POST",)),
        ("/roles/matrix", matrix, ("POST",)),
        ("/roles/{role_id:int}", role, ("GET", "POST")),
        ("/roles/{role_id:int}/delete", role, ("POST",)),
        ("/roles/{role_id:int}/reset", builtin_role, ("POST",)),
        ("/roles/people", find, ("GET",)),
        ("/roles/people/{person_id:int}", person, ("GET",)),
        ("/roles/people/{person_id:int}/grants", person, ("POST",)),
        ("/roles/people/{person_id:int}/grants/{grant_id:int}/revoke", grant, ("POST",)),
    ]
]
