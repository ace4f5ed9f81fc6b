"""Hook implementations of the built-in ``host`` plugin: the host's own permissions, health
checks, tables (``migrations/``), jobs (:mod:`.jobs`) and the admins' view of failed jobs
and events (:mod:`.api`)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import text

import kabinet
from kabinet.contrib import (
    Actor,
    Database,
    HealthCheck,
    Manifest,
    NavItem,
    Permission,
    Schedule,
)
from kabinet.hookspecs import hookimpl
from kabinet.personal import PersonalData

if TYPE_CHECKING:
    import click
    from litestar.types import ControllerRouterHandler

    from kabinet.host import Host


@hookimpl
def manifest() -> Manifest:
    return Manifest(
        name="host",
        version=kabinet.__version__,
        title={"ru": "Платформа", "en": "Platform"},
        description="Plugins, settings, database, identity, jobs and the page shell.",
    )


@hookimpl
def permissions() -> list[Permission]:
    return [
        Permission(
            code="host.plugins.view",
            label={"ru": "Просмотр установленных приложений", "en": "View installed apps"},
            default_roles=("admin",),
            scope="global",
        ),
        Permission(
            code="host.jobs.manage",
            label={
                "ru": "Просмотр и повтор неудавшихся задач и событий",
                "en": "View and retry failed jobs and events",
            },
            default_roles=("admin",),
            scope="global",
        ),
    ]


@hookimpl
def database() -> Database:
    from kabinet.models import metadata

    return Database(metadata=metadata, migrations=Path(__file__).parent / "migrations")


@hookimpl
def actors(host: Host) -> list[Actor]:
    from kabinet.builtin import jobs

    return jobs.actors(host)


@hookimpl
def schedules(host: Host) -> list[Schedule]:
    from kabinet.builtin import jobs

    return jobs.schedules()


@hookimpl
def routers(host: Host) -> list[ControllerRouterHandler]:
    from kabinet.builtin import api

    return api.routers(host)


@hookimpl
def navigation(host: Host) -> list[NavItem]:
    """Admins reach the failed jobs and events page from the menu."""
    return [
        NavItem(
            path="/host/jobs",
            label={"ru": "Задачи и события", "en": "Jobs and events"},
            permission="host.jobs.manage",
            order=910,
            section="admin",
        )
    ]


@hookimpl
async def startup(host: Host) -> None:
    from kabinet.host import PROCESS
    from kabinet.jobs import start_embedded

    if (host.services.find(PROCESS) or "web") == "web":
        await start_embedded(host)


@hookimpl
async def shutdown(host: Host) -> None:
    from kabinet.jobs import stop_embedded

    await stop_embedded(host)


async def _database(host: Host) -> str | None:
    try:
        async with host.db.engine.connect() as conn:
            await conn.execute(text("SELECT 1"))
    except Exception as exc:  # any driver fault means "not ready", with its reason
        return f"{type(exc).__name__}: {exc}"
    return None


@hookimpl
def health_checks(host: Host) -> list[HealthCheck]:
    return [HealthCheck(name="database", check=_database)]


@hookimpl
def personal_data(host: Host) -> PersonalData:
    from kabinet.personal import host_part

    return host_part(host)


@hookimpl
def cli_commands() -> list[click.Command]:
    from kabinet.backup import backup_command, restore_command

    return [backup_command, restore_command]
