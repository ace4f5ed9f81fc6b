"""The ``[keycloak]`` settings section."""

from __future__ import annotations

from typing import Literal
from urllib.parse import urlsplit

import msgspec

from kabinet.errors import SettingsError

EraseUser = Literal["delete", "disable", "keep"]


class KeycloakSettings(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """Where Keycloak is and how the portal talks to it; empty ``server_url``: not used."""

    server_url: str = ""
    """Keycloak's base URL, e.g. ``https://sso.example.ru/`` (Keycloak >= 17, no ``/auth``)."""
    realm: str = ""
    """The realm people sign in to."""
    client_id: str = "kabinet"
    """The portal's OIDC client in that realm (standard flow, PKCE S256)."""
    client_secret: str = ""
    """The client's secret when it is confidential; empty for a public client."""
    scope: str = "openid email profile"
    admin_realm: str = "master"
    """The realm of the admin account below (``master``, or ``realm`` for a service account
    created there)."""
    admin_client_id: str = "admin-cli"
    admin_client_secret: str = ""
    """Client-credentials grant: the secret of ``admin_client_id`` (a service account with
    the realm-management roles manage-users and manage-realm)."""
    admin_username: str = ""
    admin_password: str = ""
    """Password grant with ``admin-cli``, when no client secret is given."""
    verify_tls: bool = True
    ca_bundle: str = ""
    """A CA bundle file to verify Keycloak's certificate with (instead of the system's)."""
    timeout: int = 10
    """Seconds a call to Keycloak may take."""
    login_timeout: int = 600
    """Seconds between leaving for Keycloak's login page and coming back."""
    role_prefix: str = ""
    """Prepended to a portal role's code to name its Keycloak realm role."""
    group_prefix: str = "org-"
    """Organization ``7``'s group is ``/<group_prefix>7``; a role there is its subgroup."""
    erase_user: EraseUser = "delete"
    """What removing a person in the portal does to their Keycloak user, after the portal's
    transaction commits: ``delete`` it; ``disable`` it, blank its name, e-mail and
    attributes, rename it ``erased-…`` where the realm allows editing usernames, and end its
    sessions (a realm other systems share); or ``keep`` it as it is."""

    @property
    def active(self) -> bool:
        return bool(self.server_url)

    @property
    def base_url(self) -> str:
        return self.server_url.rstrip("/") + "/"

    @property
    def verify(self) -> bool | str:
        return self.ca_bundle or self.verify_tls

    def __post_init__(self) -> None:
        if not self.server_url:
            return
        parts = urlsplit(self.server_url)
        if parts.scheme not in {"http", "https"} or not parts.netloc:
            msg = f"[keycloak] server_url: expected an http(s) URL, got {self.server_url!r}"
            raise SettingsError(msg)
        if not self.realm:
            raise SettingsError("[keycloak] realm: required when server_url is set")
        if not self.client_id:
            raise SettingsError("[keycloak] client_id: required when server_url is set")
        if "openid" not in self.scope.split():
            raise SettingsError("[keycloak] scope: must include openid")
        if not self.admin_client_secret and not (self.admin_username and self.admin_password):
            msg = (
                "[keycloak] admin credentials are required when server_url is set: "
                "admin_client_secret (client credentials) or admin_username and admin_password"
            )
            raise SettingsError(msg)
        if self.timeout <= 0 or self.login_timeout <= 0:
            raise SettingsError("[keycloak] timeout and login_timeout must be positive")
