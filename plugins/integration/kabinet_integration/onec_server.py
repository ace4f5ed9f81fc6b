"""A local 1C:Enterprise server for tests, benches and the demo.

It speaks the reference configuration (``reference/onec-transport.md``) over the real
wire format (``reference/wire-formats.md`` §1): the OData JSON envelope with
``odata.metadata``, Int64 as strings, Cyrillic names in percent-encoded paths, ``$filter``
(``eq ne gt ge lt le and or not``, ``guid'…'``/``datetime'…'`` literals) with ``$select``,
``$orderby``, ``$top``, ``$skip``, the bound ``Balance`` function, ``odata.error`` bodies
with string codes, HTTP Basic, Atom without ``$format=json``, ``POST`` creating a document
(201 and ``Location``), and the exchange-plan HTTP service (``changes``/``ack``). Every
write records a row in the change register and a change for the exchange node.

A test can rename sets, fields and values (:class:`Renaming`), change records between
runs (:meth:`OneCData.put`, :meth:`OneCData.delete`) and inject faults (:class:`Fault`).
"""

from __future__ import annotations

import base64
import bisect
import contextlib
import dataclasses
import datetime as dt
import itertools
import json
import random
import re
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import quote, unquote

import msgspec

CHANGES = "InformationRegister_ИзмененияДляПортала"
BALANCE = "AccumulationRegister_ВзаиморасчетыСКлиентами"
FILES = "Catalog_ЗаявкаНаПеревозкуПрисоединенныеФайлы"
INVOICE_FILES = "Catalog_СчетНаОплатуПокупателюПрисоединенныеФайлы"
INVOICES = "Document_СчетНаОплатуПокупателю"
REQUESTS = "Document_ЗапросКлиента"
ORDERS = "Document_ЗаявкаНаПеревозку"
EMPTY = "00000000-0000-0000-0000-000000000000"
SETS = (
    "Catalog_Контрагенты",
    "Catalog_ДоговорыКонтрагентов",
    "Document_ЗаявкаНаПеревозку",
    "Document_СчетНаОплатуПокупателю",
    REQUESTS,
    FILES,
    INVOICE_FILES,
)


class ODataError(Exception):
    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


# -- $filter ----------------------------------------------------------------------------------

TOKEN = re.compile(
    r"\s*(?:(?P<lit>(?:guid|datetime)?'(?:[^']|'')*')|(?P<num>-?\d+(?:\.\d+)?)"
    r"|(?P<par>[(),])|(?P<word>[\w.]+))",
    re.UNICODE,
)
OPS: dict[str, Callable[[Any, Any], bool]] = {
    "eq": lambda a, b: a == b,
    "ne": lambda a, b: a != b,
    "gt": lambda a, b: a is not None and b is not None and a > b,
    "ge": lambda a, b: a is not None and b is not None and a >= b,
    "lt": lambda a, b: a is not None and b is not None and a < b,
    "le": lambda a, b: a is not None and b is not None and a <= b,
}


