"""Tables of the booking app (every name starts with ``booking_``).

A change of a table is a migration: ``kabinet db revision booking -m "what changed"``.
Organizations, counterparties, contracts and orders are other apps' objects: they are
kept here by id only (read through those apps' public services), never joined.
"""

from __future__ import annotations

from sqlalchemy import (
    Boolean,
    Column,
    DateTime,
    ForeignKey,
    Integer,
    String,
    Table,
    Text,
    UniqueConstraint,
)

from kabinet.db import plugin_metadata

metadata = plugin_metadata()

request = Table(
    "booking_request",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("organization_id", Integer, nullable=False, index=True),
    Column("counterparty_id", Integer, nullable=True),
    Column("contract_id", Integer, nullable=True),
    Column("person_id", Integer, nullable=True),
    Column("state", String(16), nullable=False, index=True),
    # draft, sent, under_review, returned, accepted, rejected, cancelled
    Column("portal_key", String(36), nullable=False, unique=True),  # ИдентификаторПортала
    Column("fields", Text, nullable=False, default="{}"),  # the form's values (JSON)
    Column("summary", String(300), nullable=False, default=""),  # "Москва → Казань, груз"
    Column("reason", Text, nullable=False, default=""),  # why returned or rejected
    Column("order_id", Integer, nullable=True),  # the shipments order it became
    Column("order_number", String(40), nullable=False, default=""),
    Column("order_key", String(100), nullable=False, default=""),  # its key in 1C (Ref_Key)
    Column("handed_over", Boolean, nullable=False, default=False),  # to the integration app
    Column("source", String(16), nullable=False, default="form"),  # form, api, import, repeat
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    Column("sent_at", DateTime(timezone=True), nullable=True),
)

step = Table(
    "booking_step",
    metadata,
    Column("id", Integer, primary_key=True),
    Column(
        "request_id",
        ForeignKey(request.c.id, ondelete="CASCADE"),
        nullable=False,
        index=True,
    ),
    Column("state", String(16), nullable=False),
    Column("person_id", Integer, nullable=True),
    Column("comment", Text, nullable=False, default=""),
    Column("at", DateTime(timezone=True), nullable=False),
)

place = Table(
    "booking_place",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("organization_id", Integer, nullable=False, index=True),
    Column("name", String(200), nullable=False),
    Column("address", String(300), nullable=False),
    Column("contact_name", String(200), nullable=False, default=""),
    Column("contact_phone", String(40), nullable=False, default=""),
    Column("created_at", DateTime(timezone=True), nullable=False),
    UniqueConstraint("organization_id", "name"),
)

template = Table(
    "booking_template",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("organization_id", Integer, nullable=False, index=True),
    Column("name", String(200), nullable=False),
    Column("fields", Text, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    UniqueConstraint("organization_id", "name"),
)

attachment = Table(
    "booking_attachment",
    metadata,
    Column("id", Integer, primary_key=True),
    Column(
        "request_id",
        ForeignKey(request.c.id, ondelete="CASCADE"),
        nullable=False,
        index=True,
    ),
    Column("key", String(300), nullable=False),  # in the host's file storage
    Column("name", String(300), nullable=False),
    Column("size", Integer, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
)

idempotency = Table(
    "booking_idempotency",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("owner", String(80), nullable=False),  # "person:<id>" (a token acts as its person)
    Column("key", String(200), nullable=False),
    Column("digest", String(64), nullable=False),  # the body's, so a reused key is refused
    Column("status", Integer, nullable=True),  # null while the first call is running
    Column("body", Text, nullable=False, default=""),
    Column("created_at", DateTime(timezone=True), nullable=False),
    UniqueConstraint("owner", "key"),
)
