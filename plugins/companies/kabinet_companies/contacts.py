"""Contacts (people of the organizations), their memberships and their roles there:
the contacts' part of the companies service."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import delete, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from kabinet import lists
from kabinet.access import ALL, AllOrganizations, Principal
from kabinet.identity.services import PEOPLE
from kabinet.roles.services import GRANTS, Actor, RoleError
from kabinet.roles.services import Conflict as RoleConflict
from kabinet_companies.models import contact, membership, organization
from kabinet_companies.organizations import OrganizationsPart
from kabinet_companies.permissions import (
    CONTACTS_MANAGE,
    CONTACTS_VIEW,
    COUNT_CAP,
    STAFF_ROLES,
    Orgs,
    within,
)
from kabinet_companies.structs import Contact, Membership, Page
from kabinet_companies.validation import CompanyError, Forbidden, NotFound

CONTACT_SORTS = lists.Sorts(
    {
        "name": (contact.c.full_name, contact.c.person_id),
        "-name": (contact.c.full_name.desc(), contact.c.person_id),
        "email": (contact.c.email, contact.c.person_id),
        "created": (contact.c.created_at, contact.c.person_id),
        "-created": (contact.c.created_at.desc(), contact.c.person_id.desc()),
    },
    default="name",
)
"""What ``?sort=`` may name on the contacts' page and API."""


def contact_search(full_name: str, email: str | None, phone: str | None) -> str:
    return " ".join(x for x in (full_name, email or "", phone or "") if x).lower()


