"""Tables of the built-in identity (prefix ``identity_``).

Secrets never rest in clear: sessions, one-time codes, reset links and API tokens are
stored as SHA-256 (or argon2id, for passwords) digests only. ``identity_account.id`` is
what other plugins' tables (grants, memberships) point at.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    String,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from kabinet.db import plugin_metadata

metadata = plugin_metadata()


class Base(DeclarativeBase):
    metadata = metadata
    type_annotation_map = {  # noqa: RUF012 - SQLAlchemy reads this class attribute
        dt.datetime: DateTime(timezone=True),
        dict[str, Any]: JSON,
        list[Any]: JSON,
    }


class Account(Base):
    """A person who can sign in (or who was created for Keycloak, without a password)."""

    __tablename__ = "identity_account"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    full_name: Mapped[str] = mapped_column(String(200))
    email: Mapped[str | None] = mapped_column(String(254), unique=True)
    """Lower-cased, so uniqueness is case-insensitive on every database."""
    phone: Mapped[str | None] = mapped_column(String(20), unique=True)
    """E.164 (``+79161234567``)."""
    password_hash: Mapped[str | None] = mapped_column(String(200))
    status: Mapped[str] = mapped_column(String(16), default="active")
    """``active`` or ``disabled``."""
    email_confirmed: Mapped[bool] = mapped_column(Boolean, default=False)
    phone_confirmed: Mapped[bool] = mapped_column(Boolean, default=False)
    language: Mapped[str] = mapped_column(String(8), default="ru")
    timezone: Mapped[str] = mapped_column(String(64), default="Europe/Moscow")
    external_subject: Mapped[str | None] = mapped_column(String(200), unique=True)
    """The subject at an outside identity provider (Keycloak ``sub``), if any."""
    version: Mapped[int] = mapped_column(Integer, default=1)
    """Bumped on every change a web process caches (status, name, grants)."""
    created_at: Mapped[dt.datetime]
    last_login_at: Mapped[dt.datetime | None]


class Session(Base):
    """A server-side session of the embedded default (Redis holds them in production)."""

    __tablename__ = "identity_session"
    # the retention purge deletes by ``last_seen_at`` alone (``personal.py``)
    __table_args__ = (Index("ix_identity_session_last_seen_at", "last_seen_at"),)

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    """SHA-256 of the cookie value, never the value itself."""
    account_id: Mapped[int] = mapped_column(
        ForeignKey("identity_account.id", ondelete="CASCADE"), index=True
    )
    created_at: Mapped[dt.datetime]
    last_seen_at: Mapped[dt.datetime]
    address: Mapped[str] = mapped_column(String(64), default="")
    user_agent: Mapped[str] = mapped_column(String(300), default="")


class Code(Base):
    """A one-time code confirming an e-mail address or a phone number."""

    __tablename__ = "identity_code"
    # the retention purge deletes by ``created_at`` alone (``personal.py``)
    __table_args__ = (Index("ix_identity_code_created_at", "created_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    account_id: Mapped[int] = mapped_column(
        ForeignKey("identity_account.id", ondelete="CASCADE"), index=True
    )
    purpose: Mapped[str] = mapped_column(String(32))
    """``confirm_email`` or ``confirm_phone``."""
    channel: Mapped[str] = mapped_column(String(16))
    target: Mapped[str] = mapped_column(String(254))
    """The address or number being confirmed (confirmed is what was sent to)."""
    code_hash: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[dt.datetime]
    expires_at: Mapped[dt.datetime]
    resend_after: Mapped[dt.datetime]
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    used_at: Mapped[dt.datetime | None]


class ResetToken(Base):
    """A one-time password-reset link, by its digest."""

    __tablename__ = "identity_reset_token"
    # the retention purge deletes by ``created_at`` alone (``personal.py``)
    __table_args__ = (Index("ix_identity_reset_token_created_at", "created_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    account_id: Mapped[int] = mapped_column(
        ForeignKey("identity_account.id", ondelete="CASCADE"), index=True
    )
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[dt.datetime]
    expires_at: Mapped[dt.datetime]
    used_at: Mapped[dt.datetime | None]


class ApiToken(Base):
    """A token for a client's own system: JSON API only, limited to some permissions."""

    __tablename__ = "identity_api_token"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    account_id: Mapped[int] = mapped_column(
        ForeignKey("identity_account.id", ondelete="CASCADE"), index=True
    )
    name: Mapped[str] = mapped_column(String(100))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    permissions: Mapped[list[Any]] = mapped_column(JSON, default=list)
    organizations: Mapped[list[Any]] = mapped_column(JSON, default=list)
    created_at: Mapped[dt.datetime]
    last_used_at: Mapped[dt.datetime | None]
    revoked_at: Mapped[dt.datetime | None]


class Login(Base):
    """One sign-in attempt on an existing account (the history staff and the person see)."""

    __tablename__ = "identity_login"
    __table_args__ = (
        Index("ix_identity_login_account_at", "account_id", "at"),
        # the retention purge deletes by ``at`` alone (``personal.py``)
        Index("ix_identity_login_at", "at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("identity_account.id", ondelete="CASCADE"))
    at: Mapped[dt.datetime]
    success: Mapped[bool] = mapped_column(Boolean)
    address: Mapped[str] = mapped_column(String(64), default="")
    user_agent: Mapped[str] = mapped_column(String(300), default="")


class SecurityEvent(Base):
    """Who did what to whom, where and when: the audit log admins read."""

    __tablename__ = "identity_security_event"
    __table_args__ = (Index("ix_identity_security_event_at", "at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    at: Mapped[dt.datetime]
    actor_id: Mapped[int | None] = mapped_column(
        ForeignKey("identity_account.id", ondelete="SET NULL"), index=True
    )
    action: Mapped[str] = mapped_column(String(64), index=True)
    subject_id: Mapped[int | None] = mapped_column(
        ForeignKey("identity_account.id", ondelete="SET NULL"), index=True
    )
    organization_id: Mapped[int | None] = mapped_column(Integer, index=True)
    """Opaque to identity: the companies app owns organizations."""
    address: Mapped[str] = mapped_column(String(64), default="")
    details: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


__all__ = [
    "Account",
    "ApiToken",
    "Base",
    "Code",
    "Login",
    "ResetToken",
    "SecurityEvent",
    "Session",
    "metadata",
]
