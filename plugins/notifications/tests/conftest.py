"""Fixtures of the notifications tests: the harness's portal (kabinet.testing) with the
notifications app and a small app that declares notifications (``depot``)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from notif_support import DEPOT, forget_edits, notifications_candidates

from kabinet.host import Host
from kabinet.testing import PluginFactory, Portal, PortalFactory


@pytest.fixture
async def portal(
    request: pytest.FixtureRequest,
    make_portal: PortalFactory,
    plugin_factory: PluginFactory,
    portal_settings: dict[str, Any],
) -> AsyncIterator[Portal]:
    """The built-ins, notifications and ``depot``; each message sent at once unless the
    test's ``kabinet_settings(notifications=...)`` asks for the digest window. A test that
    asks for ``host`` works on the host alone: its portal builds no web app (no clients)."""
    plugin_factory.add("depot", DEPOT)
    notifications = {"digest_minutes": 0, **portal_settings.get("notifications", {})}
    found = await make_portal(
        settings={**portal_settings, "notifications": notifications},
        candidates=[*plugin_factory.candidates(), *notifications_candidates()],
        web="host" not in request.fixturenames,
    )
    yield found
    await forget_edits(found.host)


@pytest.fixture
def host(portal: Portal) -> Host:
    """The host of the test's portal (no web app: see ``portal``)."""
    return portal.host
