"""Hooks the shipments app publishes (``hookspecs()``): other plugins add to its pages."""

from __future__ import annotations

from typing import TYPE_CHECKING

from kabinet.hookspecs import hookspec

if TYPE_CHECKING:
    from kabinet.access import Principal
    from kabinet.host import Host
    from kabinet_shipments.structs import OrderLink


@hookspec
async def shipments_order_links(
    host: Host, principal: Principal, order_id: int, lang: str
) -> list[OrderLink]:
    """Called when an order's card is shown; returns links for its header."""


@hookspec
async def shipments_orders_links(host: Host, principal: Principal, lang: str) -> list[OrderLink]:
    """Called when the order registry is shown; returns links for its header."""
