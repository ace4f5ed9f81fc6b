"""integration_known: room on each page for the next version of its rows

Every delta rewrites the row of each object it applies (its version, the register's
time). With a fill factor of 70 the new version usually fits on the row's own page: a
heap-only update, no new entry in the primary key's index (PostgreSQL only).

Revision ID: 3b7e1f0c9a21
Revises: e9304d6a9302
Create Date: 2026-11-25 12:15:00.000000
"""

from collections.abc import Sequence

from alembic import op

revision: str = "3b7e1f0c9a21"
down_revision: str | Sequence[str] | None = "e9304d6a9302"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("ALTER TABLE integration_known SET (fillfactor = 70)")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("ALTER TABLE integration_known RESET (fillfactor)")
