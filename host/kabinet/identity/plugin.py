"""Hook implementations of the built-in ``identity`` plugin."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import click
import msgspec

import kabinet
from kabinet.contrib import Database, EventType, Manifest, NavItem, Permission
from kabinet.hookspecs import hookimpl
from kabinet.identity.models import metadata
from kabinet.identity.services import identity_service
from kabinet.identity.settings import IdentitySettings

if TYPE_CHECKING:
    from litestar.types import ControllerRouterHandler

    from kabinet.host import Host
    from kabinet.metrics import MetricsCollector
    from kabinet.personal import PersonalData

HERE = Path(__file__).parent


@hookimpl
def manifest() -> Manifest:
    return Manifest(
        name="identity",
        version=kabinet.__version__,
        title={"ru": "Учётные записи и вход", "en": "Accounts and sign-in"},
        settings=IdentitySettings,
        description="Accounts, passwords, sessions, confirmation codes, API tokens, audit log.",
    )


@hookimpl
def database() -> Database:
    return Database(metadata=metadata, migrations=HERE / "migrations")


@hookimpl
def permissions() -> list[Permission]:
    return [
        Permission(
            code="identity.accounts.manage",
            label={
                "ru": "Учётные записи: создание, блокировка, история входов",
                "en": "Accounts: create, disable, see their sign-ins",
            },
            default_roles=("admin",),
            scope="global",
        ),
        Permission(
            code="identity.audit.view",
            label={"ru": "Просмотр журнала безопасности", "en": "View the security log"},
            default_roles=("admin",),
            scope="global",
        ),
        Permission(
            code="identity.tokens.manage",
            label={
                "ru": "API-токены для своих систем",
                "en": "API tokens for one's own systems",
            },
            default_roles=("client",),
            scope="organization",
        ),
    ]


@hookimpl
def startup(host: Host) -> None:
    identity_service(host)


@hookimpl
def locale_dir() -> Path:
    return HERE / "locale"


@hookimpl
async def shutdown(host: Host) -> None:
    service = host.services.pop("identity", None)
    if service is not None:
        await service.close()


@hookimpl
def routers(host: Host) -> list[ControllerRouterHandler]:
    from kabinet.identity import account_pages, api, pages, personal_pages, profile_pages

    return [
        *pages.routers(),
        *profile_pages.routers(),
        *account_pages.routers(),
        *personal_pages.routers(),
        *api.routers(),
    ]


@hookimpl
def middleware(host: Host) -> list[Any]:
    from kabinet.identity.middleware import IdentityMiddleware

    return [IdentityMiddleware(host)]


@hookimpl
def template_dir() -> Path:
    return HERE / "templates"


@hookimpl
def static_dir() -> Path:
    return HERE / "static" / "identity"


@hookimpl
def navigation(host: Host) -> list[NavItem]:
    return [
        NavItem(
            path="/identity/accounts",
            label={"ru": "Учётные записи", "en": "Accounts"},
            permission="identity.accounts.manage",
            order=800,
            section="admin",
        ),
        NavItem(
            path="/identity/audit",
            label={"ru": "Журнал безопасности", "en": "Security log"},
            permission="identity.audit.view",
            order=810,
            section="admin",
        ),
        NavItem(
            path="/identity/profile",
            label={"ru": "Мой профиль", "en": "My profile"},
            order=900,
            section="personal",
        ),
    ]


@hookimpl
def cli_commands() -> list[click.Command]:
    from kabinet.identity.commands import users

    return [users]


@hookimpl
async def demo_data(host: Host) -> None:
    from kabinet.identity.demo import demo_accounts, warn_demo

    warn_demo(await demo_accounts(host))


@hookimpl
def route_samples(host: Host) -> list[Any]:
    from kabinet.identity.samples import SAMPLES

    return list(SAMPLES)


class AccountChanged(msgspec.Struct, frozen=True):
    """An account whose status or contact details changed."""

    account_id: int


@hookimpl
def event_types() -> list[EventType]:
    """Other apps (Keycloak, companies' contact copies) follow accounts through these."""
    return [
        EventType(
            name=f"identity.account.{what}",
            payload=AccountChanged,
            description=f"An account was {what}.",
        )
        for what in ("disabled", "enabled", "updated")
    ]


@hookimpl
def metrics(host: Host) -> list[MetricsCollector]:
    from kabinet.identity.metrics import collectors

    return collectors()


@hookimpl
def personal_data(host: Host) -> PersonalData:
    from kabinet.identity.personal import personal_data as found

    return found(host)