def parse_filter(text: str) -> Callable[[Mapping[str, Any]], bool]:
    """A predicate for ``$filter``; ODataError 400/14 when it does not parse."""
    tokens: list[tuple[str, Any]] = []
    pos = 0
    text = text.strip()
    while pos < len(text):
        match = TOKEN.match(text, pos)
        if match is None or match.end() == pos:
            raise ODataError(400, "14", f"Ошибка разбора выражения $filter в позиции {pos}")
        pos = match.end()
        if match["lit"]:
            raw = match["lit"]
            body = raw[raw.index("'") + 1 : -1].replace("''", "'")
            if raw.startswith("datetime"):
                body = body[:19]
            tokens.append(("val", body))
        elif match["num"]:
            tokens.append(("val", float(match["num"])))
        elif match["par"]:
            tokens.append((match["par"], None))
        else:
            word = match["word"]
            if word in ("true", "false"):
                tokens.append(("val", word == "true"))
            elif word in ("and", "or", "not", *OPS):
                tokens.append((word, None))
            else:
                tokens.append(("name", word))
    i = 0

    def peek() -> str:
        return tokens[i][0] if i < len(tokens) else ""

    def take(kind: str | None = None) -> tuple[str, Any]:
        nonlocal i
        if i >= len(tokens) or (kind and tokens[i][0] != kind):
            raise ODataError(400, "14", f"Ошибка разбора выражения $filter: {text}")
        i += 1
        return tokens[i - 1]

    Pred = Callable[[Mapping[str, Any]], Any]

    def operand() -> Pred:
        kind, value = take()
        if kind == "(":
            inner = or_expr()
            take(")")
            return inner
        if kind == "val":
            return lambda row: value
        if kind == "name":
            return lambda row: row.get(value)
        raise ODataError(400, "14", f"Ошибка разбора выражения $filter: {text}")

    def compare() -> Pred:
        if peek() == "not":
            take()
            inner = compare()
            return lambda row: not inner(row)
        left = operand()
        if peek() in OPS:
            op = OPS[take()[0]]
            right = operand()
            return lambda row: op(left(row), right(row))
        return left

    def and_expr() -> Pred:
        parts = [compare()]
        while peek() == "and":
            take()
            parts.append(compare())
        return lambda row: all(p(row) for p in parts)

    def or_expr() -> Pred:
        parts = [and_expr()]
        while peek() == "or":
            take()
            parts.append(and_expr())
        return lambda row: any(p(row) for p in parts)

    result = or_expr()
    if i != len(tokens):
        raise ODataError(400, "14", f"Ошибка разбора выражения $filter: {text}")
    return lambda row: bool(result(row))


# -- data -------------------------------------------------------------------------------------


@dataclasses.dataclass
class Renaming:
    """A 1C that names things differently: reference name -> this 1C's name."""

    sets: dict[str, str] = dataclasses.field(default_factory=dict)
    fields: dict[str, str] = dataclasses.field(default_factory=dict)
    values: dict[str, str] = dataclasses.field(default_factory=dict)

    def set(self, name: str) -> str:
        return self.sets.get(name, name)

    def obj(self, obj: Any) -> Any:
        if isinstance(obj, dict):
            return {self.fields.get(k, k): self.obj(v) for k, v in obj.items()}
        if isinstance(obj, list):
            return [self.obj(v) for v in obj]
        if isinstance(obj, str):
            return self.values.get(obj, obj)
        return obj


@dataclasses.dataclass
class Fault:
    """What the next matching request gets instead of an answer."""

    kind: str
    """``status`` (an ``odata.error`` with ``status``), ``page`` (a web server's HTML error
    page with ``status``, as a proxy in front of 1C answers), ``cut`` (the connection
    closes mid-body), ``slow`` (the answer waits ``delay`` seconds), ``hang`` (never
    answers until the server stops)."""
    status: int = 500
    message: str = "Внутренняя ошибка сервера"
    """1C's message of a ``status`` fault (the text of a ``page``)."""
    match: str = ""
    """Only requests whose decoded path and query contain this."""
    delay: float = 0.0
    times: int = 1
    after: int = 0
    """Let this many matching requests through first."""


