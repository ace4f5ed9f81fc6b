"""Fixtures of the dictionaries tests: the harness's portal (kabinet.testing) with this app
alone on the run's migrated database."""

from __future__ import annotations

from typing import Any

import pytest

from kabinet.host import Host
from kabinet.testing import Portal, PortalFactory
from kabinet_dictionaries.services import Dictionaries

ONLY = ("dictionaries",)
"""Only this app (and the built-ins): other apps' work in progress cannot break it."""


@pytest.fixture
async def portal(
    request: pytest.FixtureRequest, make_portal: PortalFactory, portal_settings: dict[str, Any]
) -> Portal:
    """The test's portal; its web app is built only for a test that asks for ``web`` (the
    others work on the host alone, which starts in a fraction of the time)."""
    dictionaries = {"max_file_size_mb": 1, **portal_settings.get("dictionaries", {})}
    return await make_portal(
        settings={**portal_settings, "dictionaries": dictionaries},
        plugins=ONLY,
        web="web" in request.fixturenames,
    )


@pytest.fixture
def web(portal: Portal) -> Portal:
    """The test's portal with its web app: ``web.signed_in(person)``, ``web.client``."""
    return portal


@pytest.fixture
def host(portal: Portal) -> Host:
    return portal.host


@pytest.fixture
def svc(host: Host) -> Dictionaries:
    found: Dictionaries = host.services["dictionaries"]
    return found
