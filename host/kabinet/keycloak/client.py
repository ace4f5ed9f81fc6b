"""python-keycloak clients for the configured realm.

``KeycloakOpenID`` and ``KeycloakAdmin`` each hold an ``httpx.AsyncClient``, which belongs to
the event loop it first ran on; a worker may run jobs on another loop than the web server,
so each loop gets its own pair (the admin token is fetched once per pair and refreshed by
python-keycloak).
"""

from __future__ import annotations

import asyncio
import weakref

from keycloak import KeycloakAdmin, KeycloakOpenID

from kabinet.keycloak.settings import KeycloakSettings


class KeycloakClients:
    """The OIDC and admin clients of one realm, one pair per running event loop."""

    def __init__(self, settings: KeycloakSettings) -> None:
        self.settings = settings
        self._openid: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, KeycloakOpenID] = (
            weakref.WeakKeyDictionary()
        )
        self._admin: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, KeycloakAdmin] = (
            weakref.WeakKeyDictionary()
        )

    def openid(self) -> KeycloakOpenID:
        loop = asyncio.get_running_loop()
        client = self._openid.get(loop)
        if client is None:
            s = self.settings
            client = KeycloakOpenID(
                server_url=s.base_url,
                realm_name=s.realm,
                client_id=s.client_id,
                client_secret_key=s.client_secret or None,
                verify=s.verify,
                timeout=s.timeout,
            )
            self._openid[loop] = client
        return client

    def admin(self) -> KeycloakAdmin:
        loop = asyncio.get_running_loop()
        client = self._admin.get(loop)
        if client is None:
            s = self.settings
            secret = s.admin_client_secret or None
            client = KeycloakAdmin(
                server_url=s.base_url,
                realm_name=s.realm,
                user_realm_name=s.admin_realm,
                client_id=s.admin_client_id,
                client_secret_key=secret,
                username=None if secret else s.admin_username,
                password=None if secret else s.admin_password,
                grant_type="client_credentials" if secret else "password",
                verify=s.verify,
                timeout=s.timeout,
            )
            self._admin[loop] = client
        return client

    async def aclose(self) -> None:
        """Close the clients of the running loop (others close with their loop)."""
        loop = asyncio.get_running_loop()
        openid = self._openid.pop(loop, None)
        if openid is not None:
            await openid.connection.aclose()
        admin = self._admin.pop(loop, None)
        if admin is not None:
            await admin.connection.aclose()
            token_client = admin.connection._keycloak_openid  # created on first token only
            if token_client is not None:
                await token_client.connection.aclose()
