"""Organizations and their managers: the organizations' part of the companies service."""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any

from sqlalchemy import delete, insert, or_, select, text, update
from sqlalchemy.ext.asyncio import AsyncSession

from kabinet import lists
from kabinet.access import Principal
from kabinet.identity.services import PEOPLE
from kabinet.roles.services import GRANTS
from kabinet_companies import events as ev
from kabinet_companies.models import counterparty, manager, membership, organization
from kabinet_companies.permissions import ASSIGN, MANAGE, VIEW, Part, within
from kabinet_companies.structs import Organization, Page
from kabinet_companies.validation import CompanyError, NotFound, bounded, clean_inn, clean_kpp

if TYPE_CHECKING:
    from kabinet.host import Host

ORGANIZATION_SORTS = lists.Sorts(
    {
        "name": (organization.c.name, organization.c.id),
        "-name": (organization.c.name.desc(), organization.c.id),
        "created": (organization.c.created_at, organization.c.id),
        "-created": (organization.c.created_at.desc(), organization.c.id.desc()),
    },
    default="name",
)
"""What ``?sort=`` may name on the organizations' page and API (another name: a 400)."""


def _org_search(name: str, inn: str | None) -> str:
    return f"{name} {inn or ''}".strip().lower()


async def organizations_for_new(host: Host, session: AsyncSession, external_ids: list[str]) -> None:
    """One organization per new counterparty (``organization_per_counterparty``)."""
    rows = await session.execute(
        select(counterparty.c.id, counterparty.c.name, counterparty.c.inn, counterparty.c.kpp)
        .where(counterparty.c.external_id.in_(external_ids))
        .where(counterparty.c.organization_id.is_(None))
    )
    now = host.clock.now()
    for row in rows.all():
        org_id = await insert_org(session, row.name, row.inn, row.kpp, now)
        await session.execute(
            update(counterparty).where(counterparty.c.id == row.id).values(organization_id=org_id)
        )


async def insert_org(
    session: AsyncSession,
    name: str,
    inn: str | None,
    kpp: str | None,
    now: dt.datetime,
    org_id: int | None = None,
) -> int:
    """A new organization's row in ``session`` (``org_id``: at a fixed id); its id."""
    values: dict[str, Any] = {
        "name": name,
        "inn": inn,
        "kpp": kpp,
        "search": _org_search(name, inn),
        "created_at": now,
        "updated_at": now,
    }
    if org_id is not None:
        values["id"] = org_id
    new_id = await session.scalar(
        insert(organization).values(**values).returning(organization.c.id)
    )
    assert new_id is not None
    if org_id is not None and session.get_bind().dialect.name == "postgresql":
        # A fixed id leaves the sequence behind: move it past the id, or the next
        # organization created without one collides with this one.
        await session.execute(
            text(
                "SELECT setval(pg_get_serial_sequence('companies_organization', 'id'),"
                " GREATEST((SELECT MAX(id) FROM companies_organization), 1))"
            )
        )
    return int(new_id)


