"""create tables

Revision ID: 5c1d2e3f4a5b
Revises:
Create Date: 2026-11-25 08:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "5c1d2e3f4a5b"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "keycloak_login",
        sa.Column(
            "key", sa.String(length=64), nullable=False, comment="SHA-256 of the browser's cookie"
        ),
        sa.Column("state", sa.String(length=100), nullable=False),
        sa.Column("nonce", sa.String(length=100), nullable=False),
        sa.Column("code_verifier", sa.String(length=200), nullable=False),
        sa.Column("redirect_uri", sa.String(length=500), nullable=False),
        sa.Column("next_path", sa.String(length=500), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_keycloak_login")),
        comment="Sign-ins in progress at Keycloak; each row is used once",
    )
    with op.batch_alter_table("keycloak_login", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_keycloak_login_created_at"), ["created_at"], unique=False
        )

    op.create_table(
        "keycloak_session",
        sa.Column(
            "key", sa.String(length=64), nullable=False, comment="identity's session key (a digest)"
        ),
        sa.Column("account_id", sa.Integer(), nullable=False),
        sa.Column(
            "subject", sa.String(length=200), nullable=False, comment="Keycloak's user id (sub)"
        ),
        sa.Column(
            "keycloak_session", sa.String(length=200), nullable=False, comment="Keycloak's sid"
        ),
        sa.Column("refresh_token", sa.Text(), nullable=False),
        sa.Column("id_token", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_keycloak_session")),
        comment="The Keycloak session behind each portal session started through Keycloak",
    )
    with op.batch_alter_table("keycloak_session", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_keycloak_session_account_id"), ["account_id"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("keycloak_session", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_keycloak_session_account_id"))
    op.drop_table("keycloak_session")
    with op.batch_alter_table("keycloak_login", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_keycloak_login_created_at"))
    op.drop_table("keycloak_login")
