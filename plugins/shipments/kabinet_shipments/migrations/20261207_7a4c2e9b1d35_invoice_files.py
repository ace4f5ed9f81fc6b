"""files attached to invoices (their print forms)

Revision ID: 7a4c2e9b1d35
Revises: e290af92c226
Create Date: 2026-12-07 03:40:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "7a4c2e9b1d35"
down_revision: str | Sequence[str] | None = "e290af92c226"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "shipments_invoice_file",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("invoice_id", sa.Integer(), nullable=False),
        sa.Column("file_ref", sa.String(length=100), nullable=False),
        sa.Column("file_name", sa.String(length=300), nullable=False),
        sa.Column("requested_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["invoice_id"],
            ["shipments_invoice.id"],
            name=op.f("fk_shipments_invoice_file_invoice_id_shipments_invoice"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_shipments_invoice_file")),
        sa.UniqueConstraint("file_ref", name=op.f("uq_shipments_invoice_file_file_ref")),
    )
    op.create_index(
        op.f("ix_shipments_invoice_file_invoice_id"),
        "shipments_invoice_file",
        ["invoice_id"],
        unique=False,
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_shipments_invoice_file_invoice_id"), table_name="shipments_invoice_file")
    op.drop_table("shipments_invoice_file")
