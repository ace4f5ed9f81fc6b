"""Hooks of the booking app: everything it gives the host, in one place.

Built on the platform kit alone (the host's public API and the public services of the
apps it requires: companies, dictionaries, shipments), it is the worked example of
``docs/plugins.md``: clients place new orders, which become orders in the production
system.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import TYPE_CHECKING, Any

from kabinet.access import Principal
from kabinet.contrib import (
    Actor,
    Database,
    EntitySink,
    EventType,
    Manifest,
    NavItem,
    NotificationType,
    Panel,
    Permission,
    Schedule,
)
from kabinet.hookspecs import hookimpl
from kabinet.host import Host
from kabinet.personal import PersonalData
from kabinet.routematrix import RouteSample
from kabinet_booking import __version__, api, carriage, events, jobs, pages, samples
from kabinet_booking.models import metadata
from kabinet_booking.services import ACCEPT, BOOKING, CREATE, REVIEW, VIEW, BookingService
from kabinet_booking.settings import Settings
from kabinet_shipments.structs import OrderLink

if TYPE_CHECKING:
    from litestar.types import ControllerRouterHandler

HERE = Path(__file__).parent


@hookimpl
def manifest() -> Manifest:
    return Manifest(
        name="booking",
        version=__version__,
        title={"ru": "Новые заявки", "en": "New orders"},
        requires_host=">=0.1,<1",
        requires=("companies", "dictionaries", "shipments"),
        settings=Settings,
        description="Clients place new orders; they become orders in the production system",
        summary={
            "ru": "Новые заявки на перевозку: форма, шаблоны, загрузка из файла.",
            "en": "New transport orders: a form, templates, an import from a file.",
        },
    )


@hookimpl
def database() -> Database:
    return Database(metadata=metadata, migrations=HERE / "migrations")


@hookimpl
def permissions() -> list[Permission]:
    return [
        Permission(
            code=VIEW,
            label={"ru": "Просмотр новых заявок", "en": "View new-order requests"},
            default_roles=("client", "manager", "admin"),
        ),
        Permission(
            code=CREATE,
            label={"ru": "Оформление новых заявок", "en": "Place new orders"},
            default_roles=("client", "admin"),
        ),
        Permission(
            code=REVIEW,
            label={"ru": "Согласование новых заявок", "en": "Review new-order requests"},
            default_roles=("manager", "admin"),
        ),
        Permission(
            code=ACCEPT,
            label={
                "ru": "Принятие заявок в портале (без учётной системы)",
                "en": "Accept requests in the portal (no production system)",
            },
            default_roles=("admin",),
        ),
    ]


@hookimpl
def event_types() -> list[EventType]:
    return [
        EventType(
            name=events.SUBMITTED,
            payload=events.RequestSubmitted,
            description="A new-order request is to be carried to the production system",
        ),
        EventType(
            name=events.ACCEPTED,
            payload=events.RequestDecided,
            description="A request became an order",
        ),
        EventType(
            name=events.REJECTED,
            payload=events.RequestDecided,
            description="The production system rejected a request",
        ),
        EventType(
            name=events.RETURNED,
            payload=events.RequestDecided,
            description="A manager returned a request to the client",
        ),
    ]


@hookimpl
def routers(host: Host) -> list[ControllerRouterHandler]:
    return [pages.router(), api.router()]


@hookimpl
def navigation(host: Host) -> list[NavItem]:
    return [
        NavItem(
            path="/booking/",
            label={"ru": "Новые заявки", "en": "New orders"},
            permission=VIEW,
            order=14,
        )
    ]


@hookimpl
def panels(host: Host) -> list[Panel]:
    return [
        Panel(
            slot="shell.home",
            name="booking.requests",
            render=pages.home_panel,
            permission=VIEW,
            order=15,
            title={"ru": "Новые заявки", "en": "New orders"},
        )
    ]


@hookimpl
def template_dir() -> Path:
    return HERE / "templates"


@hookimpl
def static_dir() -> Path:
    return HERE / "static" / "booking"  # served at /static/booking/


@hookimpl
def locale_dir() -> Path:
    return HERE / "locale"


@hookimpl
def dictionaries_types(host: Host) -> list[dict[str, Any]]:
    settings = host.plugin_settings("booking", Settings)
    field = {
        "code": "name",
        "name_ru": "Название",
        "name_en": "Name",
        "kind": "text",
        "required": True,
    }
    return [
        {
            "code": settings.vehicle_dictionary,
            "name_ru": "Типы ТС",
            "name_en": "Vehicle types",
            "fields": [field],
        },
        {
            "code": settings.services_dictionary,
            "name_ru": "Дополнительные услуги",
            "name_en": "Additional services",
            "fields": [field],
        },
    ]


@hookimpl
def startup(host: Host) -> None:
    host.services.provide(BOOKING, BookingService(host))


@hookimpl
def actors(host: Host) -> list[Actor]:
    return [
        Actor(
            name="booking.prune-keys",
            fn=functools.partial(jobs.prune_keys, host),
            title={
                "ru": "Очистка ответов API для повторных запросов",
                "en": "Clearing API answers kept for retries",
            },
        )
    ]


@hookimpl
def schedules(host: Host) -> list[Schedule]:
    return [
        Schedule(name="booking.prune-keys-nightly", actor="booking.prune-keys", cron="40 2 * * *")
    ]


@hookimpl
def notifications_types(host: Host) -> list[NotificationType]:
    from kabinet_booking.notices import NOTIFICATIONS

    return list(NOTIFICATIONS)


@hookimpl
def personal_data(host: Host) -> PersonalData:
    from kabinet_booking.personal import personal_data as found

    return found(host)


@hookimpl
def entity_sinks(host: Host) -> list[EntitySink]:
    return carriage.sinks()


@hookimpl
async def shipments_order_links(
    host: Host, principal: Principal, order_id: int, lang: str
) -> list[OrderLink]:
    """The request an order came from, and "Repeat this order", on the order's card."""
    from kabinet_booking.links import order_links as links

    return await links(host, principal, order_id, lang)


@hookimpl
async def shipments_orders_links(host: Host, principal: Principal, lang: str) -> list[OrderLink]:
    """ "New request" above the order registry, for whoever may make one."""
    from kabinet_booking.links import orders_links as links

    return await links(host, principal, lang)


@hookimpl
def route_samples(host: Host) -> list[RouteSample]:
    return samples.samples()


@hookimpl
async def demo_data(host: Host) -> None:
    from kabinet_booking import demo

    if host.services.find(BOOKING) is None:
        host.services.provide(BOOKING, BookingService(host))
    await demo.fill(host)
