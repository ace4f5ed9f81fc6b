"""The integration app's public structs: what a plugin hands over to be carried to 1C
(:class:`OutboundRecord`) and what comes back by the delta (:class:`Answer`).

A plugin that *requires* the integration app imports these and the service key
:data:`kabinet_integration.services.OUTBOUND`; one that only *may* find it (shipments)
passes the same fields as a plain mapping through a protocol of its own (docs/plugins.md,
"Services of other plugins"). docs/integration.md, "Outbound records", is the guide.
"""

from __future__ import annotations

from typing import Any

import msgspec

__all__ = ["Answer", "OutboundRecord"]


class OutboundRecord(msgspec.Struct, kw_only=True, frozen=True):
    """One record for the production system, handed over in the plugin's transaction.

    It becomes one ``Document_ЗапросКлиента`` in the source that answers client requests
    (``[integration] write_back_source``), written in that source's names (its settings'
    ``fields.request``, ``values.request``)."""

    kind: str
    """The request's kind in the portal's words: ``new_order`` (``НоваяЗаявка``), ``edit``
    (``Изменение``), ``cancel`` (``Отмена``); written as the source's ``values.request.kind``
    configures it."""
    portal_id: str
    """``ИдентификаторПортала``: the record's key, unique across every portal installation
    writing to the same 1C (``str(uuid.uuid4())``). Handing over a key again is a no-op;
    1C is asked by it before anything is created, so it is created there once."""
    reply_to: str
    """The entity sink (``<plugin>.<name>``, from the plugin's ``entity_sinks`` hook)
    that receives the :class:`Answer` records of this request when the delta brings them,
    in the sync's transaction. Its struct takes the fields of :class:`Answer` it needs
    (``portal_id`` at least) and its ``key`` is ``portal_id``."""
    fields: dict[str, Any] = {}
    """The target entity's fields under their *portal* names (``origin``,
    ``loading_date``, ``counterparty``, ``cargo_weight``... the struct fields of the
    entity's sink, ``fields.<entity>`` of the mapping). Written as ``ИзмененныеПоля``: a
    JSON object under the source's 1C attribute names, in 1C's formats (dates as local
    ``YYYY-MM-DDTHH:MM:SS``, numbers as numbers, references as GUID strings, mapped
    values as 1C's). A field the mapping cannot name makes the record ``failed`` (staff
    see why) rather than sent with a name 1C would ignore."""
    target: str = ""
    """``Заявка_Key``: the 1C reference of the order an ``edit``/``cancel`` is about;
    empty for a ``new_order`` (written as 1C's empty reference)."""
    entity: str = "order"
    """The entity whose 1C attribute names ``fields`` take (its sink gives the types)."""
    description: str = ""
    """``Описание``: the client's comment."""
    contact_name: str = ""
    """``КонтактФИО``."""
    contact_email: str = ""
    """``КонтактEmail``."""
    asked_at: str = ""
    """``Date``: when it was asked, in 1C's local time as 1C writes it
    (``2026-01-15T12:00:00``); empty: now, in the source's zone."""


class Answer(msgspec.Struct, kw_only=True, frozen=True):
    """1C's answer to a handed-over record, as the delta brings it (``Document_ЗапросКлиента``
    read back), delivered to the record's ``reply_to`` sink converted to its struct."""

    portal_id: str
    """The record's ``portal_id``."""
    status: str
    """``new``, ``accepted``, ``rejected`` or ``done`` (``values.request.status``)."""
    answer: str = ""
    """``Ответ``: 1C's words, the reason of a rejection."""
    external_id: str | None = None
    """The 1C request's ``Ref_Key``."""
    order: str | None = None
    """``Заявка_Key``: for an accepted ``new_order``, the order 1C created (it arrives by
    the same delta, in the order sink, before the answers); None while empty."""
