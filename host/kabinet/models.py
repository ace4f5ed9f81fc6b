"""The host's own tables: the event outbox, what each subscriber handled, failed jobs.

They belong to the built-in plugin ``host`` (prefix ``host_``) and migrate like any
plugin's tables. Times are stored in UTC.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    CheckConstraint,
    Column,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    String,
    Table,
    Text,
    UniqueConstraint,
    text,
)

from kabinet.db import plugin_metadata

metadata = plugin_metadata()

# SQLite assigns ids only to an INTEGER PRIMARY KEY; PostgreSQL gets a bigint identity.
Id = BigInteger().with_variant(Integer(), "sqlite")


def utc(value: dt.datetime | None) -> dt.datetime | None:
    """A stored time as aware UTC (SQLite gives back naive datetimes)."""
    if value is None or value.tzinfo is not None:
        return value
    return value.replace(tzinfo=dt.UTC)


event = Table(
    "host_event",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("type", String(200), nullable=False, comment="An event type some plugin declares"),
    Column("payload", JSON, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column(
        "relayed_at",
        DateTime(timezone=True),
        nullable=True,
        comment="When the relay handed the event to the job system; NULL: not yet",
    ),
    Index(
        "ix_host_event_unrelayed",
        "id",
        postgresql_where=text("relayed_at IS NULL"),
        sqlite_where=text("relayed_at IS NULL"),
    ),
    Index("ix_host_event_type_created_at", "type", "created_at"),
    comment="The outbox: written in the publisher's transaction, relayed after commit",
)

HANDLING_STATES = ("pending", "retrying", "handled", "failed")

event_handling = Table(
    "host_event_handling",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("event_id", Id, ForeignKey("host_event.id", ondelete="CASCADE"), nullable=False),
    Column("subscriber", String(200), nullable=False),
    Column("state", String(20), nullable=False),
    Column(
        "attempts",
        Integer,
        nullable=False,
        server_default="0",
        comment="Deliveries that ran the handler to its end, failed or not",
    ),
    Column("last_error", Text, nullable=True),
    Column("next_attempt_at", DateTime(timezone=True), nullable=True),
    Column("handled_at", DateTime(timezone=True), nullable=True),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    UniqueConstraint("subscriber", "event_id"),
    CheckConstraint("state IN ('pending', 'retrying', 'handled', 'failed')", name="state_known"),
    Index("ix_host_event_handling_state", "state"),
    comment="What each subscriber did with each event; a handled row makes redelivery a no-op",
)

FAILED_JOB_STATES = ("failed", "retried")

failed_job = Table(
    "host_failed_job",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("actor", String(200), nullable=False),
    Column("kwargs", JSON, nullable=False),
    Column("queue", String(100), nullable=False),
    Column("message_id", String(64), nullable=False),
    Column("error", Text, nullable=False, comment="The last attempt's exception and traceback"),
    Column("attempts", Integer, nullable=False),
    Column("failed_at", DateTime(timezone=True), nullable=False),
    Column("state", String(20), nullable=False, server_default="failed"),
    Column("retried_at", DateTime(timezone=True), nullable=True),
    Column(
        "retry_message_id",
        String(64),
        nullable=True,
        comment="The message sent by a retry, to follow it",
    ),
    CheckConstraint("state IN ('failed', 'retried')", name="state_known"),
    Index("ix_host_failed_job_state_failed_at", "state", "failed_at"),
    comment="Jobs that ran out of retries, kept for admins to read and retry",
)


def row_times(row: dict[str, Any], *names: str) -> dict[str, Any]:
    """``row`` with the named columns made aware UTC."""
    return {**row, **{n: utc(row[n]) for n in names}}
