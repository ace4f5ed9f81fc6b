"""Link requests (a person asks to join a company) with their decision history.

A request by ИНН targets the organization of that counterparty; one for a counterparty
that is unassigned or unknown (or a new company) has no organization yet, and accepting it
creates one. Deciding is one conditional update (``status`` still open), so of two
managers deciding at once exactly one wins and the other is told it was decided; the
grant follows the winning commit, so it is never given twice.
"""

from __future__ import annotations

import contextlib
import datetime as dt
from typing import TYPE_CHECKING, Any

import msgspec
from sqlalchemy import func, insert, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from kabinet.access import AllOrganizations, Principal
from kabinet.identity.models import Account
from kabinet.roles.services import Actor
from kabinet.roles.services import Conflict as RoleConflict
from kabinet_companies import events as ev
from kabinet_companies.models import counterparty, link_request, manager, organization
from kabinet_companies.models import request_event as history_t
from kabinet_companies.services import (
    CONTACTS_MANAGE,
    CompaniesService,
    _insert_org,
    _like,
)
from kabinet_companies.validation import CompanyError, Conflict, NotFound, clean_inn, clean_kpp

if TYPE_CHECKING:
    from kabinet.host import Host

DECIDE = "companies.requests.decide"
OPEN = ("new", "in_review")
STATUSES = ("new", "in_review", "accepted", "rejected", "withdrawn")


class HistoryItem(msgspec.Struct, kw_only=True):
    at: dt.datetime
    actor_id: int | None
    actor_name: str
    action: str
    comment: str


class LinkRequest(msgspec.Struct, kw_only=True):
    id: int
    person_id: int
    person_name: str
    kind: str
    inn: str
    kpp: str | None
    company_name: str
    comment: str
    counterparty_id: int | None
    organization_id: int | None
    organization_name: str | None
    status: str
    role: str | None
    reason: str
    decided_by: int | None
    decided_at: dt.datetime | None
    created_at: dt.datetime
    history: list[HistoryItem] = msgspec.field(default_factory=list)


