"""Tables of the companies app.

Organizations, counterparties and contacts (filled by the companies issue).
"""

from __future__ import annotations

from sqlalchemy import Column, DateTime, Integer, String, Table

from kabinet.db import plugin_metadata

metadata = plugin_metadata()

organization = Table(
    "companies_organization",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("name", String(300), nullable=False),
    Column("inn", String(12), nullable=True, index=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
)
