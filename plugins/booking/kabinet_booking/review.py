"""After a request is sent: the managers' review, the answer of the production system,
and, where there is none (the demo), acceptance in the portal as 1C would do it.

Acceptance in the portal creates the order through the shipments app's entity sink
(``shipments.order``, found through the ``entity_sinks`` hook like the integration app
finds it): the record is built by the sink's own struct from the request's fields, so
this app imports nothing of shipments but its public services.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import msgspec
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from kabinet.access import Principal
from kabinet.contrib import EntitySink
from kabinet.forms import FieldError
from kabinet_booking import models as m
from kabinet_booking.events import ACCEPTED, REJECTED, RETURNED, RequestDecided
from kabinet_booking.forms import clock, full_comment
from kabinet_booking.services import (
    ACCEPT,
    REVIEW,
    BookingRequest,
    BookingService,
    NotFound,
    Refused,
)
from kabinet_shipments.services import SHIPMENTS

ORDER_SINK = "shipments.order"


def _decided(found: BookingRequest, **values: str) -> RequestDecided:
    return RequestDecided(
        request_id=found.id,
        organization_id=found.organization_id,
        person_id=found.person_id,
        summary=found.summary,
        **values,
    )


async def review(
    svc: BookingService,
    session: AsyncSession,
    principal: Principal,
    request_id: int,
    *,
    accept: bool,
    comment: str = "",
) -> BookingRequest:
    """A manager of the organization accepts a request under review (it goes on to the
    production system) or returns it to the client with a comment."""
    found = await svc.get(session, principal, request_id, REVIEW)
    if found.state != "under_review":
        raise Refused("This request is not waiting for review.", "request_id")
    comment = comment.strip()
    if accept:
        await svc.move(session, found, "sent", principal.person_id, comment)
        await svc.submit(session, found, principal)
    else:
        if not comment:
            raise FieldError("Say what to correct.", "comment")
        await svc.move(session, found, "returned", principal.person_id, comment, reason=comment)
        await svc.host.events.publish(session, RETURNED, _decided(found, reason=comment))
    return await svc.get(session, principal, request_id, REVIEW)


async def order_sink(svc: BookingService) -> EntitySink:
    results = await svc.host.plugins.acall("entity_sinks", host=svc.host)
    for _plugin, sink in svc.host.plugins.flat(results):
        if sink.name == ORDER_SINK:
            found: EntitySink = sink
            return found
    raise LookupError(f"no entity sink {ORDER_SINK!r}")


def order_number(request_id: int) -> str:
    return f"ТТ-П{request_id:06d}"


async def accept_in_portal(
    svc: BookingService, session: AsyncSession, principal: Principal, request_id: int
) -> BookingRequest:
    """Staff accept a sent request as the production system would (no production system
    connected): the order is created through the shipments sink from the request's
    fields, and the request is linked to it (by the order's key)."""
    found = await svc.get(session, principal, request_id, ACCEPT)
    if found.state != "sent":
        raise Refused("Only a sent request can be accepted.", "request_id")
    if found.handed_over:
        raise Refused("This request went to the production system, which answers it.", "request_id")
    party, contract = await svc.keys(found)
    if not party:
        raise Refused("The counterparty is not known to the production system.", "contract_id")
    f = found.fields
    number = order_number(found.id)

    def local(day: dt.date | None, at: str = "") -> dt.datetime | None:
        return dt.datetime.combine(day, clock(at)) if day else None

    values: dict[str, Any] = {
        "external_id": f"booking-{found.portal_key}",
        "number": number,
        "date": svc.now().replace(tzinfo=None, microsecond=0),
        "counterparty": party,
        "contract": contract,
        "origin": f.origin,
        "destination": f.destination,
        "loading_date": local(f.loading_date, f.loading_from),
        "delivery_planned": local(f.delivery_date),
        "cargo_name": f.cargo_name,
        "cargo_weight": f.cargo_weight,
        "cargo_volume": f.cargo_volume,
        "cargo_places": f.cargo_places,
        "shipper": f.shipper,
        "consignee": f.consignee,
        "comment": full_comment(f, svc.rules()),
    }
    sink = await order_sink(svc)
    record = msgspec.convert(values, sink.struct)
    result = await sink.apply(svc.host, session, [record], notify=True)
    if result.rejected:
        reason = next(iter(result.rejected.values()))
        raise Refused(
            "The order could not be created: {reason}", "request_id", params={"reason": reason}
        )
    await svc.move(
        session,
        found,
        "accepted",
        principal.person_id,
        number,
        order_number=number,
        order_key=values["external_id"],
    )
    await link_order(svc, session, found.id)  # the order was written in this transaction
    await svc.host.events.publish(session, ACCEPTED, _decided(found, order_number=number))
    return await svc.get(session, principal, request_id, ACCEPT)


async def link_order(
    svc: BookingService, session: AsyncSession, request_id: int
) -> tuple[int, str] | None:
    """The id and number of the order an accepted request became, stored with the request:
    found by the order's key (1C's ``Заявка_Key``, or the key acceptance in the portal gave
    it) through the shipments service, in this session (so an order written in the same
    transaction is found). ``None``: no key, or the order has not arrived yet. Never by its
    number: 1C's numbers repeat (a new year, another organization) and a text search of
    the registry would also find other orders naming it."""
    row = (
        await session.execute(select(m.request.c.order_key).where(m.request.c.id == request_id))
    ).first()
    if row is None or not row.order_key:
        return None
    made = await svc.host.services.of(SHIPMENTS).order_by_key(session, row.order_key)
    if made is not None:
        await session.execute(
            update(m.request)
            .where(m.request.c.id == request_id)
            .values(order_id=made[0], order_number=made[1])
        )
    return made


async def answer(
    svc: BookingService,
    session: AsyncSession,
    portal_key: str,
    *,
    accepted: bool,
    reason: str = "",
    order_key: str = "",
) -> bool:
    """The production system's answer to a sent request (read back by the integration):
    rejected with a reason, or accepted with the key of the order it created. ``False``:
    no sent request has that key (another portal's, or answered already)."""
    row = (
        await session.execute(select(m.request).where(m.request.c.portal_key == portal_key))
    ).first()
    if row is None:
        return False
    from kabinet_booking.services import as_request

    found = as_request(row)
    if found.state != "sent":
        return False
    if accepted:
        # The order 1C made comes by the same delta, applied before its answer: name it now
        # (else the request learns its order when the order's card is first opened).
        made = (
            await svc.host.services.of(SHIPMENTS).order_by_key(session, order_key)
            if order_key
            else None
        )
        order = {"order_id": made[0], "order_number": made[1]} if made else {}
        await svc.move(session, found, "accepted", None, reason, order_key=order_key, **order)
        number = made[1] if made else ""
        await svc.host.events.publish(session, ACCEPTED, _decided(found, order_number=number))
    else:
        await svc.move(session, found, "rejected", None, reason, reason=reason)
        await svc.host.events.publish(session, REJECTED, _decided(found, reason=reason))
    return True


__all__ = ["NotFound", "accept_in_portal", "answer", "link_order", "review"]
