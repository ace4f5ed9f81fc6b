"""Tables of the dictionaries app. Dictionary types defined by admins at run time."""

from __future__ import annotations

from sqlalchemy import Column, Integer, String, Table

from kabinet.db import plugin_metadata

metadata = plugin_metadata()

dictionary_type = Table(
    "dictionaries_type",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("code", String(64), nullable=False, unique=True),
    Column("name_ru", String(200), nullable=False),
    Column("name_en", String(200), nullable=False),
)
