"""A generator of realistic data, loaded through the same sinks as the production system's.

Routes between real Russian cities, cargo with weight, volume and places, trucks with
Russian plates and drivers, services, documents, and invoices paid, part-paid and overdue.
The generator is deterministic for a seed, so the demo and the benchmarks are repeatable;
:func:`generate` returns records, :func:`load_demo` applies them (``kabinet demo``).
"""

from __future__ import annotations

import datetime as dt
import random
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import TYPE_CHECKING

from kabinet.identity.demo import DEMO_PASSWORD
from kabinet.identity.services import identity_service
from kabinet_companies.services import COMPANIES, SYSTEM, make_inn
from kabinet_shipments.attached_files import apply_invoice_files, invoice_file_key
from kabinet_shipments.records import (
    AttachedFile,
    BalanceRecord,
    ContractRecord,
    DocumentLine,
    InvoiceFilesRecord,
    InvoiceRecord,
    OrderRecord,
    ServiceLine,
    VehicleLine,
)
from kabinet_shipments.services import file_key
from kabinet_shipments.sinks import apply_balances, apply_contracts, apply_invoices, apply_orders

if TYPE_CHECKING:
    from kabinet.host import Host

CITIES = (
    "Москва",
    "Санкт-Петербург",
    "Новосибирск",
    "Екатеринбург",
    "Казань",
    "Нижний Новгород",
    "Челябинск",
    "Самара",
    "Омск",
    "Ростов-на-Дону",
    "Уфа",
    "Красноярск",
    "Воронеж",
    "Пермь",
    "Волгоград",
    "Краснодар",
    "Саратов",
    "Тюмень",
    "Тольятти",
    "Ижевск",
    "Барнаул",
    "Ульяновск",
    "Иркутск",
    "Хабаровск",
    "Ярославль",
    "Владивосток",
    "Махачкала",
    "Томск",
    "Оренбург",
    "Кемерово",
    "Новокузнецк",
    "Рязань",
    "Набережные Челны",
    "Астрахань",
    "Пенза",
    "Киров",
    "Липецк",
    "Чебоксары",
    "Калининград",
    "Тула",
    "Курск",
    "Сочи",
    "Ставрополь",
    "Мурманск",
    "Архангельск",
    "Белгород",
    "Тверь",
    "Владимир",
    "Смоленск",
)
CARGO = (
    ("Строительные материалы", 18_000, 60),
    ("Металлопрокат", 20_000, 30),
    ("Продукты питания (охлаждённые)", 12_000, 70),
    ("Бытовая техника", 6_000, 80),
    ("Мебель", 5_000, 85),
    ("Автозапчасти", 9_000, 50),
    ("Стройматериалы на паллетах", 16_000, 65),
    ("Оборудование промышленное", 14_000, 40),
    ("Бумага и картон", 15_000, 75),
    ("Напитки", 19_000, 55),
    ("Лекарственные препараты", 3_000, 40),
    ("Текстиль", 7_000, 82),
    ("Удобрения в мешках", 20_000, 45),
    ("Электроника", 4_000, 60),
    ("Зерно в биг-бэгах", 20_000, 50),
)
TRUCKS = ("Тент 20 т", "Рефрижератор 20 т", "Изотерм 10 т", "Тент 10 т", "Трал", "Контейнеровоз")
DRIVERS = (
    "Иванов Пётр Сергеевич",
    "Смирнов Алексей Иванович",
    "Кузнецов Дмитрий Олегович",
    "Попов Игорь Николаевич",
    "Васильев Андрей Павлович",
    "Соколов Михаил Юрьевич",
    "Морозов Виктор Андреевич",
    "Новиков Сергей Викторович",
    "Фёдоров Роман Ильич",
)
SERVICES = (
    ("Страхование груза", 1_500, 6_000),
    ("Погрузо-разгрузочные работы", 2_000, 8_000),
    ("Экспедирование", 3_000, 9_000),
    ("Простой автомобиля (час)", 800, 1_200),
    ("Паллетирование", 500, 2_500),
)
DOCS = (
    "Транспортная накладная",
    "Товарно-транспортная накладная",
    "Акт выполненных работ",
    "Счёт-фактура",
    "Доверенность на водителя",
)
PLATE_LETTERS = "АВЕКМНОРСТУХ"
VEHICLE_STATUS = ("Назначено", "На погрузке", "В пути", "На выгрузке", "Разгружено")


