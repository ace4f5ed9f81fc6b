"""Organizations by name, when the companies app is there (it is optional: this app does
not require it and imports nothing of it; without it an organization shows as its number)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

from kabinet.services import ServiceKey

if TYPE_CHECKING:
    from kabinet.access import Principal
    from kabinet.host import Host


class Named(Protocol):
    @property
    def name(self) -> str: ...


class Companies(Protocol):
    """What this app uses of the companies service."""

    async def organization(self, org_id: int, principal: Principal | None = None, /) -> Named: ...


COMPANIES: ServiceKey[Companies] = ServiceKey("companies", Companies)
"""The companies service, if published; read with ``host.services.find``."""


async def organization_name(
    host: Host, organization_id: int | None, principal: Principal | None = None
) -> str:
    """The organization's name (as ``principal`` may see it, when given); ``""`` when the
    companies app is absent, the organization is gone or not visible to that person."""
    companies = host.services.find(COMPANIES)
    if organization_id is None or companies is None:
        return ""
    try:
        found = await companies.organization(organization_id, principal)
    except Exception:  # refused by the companies app (gone, not visible): the number stays
        return ""
    return str(found.name)
