"""The built-in ``host`` plugin: the host's own permissions, health checks, tables and jobs."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

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
from kabinet.personal import PURGE_ACTOR, PersonalData

if TYPE_CHECKING:
    import click
    from sqlalchemy.ext.asyncio import AsyncSession

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
    from kabinet.events import DELIVER_ACTOR, DELIVER_BATCH_ACTOR, REDELIVER_ACTOR

    async def deliver(
        event_id: int, subscriber: str, attempt: int = 0, event: dict[str, Any] | None = None
    ) -> None:
        await host.events.deliver(event_id, subscriber, attempt, event)

    async def deliver_batch(subscriber: str, events: list[list[Any]]) -> None:
        await host.events.deliver_batch(subscriber, events)

    async def redeliver() -> None:
        await host.events.redeliver_stale()

    async def purge_personal_data(session: AsyncSession) -> None:
        from kabinet.personal import purge

        await purge(host, session)

    return [
        Actor(name=PURGE_ACTOR, fn=purge_personal_data, max_retries=2),
        Actor(name=DELIVER_ACTOR, fn=deliver, queue="events"),
        Actor(name=DELIVER_BATCH_ACTOR, fn=deliver_batch, queue="events"),
        Actor(name=REDELIVER_ACTOR, fn=redeliver, queue="events", max_retries=0),
    ]


@hookimpl
def schedules(host: Host) -> list[Schedule]:
    from kabinet.events import REDELIVER_ACTOR

    # Deliveries whose job was lost (a stopped embedded process, a flushed Redis).
    return [
        Schedule(name="host.redeliver_events", actor=REDELIVER_ACTOR, interval=300),
        # Personal data past its period (docs/operations.md, Personal data), at night.
        Schedule(name="host.personal_data.purge", actor=PURGE_ACTOR, cron="17 3 * * *"),
    ]


@hookimpl
def routers(host: Host) -> list[Any]:
    from kabinet.builtin import runtime_api

    return runtime_api.routers(host)


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
