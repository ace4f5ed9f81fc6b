"""Organizations, counterparties, contacts, memberships and managers: the rules.

Pages, the API, the sink, demo data and tests all go through :class:`CompaniesService`
(``host.services.of(COMPANIES)``). Company data is always read through the organizations
in which the asking principal holds the permission (``host.access.organizations``); an
object outside them is "not found", so existence never leaks. Roles in an organization are
the host's grants, given and taken through the roles service (events, audit log, caches).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence, Set
from typing import TYPE_CHECKING, Any

import msgspec
from sqlalchemy import ColumnElement, delete, insert, or_, select, text, update
from sqlalchemy.ext.asyncio import AsyncSession

from kabinet import lists
from kabinet.access import ALL, AllOrganizations, Principal
from kabinet.identity.services import PEOPLE
from kabinet.roles.services import GRANTS, ROLES, Actor, RoleError
from kabinet.roles.services import Conflict as RoleConflict
from kabinet.services import ServiceKey
from kabinet_companies import events as ev
from kabinet_companies.models import contact, counterparty, manager, membership, organization
from kabinet_companies.tables import COUNTERPARTY_KEY as COUNTERPARTY_KEY
from kabinet_companies.tables import COUNTERPARTY_ROWS as COUNTERPARTY_ROWS  # public query contract
from kabinet_companies.tables import ORGANIZATION_ROWS as ORGANIZATION_ROWS
from kabinet_companies.validation import (
    CompanyError,
    Conflict,
    Forbidden,
    NotFound,
    bounded,
    clean_inn,
    clean_kpp,
)
from kabinet_companies.validation import make_inn as make_inn  # public: valid ИНН for samples

if TYPE_CHECKING:
    from kabinet.host import Host
    from kabinet.roles.services import RolesService
    from kabinet_companies.registration import Registration
    from kabinet_companies.requests import RequestsService

VIEW = "companies.organizations.view"
MANAGE = "companies.organizations.manage"
CREATE = "companies.organizations.create"
COUNTERPARTIES = "companies.counterparties.manage"
CONTACTS_VIEW = "companies.contacts.view"
CONTACTS_MANAGE = "companies.contacts.manage"
ASSIGN = "companies.managers.assign"
COUNT_CAP = 1000
"""Searches count matches up to this; ``total`` = COUNT_CAP + 1 means "more"."""
STAFF_ROLES = frozenset({"user", "manager", "admin"})
"""Roles never given in an organization from the companies pages (staff-wide ones)."""

Orgs = Set[int] | AllOrganizations

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


class SystemPrincipal(Principal):
    """The portal itself (demo data, the CLI, jobs): holds every permission everywhere."""


SYSTEM = SystemPrincipal(person_id=None, name="system", kind="token")


class Organization(msgspec.Struct, kw_only=True):
    id: int
    name: str
    inn: str | None
    kpp: str | None
    created_at: dt.datetime
    managers: list[int] = msgspec.field(default_factory=list)


class Counterparty(msgspec.Struct, kw_only=True):
    id: int
    organization_id: int | None
    external_id: str | None
    name: str
    full_name: str
    inn: str
    kpp: str | None
    address: str
    phone: str
    email: str
    source: str


class Membership(msgspec.Struct, kw_only=True):
    organization_id: int
    organization_name: str
    person_id: int
    roles: list[str]


class Contact(msgspec.Struct, kw_only=True):
    person_id: int
    full_name: str
    email: str | None
    phone: str | None
    memberships: list[Membership] = msgspec.field(default_factory=list)


class Page(msgspec.Struct, kw_only=True):
    total: int
    items: list[Any]


def _within(column: Any, orgs: Orgs) -> ColumnElement[bool] | None:
    """The filter "column in orgs"; ``None`` for ALL (no filter)."""
    if isinstance(orgs, AllOrganizations):
        return None
    found: ColumnElement[bool] = column.in_(sorted(orgs) or [-1])
    return found


def _org_search(name: str, inn: str | None) -> str:
    return f"{name} {inn or ''}".strip().lower()


def contact_search(full_name: str, email: str | None, phone: str | None) -> str:
    return " ".join(x for x in (full_name, email or "", phone or "") if x).lower()


async def organizations_for_new(host: Host, session: AsyncSession, external_ids: list[str]) -> None:
    """One organization per new counterparty (``organization_per_counterparty``)."""
    rows = await session.execute(
        select(counterparty.c.id, counterparty.c.name, counterparty.c.inn, counterparty.c.kpp)
        .where(counterparty.c.external_id.in_(external_ids))
        .where(counterparty.c.organization_id.is_(None))
    )
    now = host.clock.now()
    for row in rows.all():
        org_id = await _insert_org(session, row.name, row.inn, row.kpp, now)
        await session.execute(
            update(counterparty).where(counterparty.c.id == row.id).values(organization_id=org_id)
        )


async def _insert_org(
    session: AsyncSession,
    name: str,
    inn: str | None,
    kpp: str | None,
    now: dt.datetime,
    org_id: int | None = None,
) -> int:
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


class CompaniesService:
    """The companies app's rules for one host."""

    requests: RequestsService
    """Link requests and their decisions."""
    registration: Registration
    """Registration, consent, the confirmation gate, invitations."""

    def __init__(self, host: Host) -> None:
        self.host = host

    @property
    def roles(self) -> RolesService:
        return self.host.services.of(ROLES)

    @property
    def now(self) -> dt.datetime:
        return self.host.clock.now()

    async def allowed(self, principal: Principal, code: str) -> Orgs:
        if isinstance(principal, SystemPrincipal):
            return ALL
        return await self.host.access.organizations(principal, code)

    async def can(self, principal: Principal, code: str) -> bool:
        """Holds ``code`` globally (staff-wide)."""
        if isinstance(principal, SystemPrincipal):
            return True
        return await self.host.access.can(principal, code)

    async def _visible(self, principal: Principal, code: str, org_id: int | None) -> None:
        """404 unless ``principal`` holds ``code`` in ``org_id``."""
        if org_id is None or org_id not in await self.allowed(principal, code):
            raise NotFound("no such organization", "organization")

    # -- organizations --------------------------------------------------------------------

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
            new_id = await _insert_org(s, name, inn_c, kpp_c, self.now, org_id)
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
            await _insert_org(s, name or f"Organization {org_id}", None, None, self.now, org_id)

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
        where = _within(organization.c.id, await self.allowed(principal, VIEW))
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

    # -- counterparties -------------------------------------------------------------------

    async def counterparty(self, principal: Principal, cp_id: int) -> Counterparty:
        row = await self._cp_row(cp_id)
        if row.organization_id is None:
            if not await self.can(principal, COUNTERPARTIES):
                raise NotFound("no such counterparty", "counterparty")
        elif row.organization_id not in await self.allowed(principal, VIEW):
            raise NotFound("no such counterparty", "counterparty")
        return _cp(row)

    async def _cp_row(self, cp_id: int) -> Any:
        async with self.host.db.reader() as s:
            row = (
                await s.execute(
                    select(counterparty).where(
                        counterparty.c.id == cp_id, counterparty.c.hidden.is_(False)
                    )
                )
            ).first()
        if row is None:
            raise NotFound("no such counterparty", "counterparty")
        return row

    async def counterparties(
        self,
        principal: Principal,
        *,
        organization_id: int | None = None,
        unassigned: bool = False,
        q: str = "",
        limit: int = 50,
        offset: int = 0,
    ) -> Page:
        """Counterparties of organizations the principal sees, or the unassigned ones
        (staff holding ``companies.counterparties.manage``)."""
        query = select(counterparty).where(counterparty.c.hidden.is_(False))
        if unassigned:
            if not await self.can(principal, COUNTERPARTIES):
                return Page(total=0, items=[])
            query = query.where(counterparty.c.organization_id.is_(None))
        else:
            where = _within(counterparty.c.organization_id, await self.allowed(principal, VIEW))
            query = query.where(counterparty.c.organization_id.is_not(None))
            if where is not None:
                query = query.where(where)
            if organization_id is not None:
                query = query.where(counterparty.c.organization_id == organization_id)
        if q.strip():
            query = query.where(
                or_(
                    lists.search(q, counterparty.c.name),
                    lists.starts_with(counterparty.c.inn, q.strip()),
                )
            )
        order = (counterparty.c.name, counterparty.c.id)
        async with self.host.db.reader() as s:
            rows, total = await lists.page(s, query, order, limit=limit, offset=offset)
            return Page(total=total, items=[_cp(r) for r in rows])

    async def create_counterparty(
        self,
        principal: Principal,
        *,
        name: str,
        inn: str,
        kpp: str | None = None,
        full_name: str = "",
        address: str = "",
        phone: str = "",
        email: str = "",
        organization_id: int | None = None,
        external_id: str | None = None,
    ) -> Counterparty:
        """Staff add a counterparty by hand (unassigned, or into an organization)."""
        name = bounded(name, counterparty.c.name, "name")
        if not name:
            raise CompanyError("name is required", "name")
        values = {
            "name": name,
            "inn": clean_inn(inn),
            "kpp": clean_kpp(kpp),
            **{
                key: bounded(value, counterparty.c[key], key)
                for key, value in (
                    ("full_name", full_name),
                    ("address", address),
                    ("phone", phone),
                    ("email", email),
                )
            },
        }
        if organization_id is not None:
            await self._visible(principal, MANAGE, organization_id)
        async with self.host.db.session() as s:
            if external_id:
                taken = await s.scalar(
                    select(counterparty.c.id).where(counterparty.c.external_id == external_id)
                )
                if taken is not None:
                    raise Conflict("this external id is taken", "external_id")
            new_id = await s.scalar(
                insert(counterparty)
                .values(
                    **values,
                    organization_id=organization_id,
                    external_id=external_id or None,
                    source="manual",
                    hidden=False,
                    created_at=self.now,
                    updated_at=self.now,
                )
                .returning(counterparty.c.id)
            )
        assert new_id is not None
        return _cp(await self._cp_row(int(new_id)))

    async def move_counterparty(
        self, principal: Principal, cp_id: int, organization_id: int | None
    ) -> Counterparty:
        """Attach a counterparty to an organization, move it, or detach it (``None``).

        Everything of the counterparty (its orders, invoices, contracts) is visible
        through its organization, so the move changes who sees them at once.
        """
        row = await self._cp_row(cp_id)
        if row.organization_id is None:
            if not await self.can(principal, COUNTERPARTIES):
                raise NotFound("no such counterparty", "counterparty")
        else:
            await self._visible(principal, MANAGE, row.organization_id)
        if organization_id is not None:
            try:
                await self._visible(principal, MANAGE, organization_id)
            except NotFound:
                raise CompanyError("no such organization", "organization_id") from None
        elif not await self.can(principal, COUNTERPARTIES):
            raise CompanyError("only staff may leave a counterparty unassigned", "organization_id")
        async with self.host.db.session() as s:
            await s.execute(
                update(counterparty)
                .where(counterparty.c.id == cp_id)
                .values(organization_id=organization_id, updated_at=self.now)
            )
            await self.host.events.publish(
                s,
                ev.COUNTERPARTY_MOVED,
                ev.CounterpartyMoved(
                    counterparty_id=cp_id,
                    external_id=row.external_id,
                    from_organization_id=row.organization_id,
                    to_organization_id=organization_id,
                    actor_id=principal.person_id,
                ),
            )
        return _cp(await self._cp_row(cp_id))

    async def organization_from_counterparty(
        self, principal: Principal, cp_id: int
    ) -> Organization:
        """One action: a new organization named after an unassigned counterparty, with it."""
        row = await self._cp_row(cp_id)
        if row.organization_id is not None or not await self.can(principal, COUNTERPARTIES):
            raise NotFound("no such unassigned counterparty", "counterparty")
        async with self.host.db.session() as s:
            org_id = await _insert_org(s, row.name, row.inn, row.kpp, self.now)
            done = await s.execute(
                update(counterparty)
                .where(counterparty.c.id == cp_id, counterparty.c.organization_id.is_(None))
                .values(organization_id=org_id, updated_at=self.now)
            )
            if getattr(done, "rowcount", 0) != 1:
                raise Conflict("the counterparty was attached meanwhile", "counterparty")
            await self.host.events.publish(
                s,
                ev.ORGANIZATION_CREATED,
                ev.OrganizationChanged(
                    organization_id=org_id, name=row.name, actor_id=principal.person_id
                ),
            )
        return await self.organization(org_id)

    async def counterparty_organizations(self, ids: Iterable[int]) -> dict[int, int | None]:
        """Counterparty id -> its organization now (for apps whose records point at
        counterparties: filter them by ``host.access.organizations`` through this)."""
        wanted = sorted(set(ids))
        if not wanted:
            return {}
        async with self.host.db.reader() as s:
            rows = await s.execute(
                select(counterparty.c.id, counterparty.c.organization_id).where(
                    counterparty.c.id.in_(wanted), counterparty.c.hidden.is_(False)
                )
            )
            return {int(r.id): r.organization_id for r in rows}

    async def find_counterparty(self, inn: str, kpp: str | None) -> Any:
        """A visible counterparty by ИНН (and КПП when given), for link requests."""
        query = select(counterparty).where(
            counterparty.c.inn == inn, counterparty.c.hidden.is_(False)
        )
        if kpp:
            query = query.where(counterparty.c.kpp == kpp)
        async with self.host.db.reader() as s:
            rows = (await s.execute(query.order_by(counterparty.c.organization_id.is_(None)))).all()
        return rows[0] if rows else None

    # -- contacts and memberships -----------------------------------------------------------

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
        in_orgs = _within(membership.c.organization_id, orgs)
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
        where = _within(membership.c.organization_id, orgs)
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


def _cp(row: Any) -> Counterparty:
    return Counterparty(
        id=row.id,
        organization_id=row.organization_id,
        external_id=row.external_id,
        name=row.name,
        full_name=row.full_name,
        inn=row.inn,
        kpp=row.kpp,
        address=row.address,
        phone=row.phone,
        email=row.email,
        source=row.source,
    )


COMPANIES: ServiceKey[CompaniesService] = ServiceKey("companies", CompaniesService)
"""The companies service's key: ``host.services.of(COMPANIES)`` (plugins that require
companies; published by :func:`companies` at start-up or on first use)."""


def companies(host: Host) -> CompaniesService:
    """The host's companies service, made on first use (CLI, jobs and tests too)."""
    found = host.services.find(COMPANIES)
    if found is None:
        from kabinet_companies.registration import Registration
        from kabinet_companies.requests import RequestsService

        found = CompaniesService(host)
        found.requests = RequestsService(found)
        found.registration = Registration(found)
        host.services.provide(COMPANIES, found)
    return found
