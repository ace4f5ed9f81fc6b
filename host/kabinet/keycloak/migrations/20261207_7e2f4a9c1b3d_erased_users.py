"""keycloak_erased: the Keycloak users of people removed in the portal

Revision ID: 7e2f4a9c1b3d
Revises: 5c1d2e3f4a5b
Create Date: 2026-12-07 16:45:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "7e2f4a9c1b3d"
down_revision: str | Sequence[str] | None = "5c1d2e3f4a5b"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "keycloak_erased",
        sa.Column(
            "subject_digest",
            sa.String(length=64),
            nullable=False,
            comment="HMAC-SHA256 of the Keycloak user id (a key derived from secret_key)",
        ),
        sa.Column("erased_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("subject_digest", name=op.f("pk_keycloak_erased")),
        comment="Keycloak users of people removed in the portal: never signed in again",
    )


def downgrade() -> None:
    op.drop_table("keycloak_erased")
