"""Hook implementations of the notifications app."""

from __future__ import annotations

from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any

from kabinet.contrib import (
    Actor,
    Database,
    Manifest,
    NavItem,
    Panel,
    Permission,
    Schedule,
    Subscription,
)
from kabinet.hookspecs import hookimpl
from kabinet_notifications import __version__
from kabinet_notifications.models import metadata
from kabinet_notifications.settings import Settings

if TYPE_CHECKING:
    import click
    from litestar.types import ControllerRouterHandler

    from kabinet.host import Host
    from kabinet.identity.messages import Message
    from kabinet.metrics import MetricsCollector
    from kabinet.personal import PersonalData

HERE = Path(__file__).parent


@hookimpl
def manifest() -> Manifest:
    return Manifest(
        name="notifications",
        version=__version__,
        title={"ru": "Уведомления", "en": "Notifications"},
        requires_host=">=0.1,<1",
        requires=(),
        settings=Settings,
        description="Templates, e-mail, SMS, Telegram and web push, statistics and resend.",
        summary={
            "ru": "Письма, SMS, Telegram и push о том, что изменилось.",
            "en": "E-mail, SMS, Telegram and push about what changed.",
        },
    )


@hookimpl
def hookspecs() -> ModuleType:
    from kabinet_notifications import hookspecs as specs

    return specs


@hookimpl
def database() -> Database:
    return Database(metadata=metadata, migrations=HERE / "migrations")


@hookimpl
def permissions() -> list[Permission]:
    from kabinet_notifications.permissions import PERMISSIONS

    return list(PERMISSIONS)


@hookimpl
async def subscriptions(host: Host) -> list[Subscription]:
    """One subscriber per declared event: the notification is sent when the event is."""
    from kabinet_notifications.delivery import dispatch
    from kabinet_notifications.services import service_of

    svc = await service_of(host)

    def handler_for(event_type: str) -> Any:
        async def handle(ev: Any, session: Any) -> None:
            await dispatch(host, ev, session)

        handle.__name__ = f"notify_{event_type.replace('.', '_')}"
        return handle

    return [
        Subscription(event=e, name=f"notifications.{e}", handler=handler_for(e))
        for e in svc.catalog.event_driven()
    ]


@hookimpl
def actors(host: Host) -> list[Actor]:
    from kabinet_notifications import jobs

    return jobs.actors(host)


@hookimpl
def schedules(host: Host) -> list[Schedule]:
    from kabinet_notifications import jobs

    return jobs.schedules()


@hookimpl
def routers(host: Host) -> list[ControllerRouterHandler]:
    from kabinet_notifications import api, pages, profile

    return [pages.router(), profile.router(), *api.routers()]


@hookimpl
def navigation(host: Host) -> list[NavItem]:
    return [
        NavItem(
            path="/notifications/",
            label={"ru": "Уведомления", "en": "Notifications"},
            permission="notifications.templates.edit",
            order=700,
            section="admin",
        ),
        # Each staff page in the menu of those who may open it (the tabs follow the menu).
        NavItem(
            path="/notifications/stats",
            label={"ru": "Статистика уведомлений", "en": "Notification statistics"},
            permission="notifications.stats.view",
            order=701,
            section="admin",
        ),
        NavItem(
            path="/notifications/failed",
            label={"ru": "Недоставленные уведомления", "en": "Undelivered notifications"},
            permission="notifications.resend",
            order=702,
            section="admin",
        ),
        NavItem(
            path="/notifications/channels",
            label={"ru": "Каналы уведомлений", "en": "Notification channels"},
            permission="notifications.channels.manage",
            order=703,
            section="admin",
        ),
        NavItem(
            path="/notifications/me",
            label={"ru": "Мои уведомления", "en": "My notifications"},
            order=950,
            section="personal",
        ),
    ]


@hookimpl
def panels(host: Host) -> list[Panel]:
    from kabinet_notifications.profile import profile_panel

    # A summary on identity's profile page, with the way to /notifications/me.
    return [
        Panel(
            slot="identity.profile",
            name="notifications",
            render=profile_panel,
            title={"ru": "Уведомления", "en": "Notifications"},
        )
    ]


@hookimpl
def template_dir() -> Path:
    return HERE / "templates"


@hookimpl
def static_dir() -> Path:
    return HERE / "static" / "notifications"  # served at /static/notifications/


@hookimpl
def cli_commands() -> list[click.Command]:
    from kabinet_notifications.commands import group

    return [group]


@hookimpl
async def startup(host: Host) -> None:
    from kabinet_notifications.services import service_of

    await service_of(host)


@hookimpl
async def deliver_message(host: Host, message: Message) -> bool | None:
    from kabinet_notifications.direct import deliver_message as deliver

    return await deliver(host, message)


@hookimpl
async def demo_data(host: Host) -> None:
    from kabinet_notifications.demo import load_demo

    await load_demo(host)


@hookimpl
def metrics(host: Host) -> list[MetricsCollector]:
    from kabinet_notifications.metrics import collectors

    return collectors()


@hookimpl
def personal_data(host: Host) -> PersonalData:
    from kabinet_notifications.personal import personal_data as found

    return found(host)
