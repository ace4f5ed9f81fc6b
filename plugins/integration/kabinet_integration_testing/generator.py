"""Realistic data for the local 1C: counterparties with valid ИНН, contracts, orders in
every status with services, vehicles and documents with files, invoices with their print
forms (PDF)."""

from __future__ import annotations

import base64
import dataclasses
import random
import uuid
from collections.abc import Sequence
from typing import Any

from kabinet_integration_testing.data import OneCData
from kabinet_integration_testing.odata import EMPTY, FILES, INVOICE_FILES, INVOICES

CITIES = [
    "Москва",
    "Санкт-Петербург",
    "Екатеринбург",
    "Новосибирск",
    "Казань",
    "Самара",
    "Нижний Новгород",
    "Ростов-на-Дону",
    "Краснодар",
    "Пермь",
]
CARGO = [
    "Стройматериалы",
    "Продукты питания",
    "Оборудование",
    "Мебель",
    "Электроника",
    "Металлопрокат",
    "Бумага",
    "Химия бытовая",
]
ORDER_STATUSES = ["Оформлена", "ВРаботе", "Выполнена", "Отменена"]


def inn10(rng: random.Random) -> str:
    """A legal entity's ИНН with a valid check digit."""
    digits = [rng.randint(1, 9)] + [rng.randint(0, 9) for _ in range(8)]
    weights = [2, 4, 10, 3, 5, 9, 4, 6, 8]
    check = sum(d * w for d, w in zip(digits, weights, strict=True)) % 11 % 10
    return "".join(map(str, digits)) + str(check)


def counterparty(rng: random.Random, n: int) -> dict[str, Any]:
    name = f"ООО «{rng.choice(['Вектор', 'Гранит', 'Север', 'Альфа', 'Ресурс'])}-{n}»"
    return {
        "Ref_Key": str(uuid.UUID(int=rng.getrandbits(128))),
        "Code": f"{n:09d}",
        "Description": name,
        "НаименованиеПолное": f"Общество с ограниченной ответственностью {name[4:]}",
        "ИНН": inn10(rng),
        "КПП": f"77{rng.randint(10, 99)}01001",
        "ЮридическийАдрес": f"г. {rng.choice(CITIES)}, ул. Ленина, д. {n}",
        "Телефон": f"+7 495 {rng.randint(100, 999)}-{rng.randint(10, 99)}-{rng.randint(10, 99)}",
        "ЭлектроннаяПочта": f"office{n}@example.ru",
    }


def contract(rng: random.Random, owner: str, n: int) -> dict[str, Any]:
    return {
        "Ref_Key": str(uuid.UUID(int=rng.getrandbits(128))),
        "Owner_Key": owner,
        "Description": f"Договор перевозки № {n}",
        "Номер": f"ДП-{n}",
        "Дата": "2024-01-15T00:00:00",
        "ДатаНачала": "2024-01-15T00:00:00",
        "ДатаОкончания": "0001-01-01T00:00:00",
        "Статус": "Действует",
        "ВалютаВзаиморасчетов": "RUB",
        "ЛимитЗадолженности": 500000,
    }


