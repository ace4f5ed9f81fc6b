"""Carrying a sent request to the production system, and its answer back.

The booking app does not require the integration app (a portal without a production
system, the demo, works without it: staff accept requests in the portal). So it imports
nothing of it: the public outbound contract is found under ``integration.outbound``
through :data:`OUTBOUND`, a key of this app's own whose type is the protocol of what is
used, and the request is handed over as a mapping of ``OutboundRecord``'s fields, in the
transaction that sends it (docs/integration.md, "Outbound records"). 1C's answer comes back
by the delta into this app's sink ``booking.request_answer`` (``Answer`` cut to
:class:`RequestAnswer`): rejected with the reason, or accepted with the order 1C made.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, Protocol

import msgspec

from kabinet.contrib import EntitySink, SinkResult
from kabinet.services import ServiceKey

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession

    from kabinet.host import Host

REPLY_TO = "booking.request_answer"
"""This app's sink that takes 1C's answers."""


class Outbound(Protocol):
    """What is used of the integration app's ``integration.outbound`` service."""

    async def hand_over(self, session: AsyncSession, record: Mapping[str, Any]) -> bool: ...


OUTBOUND: ServiceKey[Outbound] = ServiceKey("integration.outbound", Outbound)
"""Optional: ``host.services.find(OUTBOUND)`` is None when integration is not installed."""


class RequestAnswer(msgspec.Struct, kw_only=True, frozen=True):
    """1C's answer to a new-order request (the fields of integration's ``Answer`` used)."""

    portal_id: str
    status: str
    """``new``, ``accepted``, ``rejected`` or ``done``."""
    answer: str = ""
    order: str | None = None
    """``Заявка_Key``: the order 1C created, for an accepted request."""


async def hand_over(
    host: Host,
    session: AsyncSession,
    *,
    portal_key: str,
    fields: Mapping[str, Any],
    description: str,
    contact_name: str,
    contact_email: str,
) -> bool:
    """Queue the request for the production system (once per key); ``False`` when no
    production system takes it (staff accept it in the portal instead)."""
    outbound = host.services.find(OUTBOUND)
    if outbound is None:
        return False
    record = {
        "kind": "new_order",
        "portal_id": portal_key,
        "reply_to": REPLY_TO,
        "fields": dict(fields),
        "entity": "order",
        "description": description,
        "contact_name": contact_name,
        "contact_email": contact_email,
    }
    return bool(await outbound.hand_over(session, record))


async def apply_answers(
    host: Host, session: AsyncSession, records: Sequence[RequestAnswer], *, notify: bool = True
) -> SinkResult:
    """Apply 1C's answers in the sync's transaction: idempotent (an answer already
    applied, or not final yet, changes nothing); an answer to a key this portal never
    sent is another portal's and is left alone."""
    from kabinet_booking.review import answer
    from kabinet_booking.services import BOOKING

    service = host.services.of(BOOKING)
    updated = unchanged = 0
    for record in records:
        if record.status not in ("accepted", "done", "rejected"):
            unchanged += 1
            continue
        done = await answer(
            service,
            session,
            record.portal_id,
            accepted=record.status != "rejected",
            reason=record.answer,
            order_key=record.order or "",
        )
        if done:
            updated += 1
        else:
            unchanged += 1
    return SinkResult(updated=updated, unchanged=unchanged)


def sinks() -> list[EntitySink]:
    return [
        EntitySink(
            name=REPLY_TO,
            struct=RequestAnswer,
            apply=apply_answers,
            key="portal_id",
            title={"ru": "Ответы на новые заявки", "en": "Answers to new-order requests"},
        )
    ]
