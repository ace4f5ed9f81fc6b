"""Who holds which role: the roles service's public queries for other apps.

Apps never import :mod:`kabinet.roles.models` (the boundary check,
``tests/test_boundaries.py``). They ask :class:`GrantQueries`, part of the roles service
(``host.services.of(ROLES)``): each method reads in bulk (one query per call) in the
caller's unit of work (``host.db.reader()``), so a read inside a request sees what the
request wrote.

Where an app's own query must filter by a grant in the same statement (a list of members
narrowed to those holding a role, counted and paged by the database), it uses
:data:`GRANTS`, a read-only selectable of grants with their role's code, instead of the
roles tables. It is a contract: its name and columns change only under the deprecation
policy of the host's public API.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

from sqlalchemy import Subquery, select

from kabinet.roles.models import grant, role

if TYPE_CHECKING:
    from kabinet.host import Host

__all__ = ["GRANTS", "GrantQueries"]

_CHUNK = 5000
"""Ids per statement: under every database's limit of bound parameters."""

GRANTS: Subquery = (
    select(
        grant.c.id,
        grant.c.person_id,
        grant.c.organization_id,
        role.c.code.label("role"),
    )
    .join(role, role.c.id == grant.c.role_id)
    .subquery("grants")
)
"""Grants as other apps may join them: ``id``, ``person_id``, ``organization_id`` (``NULL``
for a grant everywhere), ``role`` (the role's code). A plain join of the grant and role
tables: both databases' planners read it as that join (no extra cost)."""


class GrantQueries:
    """The roles service's bulk reads for other apps (mixed into the service)."""

    host: Host

    async def organization_roles(
        self, person_ids: Iterable[int]
    ) -> dict[tuple[int, int], list[str]]:
        """The roles each of ``person_ids`` holds in an organization, by (person,
        organization), each list sorted by code; grants everywhere left out."""
        wanted = sorted(set(person_ids))
        held: dict[tuple[int, int], list[str]] = {}
        g = GRANTS.c
        async with self.host.db.reader() as s:
            for i in range(0, len(wanted), _CHUNK):
                rows = await s.execute(
                    select(g.person_id, g.organization_id, g.role)
                    .where(
                        g.person_id.in_(wanted[i : i + _CHUNK]),
                        g.organization_id.is_not(None),
                    )
                    .order_by(g.role)
                )
                for person_id, org_id, code in rows:
                    held.setdefault((int(person_id), int(org_id)), []).append(str(code))
        return held

    async def holders(self, code: str) -> set[int]:
        """The people who hold role ``code`` everywhere (a grant with no organization)."""
        g = GRANTS.c
        async with self.host.db.reader() as s:
            rows = await s.scalars(
                select(g.person_id).where(g.role == code, g.organization_id.is_(None)).distinct()
            )
            return {int(p) for p in rows}
