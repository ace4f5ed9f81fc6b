"""Tables of the shipments app. Orders (transport requests) with their status."""

from __future__ import annotations

from sqlalchemy import Column, DateTime, Integer, String, Table

from kabinet.db import plugin_metadata

metadata = plugin_metadata()

order = Table(
    "shipments_order",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("number", String(40), nullable=False, unique=True),
    Column("status", String(40), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
)
