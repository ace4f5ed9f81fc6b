"""Tables of the companies app (prefix ``companies_``).

An *organization* is a client company in the portal; a *counterparty* is a legal entity
known to the production system and belongs to at most one organization (none: it waits
for a manager). A *contact* is a person the app knows (a copy of the account's name and
contacts kept for fast search), linked to organizations by *memberships*. Roles in an
organization are the host's grants (``roles_grant.organization_id`` = our id); the app owns
the memberships, manager assignments, link requests with their history, invitations and
the consent texts.
"""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    Boolean,
    Column,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    String,
    Table,
    Text,
    UniqueConstraint,
)

from kabinet.db import plugin_metadata
from kabinet.identity.services import ACCOUNT_KEY

metadata = plugin_metadata()
ACCOUNT_ID = ACCOUNT_KEY

organization = Table(
    "companies_organization",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("name", String(300), nullable=False),
    Column("inn", String(12), nullable=True, index=True),
    Column("kpp", String(9), nullable=True),
    Column("search", String(400), nullable=False, default=""),
    # lower-cased "name inn" for search by a part of either
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    Index(
        "ix_companies_organization_search_trgm",
        "search",
        postgresql_using="gin",
        postgresql_ops={"search": "gin_trgm_ops"},
    ),
)

counterparty = Table(
    "companies_counterparty",
    metadata,
    Column("id", Integer, primary_key=True),
    Column(
        "organization_id",
        ForeignKey("companies_organization.id", ondelete="SET NULL"),
        nullable=True,
        index=True,
    ),
    Column("external_id", String(100), nullable=True, unique=True),
    Column("name", String(300), nullable=False),
    Column("full_name", String(500), nullable=False, default=""),
    Column("inn", String(12), nullable=False, index=True),
    Column("kpp", String(9), nullable=True),
    Column("address", String(500), nullable=False, default=""),
    Column("phone", String(50), nullable=False, default=""),
    Column("email", String(254), nullable=False, default=""),
    Column("hidden", Boolean, nullable=False, default=False),
    # deleted in the production system: kept (orders still point at it), shown nowhere
    Column("source", String(16), nullable=False, default="manual"),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
)

contact = Table(
    "companies_contact",
    metadata,
    Column("person_id", ForeignKey(ACCOUNT_ID, ondelete="CASCADE"), primary_key=True),
    Column("full_name", String(200), nullable=False),
    Column("email", String(254), nullable=True),
    Column("phone", String(20), nullable=True),
    Column("search", String(500), nullable=False),
    # lower-cased "name email phone": one trigram index serves all three searches
    Column("created_at", DateTime(timezone=True), nullable=False),
    Index(
        "ix_companies_contact_search_trgm",
        "search",
        postgresql_using="gin",
        postgresql_ops={"search": "gin_trgm_ops"},
    ),
)

membership = Table(
    "companies_membership",
    metadata,
    Column("id", Integer, primary_key=True),
    Column(
        "organization_id",
        ForeignKey("companies_organization.id", ondelete="CASCADE"),
        nullable=False,
        index=True,
    ),
    Column("person_id", ForeignKey(contact.c.person_id, ondelete="CASCADE"), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    UniqueConstraint("person_id", "organization_id"),
)

manager = Table(
    "companies_manager",
    metadata,
    Column(
        "organization_id",
        ForeignKey("companies_organization.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    Column("person_id", ForeignKey(ACCOUNT_ID, ondelete="CASCADE"), primary_key=True, index=True),
    Column("assigned_by", Integer, nullable=True),
    Column("assigned_at", DateTime(timezone=True), nullable=False),
)

link_request = Table(
    "companies_link_request",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("person_id", ForeignKey(ACCOUNT_ID, ondelete="CASCADE"), nullable=False, index=True),
    Column("kind", String(8), nullable=False),  # "inn" or "new"
    Column("inn", String(12), nullable=False),
    Column("kpp", String(9), nullable=True),
    Column("company_name", String(300), nullable=False, default=""),
    Column("comment", Text, nullable=False, default=""),
    Column(
        "counterparty_id",
        ForeignKey("companies_counterparty.id", ondelete="SET NULL"),
        nullable=True,
    ),
    Column(
        "organization_id",
        ForeignKey("companies_organization.id", ondelete="SET NULL"),
        nullable=True,
        index=True,
    ),
    Column("status", String(16), nullable=False, index=True),
    Column("role", String(64), nullable=True),
    Column("reason", Text, nullable=False, default=""),
    Column("decided_by", Integer, nullable=True),
    Column("decided_at", DateTime(timezone=True), nullable=True),
    Column("created_at", DateTime(timezone=True), nullable=False, index=True),
    Column("updated_at", DateTime(timezone=True), nullable=False),
)

request_event = Table(
    "companies_request_event",
    metadata,
    Column("id", Integer, primary_key=True),
    Column(
        "request_id",
        ForeignKey("companies_link_request.id", ondelete="CASCADE"),
        nullable=False,
        index=True,
    ),
    Column("at", DateTime(timezone=True), nullable=False),
    Column("actor_id", Integer, nullable=True),
    Column("action", String(16), nullable=False),
    Column("comment", Text, nullable=False, default=""),
    Column("details", JSON, nullable=False, default=dict),
)

invitation = Table(
    "companies_invitation",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("email", String(254), nullable=False, index=True),
    Column("full_name", String(200), nullable=False),
    Column(
        "organization_id",
        ForeignKey("companies_organization.id", ondelete="CASCADE"),
        nullable=False,
        index=True,
    ),
    Column("role", String(64), nullable=False),
    Column("token_hash", String(64), nullable=False, unique=True),
    Column("status", String(16), nullable=False),  # pending, accepted, revoked
    Column("expires_at", DateTime(timezone=True), nullable=False),
    Column("sent_count", Integer, nullable=False, default=1),
    Column("person_id", Integer, nullable=True),
    Column("created_by", Integer, nullable=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("accepted_at", DateTime(timezone=True), nullable=True),
)

consent = Table(
    "companies_consent",
    metadata,
    Column("version", Integer, primary_key=True),
    Column("text_ru", Text, nullable=False),
    Column("text_en", Text, nullable=False),
    Column("created_by", Integer, nullable=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
)

agreement = Table(
    "companies_agreement",
    metadata,
    Column("person_id", ForeignKey(ACCOUNT_ID, ondelete="CASCADE"), primary_key=True),
    Column("version", ForeignKey("companies_consent.version"), primary_key=True),
    Column("at", DateTime(timezone=True), nullable=False),
    Column("address", String(64), nullable=False, default=""),
)

registration = Table(
    "companies_registration",
    metadata,
    # A person who registered (or was invited) here: until both contacts are confirmed
    # the account can do nothing but confirm them.
    Column("person_id", ForeignKey(ACCOUNT_ID, ondelete="CASCADE"), primary_key=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("confirmed_at", DateTime(timezone=True), nullable=True),
)
