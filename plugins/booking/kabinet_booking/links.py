"""The booking app on the shipments app's pages: on an order's card (its
``shipments_order_links`` hook) the request the order came from and the files attached to
it, and "Repeat this order" (the form opened filled); above the order registry (its
``shipments_orders_links`` hook) "New request"."""

from __future__ import annotations

from typing import TYPE_CHECKING

from sqlalchemy import select, update

from kabinet.access import AllOrganizations, Principal
from kabinet_booking import models as m
from kabinet_booking.services import CREATE, VIEW
from kabinet_booking.texts import text_for
from kabinet_shipments.services import SHIPMENTS
from kabinet_shipments.structs import OrderLink

if TYPE_CHECKING:
    from kabinet.host import Host


async def order_links(
    host: Host, principal: Principal, order_id: int, lang: str
) -> list[OrderLink]:
    t = text_for(lang)
    links: list[OrderLink] = []
    viewable = await host.access.organizations(principal, VIEW)
    try:  # the order as the card shows it: its key and number
        order = await host.services.of(SHIPMENTS).order(principal, order_id)
    except LookupError:
        return []
    async with host.db.session() as session:
        r = m.request.c
        # A request knows its order by id once linked, else by the order's key (1C's
        # Заявка_Key of an accepted request, or the key acceptance in the portal gave it).
        made = (r.order_id == order_id) | ((r.order_key == order.external_id) & (r.order_key != ""))
        rows = (
            await session.execute(
                select(r.id, r.organization_id, r.order_id).where(made).order_by(r.id)
            )
        ).all()
        unlinked = [row.id for row in rows if row.order_id is None]
        if unlinked:  # link them now that the order is known here (a card view writes no more)
            await session.execute(
                update(m.request)
                .where(r.id.in_(unlinked))
                .values(order_id=order_id, order_number=order.number)
            )
        seen = [
            row.id
            for row in rows
            if isinstance(viewable, AllOrganizations) or row.organization_id in viewable
        ]
        for request_id in seen:
            text = t["from_request"].format(n=request_id)
            links.append(OrderLink(text=text, href=f"/booking/{request_id}"))
        files = await session.execute(  # the request's files stay with the order it became
            select(m.attachment.c.id, m.attachment.c.request_id, m.attachment.c.name)
            .where(m.attachment.c.request_id.in_(seen))
            .order_by(m.attachment.c.id)
        )
        for f in files:
            href = f"/booking/{f.request_id}/files/{f.id}"
            links.append(OrderLink(text=t["request_file"].format(name=f.name), href=href))
    creatable = await host.access.organizations(principal, CREATE)
    if isinstance(creatable, AllOrganizations) or creatable:
        href = f"/booking/new?from_order={order_id}"
        links.append(OrderLink(text=t["repeat_order"], href=href, primary=True))
    return links


async def orders_links(host: Host, principal: Principal, lang: str) -> list[OrderLink]:
    creatable = await host.access.organizations(principal, CREATE)
    if not (isinstance(creatable, AllOrganizations) or creatable):
        return []
    return [OrderLink(text=text_for(lang)["new"], href="/booking/new", primary=True)]
