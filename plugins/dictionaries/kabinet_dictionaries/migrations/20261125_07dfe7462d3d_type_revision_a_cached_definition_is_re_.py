"""type revision: a cached definition is re-read when it changes

Revision ID: 07dfe7462d3d
Revises: 17f9cea6117b
Create Date: 2026-11-25 08:30:32.700786
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "07dfe7462d3d"
down_revision: str | Sequence[str] | None = "17f9cea6117b"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("dictionaries_type", schema=None) as batch_op:
        batch_op.add_column(sa.Column("revision", sa.Integer(), server_default="1", nullable=False))


def downgrade() -> None:
    with op.batch_alter_table("dictionaries_type", schema=None) as batch_op:
        batch_op.drop_column("revision")
