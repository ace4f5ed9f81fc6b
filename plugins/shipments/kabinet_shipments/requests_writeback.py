"""A client's edit or cancel request handed over for the production system.

Shipments does not require the integration app, so it imports nothing of it: the
public outbound contract (``integration.outbound``: ``hand_over(session, record)``) is
found through :data:`OUTBOUND`, a key of this app's own whose type is the protocol of
what is used. When a request is created (``shipments.request.created``) its handler hands
the request over in the handling's transaction; the answer comes back by the delta into
this app's ``shipments.request_answer`` sink (:func:`kabinet_shipments.sinks.apply_answers`).
Without the integration app nothing is handed over and staff answer in the portal
(:mod:`kabinet_shipments.answers`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Protocol

from kabinet.contrib import Subscription
from kabinet.services import ServiceKey
from kabinet_shipments import events as ev

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession

    from kabinet.events import Event
    from kabinet.host import Host

REPLY_TO = "shipments.request_answer"
"""This app's sink that takes 1C's answers (kabinet_shipments.sinks)."""


class Outbound(Protocol):
    """What is used of the integration app's ``integration.outbound`` service."""

    async def hand_over(self, session: AsyncSession, record: Mapping[str, Any]) -> bool: ...


OUTBOUND: ServiceKey[Outbound] = ServiceKey("integration.outbound", Outbound)
"""Optional: ``host.services.find(OUTBOUND)`` is None when integration is not installed."""


def record_of(payload: ev.RequestCreated) -> dict[str, Any]:
    """The outbound record of a request (integration's ``OutboundRecord`` fields)."""
    return {
        "kind": payload.kind,
        "portal_id": payload.portal_id,
        "reply_to": REPLY_TO,
        "fields": dict(payload.changes or {}),
        "target": payload.order_external_id,
        "entity": "order",
        "description": payload.comment or "",
        "contact_name": payload.person_name or "",
        "contact_email": getattr(payload, "person_email", "") or "",
        "asked_at": getattr(payload, "asked_at_source", "") or "",
    }


async def on_request_created(host: Host, event: Event, session: AsyncSession) -> None:
    """Hand the request over (once per portal key) in the handling's transaction."""
    outbound = host.services.find(OUTBOUND)
    if outbound is None:
        return
    await outbound.hand_over(session, record_of(event.payload))


def subscriptions(host: Host) -> list[Subscription]:
    async def created(event: Event, session: AsyncSession) -> None:
        await on_request_created(host, event, session)

    return [Subscription(event=ev.REQUEST_CREATED, name="shipments.write_back", handler=created)]
