"""quarantined records name the counterparty they belong to, so that staff see only those
of the organizations they may see

Revision ID: d7a3c5e1f902
Revises: a41c7d2e9b55
Create Date: 2026-12-07 10:10:00.000000
"""

import json
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op

revision: str = "d7a3c5e1f902"
down_revision: str | Sequence[str] | None = "a41c7d2e9b55"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# The reference configuration's names (reference.toml, frozen here): the field of each
# entity's 1C object that holds its counterparty's Ref_Key. A counterparty is its own.
# Records of a source that renames these get theirs when a run quarantines them again;
# until then they name none and only holders of integration.runs.manage see them.
FIELDS = {"contract": "Owner_Key", "order": "Контрагент_Key", "invoice": "Контрагент_Key"}
EMPTY_GUID = "00000000-0000-0000-0000-000000000000"


def _counterparty(entity: str, ref: str, payload: Any) -> str | None:
    if isinstance(payload, str):
        try:
            payload = json.loads(payload)
        except ValueError:
            payload = None
    if entity == "counterparty":
        found: Any = ref
    elif entity in FIELDS and isinstance(payload, dict):
        found = payload.get(FIELDS[entity])
    else:
        found = None
    if not isinstance(found, str) or not found.strip() or found == EMPTY_GUID:
        return None
    return found[:100]


def upgrade() -> None:
    with op.batch_alter_table("integration_quarantine") as batch:
        batch.add_column(sa.Column("counterparty", sa.String(length=100), nullable=True))
        batch.create_index("ix_integration_quarantine_counterparty", ["counterparty"])
    table = sa.table(
        "integration_quarantine",
        sa.column("id", sa.Integer),
        sa.column("entity", sa.String),
        sa.column("ref", sa.String),
        sa.column("payload", sa.JSON),
        sa.column("counterparty", sa.String),
    )
    conn = op.get_bind()
    rows = conn.execute(sa.select(table.c.id, table.c.entity, table.c.ref, table.c.payload))
    found = [
        {"key": r.id, "cp": cp}
        for r in rows
        if (cp := _counterparty(r.entity, r.ref, r.payload)) is not None
    ]
    if found:
        conn.execute(
            table.update()
            .where(table.c.id == sa.bindparam("key"))
            .values(counterparty=sa.bindparam("cp")),
            found,
        )


def downgrade() -> None:
    with op.batch_alter_table("integration_quarantine") as batch:
        batch.drop_index("ix_integration_quarantine_counterparty")
        batch.drop_column("counterparty")
