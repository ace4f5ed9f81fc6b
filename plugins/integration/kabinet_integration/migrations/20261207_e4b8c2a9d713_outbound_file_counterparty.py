"""outbound client requests and file fetches name the counterparty they belong to, so that
staff see only those of the organizations they may see

Revision ID: e4b8c2a9d713
Revises: d7a3c5e1f902
Create Date: 2026-12-07 10:40:00.000000
"""

import json
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op

revision: str = "e4b8c2a9d713"
down_revision: str | Sequence[str] | None = "d7a3c5e1f902"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# The reference configuration's names (reference.toml, frozen here): where a request's
# body holds its changed fields (a JSON text), the counterparty among them, and the order
# an edit or a cancellation is about.
CHANGES, COUNTERPARTY, ORDER = "ИзмененныеПоля", "Контрагент_Key", "Заявка_Key"
EMPTY_GUID = "00000000-0000-0000-0000-000000000000"
# The shipments tables (as of this revision) that say which order or invoice holds a file.
FILE_OWNERS = (
    ("shipments_document", "order_id", "shipments_order"),
    ("shipments_invoice_file", "invoice_id", "shipments_invoice"),
)


def _ref(found: Any) -> str | None:
    if not isinstance(found, str) or not found.strip() or found == EMPTY_GUID:
        return None
    return found[:100]


def _json(value: Any) -> Any:
    if isinstance(value, str):
        try:
            return json.loads(value)
        except ValueError:
            return None
    return value


def _known(conn: sa.Connection) -> dict[str, str]:
    """Each applied object's counterparty, by its 1C id (integration_known.identity)."""
    known = sa.table("integration_known", sa.column("ref"), sa.column("identity", sa.JSON))
    found: dict[str, str] = {}
    for ref, identity in conn.execute(sa.select(known.c.ref, known.c.identity)):
        identity = _json(identity)
        named = _ref(identity.get("counterparty")) if isinstance(identity, dict) else None
        if named is not None:
            found.setdefault(ref, named)
    return found


def _outbound(conn: sa.Connection) -> None:
    table = sa.table(
        "integration_outbound",
        sa.column("id", sa.Integer),
        sa.column("body", sa.JSON),
        sa.column("counterparty", sa.String),
    )
    rows = list(conn.execute(sa.select(table.c.id, table.c.body)))
    known = _known(conn) if rows else {}
    found = []
    for row in rows:
        body = _json(row.body)
        body = body if isinstance(body, dict) else {}
        changes = _json(body.get(CHANGES))
        named = _ref(changes.get(COUNTERPARTY)) if isinstance(changes, dict) else None
        order = _ref(body.get(ORDER))
        if named is None and order is not None:
            named = known.get(order)
        if named is not None:
            found.append({"key": row.id, "cp": named})
    if found:
        conn.execute(
            table.update()
            .where(table.c.id == sa.bindparam("key"))
            .values(counterparty=sa.bindparam("cp")),
            found,
        )


def _files(conn: sa.Connection) -> None:
    """A file's counterparty from the order or invoice that holds it (shipments' tables,
    when there)."""
    tables = set(sa.inspect(conn).get_table_names())
    if "companies_counterparty" not in tables:
        return
    counterparty = sa.table(
        "companies_counterparty", sa.column("id", sa.Integer), sa.column("external_id")
    )
    files = sa.table("integration_file", sa.column("ref"), sa.column("counterparty", sa.String))
    found: dict[str, str] = {}
    for holder, owner_id, owner in FILE_OWNERS:
        if holder not in tables or owner not in tables:
            continue
        h = sa.table(holder, sa.column("file_ref"), sa.column(owner_id, sa.Integer))
        o = sa.table(owner, sa.column("id", sa.Integer), sa.column("counterparty_id", sa.Integer))
        stmt = (
            sa.select(h.c.file_ref, counterparty.c.external_id)
            .join(o, o.c.id == h.c[owner_id])
            .join(counterparty, counterparty.c.id == o.c.counterparty_id)
            .where(h.c.file_ref.in_(sa.select(files.c.ref)))
        )
        for ref, external_id in conn.execute(stmt):
            named = _ref(external_id)
            if ref and named is not None:
                found.setdefault(ref, named)
    if found:
        conn.execute(
            files.update()
            .where(files.c.ref == sa.bindparam("key"))
            .values(counterparty=sa.bindparam("cp")),
            [{"key": ref, "cp": cp} for ref, cp in found.items()],
        )


def upgrade() -> None:
    with op.batch_alter_table("integration_outbound") as batch:
        batch.add_column(sa.Column("counterparty", sa.String(length=100), nullable=True))
        batch.create_index("ix_integration_outbound_counterparty", ["counterparty"])
    with op.batch_alter_table("integration_file") as batch:
        batch.add_column(sa.Column("counterparty", sa.String(length=100), nullable=True))
        batch.create_index("ix_integration_file_counterparty", ["counterparty"])
    conn = op.get_bind()
    _outbound(conn)
    _files(conn)


def downgrade() -> None:
    with op.batch_alter_table("integration_file") as batch:
        batch.drop_index("ix_integration_file_counterparty")
        batch.drop_column("counterparty")
    with op.batch_alter_table("integration_outbound") as batch:
        batch.drop_index("ix_integration_outbound_counterparty")
        batch.drop_column("counterparty")
