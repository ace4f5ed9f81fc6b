"""Tables of the built-in ``roles`` plugin.

A role is a named set of permission codes; a grant gives a role to a person in one
organization (an opaque integer owned by the companies app) or globally (NULL). Each
person has an access version, bumped in the same transaction as any change that may alter
what they may do, so every process can tell cheaply that its cached view is stale.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    String,
    Table,
    text,
)

from kabinet.db import plugin_metadata
from kabinet.identity.models import Account

metadata = plugin_metadata()

role = Table(
    "roles_role",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("code", String(64), nullable=False, unique=True),
    Column("name_ru", String(200), nullable=False),
    Column("name_en", String(200), nullable=False),
    Column("builtin", Boolean, nullable=False, default=False),
    Column("assigned_only", Boolean, nullable=False, default=False),
    # Held globally, the role reaches only the organizations assigned to the person
    # (the ``managed_organizations`` hook), not all of them: what managers are.
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
)

role_permission = Table(
    "roles_role_permission",
    metadata,
    Column("role_id", ForeignKey("roles_role.id", ondelete="CASCADE"), primary_key=True),
    Column("permission", String(200), primary_key=True),
)

default_applied = Table(
    "roles_default_applied",
    metadata,
    # A (built-in role, permission) default offered once: an admin's later removal of it
    # from the role sticks, and a permission new in a plugin's update is still added.
    Column("role_id", ForeignKey("roles_role.id", ondelete="CASCADE"), primary_key=True),
    Column("permission", String(200), primary_key=True),
)

grant = Table(
    "roles_grant",
    metadata,
    Column("id", Integer, primary_key=True),
    Column(
        "person_id",
        # A column object, not a string: the accounts table lives in identity's MetaData.
        ForeignKey(Account.__table__.c.id, ondelete="CASCADE"),
        nullable=False,
        index=True,
    ),
    Column("role_id", ForeignKey("roles_role.id", ondelete="CASCADE"), nullable=False),
    Column("organization_id", Integer, nullable=True, index=True),
    Column("granted_by", Integer, nullable=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
    # NULL is never equal to NULL in a unique constraint, so global and per-organization
    # grants each get their own partial unique index.
    Index(
        "uq_roles_grant_org",
        "person_id",
        "role_id",
        "organization_id",
        unique=True,
        postgresql_where=text("organization_id IS NOT NULL"),
        sqlite_where=text("organization_id IS NOT NULL"),
    ),
    Index(
        "uq_roles_grant_global",
        "person_id",
        "role_id",
        unique=True,
        postgresql_where=text("organization_id IS NULL"),
        sqlite_where=text("organization_id IS NULL"),
    ),
)

version = Table(
    "roles_version",
    metadata,
    # ``person:<id>`` for one person, ``roles`` for the definition of roles (all people).
    Column("key", String(40), primary_key=True),
    Column("version", BigInteger, nullable=False),
)
