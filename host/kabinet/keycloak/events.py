"""Event subscribers that push the portal's roles, grants and accounts to Keycloak, and the
event of a removed person's Keycloak user (:data:`USER_ERASED`, this plugin's own).

Each runs as a job (at least once, retried with backoff by the event bus, and recorded as
failed for admins after the last attempt), so a Keycloak that is down for a while only
delays the push. Handlers raise on any Keycloak error to get that retry.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import msgspec

from kabinet.contrib import EventType, Subscription

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession

    from kabinet.events import Event
    from kabinet.host import Host
    from kabinet.keycloak.sync import KeycloakSync

GRANT_EVENTS = ("roles.grant.given", "roles.grant.revoked")
ROLE_CREATED = "roles.role.created"
ROLE_RENAMED = "roles.role.renamed"
ROLE_DELETED = "roles.role.deleted"
ACCOUNT_EVENTS = ("identity.account.disabled", "identity.account.enabled")
"""Subscribed to when the identity plugin declares them (it owns account status)."""
USER_ERASED = "keycloak.user.erased"


class UserErased(msgspec.Struct, kw_only=True, frozen=True):
    """A person removed in the portal whose Keycloak user is to be deleted or disabled.

    Published in the removal's transaction (so it exists exactly when the removal
    committed) and handled after it, with retries, by :meth:`KeycloakSync.erase_user`.
    """

    user: list[int]
    """The Keycloak user id as its UTF-8 bytes, not as text: the removal then replaces
    every text naming the person in event payloads, and an id that contains their e-mail
    address (a federated user's ``f:<provider>:<username>``) would be replaced too."""
    action: str
    """``delete`` or ``disable``: ``[keycloak] erase_user`` when the person was removed."""

    @classmethod
    def of(cls, user_id: str, action: str) -> UserErased:
        return cls(user=list(user_id.encode()), action=action)

    @property
    def user_id(self) -> str:
        return bytes(self.user).decode()


EVENT_TYPES = [
    EventType(
        name=USER_ERASED,
        payload=UserErased,
        description="A removed person's Keycloak user is to be deleted or disabled.",
    )
]


def _field(payload: Any, *names: str) -> Any:
    for name in names:
        value = payload.get(name) if isinstance(payload, dict) else getattr(payload, name, None)
        if value is not None:
            return value
    return None


def subscriptions(host: Host, sync: KeycloakSync) -> list[Subscription]:
    """The Keycloak subscribers, for the event types some plugin declares."""

    async def push_person(event: Event, session: AsyncSession) -> None:
        person = _field(event.payload, "person_id", "account_id", "subject_id", "person")
        if person is not None:
            await sync.push_person(int(person), session)

    async def role_created(event: Event, session: AsyncSession) -> None:
        await sync.ensure_role(str(_field(event.payload, "role")), _description(event.payload))

    async def role_renamed(event: Event, session: AsyncSession) -> None:
        await sync.describe_role(str(_field(event.payload, "role")), _description(event.payload))

    async def role_deleted(event: Event, session: AsyncSession) -> None:
        await sync.remove_role(str(_field(event.payload, "role")))

    async def user_erased(event: Event, session: AsyncSession) -> None:
        payload: UserErased = event.payload  # the declared struct
        await sync.erase_user(payload.user_id, payload.action)

    wanted: list[Subscription] = [
        *(
            Subscription(event=e, name=f"keycloak.push.{e}", handler=push_person)
            for e in GRANT_EVENTS
        ),
        *(
            Subscription(event=e, name=f"keycloak.push.{e}", handler=push_person)
            for e in ACCOUNT_EVENTS
        ),
        Subscription(event=ROLE_CREATED, name="keycloak.role.create", handler=role_created),
        Subscription(event=ROLE_RENAMED, name="keycloak.role.describe", handler=role_renamed),
        Subscription(event=ROLE_DELETED, name="keycloak.role.delete", handler=role_deleted),
        Subscription(event=USER_ERASED, name="keycloak.user.erase", handler=user_erased),
    ]
    return [s for s in wanted if s.event in host.event_types]


def _description(payload: Any) -> str:
    ru, en = _field(payload, "name_ru"), _field(payload, "name_en")
    return " / ".join(str(n) for n in (en, ru) if n)