def plate(rng: random.Random) -> str:
    letters = rng.choices(PLATE_LETTERS, k=3)
    region = rng.choice((77, 78, 50, 54, 66, 116, 161, 197, 750))
    return f"{letters[0]}{rng.randint(1, 999):03d}{letters[1]}{letters[2]} {region}"


def phone(rng: random.Random) -> str:
    a, b, c, d = (
        rng.randint(10, 99),
        rng.randint(100, 999),
        rng.randint(10, 99),
        rng.randint(10, 99),
    )
    return f"+7 9{a} {b}-{c}-{d}"


NAMESPACE = uuid.UUID("6f1c2a4e-6a59-4c57-9d0e-6b2b8d1c0a11")


def _id(*parts: object) -> str:
    """A stable id: the same record gets the same id on every run and every day."""
    return str(uuid.uuid5(NAMESPACE, ":".join(map(str, parts))))


@dataclass
class Batch:
    contracts: list[ContractRecord] = field(default_factory=list)
    orders: list[OrderRecord] = field(default_factory=list)
    invoices: list[InvoiceRecord] = field(default_factory=list)
    balances: list[BalanceRecord] = field(default_factory=list)


def generate(
    counterparties: Sequence[str],
    orders_per_counterparty: int,
    today: dt.date,
    *,
    seed: int = 7,
    days: int = 180,
    prefix: str = "ТТ",
) -> Batch:
    """Contracts, orders (with lines), invoices and balances for these counterparties."""
    rng = random.Random(seed)  # noqa: S311 (demo data, not secrets)
    batch = Batch()
    number = 0
    for cp_index, cp in enumerate(counterparties):
        contracts = []
        for k in range(rng.choice((1, 1, 2))):
            start = today - dt.timedelta(days=rng.randint(200, 900))
            contract = ContractRecord(
                external_id=_id("contract", cp, k),
                counterparty=cp,
                number=f"Д-{cp_index + 1:04d}/{k + 1}",
                name=f"Договор транспортной экспедиции № Д-{cp_index + 1:04d}/{k + 1}",
                date=start,
                start_date=start,
                end_date=None if rng.random() < 0.6 else today + dt.timedelta(days=365),
                status="active",
                currency="RUB",
                credit_limit=Decimal(rng.choice((0, 500_000, 1_000_000, 3_000_000))),
            )
            contracts.append(contract)
        batch.contracts.extend(contracts)
        for _ in range(orders_per_counterparty):
            number += 1
            batch.orders.append(_order(rng, number, cp, rng.choice(contracts), today, days, prefix))
        for contract in contracts:
            batch.balances.append(
                BalanceRecord(
                    contract=contract.external_id,
                    balance=Decimal(rng.randint(-50_000, 400_000)),
                    at=dt.datetime.combine(today, dt.time(8, 0)),
                )
            )
    for i, order in enumerate(batch.orders):
        if order.status == "cancelled" or rng.random() < 0.15:
            continue
        date = order.date.date() + dt.timedelta(days=rng.randint(0, 5))
        if date > today:
            continue
        amount = order.cost
        roll = rng.random()
        if (today - date).days > 40 or roll < 0.5:
            paid, status = amount, "paid"
        elif roll < 0.7:
            paid, status = (amount * Decimal("0.4")).quantize(Decimal(1)), "part_paid"
        else:
            paid, status = Decimal(0), "unpaid"
        batch.invoices.append(
            InvoiceRecord(
                external_id=_id("invoice", order.external_id),
                number=f"СЧ-{i + 1:06d}",
                date=date,
                counterparty=order.counterparty,
                contract=order.contract,
                order=order.external_id,
                amount=amount,
                paid=paid,
                currency="RUB",
                due_date=date + dt.timedelta(days=rng.choice((5, 10, 14, 30))),
                payment_status=status,  # type: ignore[arg-type]
            )
        )
    return batch


