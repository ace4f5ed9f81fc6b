"""document files by id: whose orders list a file

The orders sink refuses an order whose document names a file that an order of another
counterparty lists (the file would be downloadable by both companies); it looks the
batch's files up through this index.

Revision ID: 9e3b5c1d7a24
Revises: 4d1c8e2a7b90
Create Date: 2026-12-07 00:30:00.000000
"""

from collections.abc import Sequence

from alembic import op

revision: str = "9e3b5c1d7a24"
down_revision: str | Sequence[str] | None = "4d1c8e2a7b90"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index(
        "ix_shipments_document_file_ref", "shipments_document", ["file_ref"], unique=False
    )


def downgrade() -> None:
    op.drop_index("ix_shipments_document_file_ref", table_name="shipments_document")
