"""registry indexes: partial (NOT hidden) and covering

The order registry's tab counts and pages read only the index on PostgreSQL: every index
is partial (``WHERE NOT hidden``, ``hidden = 0`` on SQLite) and includes the columns the
filters and sorts read. Replaces ``ix_shipments_order_cp_date``,
``ix_shipments_order_cp_status_date`` and ``ix_shipments_order_date``.

Revision ID: 62bdaac905fc
Revises: ca7f6df297f4
Create Date: 2026-11-25 10:54:29.922316
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "62bdaac905fc"
down_revision: str | Sequence[str] | None = "ca7f6df297f4"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

VISIBLE = {"postgresql_where": sa.text("NOT hidden"), "sqlite_where": sa.text("hidden = 0")}


def upgrade() -> None:
    op.drop_index("ix_shipments_order_cp_date", table_name="shipments_order")
    op.drop_index("ix_shipments_order_cp_status_date", table_name="shipments_order")
    op.drop_index("ix_shipments_order_date", table_name="shipments_order")
    op.create_index(
        "ix_shipments_order_registry",
        "shipments_order",
        ["counterparty_id", "status", "date", "id"],
        unique=False,
        postgresql_include=[
            "cost",
            "number",
            "loading_date",
            "delivery_planned",
            "origin",
            "destination",
            "search",
        ],
        **VISIBLE,
    )
    op.create_index(
        "ix_shipments_order_registry_date",
        "shipments_order",
        ["date", "id"],
        unique=False,
        postgresql_include=["counterparty_id", "status", "origin", "destination"],
        **VISIBLE,
    )
    op.create_index(
        "ix_shipments_order_registry_cost",
        "shipments_order",
        ["cost", "id"],
        unique=False,
        postgresql_include=["counterparty_id", "status", "date", "origin", "destination"],
        **VISIBLE,
    )


def downgrade() -> None:
    op.drop_index("ix_shipments_order_registry_cost", table_name="shipments_order")
    op.drop_index("ix_shipments_order_registry_date", table_name="shipments_order")
    op.drop_index("ix_shipments_order_registry", table_name="shipments_order")
    op.create_index("ix_shipments_order_date", "shipments_order", ["date", "id"], unique=False)
    op.create_index(
        "ix_shipments_order_cp_status_date",
        "shipments_order",
        ["counterparty_id", "status", "date", "id"],
        unique=False,
    )
    op.create_index(
        "ix_shipments_order_cp_date",
        "shipments_order",
        ["counterparty_id", "date", "id"],
        unique=False,
    )