def _order(
    rng: random.Random,
    number: int,
    cp: str,
    contract: ContractRecord,
    today: dt.date,
    days: int,
    prefix: str,
) -> OrderRecord:
    origin, destination = rng.sample(CITIES, 2)
    age = rng.randint(0, 2) if rng.random() < 0.12 else rng.randint(0, days)  # some are new
    created = dt.datetime.combine(
        today - dt.timedelta(days=age), dt.time(rng.randint(8, 19), rng.randint(0, 59))
    )
    loading = created.date() + dt.timedelta(days=rng.randint(1, 4))
    planned = loading + dt.timedelta(days=rng.randint(1, 9))
    if planned < today - dt.timedelta(days=2):
        status = "done" if rng.random() < 0.93 else "cancelled"
    elif loading <= today:
        status = "in_progress"
    else:
        status = "registered"
    cargo, weight, volume = rng.choice(CARGO)
    kg = Decimal(rng.randint(weight // 4, weight))
    cost = Decimal(rng.randint(25, 400) * 1000)
    location = {
        "registered": f"{origin}, ожидает погрузки",
        "in_progress": f"Трасса {origin} — {destination}, {rng.randint(50, 1500)} км",
        "done": f"{destination}, доставлено",
        "cancelled": "",
    }[status]
    vehicles = tuple(
        VehicleLine(
            kind=rng.choice(TRUCKS),
            plate=plate(rng),
            driver=rng.choice(DRIVERS),
            driver_phone=phone(rng),
            status={
                "registered": "Назначено",
                "in_progress": rng.choice(VEHICLE_STATUS[1:4]),
                "done": "Разгружено",
                "cancelled": "Отменено",
            }[status],
        )
        for _ in range(rng.choice((1, 1, 1, 2)))
    )
    services = tuple(
        ServiceLine(name=name, quantity=Decimal(1), amount=Decimal(rng.randint(lo, hi)))
        for name, lo, hi in rng.sample(SERVICES, rng.randint(0, 3))
    )
    documents = (
        tuple(
            DocumentLine(
                kind=kind,
                number=f"{number}-{k + 1}",
                date=loading,
                file=_id("file", prefix, number, k),
                file_name=f"{kind} {number}-{k + 1}.pdf",
            )
            for k, kind in enumerate(rng.sample(DOCS, rng.randint(1, 3)))
        )
        if status != "registered"
        else ()
    )
    return OrderRecord(
        external_id=_id("order", prefix, number),
        number=f"{prefix}-{number:07d}",
        date=created,
        counterparty=cp,
        contract=contract.external_id,
        status=status,  # type: ignore[arg-type]
        origin=origin,
        destination=destination,
        # Loading and delivery at a time of day (from the order's own time, so the random
        # sequence stays what it was); the planned delivery is a date only (00:00:00).
        loading_date=dt.datetime.combine(loading, dt.time(6 + created.hour % 12, 30)),
        delivery_planned=dt.datetime.combine(planned, dt.time()),
        delivery_actual=dt.datetime.combine(planned, dt.time(10 + created.minute % 9, 15))
        if status == "done"
        else None,
        location=location,
        location_at=dt.datetime.combine(min(today, planned), dt.time(rng.randint(6, 22), 0))
        if status != "cancelled"
        else None,
        cost=cost,
        currency="RUB",
        cargo_name=cargo,
        cargo_weight=kg,
        cargo_volume=Decimal(rng.randint(volume // 4, volume)),
        cargo_places=rng.randint(1, 33),
        shipper=f"ООО «{rng.choice(('Вектор', 'Альфа', 'Гранит', 'Орион', 'Меридиан'))}»",
        consignee=f"АО «{rng.choice(('Сибирь', 'Волга', 'Урал', 'Балтика', 'Восток'))}»",
        services=services,
        vehicles=vehicles,
        documents=documents,
    )


def changed(orders: Sequence[OrderRecord], seed: int = 11) -> Iterator[OrderRecord]:
    """The same orders a little later: moved on, re-priced, a vehicle's status changed."""
    import msgspec

    rng = random.Random(seed)  # noqa: S311 (demo data, not secrets)
    for order in orders:
        vehicles = tuple(
            msgspec.structs.replace(v, status=rng.choice(VEHICLE_STATUS)) for v in order.vehicles
        )
        yield msgspec.structs.replace(
            order,
            location=f"{order.destination}, {rng.randint(1, 300)} км до места",
            cost=order.cost + 1000,
            vehicles=vehicles,
        )


# -- the demo ----------------------------------------------------------------------------------

DEMO_COMPANIES = (
    # organization name, counterparties (external id, name); ИНН made by make_inn
    ("ООО «Северный Ветер»", (("demo-cp-1", "ООО «Северный Ветер»"),
                             ("demo-cp-2", "ООО «Северный Ветер — Логистика»"))),
    ("АО «Уральская Сталь»", (("demo-cp-3", "АО «Уральская Сталь»"),)),
    ("ООО «Волжские Продукты»", (("demo-cp-4", "ООО «Волжские Продукты»"),)),
)  # fmt: skip
CLIENT = ("Дмитрий Грузов", "dmitry@demo.test", "+79160000301")
PASSWORD = DEMO_PASSWORD  # one password for every demo account, printed by `kabinet demo`


async def linked_counterparties(host: Host) -> list[tuple[str, int]]:
    """The demo counterparties attached to an organization: (external id, organization)."""
    page = await host.services.of(COMPANIES).counterparties(SYSTEM, limit=1000)
    return sorted(
        (c.external_id, c.organization_id)
        for c in page.items
        if c.external_id and c.external_id.startswith("demo-") and c.organization_id
    )


async def ensure_companies(host: Host) -> list[str]:
    """The demo's counterparties: the companies app's own demo ones when it loaded them,
    else a few organizations made here through its service. Returns their external ids."""
    svc = host.services.of(COMPANIES)
    linked = await linked_counterparties(host)
    if not linked:
        seed = 7_708_000
        for org_name, cps in DEMO_COMPANIES:
            seed += 1
            org = await svc.create_organization(org_name, make_inn(seed))
            for ext, cp_name in cps:
                seed += 1
                await svc.create_counterparty(
                    SYSTEM, name=cp_name, full_name=cp_name, inn=make_inn(seed),
                    organization_id=org.id, external_id=ext,
                )  # fmt: skip
        linked = await linked_counterparties(host)
    await ensure_client(host, linked[0][1])
    return [ext for ext, _ in linked]


async def ensure_client(host: Host, organization_id: int) -> None:
    """A client of one organization (the browser tests and the demo sign in as them)."""
    identity = identity_service(host)
    name, email, phone = CLIENT
    found = await identity.find_by_email(email)
    if found is not None:
        return
    account = await identity.create_account(
        full_name=name, email=email, phone=phone, password=PASSWORD,
        email_confirmed=True, phone_confirmed=True,
    )  # fmt: skip
    svc = host.services.of(COMPANIES)
    await svc.roles.grant(account.id, "user")
    await svc.roles.grant(account.id, "client", organization_id)
    async with host.db.session() as s:
        await svc.add_member(s, account.id, organization_id)
    await svc.registration.agree(account.id)


async def apply(host: Host, batch: Batch, *, notify: bool = False) -> None:
    """Everything of a batch through the sinks, in dependency order, in one transaction.

    The demo's data is history, like a first load from 1C: its events say nobody is to
    be told (``notify``), so starting the demo sends no message about old orders."""
    async with host.db.session() as session:
        await apply_contracts(host, session, batch.contracts, notify=notify)
        await apply_orders(host, session, batch.orders, notify=notify)
        await apply_invoices(host, session, batch.invoices, notify=notify)
        await apply_balances(host, session, batch.balances, notify=notify)


PDF = (
    b"%PDF-1.4\n1 0 obj<</Type/Catalog/Pages 2 0 R>>endobj 2 0 obj<</Type/Pages/Kids[3 0 R]"
    b"/Count 1>>endobj 3 0 obj<</Type/Page/Parent 2 0 R/MediaBox[0 0 595 842]>>endobj\n"
    b"trailer<</Root 1 0 R>>\n%%EOF\n"
)


async def load_demo(host: Host, orders_per_counterparty: int = 60) -> Batch:
    """The demo: idempotent (the same seed gives the same records, which write nothing)."""
    cps = await ensure_companies(host)
    today = host.clock.now().date()
    batch = generate(cps, orders_per_counterparty, today, seed=2024)
    await apply(host, batch)
    for n, order in enumerate(batch.orders):
        for doc in order.documents:
            if doc.file and n % 5 != 0:  # every fifth order's files are "being prepared"
                key = file_key(doc.file)
                if not await host.files.exists(key):
                    await host.files.save(key, PDF, filename=doc.file_name)
    # Each invoice's print form, attached in 1C and stored like the orders' files.
    forms = [
        InvoiceFilesRecord(
            invoice=i.external_id,
            files=[
                AttachedFile(external_id=_id("print", i.external_id), name=f"Счет {i.number}.pdf")
            ],
        )
        for i in batch.invoices
    ]
    async with host.db.session() as session:
        await apply_invoice_files(host, session, forms)
    for form in forms:
        key = invoice_file_key(form.files[0].external_id)
        if not await host.files.exists(key):
            await host.files.save(key, PDF, filename=form.files[0].name)
    return batch
