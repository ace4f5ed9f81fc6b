"""What the Keycloak app keeps about a person (the ``personal_data`` hook): the Keycloak
session behind each portal session started there (their Keycloak user id, sealed tokens).
Listed in their download without the tokens; removed with them.

Removing a person also reaches their user in Keycloak, as ``[keycloak] erase_user`` says:
``delete`` it (the default), ``disable`` it with its name, e-mail and attributes blanked,
its username replaced where the realm allows, and its sessions ended (a realm other systems
share), or ``keep`` it. Their user is the
one the portal links to the account (``identity_account.external_subject``, which
identity's part of the removal clears after this one) and any other Keycloak user their
portal sessions came from. Keycloak is never called inside the removal's transaction: the
removal publishes one :data:`~kabinet.keycloak.events.USER_ERASED` event per user in it,
so the event exists exactly when the removal committed, and a subscriber makes the call
afterwards as a job (retried with backoff while Keycloak is away, then recorded as failed
for admins to retry: never dropped in silence). A user Keycloak no longer has counts as
done. Until then (and after, should someone re-enable a disabled user in Keycloak) the
sign-in refuses those users: the removal records them in ``keycloak_erased``
(:mod:`kabinet.keycloak.erased`). A person with no linked user and no Keycloak session
(they never signed in through Keycloak) publishes nothing: the removal does not look
Keycloak users up by e-mail, which may belong to someone else now; see docs/operations.md.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import structlog
from sqlalchemy import delete, select

from kabinet.identity.models import Account
from kabinet.keycloak.erased import remember
from kabinet.keycloak.events import USER_ERASED, UserErased
from kabinet.keycloak.models import session
from kabinet.keycloak.settings import KeycloakSettings
from kabinet.personal import PersonalData, Rows, rows

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession

    from kabinet.host import Host

log = structlog.get_logger("kabinet.keycloak")


def personal_data(host: Host) -> PersonalData:
    settings = host.plugin_settings("keycloak", KeycloakSettings)

    async def export(s: AsyncSession, person_id: int) -> dict[str, Rows]:
        found = await s.execute(
            select(session.c.subject, session.c.created_at).where(session.c.account_id == person_id)
        )
        return {"keycloak_session": rows(found)}

    async def users_of(s: AsyncSession, person_id: int) -> list[str]:
        """The person's Keycloak user ids: the linked one and those of their sessions."""
        linked = await s.scalar(select(Account.external_subject).where(Account.id == person_id))
        found = await s.scalars(
            select(session.c.subject).where(session.c.account_id == person_id).distinct()
        )
        return sorted({u for u in (linked, *found) if u})

    async def erase(s: AsyncSession, person_id: int) -> dict[str, int]:
        if settings.erase_user != "keep":
            users = await users_of(s, person_id)
            # None of them signs in again, from the commit on (the job comes later).
            await remember(host, s, users)
        if settings.active and settings.erase_user != "keep":
            for user_id in users:
                payload = UserErased.of(user_id, settings.erase_user)
                await host.events.publish(s, USER_ERASED, payload)
            if users:
                log.info(
                    "keycloak.user_erase_queued",
                    person=person_id,
                    users=len(users),
                    action=settings.erase_user,
                )
            else:
                # Never signed in through Keycloak: nothing names a Keycloak user. One with
                # their address may exist (made in Keycloak); an address is no proof, so it
                # is left for an operator to look up in Keycloak (docs/operations.md).
                log.warning(
                    "keycloak.user_erase_unlinked",
                    person=person_id,
                    action=settings.erase_user,
                    hint="no Keycloak user is linked; check Keycloak by hand",
                )
        result = await s.execute(delete(session).where(session.c.account_id == person_id))
        return {"keycloak_session": int(getattr(result, "rowcount", 0) or 0)}

    return PersonalData(export=export, erase=erase)
