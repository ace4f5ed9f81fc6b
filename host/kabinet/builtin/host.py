"""The built-in ``host`` plugin: the host's own permissions and health checks."""

from __future__ import annotations

from typing import TYPE_CHECKING

from sqlalchemy import text

import kabinet
from kabinet.contrib import HealthCheck, Manifest, Permission
from kabinet.hookspecs import hookimpl

if TYPE_CHECKING:
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
    ]


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
