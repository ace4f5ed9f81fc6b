"""order times: the time of day 1C gives with an order's loading and delivery dates

``ДатаПогрузки``, ``ДатаДоставкиПлан`` and ``ДатаДоставкиФакт`` carry a time in 1C; the
portal kept only the day. Beside each date column there is now the UTC instant
(``loading_at``, ``delivery_planned_at``, ``delivery_actual_at``), NULL where 1C gave the
date only. Orders stored before this revision had their times cut, so no time is known
for them: the new columns stay NULL (the date alone is shown, as before) until the order
is received again. The date columns, their filters, sorts and indexes are unchanged.

Revision ID: e290af92c226
Revises: 65c579926122
Create Date: 2026-12-07 01:02:31.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "e290af92c226"
down_revision: str | Sequence[str] | None = "65c579926122"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

COLUMNS = ("loading_at", "delivery_planned_at", "delivery_actual_at")


def upgrade() -> None:
    for name in COLUMNS:
        op.add_column("shipments_order", sa.Column(name, sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("shipments_order", schema=None) as batch_op:
        for name in reversed(COLUMNS):
            batch_op.drop_column(name)
