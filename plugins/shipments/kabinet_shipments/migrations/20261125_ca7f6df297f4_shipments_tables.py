"""shipments tables

Revision ID: ca7f6df297f4
Revises:
Create Date: 2026-11-25 08:03:20.294872
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "ca7f6df297f4"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")  # the order search index
    op.create_table(
        "shipments_contract",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("external_id", sa.String(length=100), nullable=False),
        sa.Column("counterparty_id", sa.Integer(), nullable=False),
        sa.Column("number", sa.String(length=60), nullable=False),
        sa.Column("name", sa.String(length=300), nullable=False),
        sa.Column("date", sa.Date(), nullable=False),
        sa.Column("start_date", sa.Date(), nullable=True),
        sa.Column("end_date", sa.Date(), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("credit_limit", sa.Numeric(precision=16, scale=2), nullable=False),
        sa.Column("balance", sa.Numeric(precision=16, scale=2), nullable=True),
        sa.Column("balance_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("hidden", sa.Boolean(), nullable=False),
        sa.Column("digest", sa.String(length=32), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["counterparty_id"],
            ["companies_counterparty.id"],
            name=op.f("fk_shipments_contract_counterparty_id_companies_counterparty"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_shipments_contract")),
        sa.UniqueConstraint("external_id", name=op.f("uq_shipments_contract_external_id")),
    )
    with op.batch_alter_table("shipments_contract", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_shipments_contract_counterparty_id"), ["counterparty_id"], unique=False
        )

    op.create_table(
        "shipments_feed",
        sa.Column("entity", sa.String(length=40), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("entity", name=op.f("pk_shipments_feed")),
    )
    op.create_table(
        "shipments_visit",
        sa.Column("person_id", sa.Integer(), nullable=False),
        sa.Column("previous", sa.DateTime(timezone=True), nullable=True),
        sa.Column("current", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("person_id", name=op.f("pk_shipments_visit")),
    )
    op.create_table(
        "shipments_order",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("external_id", sa.String(length=100), nullable=False),
        sa.Column("counterparty_id", sa.Integer(), nullable=False),
        sa.Column("contract_id", sa.Integer(), nullable=True),
        sa.Column("number", sa.String(length=40), nullable=False),
        sa.Column("date", sa.DateTime(timezone=True), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("origin", sa.String(length=200), nullable=False),
        sa.Column("destination", sa.String(length=200), nullable=False),
        sa.Column("loading_date", sa.Date(), nullable=True),
        sa.Column("delivery_planned", sa.Date(), nullable=True),
        sa.Column("delivery_actual", sa.Date(), nullable=True),
        sa.Column("location", sa.String(length=300), nullable=False),
        sa.Column("location_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("cost", sa.Numeric(precision=16, scale=2), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("cargo_name", sa.String(length=300), nullable=False),
        sa.Column("cargo_weight", sa.Numeric(precision=12, scale=3), nullable=True),
        sa.Column("cargo_volume", sa.Numeric(precision=12, scale=3), nullable=True),
        sa.Column("cargo_places", sa.Integer(), nullable=True),
        sa.Column("shipper", sa.String(length=300), nullable=False),
        sa.Column("consignee", sa.String(length=300), nullable=False),
        sa.Column("comment", sa.Text(), nullable=False),
        sa.Column("search", sa.String(length=600), nullable=False),
        sa.Column("hidden", sa.Boolean(), nullable=False),
        sa.Column("digest", sa.String(length=32), nullable=False),
        sa.Column("status_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["contract_id"],
            ["shipments_contract.id"],
            name=op.f("fk_shipments_order_contract_id_shipments_contract"),
        ),
        sa.ForeignKeyConstraint(
            ["counterparty_id"],
            ["companies_counterparty.id"],
            name=op.f("fk_shipments_order_counterparty_id_companies_counterparty"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_shipments_order")),
        sa.UniqueConstraint("external_id", name=op.f("uq_shipments_order_external_id")),
    )
    with op.batch_alter_table("shipments_order", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_shipments_order_contract_id"), ["contract_id"], unique=False
        )
        batch_op.create_index(
            "ix_shipments_order_cp_date", ["counterparty_id", "date", "id"], unique=False
        )
        batch_op.create_index(
            "ix_shipments_order_cp_status_date",
            ["counterparty_id", "status", "date", "id"],
            unique=False,
        )
        batch_op.create_index("ix_shipments_order_date", ["date", "id"], unique=False)
        batch_op.create_index(
            "ix_shipments_order_search_trgm",
            ["search"],
            unique=False,
            postgresql_using="gin",
            postgresql_ops={"search": "gin_trgm_ops"},
        )

    op.create_table(
        "shipments_document",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("order_id", sa.Integer(), nullable=False),
        sa.Column("line", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=200), nullable=False),
        sa.Column("number", sa.String(length=60), nullable=False),
        sa.Column("date", sa.Date(), nullable=True),
        sa.Column("file_ref", sa.String(length=100), nullable=True),
        sa.Column("file_name", sa.String(length=300), nullable=False),
        sa.Column("requested_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["order_id"],
            ["shipments_order.id"],
            name=op.f("fk_shipments_document_order_id_shipments_order"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_shipments_document")),
        sa.UniqueConstraint("order_id", "line", name=op.f("uq_shipments_document_order_id_line")),
    )
    op.create_table(
        "shipments_invoice",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("external_id", sa.String(length=100), nullable=False),
        sa.Column("counterparty_id", sa.Integer(), nullable=False),
        sa.Column("contract_id", sa.Integer(), nullable=True),
        sa.Column("order_id", sa.Integer(), nullable=True),
        sa.Column("number", sa.String(length=40), nullable=False),
        sa.Column("date", sa.Date(), nullable=False),
        sa.Column("amount", sa.Numeric(precision=16, scale=2), nullable=False),
        sa.Column("paid", sa.Numeric(precision=16, scale=2), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("due_date", sa.Date(), nullable=True),
        sa.Column("payment_status", sa.String(length=16), nullable=False),
        sa.Column("hidden", sa.Boolean(), nullable=False),
        sa.Column("digest", sa.String(length=32), nullable=False),
        sa.Column("overdue_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["contract_id"],
            ["shipments_contract.id"],
            name=op.f("fk_shipments_invoice_contract_id_shipments_contract"),
        ),
        sa.ForeignKeyConstraint(
            ["counterparty_id"],
            ["companies_counterparty.id"],
            name=op.f("fk_shipments_invoice_counterparty_id_companies_counterparty"),
        ),
        sa.ForeignKeyConstraint(
            ["order_id"],
            ["shipments_order.id"],
            name=op.f("fk_shipments_invoice_order_id_shipments_order"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_shipments_invoice")),
        sa.UniqueConstraint("external_id", name=op.f("uq_shipments_invoice_external_id")),
    )
    with op.batch_alter_table("shipments_invoice", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_shipments_invoice_contract_id"), ["contract_id"], unique=False
        )
        batch_op.create_index(
            "ix_shipments_invoice_cp_date", ["counterparty_id", "date", "id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_shipments_invoice_order_id"), ["order_id"], unique=False
        )

    op.create_table(
        "shipments_order_service",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("order_id", sa.Integer(), nullable=False),
        sa.Column("line", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=300), nullable=False),
        sa.Column("quantity", sa.Numeric(precision=12, scale=3), nullable=False),
        sa.Column("amount", sa.Numeric(precision=16, scale=2), nullable=False),
        sa.ForeignKeyConstraint(
            ["order_id"],
            ["shipments_order.id"],
            name=op.f("fk_shipments_order_service_order_id_shipments_order"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_shipments_order_service")),
        sa.UniqueConstraint(
            "order_id", "line", name=op.f("uq_shipments_order_service_order_id_line")
        ),
    )
    op.create_table(
        "shipments_request",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("order_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=8), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("changes", sa.JSON(), nullable=False),
        sa.Column("comment", sa.Text(), nullable=False),
        sa.Column("person_id", sa.Integer(), nullable=True),
        sa.Column("person_name", sa.String(length=200), nullable=False),
        sa.Column("answer", sa.Text(), nullable=False),
        sa.Column("external_id", sa.String(length=100), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["order_id"],
            ["shipments_order.id"],
            name=op.f("fk_shipments_request_order_id_shipments_order"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_shipments_request")),
    )
    with op.batch_alter_table("shipments_request", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_shipments_request_order_id"), ["order_id"], unique=False
        )

    op.create_table(
        "shipments_status_change",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("order_id", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("previous", sa.String(length=16), nullable=True),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["order_id"],
            ["shipments_order.id"],
            name=op.f("fk_shipments_status_change_order_id_shipments_order"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_shipments_status_change")),
    )
    with op.batch_alter_table("shipments_status_change", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_shipments_status_change_order_id"), ["order_id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_shipments_status_change_received_at"), ["received_at"], unique=False
        )

    op.create_table(
        "shipments_vehicle",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("order_id", sa.Integer(), nullable=False),
        sa.Column("line", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=100), nullable=False),
        sa.Column("plate", sa.String(length=20), nullable=False),
        sa.Column("driver", sa.String(length=200), nullable=False),
        sa.Column("driver_phone", sa.String(length=30), nullable=False),
        sa.Column("status", sa.String(length=100), nullable=False),
        sa.ForeignKeyConstraint(
            ["order_id"],
            ["shipments_order.id"],
            name=op.f("fk_shipments_vehicle_order_id_shipments_order"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_shipments_vehicle")),
        sa.UniqueConstraint("order_id", "line", name=op.f("uq_shipments_vehicle_order_id_line")),
    )
    op.create_table(
        "shipments_request_event",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("request_id", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["request_id"],
            ["shipments_request.id"],
            name=op.f("fk_shipments_request_event_request_id_shipments_request"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_shipments_request_event")),
    )
    with op.batch_alter_table("shipments_request_event", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_shipments_request_event_at"), ["at"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_shipments_request_event_request_id"), ["request_id"], unique=False
        )

    # ### end Alembic commands ###


def downgrade() -> None:
    # ### commands auto generated by Alembic - please adjust! ###
    with op.batch_alter_table("shipments_request_event", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_shipments_request_event_request_id"))
        batch_op.drop_index(batch_op.f("ix_shipments_request_event_at"))

    op.drop_table("shipments_request_event")
    op.drop_table("shipments_vehicle")
    with op.batch_alter_table("shipments_status_change", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_shipments_status_change_received_at"))
        batch_op.drop_index(batch_op.f("ix_shipments_status_change_order_id"))

    op.drop_table("shipments_status_change")
    with op.batch_alter_table("shipments_request", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_shipments_request_order_id"))

    op.drop_table("shipments_request")
    op.drop_table("shipments_order_service")
    with op.batch_alter_table("shipments_invoice", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_shipments_invoice_order_id"))
        batch_op.drop_index("ix_shipments_invoice_cp_date")
        batch_op.drop_index(batch_op.f("ix_shipments_invoice_contract_id"))

    op.drop_table("shipments_invoice")
    op.drop_table("shipments_document")
    with op.batch_alter_table("shipments_order", schema=None) as batch_op:
        batch_op.drop_index(
            "ix_shipments_order_search_trgm",
            postgresql_using="gin",
            postgresql_ops={"search": "gin_trgm_ops"},
        )
        batch_op.drop_index("ix_shipments_order_date")
        batch_op.drop_index("ix_shipments_order_cp_status_date")
        batch_op.drop_index("ix_shipments_order_cp_date")
        batch_op.drop_index(batch_op.f("ix_shipments_order_contract_id"))

    op.drop_table("shipments_order")
    op.drop_table("shipments_visit")
    op.drop_table("shipments_feed")
    with op.batch_alter_table("shipments_contract", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_shipments_contract_counterparty_id"))

    op.drop_table("shipments_contract")
    # ### end Alembic commands ###
