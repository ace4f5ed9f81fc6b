"""route keys: from/to filters as index ranges

``origin_key`` and ``destination_key`` hold each order's route points as the registry's
from/to filters compare them (``models.place_key``: trimmed, lower case, ``ё`` as ``е``,
no leading "г."; byte order on PostgreSQL). Two partial indexes ``(counterparty_id,
<key>, status, date, id)`` make "from Moscow" a range per counterparty and status instead
of a test of each of a manager's orders, and the registry indexes carry the keys instead
of the texts. Filling the keys rewrites every order (about a minute per million on
PostgreSQL).

Revision ID: 4d1c8e2a7b90
Revises: f69020fce05f
Create Date: 2026-11-25 13:50:00.000000
"""

import re
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "4d1c8e2a7b90"
down_revision: str | Sequence[str] | None = "f69020fce05f"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

VISIBLE = {"postgresql_where": sa.text("NOT hidden"), "sqlite_where": sa.text("hidden = 0")}
TABLE = "shipments_order"
# Each registry index with what it includes before (texts) and after (keys).
REGISTRY = {
    "ix_shipments_order_registry": (
        ["counterparty_id", "status", "date", "id"],
        ["cost", "number", "loading_date", "delivery_planned", "{o}", "{d}", "search"],
    ),
    "ix_shipments_order_registry_date": (
        ["date", "id"],
        ["counterparty_id", "status", "{o}", "{d}"],
    ),
    "ix_shipments_order_registry_cost": (
        ["cost", "id"],
        ["counterparty_id", "status", "date", "{o}", "{d}"],
    ),
}


def place_key(text: str) -> str:
    """``models.place_key`` as it was when this revision was written."""
    return re.sub(r"^(?:г\.|г |город )\s*", "", text.strip().lower().replace("ё", "е"))[:200]


def _registry(origin: str, destination: str) -> None:
    for name, (columns, include) in REGISTRY.items():
        op.drop_index(name, table_name=TABLE)
        op.create_index(
            name,
            TABLE,
            columns,
            unique=False,
            postgresql_include=[c.format(o=origin, d=destination) for c in include],
            **VISIBLE,
        )


def upgrade() -> None:
    bind = op.get_bind()
    postgres = bind.dialect.name == "postgresql"
    kind = sa.String(200, collation="C") if postgres else sa.String(200)
    for column in ("origin_key", "destination_key"):
        op.add_column(TABLE, sa.Column(column, kind, nullable=False, server_default=""))
    # lower() knows Cyrillic in a database whose character type is UTF-8 aware (C.UTF-8,
    # ru_RU.UTF-8…), not in one of type C, nor on SQLite: there the keys are made in Python
    if postgres and bind.scalar(sa.text("SELECT lower('ЁЛКИ')")) == "ёлки":
        op.execute(
            "UPDATE shipments_order SET"
            " origin_key = left(regexp_replace(replace(lower(btrim(origin)), 'ё', 'е'),"
            " '^(г\\.|г |город )\\s*', ''), 200),"
            " destination_key = left(regexp_replace(replace(lower(btrim(destination)), 'ё', 'е'),"
            " '^(г\\.|г |город )\\s*', ''), 200)"
        )
    else:
        rows = bind.execute(sa.text("SELECT id, origin, destination FROM shipments_order")).all()
        for start in range(0, len(rows), 10_000):
            bind.execute(
                sa.text(
                    "UPDATE shipments_order SET origin_key = :o, destination_key = :d"
                    " WHERE id = :id"
                ),
                [
                    {"id": r[0], "o": place_key(r[1]), "d": place_key(r[2])}
                    for r in rows[start : start + 10_000]
                ],
            )
    _registry("origin_key", "destination_key")
    for name, key, other in (
        ("ix_shipments_order_registry_from", "origin_key", "destination_key"),
        ("ix_shipments_order_registry_to", "destination_key", "origin_key"),
    ):
        op.create_index(
            name,
            TABLE,
            ["counterparty_id", key, "status", "date", "id"],
            unique=False,
            postgresql_include=[other, "cost"],
            **VISIBLE,
        )


def downgrade() -> None:
    op.drop_index("ix_shipments_order_registry_to", table_name=TABLE)
    op.drop_index("ix_shipments_order_registry_from", table_name=TABLE)
    _registry("origin", "destination")
    with op.batch_alter_table(TABLE) as batch:
        batch.drop_column("destination_key")
        batch.drop_column("origin_key")
