"""Hook implementations of the shipments app."""

from __future__ import annotations

from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING

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
    Subscription,
)
from kabinet.hookspecs import hookimpl
from kabinet_shipments import __version__
from kabinet_shipments.models import metadata
from kabinet_shipments.settings import Settings

if TYPE_CHECKING:
    from litestar.types import ControllerRouterHandler

    from kabinet.host import Host
    from kabinet.personal import PersonalData
    from kabinet.routematrix import RouteSample

HERE = Path(__file__).parent


@hookimpl
def manifest() -> Manifest:
    return Manifest(
        name="shipments",
        version=__version__,
        title={"ru": "Перевозки", "en": "Shipments"},
        requires_host=">=0.1,<1",
        requires=("companies",),
        settings=Settings,
        description="Orders with their status, documents and vehicles; invoices and debts.",
        summary={
            "ru": "Заявки со статусами и документами, счета, договоры и долг.",
            "en": "Orders with their status and documents, invoices, contracts and debt.",
        },
    )


@hookimpl
def hookspecs() -> ModuleType:
    from kabinet_shipments import hookspecs as specs

    return specs


@hookimpl
def database() -> Database:
    return Database(metadata=metadata, migrations=HERE / "migrations")


def _perm(code: str, ru: str, en: str, roles: tuple[str, ...]) -> Permission:
    return Permission(code=code, label={"ru": ru, "en": en}, default_roles=roles)


@hookimpl
def permissions() -> list[Permission]:
    everyone = ("client", "manager", "admin")
    return [
        _perm(
            "shipments.orders.view",
            "Просмотр заявок и документов",
            "View orders and documents",
            everyone,
        ),
        _perm(
            "shipments.orders.request",
            "Запросы на изменение и отмену заявок",
            "Ask to change or cancel orders",
            ("client", "manager"),
        ),
        _perm(
            "shipments.invoices.view",
            "Просмотр счетов и задолженности",
            "View invoices and debts",
            everyone,
        ),
        _perm(
            "shipments.contracts.view",
            "Просмотр договоров и сальдо",
            "View contracts and balances",
            everyone,
        ),
        _perm(
            "shipments.requests.answer",
            "Ответ на запросы клиентов без учётной системы",
            "Answer client requests when no production system does",
            ("manager", "admin"),
        ),
    ]


@hookimpl
def event_types() -> list[EventType]:
    from kabinet_shipments.events import EVENT_TYPES

    return list(EVENT_TYPES)


@hookimpl
def entity_sinks(host: Host) -> list[EntitySink]:
    from kabinet_shipments.sinks import entity_sinks as sinks

    return sinks()


@hookimpl
def subscriptions(host: Host) -> list[Subscription]:
    from kabinet_shipments.requests_writeback import subscriptions as make

    return make(host)  # client requests handed over to the integration app, if installed


@hookimpl
def routers(host: Host) -> list[ControllerRouterHandler]:
    from kabinet_shipments.answers import routers as answers
    from kabinet_shipments.api import routers as api
    from kabinet_shipments.pages import routers as pages

    return [*pages(), *answers(), *api()]


@hookimpl
def navigation(host: Host) -> list[NavItem]:
    return [
        NavItem(
            path="/shipments/",
            label={"ru": "Заявки", "en": "Orders"},
            permission="shipments.orders.view",
            order=10,
        ),
        NavItem(
            path="/shipments/invoices",
            label={"ru": "Счета", "en": "Invoices"},
            permission="shipments.invoices.view",
            order=11,
        ),
        NavItem(
            path="/shipments/contracts",
            label={"ru": "Договоры", "en": "Contracts"},
            permission="shipments.contracts.view",
            order=12,
        ),
        NavItem(
            path="/shipments/requests",
            label={"ru": "Запросы клиентов", "en": "Client requests"},
            permission="shipments.requests.answer",
            order=13,
            section="admin",  # a staff tool, beside the other staff pages
        ),
    ]


@hookimpl
def panels(host: Host) -> list[Panel]:
    from kabinet_shipments.pages import home_panel

    return [
        Panel(
            slot="shell.home",
            name="shipments.summary",
            render=home_panel,
            permission="shipments.orders.view",
            order=10,
            title={"ru": "Ваши перевозки", "en": "Your shipments"},
        ),
    ]


@hookimpl
def template_dir() -> Path:
    return HERE / "templates"


@hookimpl
def static_dir() -> Path:
    return HERE / "static" / "shipments"  # served at /static/shipments/


@hookimpl
def startup(host: Host) -> None:
    from kabinet_shipments.exports import EXPORTS, Exports
    from kabinet_shipments.finance import FINANCE, Finance
    from kabinet_shipments.services import SHIPMENTS, ShipmentsService

    service = host.services.provide(SHIPMENTS, ShipmentsService(host))
    host.services.provide(FINANCE, Finance(service))
    host.services.provide(EXPORTS, Exports(service))


@hookimpl
def actors(host: Host) -> list[Actor]:
    from kabinet_shipments import jobs

    return jobs.actors(host)


@hookimpl
def schedules(host: Host) -> list[Schedule]:
    from kabinet_shipments import jobs

    return jobs.schedules()


@hookimpl
async def demo_data(host: Host) -> None:
    from kabinet_shipments.demo import CLIENT, PASSWORD, load_demo

    batch = await load_demo(host)
    print(
        f"shipments: {len(batch.orders)} orders, {len(batch.invoices)} invoices; "
        f"a client of one company: {CLIENT[1]}, password {PASSWORD}"
    )


@hookimpl
def route_samples(host: Host) -> list[RouteSample]:
    from kabinet_shipments.samples import SAMPLES

    return list(SAMPLES)


@hookimpl(optionalhook=True)
def notifications_types(host: Host) -> list[NotificationType]:
    from kabinet_shipments.notices import NOTIFICATIONS

    return list(NOTIFICATIONS)


@hookimpl
def personal_data(host: Host) -> PersonalData:
    from kabinet_shipments.personal import personal_data as found

    return found(host)
