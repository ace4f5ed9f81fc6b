"""Demo data: the dictionaries' vehicle types and services, an address book, a template,
and a few requests in several states for the demo's client organizations."""

from __future__ import annotations

import contextlib
import datetime as dt
from decimal import Decimal

import msgspec

from kabinet.access import Principal
from kabinet.forms import FieldError
from kabinet.host import Host
from kabinet_booking import places as book
from kabinet_booking.forms import OrderFields
from kabinet_booking.review import accept_in_portal, answer
from kabinet_booking.services import ACCEPT, BOOKING, CREATE

VEHICLES = ("Тент 20 т", "Рефрижератор 20 т", "Изотерм 5 т", "Контейнеровоз 40'")
SERVICES = ("Погрузка силами перевозчика", "Страхование груза", "Сопровождение", "Пломбирование")


async def fill(host: Host) -> None:
    from kabinet_dictionaries.services import DICTIONARIES

    service = host.services.of(BOOKING)
    settings = service.settings
    dictionaries = host.services.of(DICTIONARIES)
    for code, titles in (
        (settings.vehicle_dictionary, VEHICLES),
        (settings.services_dictionary, SERVICES),
    ):
        with contextlib.suppress(FieldError):
            if await dictionaries.count_entries(code) == 0:
                for title in titles:
                    await dictionaries.create_entry(code, {"name": title})
    from kabinet_companies.services import COMPANIES, SYSTEM

    found = await host.services.of(COMPANIES).organizations(SYSTEM, limit=200)
    for org in sorted(o.id for o in found.items):
        for person_id in sorted(await host.access.people(CREATE, org)):
            principal = Principal(person_id=person_id, kind="person", name="demo")
            mine = [o for o, _ in await service.organization_names(principal)]
            contracts = [c for c in await service.contracts(principal) if c.organization_id == org]
            if org in mine and contracts:  # a client of the organization
                await _requests(host, principal, contracts[0].id, org)
                break


async def _requests(host: Host, principal: Principal, contract_id: int, org: int) -> None:
    service = host.services.of(BOOKING)
    today = service.today()
    base = OrderFields(
        contract_id=contract_id,
        origin="Москва, ул. Складская, 5",
        destination="Казань, ул. Портовая, 12",
        loading_date=today + dt.timedelta(days=3),
        loading_from="09:00",
        loading_to="12:00",
        delivery_date=today + dt.timedelta(days=5),
        cargo_name="Оборудование",
        cargo_weight=Decimal("1200"),
        cargo_volume=Decimal("8.5"),
        cargo_places=4,
        packaging="Паллеты",
        vehicle_type=VEHICLES[0],
        shipper="ООО «Отправитель»",
        consignee="ООО «Получатель»",
    )
    async with host.db.session() as session:
        await book.save_place(
            service,
            session,
            principal,
            org,
            name="Склад в Москве",
            address=base.origin,
            contact_name="Иван Петров",
            contact_phone="+7 900 000-00-01",
        )
        await book.save_template(service, session, principal, org, "Москва — Казань", base)
        await service.save(session, principal, base, source="form")  # a draft
    choices = await service.choices(principal, every=True)
    sent: list[int] = []
    for cargo in ("Станки", "Запчасти", "Мебель"):
        async with host.db.session() as session:
            request_id = await service.save(
                session, principal, msgspec.structs.replace(base, cargo_name=cargo)
            )
            found = await service.send(session, principal, request_id, choices)
            sent.append(found.id)
    async with host.db.session() as session:  # 1C's answer: no vehicle that day
        found = await service.get(session, principal, sent[0])
        await answer(
            service,
            session,
            found.portal_key,
            accepted=False,
            reason="Нет свободного транспорта на эту дату",
        )
    async with host.db.session() as session:
        handed_over = (await service.get(session, principal, sent[1])).handed_over
    staff = sorted(await host.access.people(ACCEPT))
    # With a production system connected the request went there and it answers; else it is
    # accepted in the portal, as 1C would: the order is created.
    if staff and not handed_over:
        admin = Principal(person_id=staff[0], kind="person", name="demo")
        async with host.db.session() as session:  # linked to the order it creates
            await accept_in_portal(service, session, admin, sent[1])
