"""Tables of the dictionaries app.

Admins define dictionary types and their fields at run time, so the schema never changes
with them: an entry is a row of ``dictionaries_entry`` and each of its values a row of the
typed value table of the field's kind (text, long text, number, date, date-time, yes/no,
reference, file). Each value table is keyed on (entry, field) and indexed on
(field, value, entry), so "entries whose field F equals/lies between …, sorted by G" is a
chain of index lookups on SQLite and PostgreSQL alike.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    Date,
    DateTime,
    Dialect,
    ForeignKey,
    Index,
    Integer,
    Numeric,
    String,
    Table,
    Text,
    UniqueConstraint,
)
from sqlalchemy.types import TypeDecorator, TypeEngine

from kabinet.db import plugin_metadata

metadata = plugin_metadata()


class Number(TypeDecorator[Decimal]):
    """``NUMERIC(24, 6)`` on PostgreSQL; on SQLite a REAL read back as a ``Decimal``.

    SQLite has no decimal type (SQLAlchemy warns when asked to pretend): values are kept
    as floating point there, which is exact for money and for up to 15 significant digits,
    and the service rounds them to the field's precision when reading.
    """

    impl = Numeric(24, 6)
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        if dialect.name == "sqlite":
            # Declared NUMERIC(24, 6) like on PostgreSQL (so migrations and models agree),
            # read as float: SQLite keeps it as REAL either way.
            return dialect.type_descriptor(Numeric(24, 6, asdecimal=False))
        return dialect.type_descriptor(Numeric(24, 6))

    def process_bind_param(self, value: Any, dialect: Dialect) -> Any:
        if value is None:
            return None
        return float(value) if dialect.name == "sqlite" else Decimal(value)

    def process_result_value(self, value: Any, dialect: Dialect) -> Decimal | None:
        if value is None:
            return None
        return value if isinstance(value, Decimal) else Decimal(repr(float(value)))


def _utc(value: dt.datetime) -> dt.datetime:
    return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value.astimezone(dt.UTC)


class UtcDateTime(TypeDecorator[dt.datetime]):
    """A timestamp stored in UTC and read back aware (SQLite forgets the zone)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: Any, dialect: Dialect) -> Any:
        if value is None:
            return None
        assert isinstance(value, dt.datetime)
        return _utc(value)

    def process_result_value(self, value: Any, dialect: Dialect) -> dt.datetime | None:
        return None if value is None else _utc(value)


dictionary_type = Table(
    "dictionaries_type",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("code", String(64), nullable=False, unique=True),
    Column("name_ru", String(200), nullable=False),
    Column("name_en", String(200), nullable=False),
    Column("publish", String(8), nullable=False, default="none"),
    # "none": staff only; "all": every organization; "some": those in dictionaries_type_org.
    Column("editor_roles", JSON, nullable=False, default=list),
    # Role codes whose global holders may edit this type's entries (empty: any editor).
    Column("revision", Integer, nullable=False, default=1, server_default="1"),
    # Bumped by every change of the type or its fields: a process keeps the definition
    # cached and re-reads it only when the revision it holds is no longer the current one.
    Column("created_at", UtcDateTime, nullable=False),
    Column("updated_at", UtcDateTime, nullable=False),
)