def order(
    rng: random.Random, owner: str, contract_ref: str, n: int, file_ref: str | None = None
) -> dict[str, Any]:
    status = ORDER_STATUSES[n % 4]
    day = 1 + n % 27
    return {
        "Ref_Key": str(uuid.UUID(int=rng.getrandbits(128))),
        "Number": f"ЗП-{n:06d}",
        "Date": f"2025-02-{day:02d}T10:15:00",
        "Posted": True,
        "Контрагент_Key": owner,
        "Договор_Key": contract_ref,
        "Статус": status,
        "ПунктОтправления": rng.choice(CITIES),
        "ПунктНазначения": rng.choice(CITIES),
        "ДатаПогрузки": f"2025-02-{day:02d}T00:00:00",
        "ДатаДоставкиПлан": f"2025-03-{day:02d}T00:00:00",
        "ДатаДоставкиФакт": f"2025-03-{day:02d}T00:00:00"
        if status == "Выполнена"
        else "0001-01-01T00:00:00",
        "Дислокация": rng.choice(CITIES) if status == "ВРаботе" else "",
        "ДислокацияДата": "2025-02-28T08:00:00" if status == "ВРаботе" else "0001-01-01T00:00:00",
        "Стоимость": float(rng.randint(20, 400) * 1000),
        "Валюта": "RUB",
        "ГрузНаименование": rng.choice(CARGO),
        "ГрузВес": float(rng.randint(100, 20000)),
        "ГрузОбъем": float(rng.randint(1, 90)),
        "ГрузМест": str(rng.randint(1, 40)),
        "Грузоотправитель": "ООО «Отправитель»",
        "Грузополучатель": "ООО «Получатель»",
        "Комментарий": "",
        "Услуги": [
            {"Услуга": "Перевозка", "Количество": 1, "Сумма": 30000.0},
            {"Услуга": "Погрузка", "Количество": 2, "Сумма": 2500.0},
        ],
        "ТранспортныеСредства": [
            {
                "ТипТС": "Тягач с полуприцепом",
                "ГосНомер": f"А{n % 1000:03d}ВС77",
                "Водитель": "Иванов И. И.",
                "ТелефонВодителя": "+79001234567",
                "Статус": "В пути",
            }
        ],
        "Документы": [
            {
                "ВидДокумента": "ТТН",
                "НомерДокумента": f"ТТН-{n}",
                "ДатаДокумента": f"2025-02-{day:02d}T00:00:00",
                "Файл_Key": file_ref or EMPTY,
            }
        ],
    }


def invoice(
    rng: random.Random, owner: str, contract_ref: str, order_ref: str, n: int
) -> dict[str, Any]:
    amount = float(rng.randint(20, 400) * 1000)
    kind = n % 3
    paid = [0.0, amount / 2, amount][kind]
    return {
        "Ref_Key": str(uuid.UUID(int=rng.getrandbits(128))),
        "Number": f"СЧ-{n:06d}",
        "Date": "2025-02-20T00:00:00",
        "Posted": True,
        "Контрагент_Key": owner,
        "Договор_Key": contract_ref,
        "Заявка_Key": order_ref,
        "СуммаДокумента": amount,
        "Валюта": "RUB",
        "СрокОплаты": "2025-03-20T00:00:00",
        "СуммаОплаты": paid,
        "СтатусОплаты": ["НеОплачен", "ОплаченЧастично", "Оплачен"][kind],
    }


def print_form(title: str) -> bytes:
    """A one-page PDF with ``title`` on it (ASCII-escaped), as 1C saves a print form."""
    text = title.encode("ascii", "backslashreplace").decode().replace("(", "[").replace(")", "]")
    stream = f"BT /F1 18 Tf 72 760 Td ({text}) Tj ET".encode()
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Contents 4 0 R"
        b" /Resources << /Font << /F1 5 0 R >> >> >>",
        b"<< /Length %d >>\nstream\n%s\nendstream" % (len(stream), stream),
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for n, body in enumerate(objects, 1):
        offsets.append(len(out))
        out += b"%d 0 obj\n%s\nendobj\n" % (n, body)
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % o for o in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (
        len(objects) + 1,
        xref,
    )
    return bytes(out)


def attach(data: OneCData, catalog: str, owner: str, name: str, content: bytes) -> str:
    """A file attached to ``owner`` in ``catalog`` (no change is recorded: attaching a
    file does not change its owner); returns the file's id."""
    ref = str(uuid.uuid5(uuid.NAMESPACE_URL, f"{catalog}/{owner}/{name}"))
    stem, _, ext = name.rpartition(".")
    data.put(
        catalog,
        {
            "Ref_Key": ref,
            "DeletionMark": False,
            "Description": stem or name,
            "Расширение": ext if stem else "",
            "Размер": str(len(content)),
            "ВладелецФайла_Key": owner,
            "ФайлХранилище_Base64Data": base64.b64encode(content).decode(),
        },
        record=False,
    )
    return ref