class OneCData:
    """The infobase: entity sets by name, the change register, the exchange node."""

    def __init__(self, renaming: Renaming | None = None) -> None:
        self.renaming = renaming or Renaming()
        self.sets: dict[str, dict[str, dict[str, Any]]] = {}
        self.changes: dict[str, dict[str, Any]] = {}
        """The change register's rows by object (one per object: its latest change)."""
        self.pending: dict[str, tuple[int, str, str, bool]] = {}
        """The exchange node's unacknowledged changes by object (the latest of each)."""
        self._ordered: dict[str, list[Any]] = {}
        self.seq = 0
        self.balances: dict[str, float] = {}
        self.now = dt.datetime(2025, 3, 1, 9, 0, 0)
        self.lock = threading.RLock()
        self.numbers = 0
        for name in SETS:  # published, even when empty
            self.sets[self.renaming.set(name)] = {}

    def tick(self, seconds: int = 1) -> None:
        """Let time pass in 1C (changes made now share the previous time until a tick)."""
        self.now += dt.timedelta(seconds=seconds)

    def put(self, set_name: str, obj: dict[str, Any], *, record: bool = True) -> dict[str, Any]:
        """Create or replace an object (reference names); bumps DataVersion, records it."""
        with self.lock:
            name = self.renaming.set(set_name)
            obj = self.renaming.obj(dict(obj))
            ref = obj.setdefault("Ref_Key", str(uuid.uuid4()))
            self.seq += 1
            obj["DataVersion"] = base64.b64encode(self.seq.to_bytes(8, "big")).decode()
            obj.setdefault("DeletionMark", False)
            for rows in obj.values():
                if isinstance(rows, list):
                    for n, row in enumerate(rows, start=1):
                        if isinstance(row, dict):
                            row["Ref_Key"], row["LineNumber"] = ref, str(n)
            self.sets.setdefault(name, {})[ref] = obj
            self._ordered.pop(name, None)
            if record:
                self._record(name, ref, False)
            return obj

    def delete(self, set_name: str, ref: str) -> None:
        """Delete physically (as an administrator would)."""
        with self.lock:
            name = self.renaming.set(set_name)
            self.sets.get(name, {}).pop(ref, None)
            self._record(name, ref, True)

    def get(self, set_name: str, ref: str) -> dict[str, Any] | None:
        return self.sets.get(self.renaming.set(set_name), {}).get(ref)

    def _record(self, name: str, ref: str, deleted: bool) -> None:
        r = self.renaming
        self.changes.pop(ref, None)
        self._ordered.pop(CHANGES, None)
        self.changes[ref] = r.obj(
            {
                "Объект": ref,
                "Объект_Type": f"StandardODATA.{name}",
                "ДатаИзменения": self.now.isoformat(),
                "Удален": deleted,
            }
        )
        self._ordered.pop(name, None)
        self.pending.pop(ref, None)
        self.pending[ref] = (self.seq, name, ref, deleted)

    @property
    def register(self) -> list[dict[str, Any]]:
        """The change register's rows, oldest change first."""
        return list(self.changes.values())

    @property
    def exchange(self) -> list[tuple[int, str, str, bool]]:
        """(message number, set, object, deleted) not yet acknowledged, in order."""
        return list(self.pending.values())

    def acknowledge(self, number: int) -> None:
        self.pending = {k: c for k, c in self.pending.items() if c[0] > number}

    def ordered(self, name: str, key: Callable[[dict[str, Any]], Any]) -> list[Any]:
        """(key, row) of a set or the register, sorted by ``key``; kept until a write."""
        rows = self.changes if name == CHANGES else self.sets[name]
        found = self._ordered.get(name)
        if found is None or len(found) != len(rows):  # a test may pop a row directly
            found = sorted(((key(r), r) for r in rows.values()), key=lambda x: x[0])
            self._ordered[name] = found
        return found

    def answer_requests(self, *, accept: bool = True, answer: str = "") -> int:
        """Decide every new client request, as a 1C operator would; returns how many.

        Accepted, an ``Изменение`` writes its ``ИзмененныеПоля`` on the order, which must
        name the order's attributes as this 1C publishes them and carry 1C's formats (a
        date as ``YYYY-MM-DDTHH:MM:SS``, a number as a number); anything else is answered
        ``Отклонен`` with the reason, as 1C refuses what it cannot apply. An accepted
        ``Отмена`` cancels the order. Every name and value is this 1C's (``renaming``)."""
        r = self.renaming

        def n(name: str) -> str:
            return r.fields.get(name, name)

        def v(value: str) -> str:
            return r.values.get(value, value)

        decided = 0
        with self.lock:
            requests, orders = r.set(REQUESTS), r.set(ORDERS)
            for doc in list(self.sets.get(requests, {}).values()):
                if doc.get(n("Статус")) != v("Новый"):
                    continue
                status, text = v("Отклонен"), answer or "Отклонен"
                if accept:
                    status, text = v("Принят"), answer or "Принят"
                    try:
                        changed = self._applied(doc, self.sets.get(orders, {}), n, v)
                    except ValueError as exc:
                        status, text = v("Отклонен"), str(exc)
                    else:
                        _put_raw(self, orders, changed)
                _put_raw(self, requests, {**doc, n("Статус"): status, n("Ответ"): text})
                decided += 1
        return decided

    @staticmethod
    def _applied(
        doc: Mapping[str, Any],
        orders: Mapping[str, dict[str, Any]],
        n: Callable[[str], str],
        v: Callable[[str], str],
    ) -> dict[str, Any]:
        """The order as the request ``doc`` leaves it; ValueError says why it cannot."""
        order = orders.get(str(doc.get(n("Заявка_Key")) or ""))
        if order is None:
            raise ValueError("Заявка не найдена")
        kind = doc.get(n("ВидЗапроса"))
        if kind == v("Отмена"):
            return {**order, n("Статус"): v("Отменена")}
        if kind != v("Изменение"):
            raise ValueError(f"Неизвестный вид запроса {kind!r}")
        try:
            changes = json.loads(doc.get(n("ИзмененныеПоля")) or "{}")
        except ValueError:
            raise ValueError("ИзмененныеПоля: не JSON") from None
        if not isinstance(changes, dict) or not changes:
            raise ValueError("ИзмененныеПоля: нет реквизитов")
        out = dict(order)
        for key, value in changes.items():
            if key not in order or key in ("Ref_Key", "DataVersion", "Number", "Posted"):
                raise ValueError(f"Неизвестный реквизит {key!r}")
            out[key] = _onec_value(key, order[key], value)
        return out


