"""The booking app's events (a public module: other apps may import these structs).

``booking.request.submitted`` is published when a request is sent on toward the
production system (in the transaction that sends it): ``fields`` are the new order's
fields under the order's portal names (those of the ``shipments.order`` sink:
``counterparty`` and ``contract`` by the production system's keys, ``origin``,
``loading_date``…), the same the app hands the integration app's outbound contract
(``integration.outbound``) as a ``new_order`` record keyed by ``portal_key``
(``ИдентификаторПортала``). ``accepted``/``rejected``/``returned`` tell the author.
"""

from __future__ import annotations

from typing import Any

import msgspec

SUBMITTED = "booking.request.submitted"
ACCEPTED = "booking.request.accepted"
REJECTED = "booking.request.rejected"
RETURNED = "booking.request.returned"


class RequestSubmitted(msgspec.Struct, kw_only=True):
    request_id: int
    portal_key: str
    """``ИдентификаторПортала``: a UUID, unique across installations."""
    organization_id: int
    person_id: int | None
    kind: str = "new_order"
    """``ВидЗапроса``: ``НоваяЗаявка`` in the reference configuration."""
    description: str = ""
    """``Описание``: one line naming the order ("Москва → Казань · Оборудование")."""
    fields: dict[str, Any] = msgspec.field(default_factory=dict)
    """The new order's fields under their portal names (``ИзмененныеПоля`` once the
    integration's mapping names them in 1C)."""
    contact_name: str = ""
    contact_email: str = ""
    handed_over: bool = False
    """Queued for the production system (the integration app took it)."""


class RequestDecided(msgspec.Struct, kw_only=True):
    """Accepted (``order_number`` set), rejected or returned (``reason`` set)."""

    request_id: int
    organization_id: int
    person_id: int | None
    """The author: the one notified."""
    summary: str = ""
    order_number: str = ""
    reason: str = ""
