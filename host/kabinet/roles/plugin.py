"""Hook implementations of the built-in ``roles`` plugin."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import structlog
from sqlalchemy import inspect

import kabinet
from kabinet.contrib import Database, EventType, Manifest, NavItem, Permission
from kabinet.hookspecs import hookimpl
from kabinet.roles.access import RolesAccess
from kabinet.roles.events import EVENT_TYPES
from kabinet.roles.models import metadata
from kabinet.roles.services import ROLES, RolesService
from kabinet.roles.settings import Settings

if TYPE_CHECKING:
    from litestar.types import ControllerRouterHandler

    from kabinet.host import Host
    from kabinet.personal import PersonalData
    from kabinet.routematrix import RouteSample

log = structlog.get_logger("kabinet.roles")


@hookimpl
def manifest() -> Manifest:
    return Manifest(
        name="roles",
        version=kabinet.__version__,
        title={"ru": "Роли и права", "en": "Roles and permissions"},
        requires=("identity",),
        settings=Settings,
        description="Roles, permissions, grants per organization and the access check.",
    )


@hookimpl
def database() -> Database:
    return Database(metadata=metadata, migrations=Path(__file__).parent / "migrations")


@hookimpl
def permissions() -> list[Permission]:
    return [
        Permission(
            code="roles.manage",
            label={
                "ru": "Управление ролями и правами доступа",
                "en": "Manage roles and access grants",
            },
            default_roles=("admin",),
            scope="global",
        ),
    ]


@hookimpl
def routers(host: Host) -> list[ControllerRouterHandler]:
    from kabinet.roles.pages import router

    return [router()]


@hookimpl
def route_samples(host: Host) -> list[RouteSample]:
    from kabinet.roles.samples import SAMPLES

    return list(SAMPLES)


@hookimpl
def static_dir() -> Path:
    return Path(__file__).parent / "static"


@hookimpl
def event_types() -> list[EventType]:
    return list(EVENT_TYPES)


@hookimpl
def navigation(host: Host) -> list[NavItem]:
    return [
        NavItem(
            path="/roles/",
            label={"ru": "Роли", "en": "Roles"},
            permission="roles.manage",
            order=900,
            section="admin",
        )
    ]


@hookimpl
def template_dir() -> Path:
    return Path(__file__).parent / "templates"


async def _migrated(host: Host) -> bool:
    async with host.db.engine.connect() as conn:
        return bool(await conn.run_sync(lambda c: inspect(c).has_table("roles_role")))


@hookimpl
async def startup(host: Host) -> None:
    """Install the access service; create built-in roles and add new default permissions."""
    settings: Settings = host.plugin_settings("roles")
    access = RolesAccess(
        host,
        recheck_seconds=settings.recheck_seconds,
        recheck_seconds_redis=settings.recheck_seconds_redis,
    )
    service = RolesService(host, access)
    host.access = access
    host.services.provide(ROLES, service)
    if await _migrated(host):
        await service.sync()
    else:
        log.warning("roles.not_migrated", hint="run `kabinet db upgrade`")
    await access.start(host.settings.host.redis_url)


@hookimpl
async def shutdown(host: Host) -> None:
    access = host.access
    if isinstance(access, RolesAccess):
        await access.stop()


@hookimpl
def personal_data(host: Host) -> PersonalData:
    from kabinet.roles.personal import personal_data as found

    return found(host)
