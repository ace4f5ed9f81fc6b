"""Hook implementations of the companies app."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from kabinet.contrib import (
    Database,
    EntitySink,
    EventType,
    Manifest,
    NavItem,
    Panel,
    Permission,
    Subscription,
)
from kabinet.hookspecs import hookimpl
from kabinet_companies import __version__
from kabinet_companies.models import metadata

# Its home is kabinet_companies.settings; named here too for the modules that read it here.
from kabinet_companies.settings import CompaniesSettings as CompaniesSettings

if TYPE_CHECKING:
    from litestar.types import ControllerRouterHandler

    from kabinet.host import Host
    from kabinet.personal import PersonalData
    from kabinet.routematrix import ManagerSample, RouteSample

HERE = Path(__file__).parent


@hookimpl
def manifest() -> Manifest:
    return Manifest(
        name="companies",
        version=__version__,
        title={"ru": "Компании и контакты", "en": "Companies & contacts"},
        requires_host=">=0.1,<1",
        requires=("identity", "roles"),
        settings=CompaniesSettings,
        description="Organizations, counterparties, contacts, registration and link requests.",
        summary={
            "ru": "Регистрация, присоединение к своей компании и права коллег.",
            "en": "Sign up, join your company and manage your colleagues' access.",
        },
    )


@hookimpl
def database() -> Database:
    return Database(metadata=metadata, migrations=HERE / "migrations")


def _p(code: str, ru: str, en: str, roles: tuple[str, ...], scope: str = "organization") -> Any:
    return Permission(code=code, label={"ru": ru, "en": en}, default_roles=roles, scope=scope)


@hookimpl
def permissions() -> list[Permission]:
    staff = ("manager", "admin")
    return [
        _p(
            "companies.organizations.view",
            "Просмотр карточки организации",
            "View an organization's card",
            ("client", *staff),
        ),
        _p(
            "companies.organizations.manage",
            "Изменение организации и её контрагентов",
            "Edit an organization and its counterparties",
            staff,
        ),
        _p(
            "companies.organizations.create",
            "Создание организаций",
            "Create organizations",
            staff,
            "global",
        ),
        _p(
            "companies.counterparties.manage",
            "Нераспределённые контрагенты: привязка и создание организаций",
            "Unassigned counterparties: attach, create organizations",
            staff,
            "global",
        ),
        _p(
            "companies.contacts.view",
            "Просмотр контактов организации",
            "View an organization's contacts",
            staff,
        ),
        _p(
            "companies.contacts.manage",
            "Права контактов в организации, приглашения",
            "Contacts' rights in an organization, invitations",
            staff,
        ),
        _p(
            "companies.requests.decide",
            "Решения по запросам на привязку к компании",
            "Decide requests to join a company",
            staff,
            "global",
        ),
        _p(
            "companies.managers.assign",
            "Назначение менеджеров организациям",
            "Assign managers to organizations",
            ("admin",),
            "global",
        ),
        _p(
            "companies.consent.manage",
            "Текст согласия на обработку персональных данных",
            "The personal data consent text",
            ("admin",),
            "global",
        ),
    ]


@hookimpl
def event_types() -> list[EventType]:
    from kabinet_companies.events import EVENT_TYPES

    return list(EVENT_TYPES)


@hookimpl
def subscriptions(host: Host) -> list[Subscription]:
    """Contacts keep copies of the account's name, e-mail and phone (for search and lists):
    identity says when an account's details change, and the copies follow."""
    from kabinet_companies.services import companies

    async def refresh(event: Any, session: Any) -> None:
        await companies(host).refresh_contact(session, int(event.payload.account_id))

    return [
        Subscription(
            event="identity.account.updated", name="companies.contact.refresh", handler=refresh
        )
    ]


@hookimpl
def routers(host: Host) -> list[ControllerRouterHandler]:
    from kabinet_companies import api, pages, picker

    return [pages.router(), api.router(), picker.router()]


@hookimpl
def middleware(host: Host) -> list[Any]:
    from kabinet_companies.pages import GateMiddleware

    return [GateMiddleware(host)]


@hookimpl
def navigation(host: Host) -> list[NavItem]:
    return [
        NavItem(
            path="/companies/organizations",
            label={"ru": "Организации", "en": "Organizations"},
            permission="companies.organizations.view",
            order=20,
        ),
        NavItem(
            path="/companies/contacts",
            label={"ru": "Контакты", "en": "Contacts"},
            permission="companies.contacts.view",
            order=21,
        ),
        NavItem(
            path="/companies/requests",
            label={"ru": "Запросы на привязку", "en": "Link requests"},
            permission="companies.requests.decide",
            order=22,
        ),
        NavItem(
            path="/companies/counterparties",
            label={"ru": "Контрагенты", "en": "Counterparties"},  # the page: unassigned ones
            permission="companies.counterparties.manage",
            order=23,
        ),
        NavItem(
            path="/companies/my",
            label={"ru": "Мои компании", "en": "My companies"},
            order=30,
            section="personal",
        ),
    ]


@hookimpl
def panels(host: Host) -> list[Panel]:
    from kabinet_companies.home import staff_home
    from kabinet_companies.pages import organization_switch, signup_link
    from kabinet_companies.requests import DECIDE

    return [
        Panel(slot="shell.organizations", name="companies.switch", render=organization_switch),
        Panel(slot="shell.signup", name="companies.signup", render=signup_link),
        Panel(
            slot="shell.home",
            name="companies.waiting",
            render=staff_home,
            permission=DECIDE,
            order=5,
            title={"ru": "Ждёт вашего решения", "en": "Waiting for you"},
        ),
    ]


@hookimpl
def template_dir() -> Path:
    return HERE / "templates"


@hookimpl
def locale_dir() -> Path:
    return HERE / "locale"


@hookimpl
def static_dir() -> Path:
    """Served at ``/static/companies/`` (the folder named after the plugin inside)."""
    return HERE / "static" / "companies"


@hookimpl
def startup(host: Host) -> None:
    from kabinet_companies.services import companies

    companies(host)


@hookimpl
async def managed_organizations(host: Host, person_id: int) -> set[int]:
    from kabinet_companies.services import companies

    return await companies(host).managed_by(person_id)


@hookimpl
async def organization_names(host: Host, ids: list[int]) -> dict[int, str]:
    from sqlalchemy import select

    from kabinet_companies.models import organization

    if not ids:
        return {}
    async with host.db.reader() as s:
        rows = await s.execute(
            select(organization.c.id, organization.c.name).where(organization.c.id.in_(ids))
        )
        return {int(i): str(name) for i, name in rows.all()}


@hookimpl
def entity_sinks(host: Host) -> list[EntitySink]:
    from kabinet_companies.sinks import SINK

    return [SINK]


@hookimpl
def route_samples(host: Host) -> list[RouteSample | ManagerSample]:
    from kabinet_companies.samples import SAMPLES

    return list(SAMPLES)


@hookimpl(optionalhook=True)
def notifications_types(host: Host) -> list[Any]:
    """What the person is told when their link request is decided (notifications app)."""
    from kabinet_companies.notices import notification_types

    return notification_types()


@hookimpl
async def demo_data(host: Host) -> None:
    from kabinet_companies.demo import load

    await load(host)


@hookimpl
def personal_data(host: Host) -> PersonalData:
    from kabinet_companies.personal import personal_data as found

    return found(host)