def replace_file(data: OneCData, catalog: str, ref: str, content: bytes) -> str:
    """A user replaces the content of the attached file ``ref`` in 1C (same id, name and
    owner): the catalog item is written again, so its ``DataVersion`` moves and ``Размер``
    follows the content (no change is recorded, as for :func:`attach`); returns the new
    ``DataVersion``."""
    with data.lock:
        item = dict(data.get(catalog, ref) or {})
        if not item:
            raise KeyError(f"no file {ref} in {catalog}")
        item["Размер"] = str(len(content))
        item["ФайлХранилище_Base64Data"] = base64.b64encode(content).decode()
        return str(data.put(catalog, item, record=False)["DataVersion"])


@dataclasses.dataclass
class Generated:
    counterparties: list[str]
    contracts: list[str]
    orders: list[str]
    invoices: list[str]
    files: list[str]
    invoice_files: list[str] = dataclasses.field(default_factory=list)
    """The print form (a PDF) of each invoice, in the order of ``invoices``."""


def generate(
    data: OneCData,
    *,
    counterparties: int = 3,
    orders: int = 12,
    invoices: int = 6,
    seed: int = 7,
    owners: Sequence[str] = (),
) -> Generated:
    """Counterparties with valid ИНН, a contract each, orders in every status with
    services, vehicles and a document with a file, invoices paid, part-paid and unpaid,
    each with its print form (a PDF) attached.

    ``owners``: counterparties the portal has already (their 1C ids); the data is made for
    them and no counterparty objects are written."""
    rng = random.Random(seed)  # noqa: S311 - test data, not secrets
    out = Generated([], [], [], [], [])
    counterparties = len(owners) or counterparties
    for n in range(1, counterparties + 1):
        if owners:
            out.counterparties.append(owners[n - 1])
        else:
            cp = data.put("Catalog_Контрагенты", counterparty(rng, n))
            out.counterparties.append(cp["Ref_Key"])
        owner = out.counterparties[-1]
        c = data.put("Catalog_ДоговорыКонтрагентов", contract(rng, owner, n))
        out.contracts.append(c["Ref_Key"])
        data.balances[c["Ref_Key"]] = float(rng.randint(0, 90) * 1000)
    for n in range(1, orders + 1):
        i = n % counterparties
        file_ref = str(uuid.UUID(int=rng.getrandbits(128)))
        o = data.put(
            "Document_ЗаявкаНаПеревозку",
            order(rng, out.counterparties[i], out.contracts[i], n, file_ref),
        )
        data.put(
            FILES,
            {
                "Ref_Key": file_ref,
                "Description": f"ТТН-{n}",
                "Расширение": "pdf",
                "Размер": "20",
                "ВладелецФайла_Key": o["Ref_Key"],
                "ФайлХранилище_Base64Data": base64.b64encode(f"%PDF-1.4 ТТН {n}".encode()).decode(),
            },
            record=False,
        )
        out.orders.append(o["Ref_Key"])
        out.files.append(file_ref)
    for n in range(1, invoices + 1):
        i = n % counterparties
        # An order of the invoice's own counterparty (order k is counterparty k's): the
        # n-th invoice is for the n-th order while there are as many.
        own = out.orders[(i - 1) % counterparties :: counterparties]
        order_ref = own[(n - 1) // counterparties % len(own)] if own else EMPTY
        made = invoice(rng, out.counterparties[i], out.contracts[i], order_ref, n)
        inv = data.put(INVOICES, made)
        out.invoices.append(inv["Ref_Key"])
        out.invoice_files.append(
            attach(
                data,
                INVOICE_FILES,
                inv["Ref_Key"],
                f"Счет {made['Number']}.pdf",
                print_form(f"Invoice SCH-{n:06d}"),
            )
        )
    return out
