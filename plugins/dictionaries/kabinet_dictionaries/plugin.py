"""Hook implementations of the dictionaries app."""

from __future__ import annotations

from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any

import structlog
from sqlalchemy import inspect

from kabinet.contrib import Database, EntitySink, Manifest, NavItem, Permission
from kabinet.hookspecs import hookimpl
from kabinet_dictionaries import __version__
from kabinet_dictionaries.models import metadata
from kabinet_dictionaries.services import (
    DICTIONARIES,
    DOCS_MANAGE,
    DOCS_VIEW,
    EDIT,
    MANAGE,
    VIEW,
    Dictionaries,
    Settings,
)

if TYPE_CHECKING:
    from litestar.types import ControllerRouterHandler

    from kabinet.host import Host
    from kabinet.routematrix import RouteSample

log = structlog.get_logger("kabinet.dictionaries")


@hookimpl
def manifest() -> Manifest:
    return Manifest(
        name="dictionaries",
        version=__version__,
        title={"ru": "Справочники", "en": "Dictionaries"},
        requires_host=">=0.1,<1",
        requires=(),
        settings=Settings,
        description="Reference data whose structure admins define at run time, and documents.",
        summary={
            "ru": "Тарифы, пункты погрузки и документы компании всегда под рукой.",
            "en": "Tariffs, loading points and the company's documents at hand.",
        },
    )


@hookimpl
def database() -> Database:
    return Database(metadata=metadata, migrations=Path(__file__).parent / "migrations")


@hookimpl
def hookspecs() -> ModuleType:
    from kabinet_dictionaries import hookspecs as specs

    return specs


@hookimpl
def permissions() -> list[Permission]:
    return [
        Permission(
            code=MANAGE,
            label={"ru": "Настройка справочников", "en": "Define dictionaries"},
            default_roles=("admin",),
            scope="global",
        ),
        Permission(
            code=EDIT,
            label={"ru": "Ведение записей справочников", "en": "Edit dictionary entries"},
            default_roles=("admin", "manager"),
            scope="global",
        ),
        Permission(
            code=VIEW,
            label={"ru": "Просмотр справочников", "en": "Read dictionaries"},
            default_roles=("client", "manager", "admin"),
        ),
        Permission(
            code=DOCS_MANAGE,
            label={"ru": "Загрузка документов", "en": "Upload documents"},
            default_roles=("admin", "manager"),
            scope="global",
        ),
        Permission(
            code=DOCS_VIEW,
            label={"ru": "Библиотека документов", "en": "Document library"},
            default_roles=("client", "manager", "admin"),
        ),
    ]


@hookimpl
def routers(host: Host) -> list[ControllerRouterHandler]:
    from kabinet_dictionaries import api, pages

    return [api.router(host), pages.router(host)]


@hookimpl
def navigation(host: Host) -> list[NavItem]:
    return [
        NavItem(
            path="/dictionaries/",
            label={"ru": "Справочники", "en": "Dictionaries"},
            permission=VIEW,
            order=60,
        ),
        NavItem(
            path="/dictionaries/documents/",
            label={"ru": "Документы", "en": "Documents"},
            permission=DOCS_VIEW,
            order=61,
        ),
    ]


@hookimpl
def template_dir() -> Path:
    return Path(__file__).parent / "templates"


@hookimpl
def locale_dir() -> Path:
    """Plural forms of counts (ngettext): the labels are in :mod:`kabinet_dictionaries.texts`."""
    return Path(__file__).parent / "locale"


@hookimpl
def static_dir() -> Path:
    return Path(__file__).parent / "static" / "dictionaries"


@hookimpl
def entity_sinks(host: Host) -> list[EntitySink]:
    from kabinet_dictionaries.sinks import sinks

    return sinks()


@hookimpl
def route_samples(host: Host) -> list[RouteSample]:
    from kabinet_dictionaries.samples import samples

    return samples()


async def _migrated(host: Host) -> bool:
    async with host.db.engine.connect() as conn:
        return bool(await conn.run_sync(lambda c: inspect(c).has_table("dictionaries_field")))


@hookimpl
async def startup(host: Host) -> None:
    """Publish the service; create the dictionaries other apps declared."""
    service = Dictionaries(host)
    host.services.provide(DICTIONARIES, service)
    if not await _migrated(host):
        log.warning("dictionaries.not_migrated", hint="run `kabinet db upgrade`")
        return
    specs: list[Any] = []
    if "dictionaries_types" in vars(host.plugins.pm.hook):
        for result in await host.plugins.acall("dictionaries_types", host=host):
            specs.extend(result.value or [])
    created = await service.ensure_types(specs)
    if created:
        log.info("dictionaries.created", codes=created)


@hookimpl
async def demo_data(host: Host) -> None:
    from kabinet_dictionaries.demo import load

    await load(host)