# -- a generator of realistic data -------------------------------------------------------------

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


# -- the server -------------------------------------------------------------------------------


class OneCServer:
    """The HTTP server on a free 127.0.0.1 port; ``base_url`` is the publication root."""

    def __init__(
        self,
        data: OneCData | None = None,
        *,
        username: str = "portal",
        password: str = "пароль",  # noqa: S107 - a local test server
        publication: str = "trade",
    ) -> None:
        self.data = data or OneCData()
        self.username, self.password = username, password
        self.publication = publication
        self.faults: list[Fault] = []
        self.requests: list[tuple[str, str]] = []
        """(method, decoded path and query) of every request, in order."""
        self.arrivals: list[tuple[float, str]] = []
        """(monotonic time, raw path and query) of every request as it arrived."""
        self.active = 0
        """Requests being answered now; ``peak``: the most at once so far."""
        self.peak = 0
        self.counting = threading.Lock()
        self.stopping = threading.Event()
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}/{self.publication}"

    def start(self) -> OneCServer:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.stopping.set()
        self.httpd.shutdown()
        self.httpd.server_close()

    def __enter__(self) -> OneCServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def fault(self, kind: str, **kwargs: Any) -> None:
        self.faults.append(Fault(kind, **kwargs))

    @contextlib.contextmanager
    def counted(self, target: str) -> Iterator[None]:
        """Count one request while it is answered (arrival time, concurrency)."""
        with self.counting:
            self.arrivals.append((time.monotonic(), unquote(target)))
            self.active += 1
            self.peak = max(self.peak, self.active)
        try:
            yield
        finally:
            with self.counting:
                self.active -= 1

    def busiest_second(self, match: str = "") -> int:
        """The most requests (whose path and query contain ``match``) that arrived within
        any one second."""
        times = [t for t, target in self.arrivals if match in target]
        most, start = 0, 0
        for end, t in enumerate(times):
            while t - times[start] >= 1.0:
                start += 1
            most = max(most, end - start + 1)
        return most

    def _take_fault(self, target: str) -> Fault | None:
        for fault in self.faults:
            if fault.match in target:
                if fault.after > 0:
                    fault.after -= 1
                    return None
                fault.times -= 1
                if fault.times <= 0:
                    self.faults.remove(fault)
                return fault
        return None

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def handle(self) -> None:
                # The client may go away (a test killed it, or cut it off).
                with contextlib.suppress(ConnectionResetError, BrokenPipeError):
                    super().handle()

            def do_GET(self) -> None:
                with server.counted(self.path):
                    self._serve("GET")

            def do_POST(self) -> None:
                with server.counted(self.path):
                    self._serve("POST")

            def _send(
                self, status: int, body: bytes, ctype: str, headers: Mapping[str, str] = {}
            ) -> None:
                self.send_response(status)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body)))
                self.send_header("DataServiceVersion", "3.0")
                for k, v in headers.items():
                    self.send_header(k, quote(v, safe=":/?&=()',$"))
                self.end_headers()
                self.wfile.write(body)

            def _json(self, status: int, data: Any, headers: Mapping[str, str] = {}) -> None:
                # UTF-8 as 1C sends it; msgspec, so that the benches measure the portal.
                body = msgspec.json.encode(data)
                self._send(status, body, "application/json;charset=utf-8", headers)

            def _serve(self, method: str) -> None:
                raw_path, _, raw_query = self.path.partition("?")
                path = unquote(raw_path)
                target = f"{path}?{unquote(raw_query)}"
                server.requests.append((method, target))
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                fault = server._take_fault(target)
                if fault is not None:
                    if fault.kind == "status":
                        return self._json(fault.status, _error("-1", fault.message))
                    if fault.kind == "page":
                        return self._send(
                            fault.status, _page(fault.status, fault.message), "text/html"
                        )
                    if fault.kind == "cut":
                        self.send_response(200)
                        self.send_header("Content-Type", "application/json;charset=utf-8")
                        self.send_header("Content-Length", "100000")
                        self.end_headers()
                        self.wfile.write(b'{"odata.metadata":"x","value":[{"Ref_Key":')
                        self.wfile.flush()
                        self.close_connection = True
                        return None
                    if fault.kind in ("slow", "hang"):
                        server.stopping.wait(fault.delay if fault.kind == "slow" else 3600)
                        if server.stopping.is_set():
                            self.close_connection = True  # its client is long gone
                            return None
                if not self._authorized():
                    self.send_response(401)
                    self.send_header("WWW-Authenticate", 'Basic realm="1C"')
                    page = b"<html><body>401 Unauthorized</body></html>"
                    self.send_header("Content-Type", "text/html")
                    self.send_header("Content-Length", str(len(page)))
                    self.end_headers()
                    self.wfile.write(page)
                    return None
                query = _query(raw_query)
                try:
                    with server.data.lock:
                        self._route(method, path, query, body)
                except ODataError as exc:
                    self._json(exc.status, _error(exc.code, exc.message))
                return None

            def _authorized(self) -> bool:
                header = self.headers.get("Authorization", "")
                if not header.startswith("Basic "):
                    return False
                try:
                    user, _, password = base64.b64decode(header[6:]).decode().partition(":")
                except ValueError:
                    return False
                return (user, password) == (server.username, server.password)

            def _route(self, method: str, path: str, query: dict[str, str], body: bytes) -> None:
                prefix = f"/{server.publication}/"
                if not path.startswith(prefix):
                    raise ODataError(404, "9", f"Не найдена публикация {path}")
                rest = path[len(prefix) :]
                if rest.startswith("hs/kabinet/v1/"):
                    return self._service(method, rest[len("hs/kabinet/v1/") :], query, body)
                if not rest.startswith("odata/standard.odata/"):
                    raise ODataError(404, "9", f"Не найден ресурс {rest}")
                rest = rest[len("odata/standard.odata/") :]
                if query.get("$format") != "json":
                    atom = b'<?xml version="1.0" encoding="utf-8"?><feed xmlns="http://www.w3.org/2005/Atom"/>'
                    return self._send(200, atom, "application/atom+xml;type=feed;charset=utf-8")
                if method == "POST":
                    return self._create(rest, body)
                return self._read(rest, query)

            def _root(self) -> str:
                return (
                    f"http://{self.headers.get('Host')}/{server.publication}/odata/standard.odata/"
                )

            def _read(self, rest: str, query: dict[str, str]) -> None:
                data = server.data
                balance = re.fullmatch(r"(\w+)/Balance\((.*)\)", rest)
                if balance:
                    if data.renaming.set(BALANCE) != balance[1]:
                        raise ODataError(400, "6", f"Неизвестный сегмент {balance[1]}")
                    condition = re.fullmatch(r"Condition='(.*)'", balance[2])
                    r = data.renaming
                    where = condition[1].replace("''", "'") if condition else ""
                    key = r.fields.get("Договор_Key", "Договор_Key")
                    wanted = re.findall(rf"{key} eq guid'([0-9a-fA-F-]+)'", where)
                    if wanted and re.fullmatch(
                        rf"{key} eq guid'[0-9a-fA-F-]+'(?: or {key} eq guid'[0-9a-fA-F-]+')*",
                        where,
                    ):  # the connector's question, answered without a scan
                        owed = {c: data.balances[c] for c in wanted if c in data.balances}
                        where = ""
                    else:
                        owed = data.balances
                    rows = [
                        r.obj({"Договор_Key": c, "СуммаBalance": v})
                        for c, v in sorted(owed.items())
                    ]
                    if where:
                        pred = parse_filter(where)
                        rows = [row for row in rows if pred(row)]
                    return self._json(
                        200,
                        {
                            "odata.metadata": f"{self._root()}$metadata#{balance[1]}_Balance",
                            "value": rows,
                        },
                    )
                single = re.fullmatch(r"(\w+)\(guid'([0-9a-fA-F-]+)'\)", rest)
                if single:
                    found = data.sets.get(single[1], {}).get(single[2])
                    if single[1] not in data.sets:
                        raise ODataError(400, "6", f"Неизвестный сегмент {single[1]}")
                    if found is None:
                        raise ODataError(404, "9", f"Объект не найден: {single[2]}")
                    out = _select(found, query.get("$select"), keep_storage=True)
                    out["odata.metadata"] = f"{self._root()}$metadata#{single[1]}/@Element"
                    return self._json(200, out)
                name = rest
                if name != data.renaming.set(CHANGES) and name not in data.sets:
                    raise ODataError(400, "6", f"Неизвестный сегмент пути {name}")
                quick = _quick(data, name, query)
                if quick is not None:
                    select = query.get("$select")
                    if select or name in (
                        data.renaming.set(FILES),
                        data.renaming.set(INVOICE_FILES),
                    ):
                        rows = [_select(row, select) for row in quick]
                    else:  # serialized at once, under the lock: no copy needed
                        rows = quick
                    return self._json(
                        200, {"odata.metadata": f"{self._root()}$metadata#{name}", "value": rows}
                    )
                if name == data.renaming.set(CHANGES):
                    rows = list(data.register)
                else:
                    rows = list(data.sets[name].values())
                if "$filter" in query:
                    pred = parse_filter(query["$filter"])
                    rows = [row for row in rows if pred(row)]
                if "$orderby" in query:
                    for key in reversed(query["$orderby"].split(",")):
                        field, _, direction = key.strip().partition(" ")
                        rows.sort(
                            key=lambda row: str(row.get(field, "")), reverse=direction == "desc"
                        )
                skip = int(query.get("$skip", 0))
                top = int(query["$top"]) if "$top" in query else None
                rows = rows[skip : None if top is None else skip + top]
                rows = [_select(row, query.get("$select")) for row in rows]
                self._json(
                    200, {"odata.metadata": f"{self._root()}$metadata#{name}", "value": rows}
                )
                return None

            def _create(self, name: str, body: bytes) -> None:
                data = server.data
                if name not in data.sets and name != data.renaming.set(REQUESTS):
                    raise ODataError(400, "6", f"Неизвестный сегмент пути {name}")
                try:
                    obj = json.loads(body)
                except ValueError:
                    raise ODataError(500, "-1", "Ошибка разбора JSON") from None
                obj.pop("Ref_Key", None)
                obj["Ref_Key"] = str(uuid.uuid4())
                data.numbers += 1
                obj.setdefault("Number", f"ЗК-{data.numbers:06d}")
                obj.setdefault("Ответ", "")
                stored = _put_raw(data, name, obj)
                out = dict(stored)
                out["odata.metadata"] = f"{self._root()}$metadata#{name}/@Element"
                self._json(201, out, {"Location": f"{self._root()}{name}(guid'{obj['Ref_Key']}')"})

            def _service(self, method: str, rest: str, query: dict[str, str], body: bytes) -> None:
                data = server.data
                if method == "GET" and rest == "changes":
                    limit = int(query.get("limit", 100))
                    page = list(itertools.islice(data.pending.values(), limit))
                    changes = []
                    for _seq, name, ref, deleted in page:
                        obj = data.sets.get(name, {}).get(ref)
                        changes.append(
                            {
                                "type": name,
                                "ref": ref,
                                "deleted": deleted or obj is None,
                                "object": None if obj is None else _select(obj, None),
                            }
                        )
                    message_no = page[-1][0] if page else data.seq
                    return self._json(
                        200,
                        {
                            "message_no": message_no,
                            "more": len(data.pending) > limit,
                            "changes": changes,
                        },
                    )
                if method == "POST" and rest == "changes/ack":
                    try:
                        number = int(json.loads(body)["message_no"])
                    except (ValueError, KeyError, TypeError):
                        raise ODataError(400, "-1", "Нет номера сообщения") from None
                    data.acknowledge(number)
                    self.send_response(204)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return None
                raise ODataError(404, "9", f"Нет метода {method} {rest}")

        return Handler


