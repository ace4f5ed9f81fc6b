"""the version of an invoice's attached file (1C's DataVersion), to fetch a replaced one again

Revision ID: c5d2f8a1e607
Revises: b3e8d1f0a6c4
Create Date: 2026-12-07 13:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "c5d2f8a1e607"
down_revision: str | Sequence[str] | None = "b3e8d1f0a6c4"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Rows stored before get "": an empty version never makes the portal fetch again.
    op.add_column(
        "shipments_invoice_file",
        sa.Column("file_version", sa.String(length=100), nullable=False, server_default=""),
    )


def downgrade() -> None:
    # SQLite's own DROP COLUMN (3.35+): the column has no index or constraint of its own.
    op.drop_column("shipments_invoice_file", "file_version")
