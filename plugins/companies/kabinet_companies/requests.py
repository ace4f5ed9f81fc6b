"""Link requests (a person asks to join a company) with their decision history.

A request by ИНН leads to the organization of that counterparty *as it is now*: the row
keeps the counterparty and organization found when the request was made, but a
counterparty may be put into an organization (or moved) afterwards, so where an open
request leads is resolved on every read and at the decision (:func:`leads_to`), never
taken from what was stored. One that leads nowhere yet (an unassigned or unknown
counterparty, or a new company) is accepted by creating an organization.

Who may see and decide a request: holders of ``companies.requests.decide`` who manage
contacts (``companies.contacts.manage``) in the organization it leads to; a request that
leads nowhere yet only those who hold that right in every organization (admins). The
same condition is part of the deciding update, so a request whose counterparty moved
between opening the page and deciding is refused, not decided by the wrong person.

Deciding is one conditional update (``status`` still open), so of two managers deciding
at once exactly one wins and the other is told it was decided; the grant follows the
winning commit, so it is never given twice.
"""

from __future__ import annotations

import contextlib
import datetime as dt
from typing import TYPE_CHECKING, Any

from sqlalchemy import (
    insert,
    or_,
    select,
    true,
    update,
)
from sqlalchemy.ext.asyncio import AsyncSession

from kabinet import lists
from kabinet.access import AllOrganizations, Principal
from kabinet.identity.services import PEOPLE
from kabinet.roles.services import Actor
from kabinet.roles.services import Conflict as RoleConflict
from kabinet_companies import events as ev
from kabinet_companies.models import counterparty, link_request, manager, organization
from kabinet_companies.models import request_event as history_t
from kabinet_companies.organizations import insert_org
from kabinet_companies.request_queries import DECIDE as DECIDE
from kabinet_companies.request_queries import OPEN as OPEN
from kabinet_companies.request_queries import REQUEST_SORTS as REQUEST_SORTS
from kabinet_companies.request_queries import STATUSES as STATUSES
from kabinet_companies.request_queries import HistoryItem as HistoryItem
from kabinet_companies.request_queries import LinkRequest as LinkRequest
from kabinet_companies.request_queries import counterparty_now, payload, read_one
from kabinet_companies.request_queries import leads_to as leads_to
from kabinet_companies.services import CONTACTS_MANAGE, CompaniesService
from kabinet_companies.validation import (
    CompanyError,
    Conflict,
    NotFound,
    bounded,
    clean_inn,
    clean_kpp,
)

if TYPE_CHECKING:
    from kabinet.host import Host

MOVED = "the request leads to another organization now: open it again"
"""Refusal of a decision whose request was moved (its counterparty) while deciding."""


