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

import msgspec
from sqlalchemy import (
    ColumnElement,
    case,
    func,
    insert,
    null,
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

DECIDE = "companies.requests.decide"
OPEN = ("new", "in_review")
STATUSES = ("new", "in_review", "accepted", "rejected", "withdrawn")
MOVED = "the request leads to another organization now: open it again"
"""Refusal of a decision whose request was moved (its counterparty) while deciding."""
REQUEST_SORTS = lists.Sorts(
    {
        "created": (link_request.c.created_at, link_request.c.id),
        "-created": (link_request.c.created_at.desc(), link_request.c.id.desc()),
        "status": (link_request.c.status, link_request.c.id.desc()),
        "person": (PEOPLE.c.full_name, link_request.c.id),
        "decided": (link_request.c.decided_at.desc(), link_request.c.id.desc()),
    },
    default="-created",
)
"""What ``?sort=`` may name on the link requests' page and API (another name: a 400)."""


class HistoryItem(msgspec.Struct, kw_only=True):
    at: dt.datetime
    actor_id: int | None
    actor_name: str
    action: str
    comment: str


class LinkRequest(msgspec.Struct, kw_only=True):
    """A link request. ``organization_id``/``organization_name``: where it leads (while
    open, resolved now from its counterparty; ``None``: accepting creates an organization),
    or where it led once decided. ``asked_organization_*``: what it named when it was made
    (open requests only); ``target_changed``: an open request leads elsewhere now."""

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
    asked_organization_id: int | None = None
    asked_organization_name: str | None = None
    target_changed: bool = False
    person_email: str = ""
    """How to reach the person who asks (staff deciding may call or write)."""
    person_phone: str = ""
    history: list[HistoryItem] = msgspec.field(default_factory=list)


def _counterparty_now() -> ColumnElement[Any]:
    """The counterparty an open ИНН request names now, as an SQL expression over
    ``link_request``: the one it was made for while that is still shown, else the first
    shown one with its ИНН (and КПП, when the request gives one), those in an
    organization first; NULL for a new company or an unknown ИНН."""
    cp = counterparty.alias("now_cp")
    kept = (
        select(cp.c.id)
        .where(cp.c.id == link_request.c.counterparty_id, cp.c.hidden.is_(False))
        .correlate(link_request)
        .scalar_subquery()
    )
    by_inn = (
        select(cp.c.id)
        .where(
            cp.c.hidden.is_(False),
            cp.c.inn == link_request.c.inn,
            or_(link_request.c.kpp.is_(None), cp.c.kpp == link_request.c.kpp),
        )
        .order_by(cp.c.organization_id.is_(None), cp.c.id)
        .limit(1)
        .correlate(link_request)
        .scalar_subquery()
    )
    expression: ColumnElement[Any] = case(
        (link_request.c.kind == "new", null()), else_=func.coalesce(kept, by_inn)
    )
    return expression


def leads_to() -> ColumnElement[Any]:
    """Where a request leads, as an SQL expression over ``link_request``: while open, the
    organization of the counterparty it names now (NULL for a new company or a
    counterparty in no organization: accepting makes one); once decided, the stored one
    (where it led)."""
    cp = counterparty.alias("lead_cp")
    now = (
        select(cp.c.organization_id)
        .where(cp.c.id == _counterparty_now())
        .correlate(link_request)
        .scalar_subquery()
    )
    expression: ColumnElement[Any] = case(
        (link_request.c.status.not_in(OPEN), link_request.c.organization_id), else_=now
    )
    return expression


def _name_of(org_id: ColumnElement[Any]) -> Any:
    """The name of the organization ``org_id`` (correlated with the request's row)."""
    return (
        select(organization.c.name)
        .where(organization.c.id == org_id)
        .correlate(link_request)
        .scalar_subquery()
    )


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
            info = await self._one(s, request_id)
            await self.host.events.publish(s, ev.REQUEST_CREATED, _payload(info))
        return info

    async def mine(self, person_id: int) -> list[LinkRequest]:
        async with self.host.db.reader() as s:
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
            return [await self._one(s, i) for i in ids], total

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
            return await self._one(s, request_id)

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
                    select(leads_to(), _counterparty_now()).where(link_request.c.id == request_id)
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
            info = await self._one(s, request_id)
            await self.host.events.publish(
                s, ev.REQUEST_ACCEPTED, _payload(info, actor=principal.person_id)
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
            info = await self._one(s, request_id)
            await self.host.events.publish(
                s, ev.REQUEST_REJECTED, _payload(info, actor=principal.person_id)
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

    async def _one(self, s: AsyncSession, request_id: int) -> LinkRequest:
        row = (
            await s.execute(
                select(
                    link_request,
                    PEOPLE.c.full_name,
                    PEOPLE.c.email.label("person_email"),
                    PEOPLE.c.phone.label("person_phone"),
                    leads_to().label("lead_id"),
                    _name_of(leads_to()).label("org_name"),
                    _name_of(link_request.c.organization_id).label("asked_name"),
                )
                .join(PEOPLE, PEOPLE.c.id == link_request.c.person_id)
                .where(link_request.c.id == request_id)
            )
        ).first()
        if row is None:
            raise NotFound("no such request", "request")
        events = (
            await s.execute(
                select(history_t, PEOPLE.c.full_name)
                .outerjoin(PEOPLE, PEOPLE.c.id == history_t.c.actor_id)
                .where(history_t.c.request_id == request_id)
                .order_by(history_t.c.at, history_t.c.id)
            )
        ).all()
        is_open = row.status in OPEN
        return LinkRequest(
            id=row.id,
            person_id=row.person_id,
            person_name=row.full_name,
            person_email=row.person_email or "",
            person_phone=row.person_phone or "",
            kind=row.kind,
            inn=row.inn,
            kpp=row.kpp,
            company_name=row.company_name,
            comment=row.comment,
            counterparty_id=row.counterparty_id,
            organization_id=row.lead_id,
            organization_name=row.org_name,
            asked_organization_id=row.organization_id if is_open else None,
            asked_organization_name=row.asked_name if is_open else None,
            target_changed=is_open and row.organization_id != row.lead_id,
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
