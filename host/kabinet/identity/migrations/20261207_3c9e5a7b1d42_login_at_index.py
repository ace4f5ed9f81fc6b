"""sign-in records get an index on their time alone: the retention purge deletes
``WHERE at < :before`` across every account, which the (account_id, at) index cannot serve

Revision ID: 3c9e5a7b1d42
Revises: 8eb8a33a974b
Create Date: 2026-12-07 10:00:00.000000
"""

from collections.abc import Sequence

from alembic import op

revision: str = "3c9e5a7b1d42"
down_revision: str | Sequence[str] | None = "8eb8a33a974b"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("identity_login", schema=None) as batch_op:
        batch_op.create_index("ix_identity_login_at", ["at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("identity_login", schema=None) as batch_op:
        batch_op.drop_index("ix_identity_login_at")