BY_REFS = re.compile(r"(?:Ref_Key eq guid'[0-9a-fA-F-]+'(?: or |$))+")
REF = re.compile(r"guid'([0-9a-fA-F-]+)'")
AFTER_REF = re.compile(r"Ref_Key gt guid'([0-9a-fA-F-]+)'")


def _quick(data: OneCData, name: str, query: Mapping[str, str]) -> list[dict[str, Any]] | None:
    """The answer to the connector's frequent queries without scanning every row (objects
    by ``Ref_Key``, keyset pages over ``Ref_Key`` and over the change register), so the
    benches measure the portal, not this server; anything else: None (the general path)."""
    where = query.get("$filter", "")
    if "$orderby" not in query and "$skip" not in query and BY_REFS.fullmatch(where):
        objects = data.sets.get(name, {})
        return [objects[r] for r in dict.fromkeys(REF.findall(where)) if r in objects]
    top = int(query["$top"]) if "$top" in query else None
    if top is None or "$skip" in query:
        return None
    order = query.get("$orderby", "")
    if order == "Ref_Key" and name in data.sets:
        rows = data.ordered(name, lambda r: str(r.get("Ref_Key", "")))
        after = AFTER_REF.fullmatch(where)
        if where and after is None:
            return None
        start = bisect.bisect_right(rows, after[1], key=lambda x: x[0]) if after else 0
        return [row for _k, row in rows[start : start + top]]
    r = data.renaming
    at, obj = r.fields.get("ДатаИзменения", "ДатаИзменения"), r.fields.get("Объект", "Объект")
    if name != r.set(CHANGES) or order not in (f"{at},{obj}", f"{at} desc,{obj} desc"):
        return None
    rows = data.ordered(CHANGES, lambda row: (str(row[at])[:19], str(row[obj])))
    if order == f"{at} desc,{obj} desc" and not where:  # where the register stands
        return [row for _k, row in rows[len(rows) - top :][::-1]] if top > 0 else []
    pair = (
        rf"{at} gt datetime'(?P<t>[^']+)' or "
        rf"\({at} eq datetime'(?P=t)' and {obj} gt '(?P<o>[^']+)'\)"
    )
    # The keyset, alone or led by its own time as a lower bound.
    keyset = re.fullmatch(pair, where) or re.fullmatch(
        rf"{at} ge datetime'(?P<low>[^']+)' and \({pair}\)", where
    )
    if keyset and keyset.groupdict().get("low", keyset["t"]) != keyset["t"]:
        keyset = None  # another lower bound: the general path
    since = re.fullmatch(rf"{at} ge datetime'([^']+)'", where)
    if keyset:
        start = bisect.bisect_right(rows, (keyset["t"][:19], keyset["o"]), key=lambda x: x[0])
    elif since:
        start = bisect.bisect_left(rows, (since[1][:19], ""), key=lambda x: x[0])
    elif not where:
        start = 0
    else:
        return None
    return [row for _k, row in rows[start : start + top]]


