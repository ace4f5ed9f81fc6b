"""The events the shipments app publishes, with their payloads.

Notification events carry ``organization_id`` (the counterparty's organization: who is
told) and what a template shows, with ``notify`` (False: a first load or a backfill wrote
it, nobody is told) and ``changed_at`` (when the change happened, ISO; empty: when the
event was published; nobody who could not see the organization then is told);
``request.created``, ``document.requested``, ``invoice_file.requested`` and
``file.dropped`` carry what the integration app needs to carry a request or fetch a file
from the production system.
"""

from __future__ import annotations

import msgspec

from kabinet.contrib import EventType

STATUS_CHANGED = "shipments.order.status_changed"
DELIVERED = "shipments.order.delivered"
INVOICE_CREATED = "shipments.invoice.created"
INVOICE_OVERDUE = "shipments.invoice.overdue"
REQUEST_ANSWERED = "shipments.request.answered"
REQUEST_CREATED = "shipments.request.created"
DOCUMENT_REQUESTED = "shipments.document.requested"
INVOICE_FILE_REQUESTED = "shipments.invoice_file.requested"
FILE_DROPPED = "shipments.file.dropped"


class OrderStatusChanged(msgspec.Struct, kw_only=True):
    order_id: int
    number: str
    organization_id: int
    status: str
    previous: str | None
    status_ru: str
    status_en: str
    origin: str
    destination: str
    notify: bool = True
    changed_at: str = ""


class OrderDelivered(msgspec.Struct, kw_only=True):
    order_id: int
    number: str
    organization_id: int
    origin: str
    destination: str
    delivered_on: str
    notify: bool = True
    changed_at: str = ""


class InvoiceEvent(msgspec.Struct, kw_only=True):
    invoice_id: int
    number: str
    organization_id: int
    amount: str
    debt: str
    currency: str
    date: str
    due_date: str
    notify: bool = True
    changed_at: str = ""


class RequestAnswered(msgspec.Struct, kw_only=True):
    request_id: int
    order_id: int
    order_number: str
    organization_id: int
    person_id: int | None
    kind: str
    status: str
    status_ru: str
    status_en: str
    answer: str
    notify: bool = True
    changed_at: str = ""


class RequestCreated(msgspec.Struct, kw_only=True):
    request_id: int
    portal_id: str
    """The request's key in the production system (``ИдентификаторПортала``): a UUID."""
    order_id: int
    order_external_id: str
    order_number: str
    organization_id: int | None
    kind: str
    changes: dict[str, str]
    comment: str
    person_id: int | None
    person_name: str
    person_email: str = ""
    asked_at_source: str = ""
    """When the client asked, in the production system's local time (``[shipments]
    source_timezone``, the zone the read side reads its times in), as 1C writes a date:
    ``2026-01-15T12:00:00``."""


class DocumentRequested(msgspec.Struct, kw_only=True):
    document_id: int
    order_id: int
    order_external_id: str
    file_ref: str
    key: str
    """Where the file is expected in the host's file storage."""


class InvoiceFileRequested(msgspec.Struct, kw_only=True):
    """A file attached to an invoice (its print form) is needed and not stored yet."""

    invoice_id: int
    invoice_external_id: str
    file_ref: str
    key: str
    """Where the file is expected in the host's file storage."""
    entity: str = "invoice_file"
    """The integration's name of the catalog of attached files that holds it."""


class FileDropped(msgspec.Struct, kw_only=True):
    """The stored copy of a file (an order document's or an invoice's) was dropped because
    the production system replaced its content under the same id (its ``DataVersion``
    moved): whoever fetches the files fetches it again. Published in the transaction that
    records the new version; the copy is deleted once it commits."""

    file_ref: str
    key: str
    """Where the file is expected in the host's file storage."""
    entity: str
    """The integration's name of the catalog of attached files that holds it (``file``:
    orders', ``invoice_file``: invoices')."""
    owner_external_id: str = ""
    """The order's or invoice's ``external_id`` (whose file it is)."""


EVENT_TYPES = [
    EventType(name=STATUS_CHANGED, payload=OrderStatusChanged, description="An order's status."),
    EventType(name=DELIVERED, payload=OrderDelivered, description="An order is done."),
    EventType(name=INVOICE_CREATED, payload=InvoiceEvent, description="A new invoice."),
    EventType(name=INVOICE_OVERDUE, payload=InvoiceEvent, description="Unpaid past due."),
    EventType(name=REQUEST_ANSWERED, payload=RequestAnswered, description="An answer came."),
    EventType(name=REQUEST_CREATED, payload=RequestCreated, description="A client asked."),
    EventType(name=DOCUMENT_REQUESTED, payload=DocumentRequested, description="A file is needed."),
    EventType(
        name=INVOICE_FILE_REQUESTED,
        payload=InvoiceFileRequested,
        description="An invoice's print form is needed.",
    ),
    EventType(
        name=FILE_DROPPED,
        payload=FileDropped,
        description="A file's stored copy was dropped: 1C replaced its content.",
    ),
]
