"""Who may do what in which organizations: the permission codes and the part of the
companies service every other part stands on (the host, the roles service, the clock and
the organizations a principal holds a permission in)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Set
from typing import TYPE_CHECKING, Any

from sqlalchemy import ColumnElement

from kabinet.access import ALL, AllOrganizations, Principal
from kabinet.roles.services import ROLES
from kabinet_companies.validation import NotFound

if TYPE_CHECKING:
    from kabinet.host import Host
    from kabinet.roles.services import RolesService

VIEW = "companies.organizations.view"
MANAGE = "companies.organizations.manage"
CREATE = "companies.organizations.create"
COUNTERPARTIES = "companies.counterparties.manage"
CONTACTS_VIEW = "companies.contacts.view"
CONTACTS_MANAGE = "companies.contacts.manage"
ASSIGN = "companies.managers.assign"
COUNT_CAP = 1000
"""Searches count matches up to this; ``total`` = COUNT_CAP + 1 means "more"."""
STAFF_ROLES = frozenset({"user", "manager", "admin"})
"""Roles never given in an organization from the companies pages (staff-wide ones)."""

Orgs = Set[int] | AllOrganizations


class SystemPrincipal(Principal):
    """The portal itself (demo data, the CLI, jobs): holds every permission everywhere."""


SYSTEM = SystemPrincipal(person_id=None, name="system", kind="token")


def within(column: Any, orgs: Orgs) -> ColumnElement[bool] | None:
    """The filter "column in orgs"; ``None`` for ALL (no filter)."""
    if isinstance(orgs, AllOrganizations):
        return None
    found: ColumnElement[bool] = column.in_(sorted(orgs) or [-1])
    return found


class Part:
    """What every part of :class:`~kabinet_companies.services.CompaniesService` uses."""

    def __init__(self, host: Host) -> None:
        self.host = host

    @property
    def roles(self) -> RolesService:
        return self.host.services.of(ROLES)

    @property
    def now(self) -> dt.datetime:
        return self.host.clock.now()

    async def allowed(self, principal: Principal, code: str) -> Orgs:
        if isinstance(principal, SystemPrincipal):
            return ALL
        return await self.host.access.organizations(principal, code)

    async def can(self, principal: Principal, code: str) -> bool:
        """Holds ``code`` globally (staff-wide)."""
        if isinstance(principal, SystemPrincipal):
            return True
        return await self.host.access.can(principal, code)

    async def _visible(self, principal: Principal, code: str, org_id: int | None) -> None:
        """404 unless ``principal`` holds ``code`` in ``org_id``."""
        if org_id is None or org_id not in await self.allowed(principal, code):
            raise NotFound("no such organization", "organization")