class RequestsService:
    """Link requests for one host (``host.services.of(COMPANIES).requests``)."""

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
        company_name = bounded(company_name, link_request.c.company_name, "company_name")
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
            info = await read_one(s, request_id)
            await self.host.events.publish(s, ev.REQUEST_CREATED, payload(info))
        return info

    async def mine(self, person_id: int) -> list[LinkRequest]:
        async with self.host.db.reader() as s:
            ids = await s.scalars(
                select(link_request.c.id)
                .where(link_request.c.person_id == person_id)
                .order_by(link_request.c.created_at.desc(), link_request.c.id.desc())
            )
            return [await read_one(s, i) for i in ids]

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
            return await read_one(s, request_id)

    # -- staff ------------------------------------------------------------------------------

    async def _scope(self, principal: Principal) -> Any:
        """Requests a decider may see and decide: those leading (now) to an organization
        where they manage contacts. One leading nowhere yet (accepting it creates an
        organization) only a holder of that right everywhere sees. ``None``: no decider;
        ``True``: every request."""
        if not await self.companies.can(principal, DECIDE):
            return None
        orgs = await self.companies.allowed(principal, CONTACTS_MANAGE)
        if isinstance(orgs, AllOrganizations):
            return True
        return leads_to().in_(sorted(orgs) or [-1])

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
        query = select(link_request.c.id).join(PEOPLE, PEOPLE.c.id == link_request.c.person_id)
        if scope is not True:
            query = query.where(scope)
        if status in STATUSES:
            query = query.where(link_request.c.status == status)
        elif status == "open":
            query = query.where(link_request.c.status.in_(OPEN))
        if organization_id is not None:
            query = query.where(leads_to() == organization_id)
        if manager_id is not None:
            query = query.where(
                leads_to().in_(
                    select(manager.c.organization_id).where(manager.c.person_id == manager_id)
                )
            )
        if since is not None:
            query = query.where(link_request.c.created_at >= since)
        if until is not None:
            query = query.where(link_request.c.created_at < until)
        if q.strip():
            query = query.where(
                or_(
                    lists.search(q, PEOPLE.c.full_name, link_request.c.company_name),
                    lists.starts_with(link_request.c.inn, q.strip()),
                )
            )
        order = REQUEST_SORTS.order(sort)
        async with self.host.db.reader() as s:
            ids, total = await lists.page_scalars(s, query, order, limit=limit, offset=offset)
            return [await read_one(s, i) for i in ids], total

    async def get(self, principal: Principal, request_id: int) -> LinkRequest:
        """One request, if it leads (now) where ``principal`` may decide; else 404."""
        scope = await self._scope(principal)
        if scope is None:
            raise NotFound("no such request", "request")
        query = select(link_request.c.id).where(link_request.c.id == request_id)
        if scope is not True:
            query = query.where(scope)
        async with self.host.db.reader() as s:
            if await s.scalar(query) is None:
                raise NotFound("no such request", "request")
            return await read_one(s, request_id)

    async def review(self, principal: Principal, request_id: int) -> LinkRequest:
        """A manager takes the request into review (others see someone is on it)."""
        await self.get(principal, request_id)
        scope = await self._scope(principal)
        async with self.host.db.session() as s:
            await self._decide(
                s, request_id, scope, {"status": "in_review"}, statuses=("new",),
                decided="the request is no longer new",
            )  # fmt: skip
            await self._history(s, request_id, principal.person_id, "in_review", "")
            return await read_one(s, request_id)

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

        Without ``organization_id`` the organization the request leads to *now* is used,
        else one is made from its counterparty (or from the company it names). The
        decider must manage contacts in the organization the person joins (making one:
        in every organization); that is checked in the deciding transaction, and the
        deciding update holds only if the request still leads where it was checked.
        """
        current = await self.get(principal, request_id)
        if role not in {r.code for r in await self.companies.grantable_roles()}:
            raise CompanyError("this role cannot be given in an organization", "role")
        scope = await self._scope(principal)
        rights = await self.companies.allowed(principal, CONTACTS_MANAGE)
        comment = comment.strip()[:2000]
        async with self.host.db.session() as s:
            lead, cp_id = (
                await s.execute(
                    select(leads_to(), counterparty_now()).where(link_request.c.id == request_id)
                )
            ).one()
            target: int | None = organization_id or lead
            if organization_id:
                known = await s.scalar(
                    select(organization.c.id).where(organization.c.id == organization_id)
                )
                if organization_id not in rights or known is None:
                    raise CompanyError("no such organization", "organization_id")
            elif lead not in rights:
                # it leads (now) where the decider has no right; or nowhere (None), and
                # accepting makes an organization: only a global holder (ALL) holds it there
                raise NotFound("no such request", "request")
            decision: dict[str, Any] = {
                "status": "accepted",
                "role": role,
                "reason": comment,
                "decided_by": principal.person_id,
                "decided_at": self.now,
            }
            if target is not None:
                decision["organization_id"] = target
            await self._decide(
                s, request_id, scope, decision, lead=lead, check_lead=not organization_id
            )
            if target is None:
                # Rolls back with the decision if anything below fails.
                target = await self._new_organization(s, current, cp_id)
                await s.execute(
                    update(link_request)
                    .where(link_request.c.id == request_id)
                    .values(organization_id=target)
                )
            await self._history(
                s,
                request_id,
                principal.person_id,
                "accepted",
                comment,
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
            info = await read_one(s, request_id)
            await self.host.events.publish(
                s, ev.REQUEST_ACCEPTED, payload(info, actor=principal.person_id)
            )
        return info

    async def _new_organization(
        self, s: AsyncSession, current: LinkRequest, cp_id: int | None
    ) -> int:
        """The organization an accepted request creates, from the counterparty it names now
        (attached to it, if still in no organization) or from the company it names."""
        cp = None
        if cp_id is not None:
            cp = (await s.execute(select(counterparty).where(counterparty.c.id == cp_id))).first()
        name = cp.name if cp is not None else (current.company_name or f"ИНН {current.inn}")
        org_id = await insert_org(s, name, current.inn, current.kpp, self.now)
        if cp is not None:
            done = await s.execute(
                update(counterparty)
                .where(counterparty.c.id == cp.id, counterparty.c.organization_id.is_(None))
                .values(organization_id=org_id, updated_at=self.now)
            )
            if getattr(done, "rowcount", 0) != 1:
                raise Conflict(MOVED, "organization_id")
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
        scope = await self._scope(principal)
        async with self.host.db.session() as s:
            await self._decide(
                s,
                request_id,
                scope,
                {
                    "status": "rejected",
                    "reason": reason,
                    "decided_by": principal.person_id,
                    "decided_at": self.now,
                },
            )
            await self._history(s, request_id, principal.person_id, "rejected", reason)
            info = await read_one(s, request_id)
            await self.host.events.publish(
                s, ev.REQUEST_REJECTED, payload(info, actor=principal.person_id)
            )
        return info

    async def _decide(
        self,
        s: AsyncSession,
        request_id: int,
        scope: Any,
        values: dict[str, Any],
        *,
        statuses: tuple[str, ...] = OPEN,
        decided: str = "the request was already decided",
        lead: int | None = None,
        check_lead: bool = False,
    ) -> None:
        """The one conditional update of a decision: the request is still in ``statuses``,
        still leads (now, in this statement) where the decider may decide, and, with
        ``check_lead``, still leads to ``lead``. Else 409 if it was decided or moved
        meanwhile, 404 if it left the decider's organizations."""
        if scope is None:
            raise NotFound("no such request", "request")
        query = update(link_request).where(
            link_request.c.id == request_id, link_request.c.status.in_(statuses)
        )
        if scope is not True:
            query = query.where(scope)
        if check_lead:
            query = query.where(leads_to().is_not_distinct_from(lead))
        done = await s.execute(query.values(**values, updated_at=self.now))
        if getattr(done, "rowcount", 0) == 1:
            return
        visible = true() if scope is True else scope
        row = (
            await s.execute(
                select(link_request.c.status, visible.label("visible")).where(
                    link_request.c.id == request_id
                )
            )
        ).first()
        if row is None:
            raise NotFound("no such request", "request")
        if row.status not in statuses:
            raise Conflict(decided, "status")
        if not row.visible:
            raise NotFound("no such request", "request")
        raise Conflict(MOVED, "organization_id")

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
