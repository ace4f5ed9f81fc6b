"""Link requests read: their statuses and sorts, the values they are read into, where an
open one leads now (:func:`leads_to`) and one request with its history (:func:`read_one`).
The rules that change them are in :mod:`kabinet_companies.requests`."""

from __future__ import annotations

import datetime as dt
from typing import Any

import msgspec
from sqlalchemy import ColumnElement, case, func, null, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from kabinet import lists
from kabinet.identity.services import PEOPLE
from kabinet_companies import events as ev
from kabinet_companies.models import counterparty, link_request, organization
from kabinet_companies.models import request_event as history_t
from kabinet_companies.validation import NotFound

DECIDE = "companies.requests.decide"
OPEN = ("new", "in_review")
STATUSES = ("new", "in_review", "accepted", "rejected", "withdrawn")
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


def counterparty_now() -> ColumnElement[Any]:
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
        .where(cp.c.id == counterparty_now())
        .correlate(link_request)
        .scalar_subquery()
    )
    expression: ColumnElement[Any] = case(
        (link_request.c.status.not_in(OPEN), link_request.c.organization_id), else_=now
    )
    return expression


def name_of(org_id: ColumnElement[Any]) -> Any:
    """The name of the organization ``org_id`` (correlated with the request's row)."""
    return (
        select(organization.c.name)
        .where(organization.c.id == org_id)
        .correlate(link_request)
        .scalar_subquery()
    )


async def read_one(s: AsyncSession, request_id: int) -> LinkRequest:
    """One link request, where it leads now and its history (``NotFound`` if none)."""
    row = (
        await s.execute(
            select(
                link_request,
                PEOPLE.c.full_name,
                PEOPLE.c.email.label("person_email"),
                PEOPLE.c.phone.label("person_phone"),
                leads_to().label("lead_id"),
                name_of(leads_to()).label("org_name"),
                name_of(link_request.c.organization_id).label("asked_name"),
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


def payload(info: LinkRequest, actor: int | None = None) -> ev.RequestChanged:
    """The event payload telling what became of a request."""
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
