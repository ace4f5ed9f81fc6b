"""Hook implementations of the built-in ``identity`` plugin."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import kabinet
from kabinet.contrib import Database, Manifest, Permission
from kabinet.hookspecs import hookimpl
from kabinet.identity.models import metadata
from kabinet.identity.services import identity_service
from kabinet.identity.settings import IdentitySettings

if TYPE_CHECKING:
    from kabinet.host import Host

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
async def shutdown(host: Host) -> None:
    service = host.services.pop("identity", None)
    if service is not None:
        await service.close()
