"""What the roles keep about a person (the ``personal_data`` hook): their grants, shown
in their download and removed with them."""

from __future__ import annotations

from typing import TYPE_CHECKING

from sqlalchemy import delete, select

from kabinet.personal import PersonalData, Rows, rows
from kabinet.roles.models import grant, role

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession

    from kabinet.host import Host


def personal_data(host: Host) -> PersonalData:
    async def export(s: AsyncSession, person_id: int) -> dict[str, Rows]:
        found = await s.execute(
            select(
                role.c.code.label("role"),
                grant.c.organization_id,
                grant.c.granted_by,
                grant.c.created_at,
            )
            .join(role, role.c.id == grant.c.role_id)
            .where(grant.c.person_id == person_id)
            .order_by(grant.c.id)
        )
        return {"roles_grant": rows(found)}

    async def erase(s: AsyncSession, person_id: int) -> dict[str, int]:
        from kabinet.roles.services import ROLES

        result = await s.execute(delete(grant).where(grant.c.person_id == person_id))
        await host.services.of(ROLES).person_changed(person_id, s)
        return {"roles_grant": int(getattr(result, "rowcount", 0) or 0)}

    return PersonalData(export=export, erase=erase)
