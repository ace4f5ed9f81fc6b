"""Tables of the notifications app. Message templates per event, channel and language."""

from __future__ import annotations

from sqlalchemy import Boolean, Column, Integer, String, Table, Text, UniqueConstraint

from kabinet.db import plugin_metadata

metadata = plugin_metadata()

template = Table(
    "notifications_template",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("event", String(120), nullable=False),
    Column("channel", String(20), nullable=False),
    Column("language", String(8), nullable=False),
    Column("body", Text, nullable=False),
    Column("active", Boolean, nullable=False, default=True),
    UniqueConstraint("event", "channel", "language"),
)
