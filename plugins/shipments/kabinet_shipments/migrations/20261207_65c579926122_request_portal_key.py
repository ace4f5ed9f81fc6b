"""request portal key: a UUID 1C knows each client request by

``ИдентификаторПортала`` was the request's row id ("1", "2", …), which a second portal
writing to the same 1C (staging, a re-created database) has too: it found the other
portal's document and applied the other portal's answers. Every request now has a random
UUID, unique across installations; existing requests get one here.

Revision ID: 65c579926122
Revises: 9e3b5c1d7a24
Create Date: 2026-12-07 00:48:51.834980
"""

import uuid
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "65c579926122"
down_revision: str | Sequence[str] | None = "9e3b5c1d7a24"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BATCH = 1000


def upgrade() -> None:
    with op.batch_alter_table("shipments_request", schema=None) as batch_op:
        batch_op.add_column(sa.Column("portal_key", sa.String(length=36), nullable=True))
    bind = op.get_bind()
    request = sa.table("shipments_request", sa.column("id"), sa.column("portal_key"))
    fill = (
        sa.update(request)
        .where(request.c.id == sa.bindparam("rid"))
        .values(portal_key=sa.bindparam("key"))
    )
    while ids := bind.scalars(
        sa.select(request.c.id).where(request.c.portal_key.is_(None)).limit(BATCH)
    ).all():
        bind.execute(fill, [{"rid": i, "key": str(uuid.uuid4())} for i in ids])
    with op.batch_alter_table("shipments_request", schema=None) as batch_op:
        batch_op.alter_column("portal_key", existing_type=sa.String(length=36), nullable=False)
        batch_op.create_unique_constraint(
            batch_op.f("uq_shipments_request_portal_key"), ["portal_key"]
        )


def downgrade() -> None:
    with op.batch_alter_table("shipments_request", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("uq_shipments_request_portal_key"), type_="unique")
        batch_op.drop_column("portal_key")
