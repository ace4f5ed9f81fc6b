"""Every route of the notifications app keeps its access rule (the route matrix, on the
host's built-ins and this app only, so it does not depend on the other apps)."""

from __future__ import annotations

import pytest

from kabinet.routematrix import routes_of
from kabinet.testing import Portal

pytestmark = pytest.mark.smoke


async def test_every_notifications_route_keeps_its_access_rule(portal: Portal) -> None:
    mine = [r for r in routes_of(portal.app) if "notifications" in r.path]
    assert len(mine) >= 15
    prefixes = ("/notifications", "/api/notifications")
    assert all(r.path.startswith(prefixes) for r in mine), [r.path for r in mine]
    faults = [f for prefix in prefixes for f in await portal.route_faults(prefix)]
    assert faults == [], "\n".join(faults)
