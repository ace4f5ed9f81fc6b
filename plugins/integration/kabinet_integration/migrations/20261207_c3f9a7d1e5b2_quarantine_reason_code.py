"""quarantined records keep why as a code with parameters, so staff read it in their
language; records set aside before keep their text (code NULL), shown as it is

Revision ID: c3f9a7d1e5b2
Revises: e4b8c2a9d713
Create Date: 2026-12-07 13:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "c3f9a7d1e5b2"
down_revision: str | Sequence[str] | None = "e4b8c2a9d713"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("integration_quarantine") as batch:
        batch.add_column(sa.Column("reason_code", sa.String(length=64), nullable=True))
        batch.add_column(sa.Column("reason_params", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("integration_quarantine") as batch:
        batch.drop_column("reason_params")
        batch.drop_column("reason_code")
