"""Tables of the shipments app (prefix ``shipments_``).

Orders, invoices and contracts come from the production system through the entity sinks
(``sinks.py``); each row keeps the production system's id (``external_id``) and a
``digest`` of the record it was written from, so that a record received again unchanged
is recognised without comparing field by field and writes nothing. A record deleted in
the production system is kept ``hidden`` (invoices and requests still point at it).

Company data is visible through the counterparty's organization
(``companies_counterparty.organization_id``), never through a copy of it, so relinking a
counterparty to another organization moves its orders with it.
"""

from __future__ import annotations

import re
import uuid

from sqlalchemy import (
    JSON,
    Boolean,
    Column,
    Date,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    Numeric,
    String,
    Table,
    Text,
    UniqueConstraint,
    text,
)

from kabinet.db import plugin_metadata
from kabinet_companies.services import COUNTERPARTY_KEY

metadata = plugin_metadata()
COUNTERPARTY_ID = COUNTERPARTY_KEY
MONEY = Numeric(16, 2)
# A place as the route filters compare it (``place_key``): byte order on PostgreSQL too,
# so that "starts with" is an index range whatever the database's collation.
PLACE_KEY = String(200).with_variant(String(200, collation="C"), "postgresql")
_SETTLEMENT = re.compile(r"^(?:г\.|г |город )\s*")


def new_portal_key() -> str:
    """A request's key in the production system (``ИдентификаторПортала``): a random UUID,
    so that two portals writing to one 1C never share one."""
    return str(uuid.uuid4())


def place_key(text: str) -> str:
    """A route point as the registry's from/to filters match it: trimmed, lower case,
    ``ё`` as ``е``, without a leading "г." (so "г. Москва" is found by "моск"). The filter
    normalises what is typed the same way and matches the start of the key."""
    return _SETTLEMENT.sub("", text.strip().lower().replace("ё", "е"))[:200]


