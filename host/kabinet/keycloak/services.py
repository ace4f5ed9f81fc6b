"""The Keycloak plugin's services, published as ``host.services["keycloak"]``."""

from __future__ import annotations

from typing import TYPE_CHECKING

import structlog

from kabinet.identity.services import identity_service
from kabinet.keycloak.accounts import KeycloakAccounts
from kabinet.keycloak.client import KeycloakClients
from kabinet.keycloak.login import LoginFlow
from kabinet.keycloak.sync import KeycloakSync
from kabinet.services import ServiceKey

if TYPE_CHECKING:
    from kabinet.host import Host
    from kabinet.keycloak.settings import KeycloakSettings

log = structlog.get_logger("kabinet.keycloak")

CALLBACK_PATH = "/keycloak/callback"
LOGIN_PATH = "/keycloak/login"


class KeycloakService:
    """Sign-in (``flow``, ``accounts``), logout, and the push to Keycloak (``sync``)."""

    def __init__(self, host: Host, settings: KeycloakSettings) -> None:
        self.host = host
        self.settings = settings
        self.clients = KeycloakClients(settings)
        self.flow = LoginFlow(host, self.clients, settings)
        self.accounts = KeycloakAccounts(host)
        self.sync = KeycloakSync(host, self.clients, settings)

    @property
    def cookie_name(self) -> str:
        return identity_service(self.host).cookie_name

    @property
    def session_lifetime(self) -> int:
        return identity_service(self.host).settings.absolute_timeout

    def callback_url(self) -> str:
        return self.host.absolute_url(CALLBACK_PATH)

    async def logout(self, token: str, *, address: str = "") -> None:
        """End the portal session ``token`` and the Keycloak session it came from.

        The portal session ends even when Keycloak cannot be reached (the failure is
        logged); its Keycloak session then ends by Keycloak's own timeout.
        """
        refresh = await self.accounts.take_keycloak_session(token)
        await identity_service(self.host).logout(token, address=address)
        if refresh:
            await self.flow.end_keycloak_session(refresh)

    async def aclose(self) -> None:
        await self.clients.aclose()


KEYCLOAK: ServiceKey[KeycloakService] = ServiceKey("keycloak", KeycloakService)
"""The Keycloak service's key (published only when Keycloak is configured)."""


def keycloak_service(host: Host) -> KeycloakService | None:
    """The service when Keycloak is configured, else ``None`` (identity's own login)."""
    return host.services.find(KEYCLOAK)


def login_redirect(host: Host, next_path: str = "/") -> str | None:
    """Where identity's ``/login`` sends people when Keycloak is configured, else ``None``."""
    if keycloak_service(host) is None:
        return None
    from urllib.parse import quote

    return f"{LOGIN_PATH}?next={quote(next_path, safe='/')}"
