"""the files attached to orders with their versions (1C's DataVersion), to fetch a
replaced document's file again

Revision ID: d8a3f6b2c914
Revises: c5d2f8a1e607
Create Date: 2026-12-07 16:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "d8a3f6b2c914"
down_revision: str | Sequence[str] | None = "c5d2f8a1e607"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Empty: each order's files are listed with their versions the next time the order is
    # read (a first listing records a version, it never makes the portal fetch again).
    op.create_table(
        "shipments_order_file",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("order_id", sa.Integer(), nullable=False),
        sa.Column("file_ref", sa.String(length=100), nullable=False),
        sa.Column("file_name", sa.String(length=300), nullable=False),
        sa.Column("file_version", sa.String(length=100), nullable=False, server_default=""),
        sa.ForeignKeyConstraint(
            ["order_id"],
            ["shipments_order.id"],
            name=op.f("fk_shipments_order_file_order_id_shipments_order"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_shipments_order_file")),
        sa.UniqueConstraint("file_ref", name=op.f("uq_shipments_order_file_file_ref")),
    )
    op.create_index(
        op.f("ix_shipments_order_file_order_id"), "shipments_order_file", ["order_id"], unique=False
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_shipments_order_file_order_id"), table_name="shipments_order_file")
    op.drop_table("shipments_order_file")
