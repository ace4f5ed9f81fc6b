"""order times: the time of day 1C gives with an order's loading and delivery dates

``ДатаПогрузки``, ``ДатаДоставкиПлан`` and ``ДатаДоставкиФакт`` carry a time in 1C; the
portal kept only the day. Beside each date column there is now the UTC instant
(``loading_at``, ``delivery_planned_at``, ``delivery_actual_at``), NULL where 1C gave the
date only. Orders stored before this revision had their times cut, so no time is known
for them: the new columns stay NULL (the date alone is shown, as before) until the order
is received again, when it is rewritten (its own digest is changed here; the integration
app's revision 5f26bee038b1 has the next full reconciliation read every order again). The
date columns, their filters, sorts and indexes are unchanged.

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
    # The order's own part of the digest (its first 16 digits; the lines' part stays) no
    # longer matches any record: received again, the order is rewritten with its times.
    op.execute(
        "UPDATE shipments_order SET digest = '0000000000000000' || substr(digest, 17)"
        " WHERE length(digest) = 32 AND (loading_date IS NOT NULL"
        " OR delivery_planned IS NOT NULL OR delivery_actual IS NOT NULL)"
    )


def downgrade() -> None:
    # Not a batch on SQLite (a copy of the table, refused while lines point at its orders):
    # its own DROP COLUMN (3.35+), the columns being in no index nor constraint.
    for name in reversed(COLUMNS):
        op.drop_column("shipments_order", name)
