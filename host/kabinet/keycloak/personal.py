"""What the Keycloak app keeps about a person (the ``personal_data`` hook): the Keycloak
session behind each portal session started there (their Keycloak user id, sealed tokens).
Listed in their download without the tokens; removed with them. The person's account in
Keycloak itself is Keycloak's: remove it there too."""

from __future__ import annotations

from typing import TYPE_CHECKING

from sqlalchemy import delete, select

from kabinet.keycloak.models import session
from kabinet.personal import PersonalData, Rows, rows

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession

    from kabinet.host import Host


def personal_data(host: Host) -> PersonalData:
    async def export(s: AsyncSession, person_id: int) -> dict[str, Rows]:
        found = await s.execute(
            select(session.c.subject, session.c.created_at).where(session.c.account_id == person_id)
        )
        return {"keycloak_session": rows(found)}

    async def erase(s: AsyncSession, person_id: int) -> dict[str, int]:
        result = await s.execute(delete(session).where(session.c.account_id == person_id))
        return {"keycloak_session": int(getattr(result, "rowcount", 0) or 0)}

    return PersonalData(export=export, erase=erase)
