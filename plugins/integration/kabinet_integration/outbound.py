"""Write-back: client requests (edit, cancel) carried to the production system.

The shipments app publishes ``shipments.request.created``; the handler puts the request
in the outbound queue in the event's transaction and tries it at once. Sending looks the
request up by the portal's id first, so a retry after a lost answer creates no
duplicate; a failure waits with exponential backoff (a schedule retries what is due)
and is shown to staff. The answer comes back by the next delta, into the shipments
app's sink.
"""

from __future__ import annotations

import datetime as dt
import json
from typing import TYPE_CHECKING, Any

from sqlalchemy import insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from kabinet.jobs import backoff
from kabinet_integration import models as m
from kabinet_integration.connectors import SourceError
from kabinet_integration.files import target_source
from kabinet_integration.mapping import Names

if TYPE_CHECKING:
    from kabinet.events import Event
    from kabinet.host import Host

SEND_ACTOR = "integration.send_requests"


def body_of(host: Host, source: str, payload: Any) -> dict[str, Any]:
    """The ``Document_ЗапросКлиента`` to create, in this source's names."""
    settings = host.plugin_settings("integration").sources[source]
    names = Names.of(settings)
    f = names.fields["request"]
    local = host.clock.now().replace(tzinfo=None, microsecond=0)
    description = payload.comment or ""
    return {
        f["date"]: local.isoformat(),
        f["order"]: payload.order_external_id,
        f["kind"]: names.to_onec("request", "kind", payload.kind),
        f["description"]: description,
        f["changes"]: json.dumps(payload.changes, ensure_ascii=False),
        f["contact_name"]: payload.person_name or "",
        f["portal_id"]: payload.portal_id,
        f["status"]: names.to_onec("request", "status", "new"),
    }


async def on_request_created(host: Host, event: Event, session: AsyncSession) -> None:
    """Queue the request (once per portal id) in the event's transaction."""
    source = target_source(host)
    if source is None:
        return
    payload: Any = event.payload
    found = await session.execute(
        select(m.outbound.c.id).where(
            m.outbound.c.source == source, m.outbound.c.portal_id == payload.portal_id
        )
    )
    if found.first() is not None:
        return
    now = host.clock.now()
    await session.execute(
        insert(m.outbound).values(
            source=source,
            portal_id=payload.portal_id,
            body=body_of(host, source, payload),
            state="pending",
            attempts=0,
            next_attempt_at=now,
            created_at=now,
            updated_at=now,
        )
    )
    # After the commit, most likely; the schedule picks up anything it misses.
    await host.jobs.send_later(1.0, SEND_ACTOR, {})


async def send_due(host: Host, *, force_ids: tuple[int, ...] = ()) -> int:
    """Send every request whose time has come; returns how many went through."""
    from kabinet_integration.sync import integration

    settings = host.plugin_settings("integration")
    now = host.clock.now()
    async with host.db.sessionmaker() as s:
        stmt = select(m.outbound)
        if force_ids:
            stmt = stmt.where(m.outbound.c.id.in_(force_ids), m.outbound.c.state != "sent")
        else:
            stmt = stmt.where(m.outbound.c.state == "pending", m.outbound.c.next_attempt_at <= now)
        rows = list(await s.execute(stmt.order_by(m.outbound.c.id)))
    sent = 0
    connectors: dict[str, Any] = {}
    try:
        for row in rows:
            if row.source not in connectors:
                connectors[row.source] = await integration(host).connector(row.source)
            conn = connectors[row.source]
            try:
                ref = await conn.find_request(row.portal_id)
                if ref is None:
                    ref = await conn.create_request(row.body)
            except SourceError as exc:
                attempts = row.attempts + 1
                failed = attempts >= settings.outbound_max_attempts
                async with host.db.session() as s:
                    await s.execute(
                        update(m.outbound)
                        .where(m.outbound.c.id == row.id)
                        .values(
                            attempts=attempts,
                            state="failed" if failed else "pending",
                            last_error=str(exc)[:2000],
                            next_attempt_at=now + dt.timedelta(seconds=backoff(attempts)),
                            updated_at=now,
                        )
                    )
                continue
            async with host.db.session() as s:
                await s.execute(
                    update(m.outbound)
                    .where(m.outbound.c.id == row.id)
                    .values(
                        attempts=row.attempts + 1,
                        state="sent",
                        external_id=ref,
                        last_error=None,
                        updated_at=now,
                    )
                )
            sent += 1
    finally:
        for conn in connectors.values():
            await conn.aclose()
    return sent
