"""files name their catalog: orders' files and invoices' (print forms)

Revision ID: 8b2d4f6a1c37
Revises: 5f26bee038b1
Create Date: 2026-12-07 03:40:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "8b2d4f6a1c37"
down_revision: str | Sequence[str] | None = "5f26bee038b1"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column(
        "integration_file",
        sa.Column("entity", sa.String(length=32), nullable=False, server_default="file"),
    )


def downgrade() -> None:
    with op.batch_alter_table("integration_file") as batch:
        batch.drop_column("entity")
