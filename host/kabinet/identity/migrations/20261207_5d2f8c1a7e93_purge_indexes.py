"""confirmation codes, reset links and sessions get an index on the column their retention
purge deletes by (``created_at``, ``created_at``, ``last_seen_at``): the nightly purge
deletes ``WHERE <column> < :before`` across every account, which read the whole table

Revision ID: 5d2f8c1a7e93
Revises: 3c9e5a7b1d42
Create Date: 2026-12-07 12:30:00.000000
"""

from collections.abc import Sequence

from alembic import op

revision: str = "5d2f8c1a7e93"
down_revision: str | Sequence[str] | None = "3c9e5a7b1d42"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

INDEXES = (
    ("identity_code", "ix_identity_code_created_at", "created_at"),
    ("identity_reset_token", "ix_identity_reset_token_created_at", "created_at"),
    ("identity_session", "ix_identity_session_last_seen_at", "last_seen_at"),
)


def upgrade() -> None:
    for table, name, column in INDEXES:
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.create_index(name, [column], unique=False)


def downgrade() -> None:
    for table, name, _column in reversed(INDEXES):
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.drop_index(name)
