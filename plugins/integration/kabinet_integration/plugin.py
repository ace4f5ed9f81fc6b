"""Hook implementations of the integration app."""

from __future__ import annotations

import logging
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any

import click

from kabinet.contrib import (
    Actor,
    Database,
    HealthCheck,
    Manifest,
    NavItem,
    Permission,
    Schedule,
    Subscription,
)
from kabinet.hookspecs import hookimpl
from kabinet_integration import __version__
from kabinet_integration.models import metadata
from kabinet_integration.settings import Settings

if TYPE_CHECKING:
    from litestar.types import ControllerRouterHandler

    from kabinet.contrib import EntitySink
    from kabinet.events import Event
    from kabinet.host import Host
    from kabinet.metrics import MetricsCollector
    from kabinet.routematrix import RouteSample
    from kabinet_integration.connectors import ConnectorType

HERE = Path(__file__).parent
log = logging.getLogger(__name__)
__all__ = ["Settings"]


@hookimpl
def manifest() -> Manifest:
    return Manifest(
        name="integration",
        version=__version__,
        title={"ru": "Интеграция с 1С", "en": "1C integration"},
        requires_host=">=0.1,<1",
        requires=("companies", "shipments"),
        settings=Settings,
        description="Delta exchange with 1C into the apps' entity sinks; write-back.",
        summary={
            "ru": "Данные из 1С каждые 20 минут: заявки, счета и договоры без звонков.",
            "en": "Data from 1C every 20 minutes: orders, invoices and contracts without a call.",
        },
    )


@hookimpl
def hookspecs() -> ModuleType:
    from kabinet_integration import hookspecs as specs

    return specs


@hookimpl
def entity_sinks(host: Host) -> list[EntitySink]:
    from kabinet_integration.replies import entity_sinks as sinks

    return sinks()  # 1C's answers to handed-over records, to the sinks they name


@hookimpl
def integration_connectors(host: Host) -> list[ConnectorType]:
    return []  # the built-in 1C connector is always there (connectors.builtin_connectors)


@hookimpl
def database() -> Database:
    return Database(metadata=metadata, migrations=HERE / "migrations")


@hookimpl
def permissions() -> list[Permission]:
    return [
        Permission(
            code="integration.runs.view",
            label={"ru": "Просмотр обменов с 1С и карантина", "en": "View sync runs, quarantine"},
            default_roles=("manager", "admin"),
            scope="global",
        ),
        Permission(
            code="integration.runs.manage",
            label={
                "ru": "Запуск обмена, карантин, повтор запросов",
                "en": "Run syncs, quarantine, retry requests",
            },
            default_roles=("admin",),
            scope="global",
        ),
    ]


@hookimpl
def routers(host: Host) -> list[ControllerRouterHandler]:
    from kabinet_integration import api, pages

    return [api.router(), pages.router()]


@hookimpl
def navigation(host: Host) -> list[NavItem]:
    return [
        NavItem(
            path="/integration/runs",
            label={"ru": "Обмен с 1С", "en": "1C sync"},
            permission="integration.runs.view",
            order=900,
            section="admin",
        )
    ]


@hookimpl
def template_dir() -> Path:
    return HERE / "templates"


@hookimpl
def static_dir() -> Path:
    return HERE / "static" / "integration"  # served at /static/integration/


@hookimpl
def actors(host: Host) -> list[Actor]:
    from kabinet_integration.jobs import actors as make

    return make(host)


@hookimpl
def schedules(host: Host) -> list[Schedule]:
    from kabinet_integration.jobs import schedules as make

    return make(host)


@hookimpl
def subscriptions(host: Host) -> list[Subscription]:
    from kabinet_integration import files

    async def document_requested(event: Event, session: Any) -> None:
        await files.on_document_requested(host, event, session)

    async def file_dropped(event: Event, session: Any) -> None:
        await files.on_file_dropped(host, event, session)

    # Client requests are handed over by their plugins (the OUTBOUND service), not taken
    # from their events here.
    subs = []
    if "shipments.document.requested" in host.event_types:
        subs.append(
            Subscription(
                event="shipments.document.requested",
                name="integration.fetch_file",
                handler=document_requested,
            )
        )
    if "shipments.invoice_file.requested" in host.event_types:
        subs.append(
            Subscription(
                event="shipments.invoice_file.requested",
                name="integration.fetch_invoice_file",
                handler=document_requested,
            )
        )
    if "shipments.file.dropped" in host.event_types:
        subs.append(
            Subscription(
                event="shipments.file.dropped",
                name="integration.fetch_dropped_file",
                handler=file_dropped,
            )
        )
    return subs


@hookimpl
def cli_commands() -> list[click.Command]:
    from kabinet_integration.commands import group

    return [group]


@hookimpl
async def demo_data(host: Host) -> None:
    from kabinet_integration.demo import load_demo

    print(await load_demo(host))


@hookimpl
def route_samples(host: Host) -> list[RouteSample]:
    from kabinet_integration.samples import samples

    return samples()


@hookimpl
def metrics(host: Host) -> list[MetricsCollector]:
    from kabinet_integration.metrics import collectors

    return collectors()


@hookimpl
def health_checks(host: Host) -> list[HealthCheck]:
    async def fresh(host: Host) -> str | None:
        from kabinet_integration.services import stale_sources

        stale = await stale_sources(host)
        if stale:
            return f"no successful sync for three intervals: {', '.join(stale)}"
        return None

    async def sinks(host: Host) -> str | None:
        from kabinet_integration.sinkplan import SinkPlanError
        from kabinet_integration.sync import integration

        try:
            await integration(host).ordered_sinks()
        except SinkPlanError as exc:
            return str(exc)
        return None

    # An alert, not readiness: a 1C outage must not take the portal out of rotation (its
    # pages and its data keep serving); monitoring reads it on /health/checks. The sinks'
    # order is the portal's own fault: ``kabinet check`` fails on it, naming the sink.
    return [
        HealthCheck(name="sync", check=fresh, readiness=False),
        HealthCheck(name="entity_sinks", check=sinks),
    ]


@hookimpl
async def startup(host: Host) -> None:
    from kabinet_integration.outbound import Outbound
    from kabinet_integration.services import OUTBOUND, REQUESTS, RequestStates
    from kabinet_integration.sync import integration

    svc = integration(host)  # published now for other plugins; a CLI command's on first use
    host.services.provide(REQUESTS, RequestStates(host))
    host.services.provide(OUTBOUND, Outbound(host))
    # The sinks in their depends_on order: a cycle or an unknown dependency stops the
    # start, naming the sink (SinkPlanError); a feed naming no sink is said in the log.
    from kabinet_integration.sinkplan import unfed

    for line in unfed(svc.settings.sources, await svc.ordered_sinks()):
        log.warning("%s", line)


@hookimpl
async def shutdown(host: Host) -> None:
    from kabinet_integration import limits

    await limits.close(host)  # the Redis clients of the shared limits toward 1C
