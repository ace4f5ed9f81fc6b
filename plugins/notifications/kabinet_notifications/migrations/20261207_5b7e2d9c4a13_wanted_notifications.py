"""notifications a person wants: staff's default channels, quiet hours, a digest index,
statistics that count each delivery once (rebuilt from the deliveries; days made of hours)

Revision ID: 5b7e2d9c4a13
Revises: adab8afa780c
Create Date: 2026-12-07 01:10:00
"""

import collections
import datetime as dt
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "5b7e2d9c4a13"
down_revision: str | Sequence[str] | None = "adab8afa780c"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("notifications_notification") as batch:
        batch.add_column(sa.Column("defaults_off", sa.JSON(), nullable=False, server_default="[]"))
    op.create_table(
        "notifications_person_setting",
        sa.Column("person_id", sa.Integer(), nullable=False),
        sa.Column("quiet_from", sa.Integer(), nullable=True),
        sa.Column("quiet_to", sa.Integer(), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("person_id", name=op.f("pk_notifications_person_setting")),
    )
    op.create_index(
        "ix_notifications_delivery_person_channel",
        "notifications_delivery",
        ["person_id", "channel", "status"],
        unique=False,
    )
    op.drop_table("notifications_stat_day")
    # The hourly counts again, each delivery once under its status now.
    bind = op.get_bind()
    delivery = sa.table(
        "notifications_delivery",
        sa.column("created_at", sa.DateTime(timezone=True)),
        sa.column("event", sa.String()),
        sa.column("channel", sa.String()),
        sa.column("status", sa.String()),
    )
    stat = sa.table(
        "notifications_stat",
        sa.column("hour", sa.DateTime(timezone=True)),
        sa.column("event", sa.String()),
        sa.column("channel", sa.String()),
        sa.column("status", sa.String()),
        sa.column("count", sa.Integer()),
    )
    counts: collections.Counter[tuple[dt.datetime, str, str, str]] = collections.Counter()
    rows = bind.execute(
        sa.select(delivery.c.created_at, delivery.c.event, delivery.c.channel, delivery.c.status)
    )
    for created, event, channel, status in rows:
        if isinstance(created, str):
            created = dt.datetime.fromisoformat(created)
        if created.tzinfo is None:
            created = created.replace(tzinfo=dt.UTC)
        hour = created.astimezone(dt.UTC).replace(minute=0, second=0, microsecond=0)
        counts[(hour, event, channel, status)] += 1
    bind.execute(sa.delete(stat))
    items = [
        {"hour": h, "event": e, "channel": c, "status": s, "count": n}
        for (h, e, c, s), n in sorted(counts.items())
    ]
    for start in range(0, len(items), 1000):
        bind.execute(sa.insert(stat), items[start : start + 1000])


def downgrade() -> None:
    op.create_table(
        "notifications_stat_day",
        sa.Column("day", sa.DateTime(timezone=True), nullable=False),
        sa.Column("event", sa.String(length=120), nullable=False),
        sa.Column("channel", sa.String(length=20), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint(
            "day", "event", "channel", "status", name=op.f("pk_notifications_stat_day")
        ),
    )
    op.drop_index("ix_notifications_delivery_person_channel", table_name="notifications_delivery")
    op.drop_table("notifications_person_setting")
    with op.batch_alter_table("notifications_notification") as batch:
        batch.drop_column("defaults_off")