def _put_raw(data: OneCData, name: str, obj: dict[str, Any]) -> dict[str, Any]:
    """Store an object already in this 1C's names (a write through the API)."""
    saved = data.renaming
    data.renaming = Renaming()
    try:
        return data.put(name, obj)
    finally:
        data.renaming = saved


def _page(status: int, message: str) -> bytes:
    """An error page as a web server in front of 1C (Apache, IIS) sends it."""
    styles = "body{font-family:Verdana,Arial,sans-serif;color:#333} " * 40
    return (
        '<!DOCTYPE HTML PUBLIC "-//IETF//DTD HTML 2.0//EN">\n<html><head>'
        f"<title>{status} Service Unavailable</title><style>{styles}</style></head>"
        f"<body><h1>Service Unavailable</h1>\n<p>{message}</p>\n<hr>\n"
        "<address>Apache/2.4.57 (Debian) Server at 1c.local Port 80</address>\n"
        + "<!-- padding -->\n" * 200
        + "</body></html>\n"
    ).encode()


ONEC_DATE = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d")


def _onec_value(key: str, current: Any, value: Any) -> Any:
    """``value`` for the attribute ``key`` now holding ``current``, in 1C's formats only."""
    if isinstance(current, str) and ONEC_DATE.fullmatch(current):
        if not isinstance(value, str) or not ONEC_DATE.fullmatch(value):
            raise ValueError(f"{key}: неверный формат даты {value!r}")
        return value
    if isinstance(current, bool):
        if not isinstance(value, bool):
            raise ValueError(f"{key}: ожидается булево, а не {value!r}")
        return value
    if isinstance(current, int | float):
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ValueError(f"{key}: ожидается число, а не {value!r}")
        return value
    if isinstance(current, list):
        if not isinstance(value, list):
            raise ValueError(f"{key}: ожидается табличная часть")
        return value
    if isinstance(current, str) and current.isdigit() and isinstance(value, int):
        return str(value)  # Int64, a string on the wire
    if not isinstance(value, str):
        raise ValueError(f"{key}: ожидается строка, а не {value!r}")
    return value


def _error(code: str, message: str) -> dict[str, Any]:
    return {"odata.error": {"code": code, "message": {"lang": "ru", "value": message}}}


def _query(raw: str) -> dict[str, str]:
    """Query options, decoded strictly: ``+`` is a plus, as on a real publication."""
    out = {}
    for part in raw.split("&"):
        if part:
            key, _, value = part.partition("=")
            out[unquote(key)] = unquote(value)
    return out


def _select(
    row: Mapping[str, Any], select: str | None, keep_storage: bool = False
) -> dict[str, Any]:
    if select:
        names = [s.strip() for s in select.split(",")]
        return {k: row[k] for k in names if k in row}
    return {k: v for k, v in row.items() if keep_storage or not k.endswith("_Base64Data")}


def serve(data: OneCData | None = None, **kwargs: Any) -> Iterator[OneCServer]:
    """For a fixture: a running server, stopped afterwards."""
    server = OneCServer(data, **kwargs).start()
    try:
        yield server
    finally:
        server.stop()


def wait_until(predicate: Callable[[], bool], timeout: float = 5.0) -> bool:
    """For scripts (not tests): poll until ``predicate`` holds."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if predicate():
            return True
        time.sleep(0.01)
    return predicate()
