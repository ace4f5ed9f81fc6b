"""The booking app's events (a public module: other apps may import these structs).

``booking.request.submitted`` carries what the production system must receive for a
client's new order: a ``Document_ЗапросКлиента`` with ``ВидЗапроса = НоваяЗаявка``, the
portal's id of the request (``ИдентификаторПортала``, a UUID) and ``ИзмененныеПоля``
already under the order's attribute names the booking settings give
(``[booking.fields.<field>] attribute``), values in 1C's JSON format. Whoever carries it
(the integration app's outbound contract) sends it once, looked up by ``portal_key``.
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
    """``ИдентификаторПортала``: unique across installations, the idempotency key."""
    organization_id: int
    person_id: int | None
    kind: str = "new_order"
    """``ВидЗапроса``: ``НоваяЗаявка`` in the reference configuration."""
    description: str = ""
    """``Описание``: one line naming the order ("Москва → Казань · Оборудование")."""
    fields: dict[str, Any] = msgspec.field(default_factory=dict)
    """``ИзмененныеПоля``: the new order's attributes, ``Контрагент_Key`` and
    ``Договор_Key`` among them."""
    contact_name: str = ""
    contact_email: str = ""


class RequestDecided(msgspec.Struct, kw_only=True):
    """Accepted (``order_number`` set), rejected or returned (``reason`` set)."""

    request_id: int
    organization_id: int
    person_id: int | None
    """The author: the one notified."""
    summary: str = ""
    order_number: str = ""
    reason: str = ""
