"""The base of the dictionaries service: its rights, and what every part of it
uses (the host, a session, the clock, whether a staff right reaches organizations).

:class:`~kabinet_dictionaries.services.Dictionaries` is built on it from its parts (the
document library is :class:`~kabinet_dictionaries.library.DocumentLibrary`).
"""

from __future__ import annotations

import contextlib
import datetime as dt
from collections.abc import AsyncIterator, Iterable
from typing import TYPE_CHECKING

from sqlalchemy.ext.asyncio import AsyncSession

from kabinet.access import AllOrganizations, Principal
from kabinet_dictionaries.settings import Settings

if TYPE_CHECKING:
    from kabinet.host import Host
    from kabinet_dictionaries.structure import TypeInfo

MANAGE = "dictionaries.types.manage"
EDIT = "dictionaries.entries.edit"
VIEW = "dictionaries.entries.view"
DOCS_MANAGE = "dictionaries.documents.manage"
DOCS_VIEW = "dictionaries.documents.view"


class ServiceBase:
    """What the parts of the service share: the host, the settings, the cached types."""

    def __init__(self, host: Host) -> None:
        self.host = host
        self.settings: Settings = host.plugin_settings("dictionaries", Settings)
        self._types: dict[str, TypeInfo] = {}
        """Definitions read before, by code: shared, never changed in place (see _type)."""

    @contextlib.asynccontextmanager
    async def _session(self) -> AsyncIterator[AsyncSession]:
        async with self.host.db.session() as session:
            yield session

    def _now(self) -> dt.datetime:
        return self.host.clock.now()

    async def _reaches(
        self, principal: Principal, code: str, addressed: Iterable[int] | None
    ) -> bool:
        """Does ``principal``'s staff right ``code`` reach an object addressed to the
        organizations ``addressed`` (``None``: to every organization)? Staff rights on what
        is addressed to organizations apply only where they are held: a manager's in the
        organizations assigned to them, an admin's everywhere (``ALL``)."""
        if not await self.host.access.can(principal, code):
            return False
        reach = await self.host.access.organizations(principal, code)
        if isinstance(reach, AllOrganizations):
            return True
        return addressed is not None and all(org in reach for org in addressed)
