"""request portal key: the database makes one when the writer names none

The previous release inserts client requests without ``portal_key`` (it did not have the
column): while its web processes still run after ``kabinet db upgrade`` (docs/operations.md,
"Upgrades"), each of its requests failed on the NOT NULL column. The database now makes a
random key for such a row; this release's code always gives its own (a UUID).
tests/test_upgrade.py runs the previous release's request on the migrated schema.

Revision ID: b3e8d1f0a6c4
Revises: 7a4c2e9b1d35
Create Date: 2026-12-07 07:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "b3e8d1f0a6c4"
down_revision: str | Sequence[str] | None = "7a4c2e9b1d35"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

DEFAULTS = {
    "postgresql": "gen_random_uuid()::text",  # built in since PostgreSQL 13
    "sqlite": "(lower(hex(randomblob(16))))",
}


def upgrade() -> None:
    default = DEFAULTS.get(op.get_bind().dialect.name)
    if default is None:
        return
    with op.batch_alter_table("shipments_request", schema=None) as batch_op:
        batch_op.alter_column(
            "portal_key",
            existing_type=sa.String(length=36),
            existing_nullable=False,
            server_default=sa.text(default),
        )


def downgrade() -> None:
    with op.batch_alter_table("shipments_request", schema=None) as batch_op:
        batch_op.alter_column(
            "portal_key",
            existing_type=sa.String(length=36),
            existing_nullable=False,
            server_default=None,
        )