contract = Table(
    "shipments_contract",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("external_id", String(100), nullable=False, unique=True),
    Column("counterparty_id", ForeignKey(COUNTERPARTY_ID), nullable=False, index=True),
    Column("number", String(60), nullable=False),
    Column("name", String(300), nullable=False, default=""),
    Column("date", Date, nullable=False),
    Column("start_date", Date, nullable=True),
    Column("end_date", Date, nullable=True),  # None: open-ended
    Column("status", String(16), nullable=False),  # active, suspended, terminated
    Column("currency", String(3), nullable=False),
    Column("credit_limit", MONEY, nullable=False),  # 0: none
    Column("balance", MONEY, nullable=True),  # operational balance (client owes if > 0)
    Column("balance_at", DateTime(timezone=True), nullable=True),  # when it was received
    Column("hidden", Boolean, nullable=False, default=False),
    Column("digest", String(32), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
)

order = Table(
    "shipments_order",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("external_id", String(100), nullable=False, unique=True),
    Column("counterparty_id", ForeignKey(COUNTERPARTY_ID), nullable=False),
    Column("contract_id", ForeignKey(contract.c.id), nullable=True, index=True),
    Column("number", String(40), nullable=False),
    Column("date", DateTime(timezone=True), nullable=False),
    Column("status", String(16), nullable=False),  # registered, in_progress, done, cancelled
    Column("origin", String(200), nullable=False),
    Column("destination", String(200), nullable=False),
    Column("origin_key", PLACE_KEY, nullable=False, default=""),  # place_key(origin)
    Column("destination_key", PLACE_KEY, nullable=False, default=""),
    Column("loading_date", Date, nullable=True),
    Column("delivery_planned", Date, nullable=True),
    Column("delivery_actual", Date, nullable=True),
    # The same three as 1C gave them with a time of day (the UTC instant); None where 1C
    # gave the date only (00:00:00 in its local time). The dates above stay the 1C-local
    # day, which the registry's filters, sorts and indexes read.
    Column("loading_at", DateTime(timezone=True), nullable=True),
    Column("delivery_planned_at", DateTime(timezone=True), nullable=True),
    Column("delivery_actual_at", DateTime(timezone=True), nullable=True),
    Column("location", String(300), nullable=False, default=""),
    Column("location_at", DateTime(timezone=True), nullable=True),
    Column("cost", MONEY, nullable=False),
    Column("currency", String(3), nullable=False),
    Column("cargo_name", String(300), nullable=False, default=""),
    Column("cargo_weight", Numeric(12, 3), nullable=True),  # kg
    Column("cargo_volume", Numeric(12, 3), nullable=True),  # m³
    Column("cargo_places", Integer, nullable=True),
    Column("shipper", String(300), nullable=False, default=""),
    Column("consignee", String(300), nullable=False, default=""),
    Column("comment", Text, nullable=False, default=""),
    Column("search", String(600), nullable=False, default=""),  # lower "number cargo"
    Column("hidden", Boolean, nullable=False, default=False),
    Column("digest", String(32), nullable=False),
    Column("status_at", DateTime(timezone=True), nullable=False),  # when the status arrived
    Column("updated_at", DateTime(timezone=True), nullable=False),
    # The registry (registry.py) reads a set of counterparties, a tab and a sort column with
    # id as tiebreak, never a hidden order. Its indexes are partial (WHERE NOT hidden) and,
    # on PostgreSQL, carry every column a filter or a sort reads, so the tab counts and the
    # page's ids come from the index alone (the page then reads only its own rows):
    # - a person's orders by status and date: tab counts, and any sort over few orders;
    # - newest or oldest first over many counterparties (a manager's): walk the dates;
    # - by cost over many counterparties: walk the costs;
    # - from or to a place over many counterparties: a range of the place's key for each
    #   counterparty and status, not a test of every order (a manager's 100,000).
    Index(
        "ix_shipments_order_registry",
        "counterparty_id",
        "status",
        "date",
        "id",
        postgresql_include=[
            "cost",
            "number",
            "loading_date",
            "delivery_planned",
            "origin_key",
            "destination_key",
            "search",
        ],
        postgresql_where=text("NOT hidden"),
        sqlite_where=text("hidden = 0"),
    ),
    Index(
        "ix_shipments_order_registry_date",
        "date",
        "id",
        postgresql_include=["counterparty_id", "status", "origin_key", "destination_key"],
        postgresql_where=text("NOT hidden"),
        sqlite_where=text("hidden = 0"),
    ),
    Index(
        "ix_shipments_order_registry_cost",
        "cost",
        "id",
        postgresql_include=[
            "counterparty_id",
            "status",
            "date",
            "origin_key",
            "destination_key",
        ],
        postgresql_where=text("NOT hidden"),
        sqlite_where=text("hidden = 0"),
    ),
    Index(
        "ix_shipments_order_registry_from",
        "counterparty_id",
        "origin_key",
        "status",
        "date",
        "id",
        postgresql_include=["destination_key", "cost"],
        postgresql_where=text("NOT hidden"),
        sqlite_where=text("hidden = 0"),
    ),
    Index(
        "ix_shipments_order_registry_to",
        "counterparty_id",
        "destination_key",
        "status",
        "date",
        "id",
        postgresql_include=["origin_key", "cost"],
        postgresql_where=text("NOT hidden"),
        sqlite_where=text("hidden = 0"),
    ),
    Index(
        "ix_shipments_order_search_trgm",
        "search",
        postgresql_using="gin",
        postgresql_ops={"search": "gin_trgm_ops"},
    ),
)

order_service = Table(
    "shipments_order_service",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("order_id", ForeignKey(order.c.id, ondelete="CASCADE"), nullable=False),
    Column("line", Integer, nullable=False),
    Column("name", String(300), nullable=False),
    Column("quantity", Numeric(12, 3), nullable=False),
    Column("amount", MONEY, nullable=False),
    UniqueConstraint("order_id", "line"),
)

vehicle = Table(
    "shipments_vehicle",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("order_id", ForeignKey(order.c.id, ondelete="CASCADE"), nullable=False),
    Column("line", Integer, nullable=False),
    Column("kind", String(100), nullable=False, default=""),
    Column("plate", String(20), nullable=False, default=""),
    Column("driver", String(200), nullable=False, default=""),
    Column("driver_phone", String(30), nullable=False, default=""),
    Column("status", String(100), nullable=False, default=""),
    UniqueConstraint("order_id", "line"),
)

document = Table(
    "shipments_document",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("order_id", ForeignKey(order.c.id, ondelete="CASCADE"), nullable=False),
    Column("line", Integer, nullable=False),
    Column("kind", String(200), nullable=False),
    Column("number", String(60), nullable=False, default=""),
    Column("date", Date, nullable=True),
    Column("file_ref", String(100), nullable=True),  # the production system's file id
    Column("file_name", String(300), nullable=False, default=""),
    Column("requested_at", DateTime(timezone=True), nullable=True),  # file asked for
    UniqueConstraint("order_id", "line"),
    # Whose orders list a file: the orders sink refuses a file of another counterparty's.
    Index("ix_shipments_document_file_ref", "file_ref"),
)

status_change = Table(
    "shipments_status_change",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("order_id", ForeignKey(order.c.id, ondelete="CASCADE"), nullable=False, index=True),
    Column("status", String(16), nullable=False),
    Column("previous", String(16), nullable=True),
    Column("received_at", DateTime(timezone=True), nullable=False, index=True),
)

invoice = Table(
    "shipments_invoice",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("external_id", String(100), nullable=False, unique=True),
    Column("counterparty_id", ForeignKey(COUNTERPARTY_ID), nullable=False),
    Column("contract_id", ForeignKey(contract.c.id), nullable=True, index=True),
    Column("order_id", ForeignKey(order.c.id), nullable=True, index=True),
    Column("number", String(40), nullable=False),
    Column("date", Date, nullable=False),
    Column("amount", MONEY, nullable=False),
    Column("paid", MONEY, nullable=False),
    Column("currency", String(3), nullable=False),
    Column("due_date", Date, nullable=True),
    Column("payment_status", String(16), nullable=False),  # unpaid, part_paid, paid
    Column("hidden", Boolean, nullable=False, default=False),
    Column("digest", String(32), nullable=False),
    Column("overdue_at", DateTime(timezone=True), nullable=True),  # "overdue" published
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    Index("ix_shipments_invoice_cp_date", "counterparty_id", "date", "id"),
)

invoice_file = Table(
    "shipments_invoice_file",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("invoice_id", ForeignKey(invoice.c.id, ondelete="CASCADE"), nullable=False, index=True),
    # The production system's file id: one invoice's (1C names one owner per file).
    Column("file_ref", String(100), nullable=False, unique=True),
    Column("file_name", String(300), nullable=False, default=""),
    Column("requested_at", DateTime(timezone=True), nullable=True),  # file asked for
    # The version of the file 1C listed last (its DataVersion); "" when it sent none.
    Column("file_version", String(100), nullable=False, default="", server_default=""),
)
"""Files attached to invoices in the production system (their print forms), listed by
the integration after each page of invoices; the content is fetched into the host's file
storage like an order document's."""

order_file = Table(
    "shipments_order_file",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("order_id", ForeignKey(order.c.id, ondelete="CASCADE"), nullable=False, index=True),
    # The production system's file id: one order's (1C names one owner per file).
    Column("file_ref", String(100), nullable=False, unique=True),
    Column("file_name", String(300), nullable=False, default=""),
    # The version of the file 1C listed last (its DataVersion); "" when it sent none.
    Column("file_version", String(100), nullable=False, default="", server_default=""),
)
"""Files attached to orders in the production system, listed by the integration after
each page of orders: each file's version, so that a document's file whose content 1C
replaced is fetched again (the documents, ``shipments_document``, name the files shown)."""

request = Table(
    "shipments_request",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("order_id", ForeignKey(order.c.id, ondelete="CASCADE"), nullable=False, index=True),
    Column("kind", String(8), nullable=False),  # edit, cancel
    Column("status", String(16), nullable=False),  # pending, accepted, rejected, done
    Column("changes", JSON, nullable=False, default=dict),  # field -> new value (text)
    Column("comment", Text, nullable=False, default=""),
    Column("person_id", Integer, nullable=True),
    Column("person_name", String(200), nullable=False, default=""),
    Column("answer", Text, nullable=False, default=""),
    Column("external_id", String(100), nullable=True),
    # The portal's key of the request in the production system (ИдентификаторПортала): a
    # UUID, unique across every portal writing to the same 1C; answers name it.
    Column("portal_key", String(36), nullable=False, unique=True, default=new_portal_key),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
)

request_event = Table(
    "shipments_request_event",
    metadata,
    Column("id", Integer, primary_key=True),
    Column(
        "request_id",
        ForeignKey(request.c.id, ondelete="CASCADE"),
        nullable=False,
        index=True,
    ),
    Column("status", String(16), nullable=False),
    Column("text", Text, nullable=False, default=""),
    Column("at", DateTime(timezone=True), nullable=False, index=True),
)

feed = Table(
    "shipments_feed",
    metadata,
    Column("entity", String(40), primary_key=True),  # order, invoice, contract, ...
    Column("received_at", DateTime(timezone=True), nullable=False),
)

visit = Table(
    "shipments_visit",
    metadata,
    Column("person_id", Integer, primary_key=True),
    Column("previous", DateTime(timezone=True), nullable=True),  # "changes since" this
    Column("current", DateTime(timezone=True), nullable=False),
)

export = Table(
    "shipments_export",
    metadata,
    # A registry export made by a background job (exports.py); only its person may read it.
    Column("id", String(32), primary_key=True),  # random, also the file's name in storage
    Column("person_id", Integer, nullable=False, index=True),
    Column("format", String(4), nullable=False),  # csv, xlsx
    Column("params", JSON, nullable=False, default=dict),  # the registry's URL parameters
    Column("status", String(10), nullable=False),  # queued, running, done, failed
    Column("rows_total", Integer, nullable=True),  # known once the job has counted
    Column("rows_done", Integer, nullable=False, default=0),
    Column("capped", Boolean, nullable=False, default=False),  # more rows than allowed
    Column("file_key", String(200), nullable=True),
    Column("file_name", String(200), nullable=False, default=""),
    Column("size", Integer, nullable=True),
    Column("error", Text, nullable=False, default=""),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("finished_at", DateTime(timezone=True), nullable=True),
    Column("expires_at", DateTime(timezone=True), nullable=False, index=True),
)
