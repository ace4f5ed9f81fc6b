"""Fixtures of the companies tests: the harness's portal (kabinet.testing) with this app
alone.

Every other installed plugin is off in these tests (``plugins=ONLY``), so the companies app
is tested on its own (it requires none of them) on a database migrated for exactly that
portal (cloned from a template on PostgreSQL).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from kabinet.host import Host
from kabinet.testing import Portal, PortalFactory, drop_database, migrated_database
from kabinet_companies.services import CompaniesService, companies

ONLY = ("companies",)
"""The plugins (besides the built-ins) of these tests' portals."""


@pytest.fixture(scope="module")
async def module_url(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[str]:
    url = await migrated_database(tmp_path_factory.mktemp("companies"), ONLY)
    yield url
    await drop_database(url)


@pytest.fixture
def make_portal(make_portal: PortalFactory, module_url: str) -> PortalFactory:
    """The harness's ``make_portal`` on this module's database with this app alone."""

    async def make(**kwargs: Any) -> Portal:
        kwargs.setdefault("database_url", module_url)
        kwargs.setdefault("plugins", ONLY)
        return await make_portal(**kwargs)

    return make


@pytest.fixture
async def portal(
    request: pytest.FixtureRequest, make_portal: PortalFactory, portal_settings: dict[str, Any]
) -> Portal:
    """The test's portal; its web app is built only for a test that asks for ``web``
    (the others work on the host alone, which starts in a fraction of the time)."""
    return await make_portal(settings=portal_settings, web="web" in request.fixturenames)


@pytest.fixture
def web(portal: Portal) -> Portal:
    """The test's portal with its web app: ``web.signed_in(person)``, ``web.client``."""
    return portal


@pytest.fixture
def host(portal: Portal) -> Host:
    return portal.host


@pytest.fixture
def svc(host: Host) -> CompaniesService:
    return companies(host)