class OrganizationsPart(Part):
    """Organizations: made, changed, read, listed; the managers assigned to them."""

    async def create_organization(
        self,
        name: str,
        inn: str | None = None,
        kpp: str | None = None,
        *,
        actor_id: int | None = None,
        org_id: int | None = None,
    ) -> Organization:
        name = bounded(name, organization.c.name, "name")
        if not name:
            raise CompanyError("name is required", "name")
        inn_c = clean_inn(inn) if inn and inn.strip() else None
        kpp_c = clean_kpp(kpp)
        async with self.host.db.session() as s:
            new_id = await insert_org(s, name, inn_c, kpp_c, self.now, org_id)
            await self.host.events.publish(
                s,
                ev.ORGANIZATION_CREATED,
                ev.OrganizationChanged(organization_id=new_id, name=name, actor_id=actor_id),
            )
        return await self.organization(new_id)

    async def ensure_organization(self, org_id: int, name: str = "") -> None:
        """An organization with this id (route samples and demo data address fixed ids)."""
        async with self.host.db.session() as s:
            if await s.scalar(select(organization.c.id).where(organization.c.id == org_id)):
                return
            await insert_org(s, name or f"Organization {org_id}", None, None, self.now, org_id)

    async def update_organization(
        self, principal: Principal, org_id: int, name: str, inn: str | None, kpp: str | None
    ) -> Organization:
        await self._visible(principal, MANAGE, org_id)
        name = bounded(name, organization.c.name, "name")
        if not name:
            raise CompanyError("name is required", "name")
        inn_c = clean_inn(inn) if inn and inn.strip() else None
        kpp_c = clean_kpp(kpp)
        async with self.host.db.session() as s:
            await s.execute(
                update(organization)
                .where(organization.c.id == org_id)
                .values(
                    name=name,
                    inn=inn_c,
                    kpp=kpp_c,
                    search=_org_search(name, inn_c),
                    updated_at=self.now,
                )
            )
        return await self.organization(org_id)

    async def organization(self, org_id: int, principal: Principal | None = None) -> Organization:
        """One organization (checked against ``principal``'s view when given)."""
        if principal is not None:
            await self._visible(principal, VIEW, org_id)
        async with self.host.db.reader() as s:
            row = (await s.execute(select(organization).where(organization.c.id == org_id))).first()
            if row is None:
                raise NotFound("no such organization", "organization")
            managers = await s.scalars(
                select(manager.c.person_id)
                .where(manager.c.organization_id == org_id)
                .order_by(manager.c.person_id)
            )
            return Organization(
                id=row.id,
                name=row.name,
                inn=row.inn,
                kpp=row.kpp,
                created_at=row.created_at,
                managers=list(managers),
            )

    async def organizations(
        self,
        principal: Principal,
        *,
        q: str = "",
        manager_id: int | None = None,
        sort: str = "name",
        limit: int = 50,
        offset: int = 0,
        only: int | None = None,
    ) -> Page:
        """Organizations the principal may see: search by name or ИНН, filter by manager;
        ``only``: just that one (a client's current organization)."""
        query = select(organization)
        where = within(organization.c.id, await self.allowed(principal, VIEW))
        if where is not None:
            query = query.where(where)
        if only is not None:
            query = query.where(organization.c.id == only)
        if q.strip():
            by_cp = select(counterparty.c.organization_id).where(
                lists.starts_with(counterparty.c.inn, q.strip()), counterparty.c.hidden.is_(False)
            )
            query = query.where(
                or_(
                    # the search column holds the name and ИНН in lower case already
                    lists.search(q, organization.c.search, fold_case=False),
                    organization.c.id.in_(by_cp),
                )
            )
        if manager_id is not None:
            query = query.where(
                organization.c.id.in_(
                    select(manager.c.organization_id).where(manager.c.person_id == manager_id)
                )
            )
        order = ORGANIZATION_SORTS.order(sort)
        async with self.host.db.reader() as s:
            rows, total = await lists.page(s, query, order, limit=limit, offset=offset)
            ids = [r.id for r in rows]
            managed: dict[int, list[int]] = {}
            if ids:
                for org_id, person_id in await s.execute(
                    select(manager.c.organization_id, manager.c.person_id).where(
                        manager.c.organization_id.in_(ids)
                    )
                ):
                    managed.setdefault(org_id, []).append(person_id)
        items = [
            Organization(
                id=r.id,
                name=r.name,
                inn=r.inn,
                kpp=r.kpp,
                created_at=r.created_at,
                managers=sorted(managed.get(r.id, [])),
            )
            for r in rows
        ]
        return Page(total=int(total or 0), items=items)

    async def organizations_of(self, person_id: int) -> list[tuple[int, str]]:
        """The organizations a person belongs to (the header's switch), by name."""
        async with self.host.db.reader() as s:
            rows = await s.execute(
                select(organization.c.id, organization.c.name)
                .join(membership, membership.c.organization_id == organization.c.id)
                .where(membership.c.person_id == person_id)
                .order_by(organization.c.name, organization.c.id)
            )
            return [(int(r.id), str(r.name)) for r in rows]

    async def current_organization(self, person_id: int, chosen: int | None) -> int | None:
        """The organization the person works in now (the header's choice) if it is still
        theirs; ``None``: all their companies."""
        if chosen is None:
            return None
        mine = [org_id for org_id, _ in await self.organizations_of(person_id)]
        return chosen if chosen in mine else None

    # -- managers -------------------------------------------------------------------------

    async def managed_by(self, person_id: int) -> set[int]:
        """The ``managed_organizations`` hook: what an admin assigned to this manager."""
        async with self.host.db.reader() as s:
            rows = await s.scalars(
                select(manager.c.organization_id).where(manager.c.person_id == person_id)
            )
            return set(rows)

    async def assign_manager(
        self, principal: Principal | None, org_id: int, person_id: int, *, assign: bool = True
    ) -> Organization:
        """Assign (or unassign) a manager; their access view changes within seconds."""
        if principal is not None and not await self.can(principal, ASSIGN):
            raise NotFound("no such organization", "organization")
        await self.organization(org_id)
        async with self.host.db.session() as s:
            if await s.scalar(select(PEOPLE.c.id).where(PEOPLE.c.id == person_id)) is None:
                raise CompanyError("no such person", "person_id")
            exists = await s.scalar(
                select(manager.c.person_id).where(
                    manager.c.organization_id == org_id, manager.c.person_id == person_id
                )
            )
            if assign and exists is None:
                await s.execute(
                    insert(manager).values(
                        organization_id=org_id,
                        person_id=person_id,
                        assigned_by=principal.person_id if principal else None,
                        assigned_at=self.now,
                    )
                )
            elif not assign and exists is not None:
                await s.execute(
                    delete(manager).where(
                        manager.c.organization_id == org_id, manager.c.person_id == person_id
                    )
                )
            else:
                return await self.organization(org_id)
            await self.host.events.publish(
                s,
                ev.MANAGER_ASSIGNED if assign else ev.MANAGER_UNASSIGNED,
                ev.ManagerChanged(
                    organization_id=org_id,
                    person_id=person_id,
                    actor_id=principal.person_id if principal else None,
                ),
            )
            await self.roles.person_changed(person_id, s)
        await self.roles.access.announce([f"person:{person_id}"])
        return await self.organization(org_id)

    async def managers(self) -> list[tuple[int, str]]:
        """People holding the manager role (the filter and the assignment form)."""
        async with self.host.db.reader() as s:
            rows = await s.execute(
                select(PEOPLE.c.id, PEOPLE.c.full_name)
                .join(GRANTS, GRANTS.c.person_id == PEOPLE.c.id)
                .where(GRANTS.c.role == "manager", GRANTS.c.organization_id.is_(None))
                .order_by(PEOPLE.c.full_name)
                .distinct()
            )
            return [(int(r[0]), str(r[1])) for r in rows]
