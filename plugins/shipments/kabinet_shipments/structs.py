"""What the shipments app hands other plugins and takes from them (a public module)."""

from __future__ import annotations

import msgspec

__all__ = ["OrderLink"]


class OrderLink(msgspec.Struct, frozen=True, kw_only=True):
    """A link another plugin puts on an order's card (``shipments_order_links`` hook): "Repeat this
    order", "From request №…". ``text`` is in the reader's language already."""

    text: str
    href: str
    primary: bool = False
    """Shown as a button (an action) rather than a link (a reference)."""
