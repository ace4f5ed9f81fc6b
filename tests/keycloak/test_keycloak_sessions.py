"""Signing in through Keycloak ends the session the browser had (issue 14, point 7)."""

from __future__ import annotations

from typing import Any

import pytest
from test_keycloak_login import Client, client, host, ivan, sign_in

from kabinet.host import Host
from kabinet.identity.services import IDENTITY

pytestmark = pytest.mark.smoke
__all__ = ["client", "host", "ivan"]  # the fixtures, from the login tests


async def test_signing_in_again_ends_the_browsers_former_session(
    host: Host, client: Client, ivan: Any
) -> None:
    assert (await sign_in(client)).status_code == 302
    old = client.cookies.get("kabinet_session")
    assert old
    identity = host.services.of(IDENTITY)
    assert await identity.resolve_session(old) is not None
    assert (await sign_in(client)).status_code == 302  # the browser still sends the old one
    new = client.cookies.get("kabinet_session")
    assert new
    assert new != old
    assert await identity.resolve_session(old) is None
    assert await identity.resolve_session(new) is not None
