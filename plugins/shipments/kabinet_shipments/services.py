"""Business rules of the shipments app: what a person may see, the registries, the card,
edit and cancel requests. Pages, the API, jobs and tests all call :class:`ShipmentsService`
(``host.services.of(SHIPMENTS)``).

The app's service keys live here, its public module: :data:`SHIPMENTS`, and
:data:`FINANCE` and :data:`EXPORTS` (declared beside their classes in ``finance`` and
``exports``, which import this module, and re-exported here lazily).

Every read starts from :meth:`ShipmentsService.scope`: the organizations in which the
person holds the permission (``host.access.organizations``), turned into the counterparties
of those organizations. An object outside the scope is "not found", never "forbidden".
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import re
from collections.abc import Mapping, Sequence, Set
from typing import TYPE_CHECKING, Any

from sqlalchemy import func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from kabinet.access import ALL, AllOrganizations, Principal
from kabinet.identity.services import identity_service
from kabinet.services import ServiceKey
from kabinet_companies.services import COUNTERPARTY_ROWS, ORGANIZATION_ROWS
from kabinet_shipments import events as ev
from kabinet_shipments import models as m
from kabinet_shipments.registry import (
    ORDER_SORTS,
    ORDER_TABS,
    OrderQuery,
    Page,
    order_filters,
    order_page,
    parse,
    tab_counts_of,
    tab_counts_statement,
)
from kabinet_shipments.settings import EDITABLE, Settings

if TYPE_CHECKING:
    from kabinet.host import Host
    from kabinet_shipments.exports import Exports
    from kabinet_shipments.finance import Finance

    FINANCE: ServiceKey[Finance]
    EXPORTS: ServiceKey[Exports]

VIEW = "shipments.orders.view"
REQUEST = "shipments.orders.request"
INVOICES = "shipments.invoices.view"
CONTRACTS = "shipments.contracts.view"
OPEN_REQUEST = ("pending", "new", "accepted")
CLOSED_ORDER = ("done", "cancelled")
_KEY_SAFE = re.compile(r"[^A-Za-z0-9._-]")
CHOICES = 50
"""Counterparties or contracts listed as a filter at most (more: pick an organization)."""


class NotFound(LookupError):
    """No such object in the person's scope (404: existence does not leak)."""


class RequestRefused(ValueError):
    """A request cannot be made; ``code`` picks the message shown, ``field`` the input."""

    def __init__(self, code: str, field: str = "", **details: str) -> None:
        super().__init__(code)
        self.code = code
        self.field = field
        self.details = details


@dataclasses.dataclass(frozen=True)
class Scope:
    """Where a person may look: organizations and their counterparties (None: all)."""

    organizations: Set[int] | AllOrganizations
    counterparties: tuple[int, ...] | None

    @property
    def everything(self) -> bool:
        return self.counterparties is None

    @property
    def empty(self) -> bool:
        return self.counterparties == ()

    @property
    def several(self) -> bool:
        """More than one organization: pages then name each row's organization."""
        if self.everything or isinstance(self.organizations, AllOrganizations):
            return True
        return len(self.organizations) > 1


def file_key(file_ref: str) -> str:
    """Where a document's file lives in the host's file storage."""
    return f"shipments/documents/{_KEY_SAFE.sub('_', file_ref)}"


ASK_AGAIN = dt.timedelta(minutes=10)
"""A file opened while not stored is asked for (once); still not stored this long after,
it is asked for again when opened: its copy was lost from the storage after it was
fetched, or the fetch failed (the fetch asked for takes seconds). The integration does not
watch the storage for lost copies."""


def ask_for_file(requested_at: dt.datetime | None, now: dt.datetime) -> bool:
    """Whether a file opened now and not stored is asked for from the production system:
    never asked yet (or asked again since 1C replaced it), or asked :data:`ASK_AGAIN` ago."""
    return requested_at is None or now - _aware(requested_at) >= ASK_AGAIN


