"""What the staff pages and the API read: runs, quarantine, outbound requests, files,
and the readiness of each source; the keys of the services the app publishes
(:data:`INTEGRATION`, :data:`REQUESTS`, :data:`OUTBOUND`)."""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Set
from typing import TYPE_CHECKING, Any

from sqlalchemy import ColumnElement, Select, false, func, or_, select

from kabinet import lists
from kabinet.access import AllOrganizations, Principal
from kabinet.services import ServiceKey
from kabinet_companies.services import COUNTERPARTY_ROWS
from kabinet_integration import models as m
from kabinet_integration.outbound import Outbound
from kabinet_integration.settings import Settings
from kabinet_integration.sync import SyncService

if TYPE_CHECKING:
    from kabinet.host import Host


def _runs(source: str) -> Select[Any]:
    stmt = select(m.run)
    return stmt.where(m.run.c.source == source) if source else stmt


async def runs(host: Host, *, source: str = "", limit: int = 50, offset: int = 0) -> list[Any]:
    """Sync runs, newest first (``offset``: the rows of the pages before)."""
    stmt = lists.window(_runs(source), (m.run.c.id.desc(),), limit=limit, offset=offset)
    async with host.db.reader() as s:
        return list(await s.execute(stmt))


async def count_runs(host: Host, *, source: str = "") -> int:
    """How many runs :func:`runs` pages through."""
    async with host.db.reader() as s:
        return await lists.count(s, _runs(source))


VIEW = "integration.runs.view"
MANAGE = "integration.runs.manage"


@dataclasses.dataclass(frozen=True)
class QuarantineScope:
    """Which records of the app one principal may see (list, count, detail, act on): the
    quarantined ones, the outbound queue's client requests and the file fetches.

    A record belongs to the organization of its counterparty (its ``counterparty``
    column: the one a quarantined 1C object names, a request's, the one of the order or
    invoice holding a file; :mod:`kabinet_integration.owners`), matched to the companies
    app's counterparty by its external id at every read: a counterparty moved to another
    organization takes its records along. Staff see the records of the organizations in
    which they hold ``integration.runs.view`` (a manager: the organizations assigned to
    them; an admin or a global role: all). A record tied to no organization (it names no
    counterparty, or one the portal does not know or has not linked to an organization)
    is seen only by holders of ``integration.runs.manage`` in every organization
    (admins)."""

    organizations: Set[int] | AllOrganizations
    untied: bool
    """Whether the records tied to no organization are seen too."""

    def where(self) -> ColumnElement[bool] | None:
        """The condition on ``integration_quarantine`` (``None``: every record)."""
        return self.on(m.quarantine.c.counterparty)

    def on(self, counterparty: ColumnElement[Any]) -> ColumnElement[bool] | None:
        """The condition on a table whose ``counterparty`` column is given (``None``:
        every row)."""
        cp = COUNTERPARTY_ROWS.c

        def tied(*also: ColumnElement[bool]) -> ColumnElement[bool]:
            return select(cp.id).where(cp.external_id == counterparty, *also).exists()

        linked = tied(cp.organization_id.is_not(None))
        if isinstance(self.organizations, AllOrganizations):
            return None if self.untied else linked
        orgs = sorted(self.organizations)
        mine = tied(cp.organization_id.in_(orgs)) if orgs else false()
        return or_(mine, counterparty.is_(None), ~linked) if self.untied else mine

    def filter(self, stmt: Select[Any], counterparty: ColumnElement[Any]) -> Select[Any]:
        """``stmt`` narrowed to what this scope sees (:meth:`on`)."""
        seen = self.on(counterparty)
        return stmt if seen is None else stmt.where(seen)


async def quarantine_scope(host: Host, principal: Principal, code: str = VIEW) -> QuarantineScope:
    """What ``principal`` may see of the quarantine, the outbound queue and the file
    fetches (see :class:`QuarantineScope`); ``code``: the right whose organizations count
    (an action on a record needs ``integration.runs.manage`` in the record's
    organization, as reading needs ``integration.runs.view``). Untied records need
    ``integration.runs.manage`` in every organization (a role assigned to some does not
    reach a record of no organization: it may be any company's)."""
    managed = await host.access.organizations(principal, MANAGE)
    return QuarantineScope(
        await host.access.organizations(principal, code),
        untied=isinstance(managed, AllOrganizations),
    )


async def quarantined(
    host: Host,
    scope: QuarantineScope,
    *,
    source: str = "",
    entity: str = "",
    state: str = "open",
    limit: int = 200,
    before: int | None = None,
    offset: int = 0,
) -> list[Any]:
    """Quarantined records, newest first; ``before``: only those older than that id (the
    API's keyset pages); ``offset``: the rows of the pages before (the page's pager)."""
    stmt = _quarantine_filters(
        select(m.quarantine), scope, source=source, entity=entity, state=state
    )
    if before is not None:
        stmt = stmt.where(m.quarantine.c.id < before)
    order = (m.quarantine.c.id.desc(),)
    stmt = lists.window(stmt, order, limit=limit, offset=offset)
    async with host.db.reader() as s:
        return list(await s.execute(stmt))


