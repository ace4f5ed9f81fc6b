"""Hook implementations of the built-in ``keycloak`` plugin (inactive without server_url)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import kabinet
from kabinet.contrib import Database, EventType, HealthCheck, Manifest, Subscription
from kabinet.hookspecs import hookimpl
from kabinet.keycloak import events
from kabinet.keycloak.models import metadata
from kabinet.keycloak.settings import KeycloakSettings

if TYPE_CHECKING:
    from litestar.types import ControllerRouterHandler

    from kabinet.host import Host
    from kabinet.personal import PersonalData

HERE = Path(__file__).parent


@hookimpl
def manifest() -> Manifest:
    return Manifest(
        name="keycloak",
        version=kabinet.__version__,
        title={"ru": "Вход через Keycloak", "en": "Keycloak sign-in"},
        requires=("identity", "roles"),
        settings=KeycloakSettings,
        description="Sign-in through Keycloak (OIDC with PKCE); roles and grants pushed to it.",
    )


@hookimpl
def database() -> Database:
    return Database(metadata=metadata, migrations=HERE / "migrations")


def _service(host: Host) -> Any:
    """The service, made on first use when Keycloak is configured (web, worker or CLI)."""
    settings: KeycloakSettings = host.plugin_settings("keycloak")
    if not settings.active:
        return None  # before the import: python-keycloak (and requests) cost every start
    from kabinet.keycloak.services import KEYCLOAK, KeycloakService, keycloak_service

    service = keycloak_service(host)
    if service is None:
        service = host.services.provide(KEYCLOAK, KeycloakService(host, settings))
    return service


@hookimpl
def routers(host: Host) -> list[ControllerRouterHandler]:
    from kabinet.keycloak.pages import KeycloakRoutes

    return [KeycloakRoutes]


@hookimpl
def template_dir() -> Path:
    return HERE / "templates"


@hookimpl
def event_types() -> list[EventType]:
    return list(events.EVENT_TYPES)


@hookimpl
def subscriptions(host: Host) -> list[Subscription]:
    service = _service(host)
    if service is None:
        return []
    return events.subscriptions(host, service.sync)


@hookimpl
def startup(host: Host) -> None:
    _service(host)


@hookimpl
async def shutdown(host: Host) -> None:
    service = host.services.pop("keycloak", None)
    if service is not None:
        await service.aclose()


async def _reachable(host: Host) -> str | None:
    """Keycloak answers its discovery document (sign-in and pushes need it)."""
    from keycloak.exceptions import KeycloakError

    service = _service(host)
    if service is None:
        return None
    try:
        await service.clients.openid().a_well_known()
    except KeycloakError as exc:
        return f"Keycloak at {service.settings.server_url} is not reachable: {type(exc).__name__}"
    return None


@hookimpl
def health_checks(host: Host) -> list[HealthCheck]:
    if _service(host) is None:
        return []
    # An alert: Keycloak down stops sign-ins on every process alike; taking the portal out
    # of rotation would stop the signed-in people too.
    return [HealthCheck(name="keycloak", check=_reachable, readiness=False)]


@hookimpl
def personal_data(host: Host) -> PersonalData:
    from kabinet.keycloak.personal import personal_data as found

    return found(host)
