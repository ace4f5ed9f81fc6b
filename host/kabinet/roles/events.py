"""Events the roles plugin publishes: Keycloak sync and caches subscribe to them."""

from __future__ import annotations

import msgspec

from kabinet.contrib import EventType


class GrantChanged(msgspec.Struct, kw_only=True, frozen=True):
    """A role given to or taken from a person, in an organization or globally (``None``)."""

    grant_id: int
    person_id: int
    role: str
    organization_id: int | None
    actor_id: int | None


class RoleChanged(msgspec.Struct, kw_only=True, frozen=True):
    """A role created, renamed, given other permissions, or deleted."""

    role_id: int
    role: str
    name_ru: str
    name_en: str
    actor_id: int | None
    added: list[str] = msgspec.field(default_factory=list)
    removed: list[str] = msgspec.field(default_factory=list)


GRANT_GIVEN = "roles.grant.given"
GRANT_REVOKED = "roles.grant.revoked"
ROLE_CREATED = "roles.role.created"
ROLE_RENAMED = "roles.role.renamed"
ROLE_PERMISSIONS = "roles.role.permissions_changed"
ROLE_DELETED = "roles.role.deleted"

EVENT_TYPES = [
    EventType(name=GRANT_GIVEN, payload=GrantChanged, description="A role was given."),
    EventType(name=GRANT_REVOKED, payload=GrantChanged, description="A role was taken back."),
    EventType(name=ROLE_CREATED, payload=RoleChanged, description="A custom role was created."),
    EventType(name=ROLE_RENAMED, payload=RoleChanged, description="A role was renamed."),
    EventType(
        name=ROLE_PERMISSIONS,
        payload=RoleChanged,
        description="A role's permissions changed (by an admin or a plugin's new defaults).",
    ),
    EventType(name=ROLE_DELETED, payload=RoleChanged, description="A custom role was deleted."),
]