async def count_quarantined(
    host: Host, scope: QuarantineScope, *, source: str = "", entity: str = "", state: str = "open"
) -> int:
    """How many records :func:`quarantined` pages through with these filters."""
    stmt = _quarantine_filters(
        select(m.quarantine), scope, source=source, entity=entity, state=state
    )
    async with host.db.reader() as s:
        return await lists.count(s, stmt)


def _quarantine_filters(
    stmt: Select[Any], scope: QuarantineScope, *, source: str, entity: str, state: str
) -> Select[Any]:
    seen = scope.where()
    if seen is not None:
        stmt = stmt.where(seen)
    if source:
        stmt = stmt.where(m.quarantine.c.source == source)
    if entity:
        stmt = stmt.where(m.quarantine.c.entity == entity)
    if state:
        stmt = stmt.where(m.quarantine.c.state == state)
    return stmt


async def quarantined_one(host: Host, scope: QuarantineScope, item_id: int) -> Any | None:
    """One record by id, ``None`` when there is none or ``scope`` does not see it."""
    stmt = select(m.quarantine).where(m.quarantine.c.id == item_id)
    seen = scope.where()
    if seen is not None:
        stmt = stmt.where(seen)
    async with host.db.reader() as s:
        return (await s.execute(stmt)).one_or_none()


async def outbound(host: Host, scope: QuarantineScope, *, limit: int = 50) -> list[Any]:
    """Client requests not carried to 1C yet (or failing), newest first, of ``scope``."""
    stmt = scope.filter(select(m.outbound), m.outbound.c.counterparty)
    stmt = stmt.where(m.outbound.c.state != "sent").order_by(m.outbound.c.id.desc())
    async with host.db.reader() as s:
        return list(await s.execute(stmt.limit(limit)))


async def outbound_one(host: Host, scope: QuarantineScope, item_id: int) -> Any | None:
    """One outbound row by id, ``None`` when there is none or ``scope`` does not see it."""
    stmt = scope.filter(select(m.outbound), m.outbound.c.counterparty)
    async with host.db.reader() as s:
        return (await s.execute(stmt.where(m.outbound.c.id == item_id))).one_or_none()


class RequestStates:
    """The :data:`REQUESTS` service: whether client requests go to a 1C, and
    each request's transport state (its outbound row: pending, sending, sent, failed) by
    its portal key; the shipments app shows them to staff who answer stuck requests."""

    def __init__(self, host: Host) -> None:
        self.host = host

    def connected(self) -> bool:
        from kabinet_integration.files import target_source

        return target_source(self.host) is not None

    async def states(self, keys: list[str]) -> dict[str, Any]:
        t = m.outbound.c
        stmt = select(t.portal_id, t.state, t.attempts, t.last_error, t.updated_at).where(
            t.portal_id.in_(keys)
        )
        async with self.host.db.reader() as s:
            return {r.portal_id: r for r in await s.execute(stmt)}


INTEGRATION: ServiceKey[SyncService] = ServiceKey("integration", SyncService)
"""The sync service (runs, connectors, sinks), one per host: ``integration(host)``."""
REQUESTS: ServiceKey[RequestStates] = ServiceKey("integration.requests", RequestStates)
"""Client requests' transport toward 1C; a plugin that only may find it (shipments) reads
it with a protocol of its own under the same name."""
OUTBOUND: ServiceKey[Outbound] = ServiceKey("integration.outbound", Outbound)
"""The public outbound contract: ``host.services.of(OUTBOUND).hand_over(session, record)``
queues a :class:`kabinet_integration.structs.OutboundRecord` in the caller's transaction,
carried to 1C exactly once; 1C's answer comes back to the record's ``reply_to`` sink
(:class:`kabinet_integration.outbound.Outbound` has an example). A plugin that only may
find it reads it with a protocol of its own under the same name and passes a mapping."""


async def failing_files(host: Host, scope: QuarantineScope, *, limit: int = 50) -> list[Any]:
    """Files 1C could not give (not fetched, with 1C's error), latest first, of ``scope``."""
    stmt = (
        scope.filter(select(m.file), m.file.c.counterparty)
        .where(m.file.c.state != "fetched", m.file.c.last_error.is_not(None))
        .order_by(m.file.c.updated_at.desc())
        .limit(limit)
    )
    async with host.db.reader() as s:
        return list(await s.execute(stmt))


async def stale_sources(host: Host) -> list[str]:
    """Sources whose last successful run is older than three intervals."""
    settings = host.plugin_settings("integration", Settings)
    limit = host.clock.now() - dt.timedelta(minutes=3 * settings.interval_minutes)
    stale = []
    async with host.db.reader() as s:
        for name in settings.sources:
            last = (
                await s.execute(
                    select(func.max(m.run.c.finished_at)).where(
                        m.run.c.source == name, m.run.c.state == "succeeded"
                    )
                )
            ).scalar()
            if last is not None and last.tzinfo is None:
                last = last.replace(tzinfo=dt.UTC)
            if last is None or last < limit:
                stale.append(name)
    return stale
