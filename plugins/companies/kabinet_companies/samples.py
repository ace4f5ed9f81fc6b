"""How the route matrix reaches the companies app's objects (``route_samples``)."""

from __future__ import annotations

import itertools
import uuid
from typing import TYPE_CHECKING

from kabinet.identity.services import IDENTITY
from kabinet.routematrix import ManagerSample, RouteSample, SampleRequest
from kabinet_companies.services import CompaniesService, companies
from kabinet_companies.validation import make_inn

if TYPE_CHECKING:
    from kabinet.host import Host

_seeds = itertools.count(int(uuid.uuid4().int % 10**6) * 1000)


def _svc(host: Host) -> CompaniesService:
    return companies(host)


async def _person(host: Host) -> int:
    account = await host.services.of(IDENTITY).create_account(
        full_name="Образец Контакт", email=f"s-{uuid.uuid4().hex[:12]}@example.test"
    )
    return int(account.id)


async def organization(host: Host, org: int) -> SampleRequest:
    await _svc(host).ensure_organization(org)
    return SampleRequest(params={"organization_id": org}, json={"name": f"Организация {org}"})


async def organization_form(host: Host, org: int) -> SampleRequest:
    await _svc(host).ensure_organization(org)
    return SampleRequest(params={"organization_id": org}, form={"name": f"Организация {org}"})


async def counterparty(host: Host, org: int) -> SampleRequest:
    svc = _svc(host)
    await svc.ensure_organization(org)
    async with host.db.session() as s:
        from sqlalchemy import insert

        from kabinet_companies.models import counterparty as cp

        now = host.clock.now()
        cp_id = await s.scalar(
            insert(cp)
            .values(
                name="Образец",
                full_name="",
                inn=make_inn(next(_seeds)),
                organization_id=org,
                source="manual",
                hidden=False,
                created_at=now,
                updated_at=now,
            )
            .returning(cp.c.id)
        )
    return SampleRequest(params={"counterparty_id": cp_id}, json={"organization_id": org})


async def counterparty_form(host: Host, org: int) -> SampleRequest:
    found = await counterparty(host, org)
    return SampleRequest(params=found.params, form={"organization_id": str(org)})


async def member(host: Host, org: int) -> SampleRequest:
    svc = _svc(host)
    await svc.ensure_organization(org)
    person = await _person(host)
    async with host.db.session() as s:
        await svc.add_member(s, person, org)
    return SampleRequest(
        params={"organization_id": org, "person_id": person}, json={"roles": ["client"]}
    )


async def member_form(host: Host, org: int) -> SampleRequest:
    found = await member(host, org)
    return SampleRequest(params=found.params, form={"roles": ["client"]})


async def invitation(host: Host, org: int) -> SampleRequest:
    svc = _svc(host)
    await svc.ensure_organization(org)
    found = await svc.registration.invite(
        organization_id=org,
        email=f"i-{uuid.uuid4().hex[:12]}@example.test",
        full_name="Приглашённый",
        actor_id=None,
    )
    return SampleRequest(params={"organization_id": org, "invitation_id": found.id})


async def new_invitation(host: Host, org: int) -> SampleRequest:
    await _svc(host).ensure_organization(org)
    email = f"n-{uuid.uuid4().hex[:12]}@example.test"
    body = {"email": email, "full_name": "Новый", "role": "client"}
    return SampleRequest(params={"organization_id": org}, json=body)


async def new_invitation_form(host: Host, org: int) -> SampleRequest:
    found = await new_invitation(host, org)
    return SampleRequest(params=found.params, form=found.json)


async def search(host: Host, org: int) -> SampleRequest:
    """A picker's search that finds the organization (and nothing of others')."""
    await _svc(host).ensure_organization(org)
    return SampleRequest(query={"q": "Организация"})


async def assign_manager(host: Host, person_id: int, org: int) -> None:
    """The matrix's managers: assigned to ``org`` like an admin would."""
    await _svc(host).ensure_organization(org)
    await _svc(host).assign_manager(None, org, person_id)


SAMPLES: list[RouteSample | ManagerSample] = [
    ManagerSample(assign=assign_manager),
    RouteSample(path="/api/companies/organizations/{organization_id:int}", make=organization,
                methods=("GET", "PATCH")),
    RouteSample(path="/companies/organizations/{organization_id:int}", make=organization_form,
                methods=("GET", "POST")),
    RouteSample(path="/api/companies/organizations/{organization_id:int}/counterparties",
                make=organization),
    RouteSample(path="/api/companies/organizations/{organization_id:int}/contacts",
                make=organization),
    RouteSample(path="/api/companies/counterparties/{counterparty_id:int}", make=counterparty),
    RouteSample(path="/api/companies/counterparties/{counterparty_id:int}/organization",
                make=counterparty, methods=("PUT",)),
    RouteSample(path="/companies/counterparties/{counterparty_id:int}/move",
                make=counterparty_form, methods=("POST",)),
    RouteSample(path="/api/companies/contacts/{person_id:int}", make=member),
    RouteSample(
        path="/api/companies/organizations/{organization_id:int}/members/{person_id:int}",
        make=member, methods=("PUT", "DELETE"),
    ),
    RouteSample(
        path="/companies/organizations/{organization_id:int}/members/{person_id:int}",
        make=member_form, methods=("POST",),
    ),
    RouteSample(path="/api/companies/organizations/{organization_id:int}/invitations",
                make=new_invitation, methods=("GET", "POST")),
    RouteSample(path="/companies/organizations/{organization_id:int}/invitations",
                make=new_invitation_form, methods=("POST",)),
    RouteSample(
        path="/companies/organizations/{organization_id:int}/invitations/{invitation_id:int}/resend",
        make=invitation, methods=("POST",),
    ),
    RouteSample(
        path="/companies/organizations/{organization_id:int}/invitations/{invitation_id:int}/revoke",
        make=invitation, methods=("POST",),
    ),
    RouteSample(path="/api/companies/pick/organizations", make=search),
    RouteSample(path="/api/companies/pick/counterparties", make=search),
    RouteSample(path="/api/companies/pick/people", make=search),
]  # fmt: skip