class ShipmentsService:
    def __init__(self, host: Host) -> None:
        self.host = host

    @property
    def settings(self) -> Settings:
        return self.host.plugin_settings("shipments", Settings)

    def today(self) -> dt.date:
        return self.host.clock.now().astimezone(_zone(self.host)).date()

    def zone_of(self, principal: Principal, tz: str = "") -> dt.tzinfo:
        """The reader's time zone: ``tz``, else their own setting, else the portal's."""
        from kabinet.i18n import zone

        own = tz or getattr(principal, "timezone", "") or self.host.settings.host.timezone
        return zone(str(own))

    # -- scope ---------------------------------------------------------------------------------

    async def scope(
        self, principal: Principal, code: str, organization_id: int | None = None
    ) -> Scope:
        orgs = await self.host.access.organizations(principal, code)
        if organization_id is not None:
            if organization_id not in orgs:
                return Scope(frozenset(), ())
            orgs = frozenset({organization_id})
        if isinstance(orgs, AllOrganizations):
            return Scope(ALL, None)
        if not orgs:
            return Scope(frozenset(), ())
        async with self.host.db.read_connection() as conn:
            rows = await conn.execute(
                select(COUNTERPARTY_ROWS.c.id).where(
                    COUNTERPARTY_ROWS.c.organization_id.in_(sorted(orgs))
                )
            )
            ids = tuple(sorted(r.id for r in rows))
        return Scope(frozenset(orgs), ids)

    async def choices(self, scope: Scope, narrowed: Scope) -> dict[str, list[dict[str, Any]]]:
        """What to filter by, for people in several: the organizations of ``scope``; the
        counterparties and contracts of ``narrowed`` (the organization picked, if any) when
        there are at most :data:`CHOICES` of them (a manager of many organizations picks
        one first, rather than scrolling a list of hundreds)."""
        found: dict[str, list[dict[str, Any]]] = {
            "organizations": [],
            "counterparties": [],
            "contracts": [],
        }
        if scope.empty:
            return found
        orgs = select(ORGANIZATION_ROWS.c.id, ORGANIZATION_ROWS.c.name)
        cps = select(
            COUNTERPARTY_ROWS.c.id, COUNTERPARTY_ROWS.c.name, COUNTERPARTY_ROWS.c.organization_id
        )
        contracts = select(m.contract.c.id, m.contract.c.number, m.contract.c.counterparty_id)
        if scope.counterparties is not None:
            assert not isinstance(scope.organizations, AllOrganizations)
            orgs = orgs.where(ORGANIZATION_ROWS.c.id.in_(sorted(scope.organizations)))
        if narrowed.counterparties is not None:
            cps = cps.where(COUNTERPARTY_ROWS.c.id.in_(narrowed.counterparties))
            contracts = contracts.where(m.contract.c.counterparty_id.in_(narrowed.counterparties))
        async with self.host.db.read_connection() as conn:
            limit = 500  # a filter list, not a registry: staff search the registry instead
            if scope.several:
                rows = await conn.execute(orgs.order_by("name").limit(limit))
                found["organizations"] = [dict(r._mapping) for r in rows]
            if narrowed.empty:
                return found
            if narrowed.counterparties is None or len(narrowed.counterparties) <= CHOICES:
                rows = await conn.execute(cps.order_by("name").limit(CHOICES + 1))
                found["counterparties"] = [dict(r._mapping) for r in rows]
            rows = await conn.execute(
                contracts.where(~m.contract.c.hidden)
                .order_by(m.contract.c.number)
                .limit(CHOICES + 1)
            )
            found["contracts"] = [dict(r._mapping) for r in rows]
        for key in ("counterparties", "contracts"):
            if len(found[key]) > CHOICES:
                found[key] = []
        return found

    # -- the order registry ----------------------------------------------------------------

    def parse_orders(self, params: Mapping[str, str]) -> OrderQuery:
        s = self.settings
        values = dict(params)
        values.setdefault("size", str(s.page_size))
        query: OrderQuery = parse(OrderQuery, values, s.page_sizes, ORDER_SORTS, ORDER_TABS)
        return query

    async def orders(
        self,
        principal: Principal,
        query: OrderQuery,
        *,
        with_names: bool = False,
        scope: Scope | None = None,
    ) -> tuple[Page, Scope]:
        if scope is None:
            scope = await self.scope(principal, VIEW, query.organization)
        if scope.empty:
            return Page([], None, None), scope
        conds = order_filters(query, scope.counterparties, self.today(), self.zone_of(principal))
        if query.status:
            conds.append(m.order.c.status == query.status)
        async with self.host.db.read_connection() as conn:
            page = await order_page(conn, query, conds, with_names)
        return page, scope

    async def tab_counts(
        self, principal: Principal, query: OrderQuery, *, scope: Scope | None = None
    ) -> dict[str, int]:
        """Orders per tab (all and each status) under the query's other filters, bounded:
        one statement (see :func:`registry.tab_counts_statement`)."""
        if scope is None:
            scope = await self.scope(principal, VIEW, query.organization)
        if scope.empty:
            return dict.fromkeys(ORDER_TABS, 0)
        conds = order_filters(query, scope.counterparties, self.today(), self.zone_of(principal))
        bound = self.settings.count_bound
        async with self.host.db.read_connection() as conn:
            rows = (await conn.execute(tab_counts_statement(conds, bound))).all()
        return tab_counts_of(rows, bound)

    # -- the order card --------------------------------------------------------------------

    async def _order_row(
        self, db: AsyncSession | AsyncConnection, orgs: Set[int] | AllOrganizations, order_id: int
    ) -> Any:
        """:meth:`_visible_order`, or :class:`NotFound`."""
        row = await self._visible_order(db, orgs, order_id)
        if row is None:
            raise NotFound(f"no order {order_id}")
        return row

    async def _visible_order(
        self, db: AsyncSession | AsyncConnection, orgs: Set[int] | AllOrganizations, order_id: int
    ) -> Any:
        """The order with its counterparty and contract, if it is in ``orgs`` (read through
        the counterparty's organization in the same statement), else None."""
        if not isinstance(orgs, AllOrganizations) and not orgs:
            return None
        stmt = (
            select(
                m.order,
                COUNTERPARTY_ROWS.c.name.label("counterparty_name"),
                COUNTERPARTY_ROWS.c.inn.label("counterparty_inn"),
                COUNTERPARTY_ROWS.c.organization_id,
                m.contract.c.number.label("contract_number"),
                m.contract.c.date.label("contract_date"),
            )
            .join(COUNTERPARTY_ROWS, COUNTERPARTY_ROWS.c.id == m.order.c.counterparty_id)
            .outerjoin(m.contract, m.contract.c.id == m.order.c.contract_id)
            .where(m.order.c.id == order_id, ~m.order.c.hidden)
        )
        if not isinstance(orgs, AllOrganizations):
            stmt = stmt.where(COUNTERPARTY_ROWS.c.organization_id.in_(sorted(orgs)))
        return (await db.execute(stmt)).first()

    async def order(self, principal: Principal, order_id: int, code: str = VIEW) -> Any:
        """The order as its card heads it, if ``principal`` holds ``code`` in its
        organization (:class:`NotFound` else). Read in the request's unit of work
        (``host.db.reader()``), so it sees what the request wrote before."""
        orgs = await self.host.access.organizations(principal, code)
        async with self.host.db.reader() as session:
            row = await self._visible_order(session, orgs, order_id)
        if row is None:
            raise NotFound(f"no order {order_id}")
        return row

    async def order_by_key(self, session: AsyncSession, external_id: str) -> tuple[int, str] | None:
        """The id and number of the order the production system knows by ``external_id``
        (its ``Ref_Key``), read in the caller's session: an app applying 1C's answer in the
        sync's transaction sees an order the same delta brought before it. No access
        check: the caller holds the key and says who may see what it shows."""
        found = (
            await session.execute(
                select(m.order.c.id, m.order.c.number).where(m.order.c.external_id == external_id)
            )
        ).first()
        return None if found is None else (int(found.id), str(found.number))

    async def _card_parts(self, session: AsyncSession, order_id: int) -> tuple[Any, ...]:
        """The card's lists of one order: history, requests, their events, invoices,
        services, vehicles, documents (the request events only where there are requests)."""

        async def lines(table: Any) -> list[Any]:
            stmt = select(table).where(table.c.order_id == order_id).order_by(table.c.line)
            return list((await session.execute(stmt)).all())

        history = (
            await session.execute(
                select(m.status_change)
                .where(m.status_change.c.order_id == order_id)
                .order_by(m.status_change.c.received_at.desc(), m.status_change.c.id.desc())
            )
        ).all()
        requests = (
            await session.execute(
                select(m.request)
                .where(m.request.c.order_id == order_id)
                .order_by(m.request.c.id.desc())
            )
        ).all()
        req_events = (
            (
                await session.execute(
                    select(m.request_event)
                    .where(m.request_event.c.request_id.in_([r.id for r in requests]))
                    .order_by(m.request_event.c.at, m.request_event.c.id)
                )
            ).all()
            if requests
            else []
        )
        invoices = (
            await session.execute(
                select(m.invoice)
                .where(m.invoice.c.order_id == order_id, m.invoice.c.hidden.is_(False))
                .order_by(m.invoice.c.date)
            )
        ).all()
        services = await lines(m.order_service)
        vehicles = await lines(m.vehicle)
        documents = await lines(m.document)
        return history, requests, req_events, invoices, services, vehicles, documents

    async def order_card(self, principal: Principal, order_id: int) -> dict[str, Any]:
        """Everything the card shows, in a few queries: the order and its organization in
        one, then its history, requests, invoices and lines, all in the request's unit of
        work (``host.db.reader()``: what the request wrote before is seen)."""
        orgs = await self.host.access.organizations(principal, VIEW)
        async with self.host.db.reader() as session:
            row = await self._visible_order(session, orgs, order_id)
            parts = None if row is None else await self._card_parts(session, order_id)
        if parts is None:
            raise NotFound(f"no order {order_id}")
        history, requests, req_events, invoices, services, vehicles, documents = parts
        found = await asyncio.gather(*(self._stored(d) for d in documents))
        now = self.host.clock.now()
        stored = {d.id: ok for d, ok in zip(documents, found, strict=True)}
        by_request: dict[int, list[Any]] = {}
        for e in req_events:
            by_request.setdefault(e.request_id, []).append(e)
        return {
            "order": row,
            "history": history,
            "services": services,
            "vehicles": vehicles,
            "documents": [
                {
                    "row": d,
                    "stored": stored[d.id],
                    # Asked for and on its way (else the card offers it: opened, it is asked)
                    "preparing": not stored[d.id] and not ask_for_file(d.requested_at, now),
                }
                for d in documents
            ],
            "requests": [{"row": r, "events": by_request.get(r.id, [])} for r in requests],
            "invoices": invoices,
            "editable": [(f, EDITABLE[f]) for f in self.settings.editable_fields],
            "can_request": await self.host.access.can(principal, REQUEST, row.organization_id)
            if row.organization_id is not None
            else False,
            "open_kinds": {r.kind for r in requests if r.status in OPEN_REQUEST},
            "closed": row.status in CLOSED_ORDER,
        }

    async def _stored(self, doc: Any) -> bool:
        return bool(doc.file_ref) and await self.host.files.exists(file_key(doc.file_ref))

    async def document(
        self, principal: Principal, order_id: int, document_id: int
    ) -> tuple[Any, str | None]:
        """A document of a visible order and its file key, or ``None`` while it is prepared.

        A file not stored yet is asked for (one event, however often the person clicks,
        until :data:`ASK_AGAIN` has passed).
        """
        orgs = await self.host.access.organizations(principal, VIEW)
        async with self.host.db.session() as session:
            conn = await session.connection()
            order = await self._order_row(conn, orgs, order_id)
            doc = (
                await conn.execute(
                    select(m.document).where(
                        m.document.c.id == document_id, m.document.c.order_id == order_id
                    )
                )
            ).first()
            if doc is None or not doc.file_ref:
                raise NotFound(f"no document {document_id} with a file in order {order_id}")
            key = file_key(doc.file_ref)
            if await self.host.files.exists(key):
                return doc, key
            if ask_for_file(doc.requested_at, self.host.clock.now()):
                await conn.execute(
                    update(m.document)
                    .where(m.document.c.id == doc.id)
                    .values(requested_at=self.host.clock.now())
                )
                await self.host.events.publish(
                    session,
                    ev.DOCUMENT_REQUESTED,
                    ev.DocumentRequested(
                        document_id=doc.id,
                        order_id=order_id,
                        order_external_id=order.external_id,
                        file_ref=doc.file_ref,
                        key=key,
                    ),
                )
            return doc, None

    # -- edit and cancel requests ----------------------------------------------------------

    def check_changes(self, changes: Mapping[str, str]) -> dict[str, str]:
        """Only allowed fields, each of its type; empty values are dropped."""
        allowed = self.settings.editable_fields
        clean: dict[str, str] = {}
        for name, raw in changes.items():
            value = raw.strip()
            if not value:
                continue
            if name not in allowed:
                raise RequestRefused("field_not_allowed", name, field_name=name)
            kind = EDITABLE[name]
            if kind == "date":
                try:
                    value = dt.date.fromisoformat(value).isoformat()
                except ValueError:
                    raise RequestRefused("bad_date", name) from None
            elif kind == "int":
                if not value.isdigit() or int(value) > 1_000_000:
                    raise RequestRefused("bad_int", name)
            elif len(value) > 300:
                raise RequestRefused("too_long", name)
            clean[name] = value
        return clean

    async def create_request(
        self,
        principal: Principal,
        order_id: int,
        kind: str,
        *,
        changes: Mapping[str, str] | None = None,
        comment: str = "",
    ) -> int:
        """Record a pending request and publish it for the production system."""
        if kind not in ("edit", "cancel"):
            raise RequestRefused("bad_kind", "kind")
        comment = comment.strip()
        if len(comment) > 2000:
            raise RequestRefused("too_long", "comment")
        clean = self.check_changes(changes or {}) if kind == "edit" else {}
        if kind == "edit" and not clean:
            raise RequestRefused("no_changes", "changes")
        if kind == "cancel" and not comment:
            raise RequestRefused("comment_required", "comment")
        orgs = await self.host.access.organizations(principal, REQUEST)
        now = self.host.clock.now()
        email = await self._email(principal.person_id)
        async with self.host.db.session() as session:
            conn = await session.connection()
            order = await self._order_row(conn, orgs, order_id)
            if order.status in CLOSED_ORDER:
                raise RequestRefused(f"order_{order.status}", "kind")
            open_same = (
                await conn.execute(
                    select(m.request.c.id).where(
                        m.request.c.order_id == order_id,
                        m.request.c.kind == kind,
                        m.request.c.status.in_(OPEN_REQUEST),
                    )
                )
            ).first()
            if open_same is not None:
                raise RequestRefused(f"open_{kind}", "kind")
            # The key 1C knows the request by: never the row id, which another portal
            # (staging, a re-created database) writing to the same 1C has too.
            portal_key = m.new_portal_key()
            request_id = (
                await conn.execute(
                    insert(m.request)
                    .values(
                        order_id=order_id,
                        kind=kind,
                        status="pending",
                        changes=clean,
                        comment=comment,
                        person_id=principal.person_id,
                        person_name=principal.name,
                        portal_key=portal_key,
                        created_at=now,
                        updated_at=now,
                    )
                    .returning(m.request.c.id)
                )
            ).scalar_one()
            await conn.execute(
                insert(m.request_event).values(
                    request_id=request_id, status="pending", text=comment, at=now
                )
            )
            await self.host.events.publish(
                session,
                ev.REQUEST_CREATED,
                ev.RequestCreated(
                    request_id=request_id,
                    portal_id=portal_key,
                    order_id=order_id,
                    order_external_id=order.external_id,
                    order_number=order.number,
                    organization_id=order.organization_id,
                    kind=kind,
                    changes=clean,
                    comment=comment,
                    person_id=principal.person_id,
                    person_name=principal.name,
                    person_email=email,
                    asked_at_source=now.astimezone(self._source_zone())
                    .replace(tzinfo=None, microsecond=0)
                    .isoformat(),
                ),
            )
        return int(request_id)

    def _source_zone(self) -> Any:
        from zoneinfo import ZoneInfo

        return ZoneInfo(self.settings.source_timezone)

    async def _email(self, person_id: int | None) -> str:
        """The person's e-mail (identity's public query), or ""."""
        if person_id is None:
            return ""
        person = (await identity_service(self.host).people([person_id])).get(person_id)
        return (person.email if person else None) or ""

    async def requests(
        self, principal: Principal, *, status: str = "", limit: int = 100
    ) -> list[Any]:
        scope = await self.scope(principal, VIEW)
        if scope.empty:
            return []
        stmt = (
            select(m.request, m.order.c.number.label("order_number"))
            .join(m.order, m.order.c.id == m.request.c.order_id)
            .order_by(m.request.c.id.desc())
            .limit(limit)
        )
        if scope.counterparties is not None:
            stmt = stmt.where(m.order.c.counterparty_id.in_(scope.counterparties))
        if status:
            stmt = stmt.where(m.request.c.status == status)
        async with self.host.db.read_connection() as conn:
            return list((await conn.execute(stmt)).all())

    async def last_update(self) -> dt.datetime | None:
        """When data was last received from the production system."""
        async with self.host.db.read_connection() as conn:
            value = (await conn.execute(select(func.max(m.feed.c.received_at)))).scalar()
        return _aware(value) if value is not None else None


def _aware(value: dt.datetime) -> dt.datetime:
    return value if value.tzinfo is not None else value.replace(tzinfo=dt.UTC)


def _zone(host: Host) -> Any:
    from zoneinfo import ZoneInfo

    return ZoneInfo(host.settings.host.timezone)


def visible(scope: Scope, counterparty_ids: Sequence[int]) -> bool:
    return scope.counterparties is None or all(c in scope.counterparties for c in counterparty_ids)


SHIPMENTS: ServiceKey[ShipmentsService] = ServiceKey("shipments", ShipmentsService)


def __getattr__(name: str) -> Any:
    """``FINANCE`` and ``EXPORTS``: their modules import this one, so they are read late."""
    if name == "FINANCE":
        from kabinet_shipments.finance import FINANCE

        return FINANCE
    if name == "EXPORTS":
        from kabinet_shipments.exports import EXPORTS

        return EXPORTS
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
