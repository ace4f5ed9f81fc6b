"""Tables of the integration app. Where each delta exchange stopped, per source and entity."""

from __future__ import annotations

from sqlalchemy import Column, DateTime, String, Table

from kabinet.db import plugin_metadata

metadata = plugin_metadata()

cursor = Table(
    "integration_cursor",
    metadata,
    Column("source", String(64), primary_key=True),
    Column("entity", String(64), primary_key=True),
    Column("position", String(200), nullable=True),
    Column("updated_at", DateTime(timezone=True), nullable=False),
)
