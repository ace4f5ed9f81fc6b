"""outbound records name the sink that receives 1C's answer (the public contract)

Revision ID: a41c7d2e9b55
Revises: 8b2d4f6a1c37
Create Date: 2026-12-07 06:50:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "a41c7d2e9b55"
down_revision: str | Sequence[str] | None = "8b2d4f6a1c37"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("integration_outbound", sa.Column("reply_to", sa.String(length=100)))
    # Every record queued before the contract was a client request of the shipments app,
    # whose answers its request_answer sink took: they still go there.
    op.execute(
        "UPDATE integration_outbound SET reply_to = 'shipments.request_answer' "
        "WHERE reply_to IS NULL"
    )


def downgrade() -> None:
    with op.batch_alter_table("integration_outbound") as batch:
        batch.drop_column("reply_to")
