"""an index on notifications_delivery.created_at: the retention purge deletes the deliveries
made before a date (``created_at < :before``), which no index served (the one on
status, created_at leads with the status), so each daily purge read the whole table

Revision ID: c41d7e9a2b60
Revises: 5b7e2d9c4a13
Create Date: 2026-12-07 10:20:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "c41d7e9a2b60"
down_revision: str | Sequence[str] | None = "5b7e2d9c4a13"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index(
        "ix_notifications_delivery_created_at",
        "notifications_delivery",
        ["created_at"],
        unique=False,
    )


def downgrade() -> None:
    op.drop_index("ix_notifications_delivery_created_at", table_name="notifications_delivery")