type_organization = Table(
    "dictionaries_type_org",
    metadata,
    Column(
        "type_id",
        Integer,
        ForeignKey("dictionaries_type.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    Column("organization_id", BigInteger, primary_key=True),
)

field = Table(
    "dictionaries_field",
    metadata,
    Column("id", Integer, primary_key=True),
    Column(
        "type_id", Integer, ForeignKey("dictionaries_type.id", ondelete="CASCADE"), nullable=False
    ),
    Column("code", String(64), nullable=False),
    Column("name_ru", String(200), nullable=False),
    Column("name_en", String(200), nullable=False),
    Column("kind", String(16), nullable=False),
    Column("required", Boolean, nullable=False, default=False),
    Column("is_unique", Boolean, nullable=False, default=False),
    Column("default", String(500), nullable=True),
    Column("choices", JSON, nullable=False, default=list),
    Column("precision", Integer, nullable=True),
    Column("ref_type_id", Integer, ForeignKey("dictionaries_type.id"), nullable=True),
    Column("position", Integer, nullable=False, default=0),
    UniqueConstraint("type_id", "code"),
)

entry = Table(
    "dictionaries_entry",
    metadata,
    Column("id", Integer, primary_key=True),
    Column(
        "type_id", Integer, ForeignKey("dictionaries_type.id", ondelete="CASCADE"), nullable=False
    ),
    Column("published", Boolean, nullable=False, default=True),
    Column("version", Integer, nullable=False, default=1),
    Column("external_id", String(100), nullable=True),
    Column("search", Text, nullable=False, default=""),
    Column("created_at", UtcDateTime, nullable=False),
    Column("updated_at", UtcDateTime, nullable=False),
    UniqueConstraint("type_id", "external_id"),
    Index("ix_dictionaries_entry_type_id_id", "type_id", "id"),
)


def _value_table(name: str, value: Column[Any], *, indexed: bool = True) -> Table:
    """One typed value table: (entry, field) -> value, indexed on (field, value, entry)."""
    table = Table(
        f"dictionaries_value_{name}",
        metadata,
        Column(
            "entry_id",
            Integer,
            ForeignKey("dictionaries_entry.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        Column(
            "field_id",
            Integer,
            ForeignKey("dictionaries_field.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        value,
    )
    if indexed:
        Index(
            f"ix_dictionaries_value_{name}_field", table.c.field_id, table.c.value, table.c.entry_id
        )
        # Sorting joins each candidate's value by (entry, field): with the value included
        # PostgreSQL reads it from the index alone (SQLite ignores INCLUDE).
        Index(
            f"ix_dictionaries_value_{name}_sort",
            table.c.entry_id,
            table.c.field_id,
            postgresql_include=["value"],
        )
    return table


value_text = _value_table("text", Column("value", String(500), nullable=False))
value_long = _value_table("long", Column("value", Text, nullable=False), indexed=False)
value_number = _value_table("number", Column("value", Number, nullable=False))
value_date = _value_table("date", Column("value", Date, nullable=False))
value_datetime = _value_table("datetime", Column("value", UtcDateTime, nullable=False))
value_bool = _value_table("bool", Column("value", Boolean, nullable=False))
value_ref = _value_table(
    "ref", Column("value", Integer, ForeignKey("dictionaries_entry.id"), nullable=False)
)
value_file = _value_table("file", Column("value", String(300), nullable=False))
"""A file value: the storage key; its name and type are in ``file_meta``."""

file_meta = Table(
    "dictionaries_file",
    metadata,
    Column("key", String(300), primary_key=True),
    Column("filename", String(255), nullable=False),
    Column("content_type", String(100), nullable=False),
    Column("size", BigInteger, nullable=False),
    Column("uploaded_at", UtcDateTime, nullable=False),
)

entry_version = Table(
    "dictionaries_entry_version",
    metadata,
    Column("id", Integer, primary_key=True),
    Column(
        "entry_id",
        Integer,
        ForeignKey("dictionaries_entry.id", ondelete="CASCADE"),
        nullable=False,
    ),
    Column("version", Integer, nullable=False),
    Column("action", String(16), nullable=False),
    Column("changed_at", UtcDateTime, nullable=False),
    Column("changed_by", BigInteger, nullable=True),
    Column("changed_by_name", String(200), nullable=False, default=""),
    Column("changes", JSON, nullable=False),
    # [{"field", "name_ru", "name_en", "old", "new"}]: a removed field's values stay here.
    UniqueConstraint("entry_id", "version"),
)

document = Table(
    "dictionaries_document",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("title", String(300), nullable=False),
    Column("kind", String(100), nullable=False, default=""),
    Column("number", String(100), nullable=False, default=""),
    Column("date", Date, nullable=True),
    Column("organization_id", BigInteger, nullable=True),
    # NULL: every client may see it.
    Column("valid_from", Date, nullable=True),
    Column("valid_to", Date, nullable=True),
    Column("version", Integer, nullable=False, default=1),
    Column("created_at", UtcDateTime, nullable=False),
    Column("updated_at", UtcDateTime, nullable=False),
    Index("ix_dictionaries_document_organization_id", "organization_id"),
)

document_version = Table(
    "dictionaries_document_version",
    metadata,
    Column("id", Integer, primary_key=True),
    Column(
        "document_id",
        Integer,
        ForeignKey("dictionaries_document.id", ondelete="CASCADE"),
        nullable=False,
    ),
    Column("version", Integer, nullable=False),
    Column("file_key", String(300), nullable=False),
    Column("filename", String(255), nullable=False),
    Column("content_type", String(100), nullable=False),
    Column("size", BigInteger, nullable=False),
    Column("uploaded_at", UtcDateTime, nullable=False),
    Column("uploaded_by", BigInteger, nullable=True),
    UniqueConstraint("document_id", "version"),
)
