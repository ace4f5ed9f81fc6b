"""Counterparties (the accounting system's customers) and the organizations they
belong to: the counterparties' part of the companies service."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlalchemy import insert, or_, select, update

from kabinet import lists
from kabinet.access import Principal
from kabinet_companies import events as ev
from kabinet_companies.models import counterparty
from kabinet_companies.organizations import OrganizationsPart, insert_org
from kabinet_companies.permissions import COUNTERPARTIES, MANAGE, VIEW, within
from kabinet_companies.structs import Counterparty, Organization, Page
from kabinet_companies.validation import (
    CompanyError,
    Conflict,
    NotFound,
    bounded,
    clean_inn,
    clean_kpp,
)


class CounterpartiesPart(OrganizationsPart):
    """Counterparties: read, listed, added by hand, moved between organizations."""

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
            where = within(counterparty.c.organization_id, await self.allowed(principal, VIEW))
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
            org_id = await insert_org(s, row.name, row.inn, row.kpp, self.now)
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