class RequestsService:
    """Link requests for one host (``host.services["companies"].requests``)."""

    def __init__(self, companies: CompaniesService) -> None:
        self.companies = companies
        self.host: Host = companies.host

    @property
    def now(self) -> dt.datetime:
        return self.host.clock.now()

    # -- the person's side ------------------------------------------------------------------

    async def create(
        self,
        person_id: int,
        *,
        inn: str,
        kpp: str | None = None,
        company_name: str = "",
        comment: str = "",
        new_company: bool = False,
    ) -> LinkRequest:
        """Ask to join a company: by ИНН (+КПП) among known counterparties, or as a new one."""
        inn_c = clean_inn(inn)
        kpp_c = clean_kpp(kpp)
        company_name = company_name.strip()[:300]
        if new_company and not company_name:
            raise CompanyError("name the company", "company_name")
        found = None if new_company else await self.companies.find_counterparty(inn_c, kpp_c)
        org_id = found.organization_id if found is not None else None
        async with self.host.db.session() as s:
            duplicate = await s.scalar(
                select(link_request.c.id).where(
                    link_request.c.person_id == person_id,
                    link_request.c.inn == inn_c,
                    link_request.c.status.in_(OPEN),
                )
            )
            if duplicate is not None:
                raise Conflict("you have already asked to join this company", "inn")
            request_id = await s.scalar(
                insert(link_request)
                .values(
                    person_id=person_id,
                    kind="new" if new_company else "inn",
                    inn=inn_c,
                    kpp=kpp_c,
                    company_name=company_name or (found.name if found is not None else ""),
                    comment=comment.strip()[:2000],
                    counterparty_id=found.id if found is not None else None,
                    organization_id=org_id,
                    status="new",
                    reason="",
                    created_at=self.now,
                    updated_at=self.now,
                )
                .returning(link_request.c.id)
            )
            assert request_id is not None
            await self._history(s, request_id, person_id, "created", comment.strip()[:2000])
            info = await self._one(s, request_id)
            await self.host.events.publish(s, ev.REQUEST_CREATED, _payload(info))
        return info

    async def mine(self, person_id: int) -> list[LinkRequest]:
        async with self.host.db.sessionmaker() as s:
            ids = await s.scalars(
                select(link_request.c.id)
                .where(link_request.c.person_id == person_id)
                .order_by(link_request.c.created_at.desc(), link_request.c.id.desc())
            )
            return [await self._one(s, i) for i in ids]

    async def withdraw(self, person_id: int, request_id: int) -> LinkRequest:
        async with self.host.db.session() as s:
            done = await s.execute(
                update(link_request)
                .where(
                    link_request.c.id == request_id,
                    link_request.c.person_id == person_id,
                    link_request.c.status.in_(OPEN),
                )
                .values(status="withdrawn", updated_at=self.now)
            )
            if getattr(done, "rowcount", 0) != 1:
                raise NotFound("no such open request", "request")
            await self._history(s, request_id, person_id, "withdrawn", "")
            return await self._one(s, request_id)

    # -- staff ------------------------------------------------------------------------------

    async def _scope(self, principal: Principal) -> Any:
        """Requests a decider may see: those of organizations where they manage contacts,
        and those without an organization yet (unknown or unassigned counterparties)."""
        if not await self.companies.can(principal, DECIDE):
            return None
        orgs = await self.companies.allowed(principal, CONTACTS_MANAGE)
        if isinstance(orgs, AllOrganizations):
            return True
        return or_(
            link_request.c.organization_id.is_(None),
            link_request.c.organization_id.in_(sorted(orgs) or [-1]),
        )

    async def list(
        self,
        principal: Principal,
        *,
        status: str = "",
        organization_id: int | None = None,
        manager_id: int | None = None,
        since: dt.datetime | None = None,
        until: dt.datetime | None = None,
        q: str = "",
        sort: str = "-created",
        limit: int = 50,
        offset: int = 0,
    ) -> tuple[list[LinkRequest], int]:
        scope = await self._scope(principal)
        if scope is None:
            return [], 0
        query = select(link_request.c.id).join(Account, Account.id == link_request.c.person_id)
        if scope is not True:
            query = query.where(scope)
        if status in STATUSES:
            query = query.where(link_request.c.status == status)
        elif status == "open":
            query = query.where(link_request.c.status.in_(OPEN))
        if organization_id is not None:
            query = query.where(link_request.c.organization_id == organization_id)
        if manager_id is not None:
            query = query.where(
                link_request.c.organization_id.in_(
                    select(manager.c.organization_id).where(manager.c.person_id == manager_id)
                )
            )
        if since is not None:
            query = query.where(link_request.c.created_at >= since)
        if until is not None:
            query = query.where(link_request.c.created_at < until)
        if q.strip():
            like = _like(q)
            query = query.where(
                or_(
                    func.lower(Account.full_name).like(like, escape="\\"),
                    link_request.c.inn.like(q.strip() + "%"),
                    func.lower(link_request.c.company_name).like(like, escape="\\"),
                )
            )
        orders: dict[str, list[Any]] = {
            "created": [link_request.c.created_at, link_request.c.id],
            "-created": [link_request.c.created_at.desc(), link_request.c.id.desc()],
            "status": [link_request.c.status, link_request.c.id.desc()],
            "person": [Account.full_name, link_request.c.id],
            "decided": [link_request.c.decided_at.desc(), link_request.c.id.desc()],
        }
        order = orders.get(sort, [link_request.c.created_at.desc(), link_request.c.id.desc()])
        async with self.host.db.sessionmaker() as s:
            total = await s.scalar(select(func.count()).select_from(query.subquery()))
            ids = await s.scalars(query.order_by(*order).limit(limit).offset(offset))
            return [await self._one(s, i) for i in ids], int(total or 0)

    async def get(self, principal: Principal, request_id: int) -> LinkRequest:
        scope = await self._scope(principal)
        if scope is None:
            raise NotFound("no such request", "request")
        query = select(link_request.c.id).where(link_request.c.id == request_id)
        if scope is not True:
            query = query.where(scope)
        async with self.host.db.sessionmaker() as s:
            if await s.scalar(query) is None:
                raise NotFound("no such request", "request")
            return await self._one(s, request_id)

    async def review(self, principal: Principal, request_id: int) -> LinkRequest:
        """A manager takes the request into review (others see someone is on it)."""
        await self.get(principal, request_id)
        async with self.host.db.session() as s:
            done = await s.execute(
                update(link_request)
                .where(link_request.c.id == request_id, link_request.c.status == "new")
                .values(status="in_review", updated_at=self.now)
            )
            if getattr(done, "rowcount", 0) != 1:
                raise Conflict("the request is no longer new", "status")
            await self._history(s, request_id, principal.person_id, "in_review", "")
            return await self._one(s, request_id)

    async def accept(
        self,
        principal: Principal,
        request_id: int,
        *,
        organization_id: int | None = None,
        role: str = "client",
        comment: str = "",
        address: str = "",
    ) -> LinkRequest:
        """Accept: the person joins the organization with ``role`` (client by default).

        Without ``organization_id`` the request's own organization is used, else one is
        made from its counterparty (or from the company it names).
        """
        current = await self.get(principal, request_id)
        if role not in {r.code for r in await self.companies.grantable_roles()}:
            raise CompanyError("this role cannot be given in an organization", "role")
        target = organization_id or current.organization_id
        if target is not None:
            allowed = await self.companies.allowed(principal, CONTACTS_MANAGE)
            if target not in allowed:
                raise CompanyError("no such organization", "organization_id")
            await self.companies.organization(target)
        async with self.host.db.session() as s:
            if target is None:
                target = await self._new_organization(s, current)
            done = await s.execute(
                update(link_request)
                .where(link_request.c.id == request_id, link_request.c.status.in_(OPEN))
                .values(
                    status="accepted",
                    organization_id=target,
                    role=role,
                    reason=comment.strip()[:2000],
                    decided_by=principal.person_id,
                    decided_at=self.now,
                    updated_at=self.now,
                )
            )
            if getattr(done, "rowcount", 0) != 1:
                # Rolls back the organization made above, too.
                raise Conflict("the request was already decided", "status")
            await self._history(
                s,
                request_id,
                principal.person_id,
                "accepted",
                comment.strip()[:2000],
                {"organization_id": target, "role": role},
            )
            await self.companies.add_member(s, current.person_id, target)
            # the grant commits with the decision or not at all
            with contextlib.suppress(RoleConflict):  # already held there: nothing to add
                await self.companies.roles.grant(
                    current.person_id,
                    role,
                    target,
                    actor=Actor(person_id=principal.person_id, address=address),
                    session=s,
                )
            info = await self._one(s, request_id)
            await self.host.events.publish(
                s, ev.REQUEST_ACCEPTED, _payload(info, actor=principal.person_id)
            )
        return info

    async def _new_organization(self, s: AsyncSession, current: LinkRequest) -> int:
        """The organization an accepted request creates (from its counterparty if known)."""
        cp = None
        if current.counterparty_id is not None:
            cp = (
                await s.execute(
                    select(counterparty).where(counterparty.c.id == current.counterparty_id)
                )
            ).first()
        if cp is not None and cp.organization_id is not None:
            return int(cp.organization_id)
        name = cp.name if cp is not None else (current.company_name or f"ИНН {current.inn}")
        org_id = await _insert_org(s, name, current.inn, current.kpp, self.now)
        if cp is not None:
            await s.execute(
                update(counterparty)
                .where(counterparty.c.id == cp.id)
                .values(organization_id=org_id, updated_at=self.now)
            )
        await self.host.events.publish(
            s,
            ev.ORGANIZATION_CREATED,
            ev.OrganizationChanged(organization_id=org_id, name=name, actor_id=None),
        )
        return org_id

    async def reject(self, principal: Principal, request_id: int, *, reason: str) -> LinkRequest:
        """Reject with a reason the person is told."""
        await self.get(principal, request_id)
        reason = reason.strip()[:2000]
        if not reason:
            raise CompanyError("give the reason: the person will read it", "reason")
        async with self.host.db.session() as s:
            done = await s.execute(
                update(link_request)
                .where(link_request.c.id == request_id, link_request.c.status.in_(OPEN))
                .values(
                    status="rejected",
                    reason=reason,
                    decided_by=principal.person_id,
                    decided_at=self.now,
                    updated_at=self.now,
                )
            )
            if getattr(done, "rowcount", 0) != 1:
                raise Conflict("the request was already decided", "status")
            await self._history(s, request_id, principal.person_id, "rejected", reason)
            info = await self._one(s, request_id)
            await self.host.events.publish(
                s, ev.REQUEST_REJECTED, _payload(info, actor=principal.person_id)
            )
        return info

    # -- internals --------------------------------------------------------------------------

    async def _history(
        self,
        s: AsyncSession,
        request_id: int,
        actor_id: int | None,
        action: str,
        comment: str,
        details: dict[str, Any] | None = None,
    ) -> None:
        await s.execute(
            insert(history_t).values(
                request_id=request_id,
                at=self.now,
                actor_id=actor_id,
                action=action,
                comment=comment,
                details=details or {},
            )
        )

    async def _one(self, s: AsyncSession, request_id: int) -> LinkRequest:
        row = (
            await s.execute(
                select(link_request, Account.full_name, organization.c.name.label("org_name"))
                .join(Account, Account.id == link_request.c.person_id)
                .outerjoin(organization, organization.c.id == link_request.c.organization_id)
                .where(link_request.c.id == request_id)
            )
        ).first()
        if row is None:
            raise NotFound("no such request", "request")
        events = (
            await s.execute(
                select(history_t, Account.full_name)
                .outerjoin(Account, Account.id == history_t.c.actor_id)
                .where(history_t.c.request_id == request_id)
                .order_by(history_t.c.at, history_t.c.id)
            )
        ).all()
        return LinkRequest(
            id=row.id,
            person_id=row.person_id,
            person_name=row.full_name,
            kind=row.kind,
            inn=row.inn,
            kpp=row.kpp,
            company_name=row.company_name,
            comment=row.comment,
            counterparty_id=row.counterparty_id,
            organization_id=row.organization_id,
            organization_name=row.org_name,
            status=row.status,
            role=row.role,
            reason=row.reason,
            decided_by=row.decided_by,
            decided_at=row.decided_at,
            created_at=row.created_at,
            history=[
                HistoryItem(
                    at=e.at,
                    actor_id=e.actor_id,
                    actor_name=e.full_name or "",
                    action=e.action,
                    comment=e.comment,
                )
                for e in events
            ],
        )


def _payload(info: LinkRequest, actor: int | None = None) -> ev.RequestChanged:
    return ev.RequestChanged(
        request_id=info.id,
        person_id=info.person_id,
        person_name=info.person_name,
        company=info.organization_name or info.company_name or f"ИНН {info.inn}",
        organization_id=info.organization_id,
        role=info.role,
        reason=info.reason,
        actor_id=actor,
    )
