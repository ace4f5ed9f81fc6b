"""Tables of the integration app: cursors, runs, quarantine, what was received, locks,
the push inbox's batches, the outbound queue of client requests and fetched files."""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    Column,
    DateTime,
    Index,
    Integer,
    String,
    Table,
    Text,
    UniqueConstraint,
)

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
"""Where the delta stopped, per source (``entity`` = ``changes``): moved only in the
transaction that commits the batch it follows."""

run = Table(
    "integration_run",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("source", String(64), nullable=False),
    Column("mode", String(16), nullable=False),
    Column("state", String(16), nullable=False),  # running, succeeded, failed, interrupted
    Column("started_at", DateTime(timezone=True), nullable=False),
    Column("finished_at", DateTime(timezone=True), nullable=True),
    Column("received", Integer, nullable=False, default=0),
    Column("applied", Integer, nullable=False, default=0),
    Column("unchanged", Integer, nullable=False, default=0),
    Column("quarantined", Integer, nullable=False, default=0),
    Column("pages", Integer, nullable=False, default=0),
    Column("progress", String(200), nullable=False, default=""),
    Column("error", Text, nullable=True),
    Index("ix_integration_run_source_started", "source", "started_at"),
)

quarantine = Table(
    "integration_quarantine",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("source", String(64), nullable=False),
    Column("entity", String(32), nullable=False),
    Column("ref", String(64), nullable=False),
    Column("payload", JSON, nullable=True),
    # Why, in English with 1C's attribute names (the API's message; rows set aside before
    # reasons had codes have only this), and as a code of reasons.CODES with its
    # parameters (NULL: a reason of no known code), which the page shows in the reader's
    # language.
    Column("reason", Text, nullable=False),
    Column("reason_code", String(64), nullable=True),
    Column("reason_params", JSON, nullable=True),
    Column("state", String(16), nullable=False, default="open"),  # open, dismissed
    Column("attempts", Integer, nullable=False, default=1),
    Column("run_id", Integer, nullable=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    # The 1C id of the counterparty the record belongs to, as its object names it (a
    # counterparty's own Ref_Key); NULL when it names none. Staff see a record only when
    # this counterparty is in an organization they may see (services.QuarantineScope).
    Column("counterparty", String(100), nullable=True),
    UniqueConstraint("source", "entity", "ref"),
    Index("ix_integration_quarantine_counterparty", "counterparty"),
)
"""A record that failed (decode, mapping or the sink's rule), with its raw 1C object."""

known = Table(
    "integration_known",
    metadata,
    Column("source", String(64), primary_key=True),
    Column("entity", String(32), primary_key=True),
    Column("ref", String(64), primary_key=True),
    Column("version", String(64), nullable=False, default=""),
    Column("changed_at", String(32), nullable=True),
    Column("identity", JSON, nullable=True),
    Column("deleted", Integer, nullable=False, default=0),
)
"""What was applied of each object (fill factor 70 on PostgreSQL: every delta rewrites its
rows, a migration sets it): its DataVersion (a replay skips it), the change
register's time of the change applied (a re-read row of the overlap is dropped unfetched)
and its required fields (to tell the sink of its deletion when 1C no longer has it)."""

lock = Table(
    "integration_lock",
    metadata,
    Column("source", String(64), primary_key=True),
    Column("holder", String(100), nullable=False),
    Column("expires_at", DateTime(timezone=True), nullable=False),
)
"""One run per source (SQLite; PostgreSQL uses an advisory lock)."""

inbox = Table(
    "integration_inbox",
    metadata,
    Column("source", String(64), primary_key=True),
    Column("batch_id", String(100), primary_key=True),
    Column("run_id", Integer, nullable=True),
    Column("received_at", DateTime(timezone=True), nullable=False),
)
"""Batches the push inbox has committed: the same ``batch_id`` again is a no-op."""

outbound = Table(
    "integration_outbound",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("source", String(64), nullable=False),
    Column("portal_id", String(64), nullable=False),
    # The entity sink that receives 1C's answer (OutboundRecord.reply_to).
    Column("reply_to", String(100), nullable=True),
    Column("body", JSON, nullable=False),
    Column("state", String(16), nullable=False),  # pending, sent, failed
    Column("attempts", Integer, nullable=False, default=0),
    Column("next_attempt_at", DateTime(timezone=True), nullable=True),
    Column("last_error", Text, nullable=True),
    Column("external_id", String(64), nullable=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    # The 1C id of the request's counterparty (named in its fields, or its order's); NULL
    # when it names none: staff see the row as a quarantined record (owners.py).
    Column("counterparty", String(100), nullable=True),
    UniqueConstraint("source", "portal_id"),
    Index("ix_integration_outbound_counterparty", "counterparty"),
)
"""Records handed over for the production system (client requests), on their way there."""

file = Table(
    "integration_file",
    metadata,
    Column("source", String(64), primary_key=True),
    Column("ref", String(64), primary_key=True),
    Column("key", String(300), nullable=False),
    # The catalog of attached files holding it: "file" (orders'), "invoice_file".
    Column("entity", String(32), nullable=False, default="file", server_default="file"),
    Column("state", String(16), nullable=False),  # pending, fetched, failed
    Column("attempts", Integer, nullable=False, default=0),
    Column("next_attempt_at", DateTime(timezone=True), nullable=True),
    Column("last_error", Text, nullable=True),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    # The 1C id of the counterparty of the order or invoice holding the file; NULL when
    # unknown: staff see the row as a quarantined record (owners.py).
    Column("counterparty", String(100), nullable=True),
    Index("ix_integration_file_counterparty", "counterparty"),
)
"""Files of order documents and of invoices fetched into the host's file storage."""

balance_owed = Table(
    "integration_balance_owed",
    metadata,
    Column("source", String(64), primary_key=True),
    Column("contract", String(64), primary_key=True),
    Column("since", DateTime(timezone=True), nullable=False),
)
"""Contracts whose operational balance is owed: something of theirs changed (written in
the transaction of the page that changed it) and no run has refreshed the balance since.
Every run refreshes them all and drops a mark only in the transaction that stores the
balance, so a run that fails after its pages (the Balance function, an acknowledgement)
leaves them owed to the next one."""
