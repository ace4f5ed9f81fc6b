"""The booking app on an order's card (the shipments app's ``shipments_order_links`` hook): the
request the order came from, and "Repeat this order" (the form opened filled)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from sqlalchemy import select

from kabinet.access import AllOrganizations, Principal
from kabinet_booking import models as m
from kabinet_booking.services import CREATE, VIEW
from kabinet_booking.texts import text_for
from kabinet_shipments.structs import OrderLink

if TYPE_CHECKING:
    from kabinet.host import Host


async def order_links(
    host: Host, principal: Principal, order_id: int, lang: str
) -> list[OrderLink]:
    t = text_for(lang)
    links: list[OrderLink] = []
    viewable = await host.access.organizations(principal, VIEW)
    async with host.db.session() as session:
        rows = await session.execute(
            select(m.request.c.id, m.request.c.organization_id)
            .where(m.request.c.order_id == order_id)
            .order_by(m.request.c.id)
        )
        for row in rows:
            if isinstance(viewable, AllOrganizations) or row.organization_id in viewable:
                text = t["from_request"].format(n=row.id)
                links.append(OrderLink(text=text, href=f"/booking/{row.id}"))
    creatable = await host.access.organizations(principal, CREATE)
    if isinstance(creatable, AllOrganizations) or creatable:
        href = f"/booking/new?from_order={order_id}"
        links.append(OrderLink(text=t["repeat_order"], href=href, primary=True))
    return links
