"""orders read again for their times: forget the versions of orders applied so far

The shipments app now keeps the time of day 1C gives with an order's loading and delivery
dates (shipments revision e290af92c226); orders applied before it had that time cut. A
full reconciliation fetches only the objects whose ``DataVersion`` differs from the one
applied, so an order 1C does not change again would keep its cut dates. Forgetting the
versions of the orders applied (not the orders, nor what is known of their deletion) has
the next full reconciliation (the nightly one, or ``kabinet integration sync --full``)
read every order once more and apply its times; it notifies nobody, as a full run does.
Going down forgets nothing more: there is nothing to restore.

Revision ID: 5f26bee038b1
Revises: 5c1d2e3f4a6b
Create Date: 2026-12-07 01:30:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "5f26bee038b1"
down_revision: str | Sequence[str] | None = "5c1d2e3f4a6b"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    known = sa.table("integration_known", sa.column("entity"), sa.column("version"))
    op.execute(sa.update(known).where(known.c.entity == "order").values(version=""))


def downgrade() -> None:
    pass
