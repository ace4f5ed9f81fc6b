"""integration_balance_owed: contracts whose balance a run still owes

Revision ID: 5c1d2e3f4a6b
Revises: 3b7e1f0c9a21
Create Date: 2026-12-07 00:50:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "5c1d2e3f4a6b"
down_revision: str | Sequence[str] | None = "3b7e1f0c9a21"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "integration_balance_owed",
        sa.Column("source", sa.String(length=64), nullable=False),
        sa.Column("contract", sa.String(length=64), nullable=False),
        sa.Column("since", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("source", "contract", name=op.f("pk_integration_balance_owed")),
    )


def downgrade() -> None:
    op.drop_table("integration_balance_owed")