class ContactsPart(OrganizationsPart):
    """Contacts, their memberships of organizations and their roles in each."""

    async def ensure_contact(self, session: AsyncSession, person_id: int) -> None:
        """The person's contact row, refreshed from their account."""
        account = (await session.execute(select(PEOPLE).where(PEOPLE.c.id == person_id))).first()
        if account is None:
            raise NotFound("no such person", "person")
        values = {
            "full_name": account.full_name,
            "email": account.email,
            "phone": account.phone,
            "search": contact_search(account.full_name, account.email, account.phone),
        }
        done = await session.execute(
            update(contact).where(contact.c.person_id == person_id).values(**values)
        )
        if not getattr(done, "rowcount", 0):
            await session.execute(
                insert(contact).values(person_id=person_id, created_at=self.now, **values)
            )

    async def refresh_contact(self, session: AsyncSession, person_id: int) -> None:
        """Copy the account's name, e-mail and phone again, if the person is a contact
        (identity's ``identity.account.updated``; others are not made contacts by it)."""
        exists = await session.scalar(
            select(contact.c.person_id).where(contact.c.person_id == person_id)
        )
        if exists is not None:
            await self.ensure_contact(session, person_id)

    async def add_member(self, session: AsyncSession, person_id: int, org_id: int) -> None:
        await self.ensure_contact(session, person_id)
        exists = await session.scalar(
            select(membership.c.id).where(
                membership.c.person_id == person_id, membership.c.organization_id == org_id
            )
        )
        if exists is None:
            await session.execute(
                insert(membership).values(
                    person_id=person_id, organization_id=org_id, created_at=self.now
                )
            )

    async def contacts(
        self,
        principal: Principal,
        *,
        q: str = "",
        organization_id: int | None = None,
        role: str = "",
        sort: str = "name",
        limit: int = 50,
        offset: int = 0,
    ) -> Page:
        """Contacts of the organizations where the principal may see contacts."""
        orgs = await self.allowed(principal, CONTACTS_VIEW)
        query = select(contact)
        in_orgs = within(membership.c.organization_id, orgs)
        if in_orgs is not None or organization_id is not None or role:
            members = select(membership.c.person_id)
            if in_orgs is not None:
                members = members.where(in_orgs)
            if organization_id is not None:
                members = members.where(membership.c.organization_id == organization_id)
            if role:
                members = members.where(
                    select(GRANTS.c.id)
                    .where(
                        GRANTS.c.person_id == membership.c.person_id,
                        GRANTS.c.organization_id == membership.c.organization_id,
                        GRANTS.c.role == role,
                    )
                    .exists()
                )
            query = query.where(contact.c.person_id.in_(members))
        # the search column holds name, e-mail and phone in lower case already, under a
        # trigram index (bench/contacts.py): compared as it is, never through lower()
        query = query.where(lists.search(q, contact.c.search, fold_case=False))
        order = CONTACT_SORTS.order(sort)
        async with self.host.db.reader() as s:
            # Counting every match of a short search costs more than the page itself:
            # count up to COUNT_CAP + 1 ("more than 1,000" is what a person needs to know).
            rows, total = await lists.page(
                s, query, order, limit=limit, offset=offset, cap=COUNT_CAP, key=contact.c.person_id
            )
        ids = [r.person_id for r in rows]
        by_person = await self.memberships(ids, orgs)
        items = [
            Contact(
                person_id=r.person_id,
                full_name=r.full_name,
                email=r.email,
                phone=r.phone,
                memberships=by_person.get(r.person_id, []),
            )
            for r in rows
        ]
        return Page(total=int(total or 0), items=items)

    async def contact(self, principal: Principal, person_id: int) -> Contact:
        orgs = await self.allowed(principal, CONTACTS_VIEW)
        async with self.host.db.reader() as s:
            row = (await s.execute(select(contact).where(contact.c.person_id == person_id))).first()
        found = (await self.memberships([person_id], orgs)).get(person_id, [])
        if row is None or (not isinstance(orgs, AllOrganizations) and not found):
            raise NotFound("no such contact", "person")
        return Contact(
            person_id=row.person_id,
            full_name=row.full_name,
            email=row.email,
            phone=row.phone,
            memberships=found,
        )

    async def memberships(
        self, person_ids: Sequence[int], orgs: Orgs = ALL
    ) -> dict[int, list[Membership]]:
        """Each person's memberships (within ``orgs``) with their roles there."""
        if not person_ids:
            return {}
        query = (
            select(membership.c.person_id, membership.c.organization_id, organization.c.name)
            .join(organization, organization.c.id == membership.c.organization_id)
            .where(membership.c.person_id.in_(person_ids))
            .order_by(organization.c.name)
        )
        where = within(membership.c.organization_id, orgs)
        if where is not None:
            query = query.where(where)
        async with self.host.db.reader() as s:
            rows = (await s.execute(query)).all()
        held = await self.roles.organization_roles(person_ids)
        found: dict[int, list[Membership]] = {}
        for person_id, org_id, name in rows:
            found.setdefault(person_id, []).append(
                Membership(
                    organization_id=org_id,
                    organization_name=name,
                    person_id=person_id,
                    roles=held.get((person_id, org_id), []),
                )
            )
        return found

    async def grantable_roles(self) -> list[Any]:
        """Roles a manager may give in an organization: client and custom roles."""
        return [r for r in await self.roles.roles() if r.code not in STAFF_ROLES]

    async def set_roles(
        self,
        principal: Principal,
        person_id: int,
        org_id: int,
        roles: Iterable[str],
        *,
        address: str = "",
    ) -> Membership:
        """Give, change or revoke a contact's roles in one organization (host grants:
        each change is an event and a line in the audit log). An empty set revokes all,
        leaving the person a contact of the organization without rights."""
        await self._visible(principal, CONTACTS_MANAGE, org_id)
        if principal.person_id is not None and principal.person_id == person_id:
            # nobody gives themselves rights (a manager would become a client, mint a token)
            raise Forbidden("You cannot change your own roles.", "person_id")
        wanted = set(roles)
        allowed = {r.code for r in await self.grantable_roles()}
        bad = sorted(wanted - allowed)
        if bad:
            raise CompanyError(f"these roles cannot be given here: {', '.join(bad)}", "roles")
        actor = Actor(person_id=principal.person_id, address=address)
        current = {
            g.role.code: g
            for g in await self.roles.grants_of(person_id)
            if g.organization_id == org_id
        }
        # the membership and every change of roles in one transaction: all or nothing
        async with self.host.db.session() as s:
            await self.add_member(s, person_id, org_id)
            for code in sorted(set(current) - wanted):
                if code in allowed:
                    await self.roles.revoke(current[code].id, actor=actor, session=s)
            for code in sorted(wanted - set(current)):
                try:
                    await self.roles.grant(person_id, code, org_id, actor=actor, session=s)
                except RoleConflict:
                    pass  # given meanwhile by someone else: the wanted state holds
                except RoleError as exc:
                    raise CompanyError(exc.message, exc.field) from None
        found = (await self.memberships([person_id], {org_id})).get(person_id, [])
        return found[0]

    async def remove_member(
        self, principal: Principal, person_id: int, org_id: int, *, address: str = ""
    ) -> None:
        """The person leaves the organization: their roles there are revoked too."""
        await self.set_roles(principal, person_id, org_id, [], address=address)
        async with self.host.db.session() as s:
            await s.execute(
                delete(membership).where(
                    membership.c.person_id == person_id, membership.c.organization_id == org_id
                )
            )
