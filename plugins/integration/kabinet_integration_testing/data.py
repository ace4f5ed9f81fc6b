"""The local 1C's infobase: entity sets by name, the change register, the exchange node,
a :class:`Renaming` for a 1C that names things differently, and the operator who answers
client requests (:meth:`OneCData.answer_requests`; new orders made from them)."""

from __future__ import annotations

import base64
import dataclasses
import datetime as dt
import json
import re
import threading
import uuid
from collections.abc import Callable, Mapping
from typing import Any

from kabinet_integration_testing.odata import CHANGES, EMPTY, ORDERS, REQUESTS, SETS

COUNTERPARTIES = "Catalog_Контрагенты"
CONTRACTS = "Catalog_ДоговорыКонтрагентов"
NO_DATE = "0001-01-01T00:00:00"
NEW_ORDER: dict[str, Any] = {
    "Контрагент_Key": EMPTY,
    "Договор_Key": EMPTY,
    "ПунктОтправления": "",
    "ПунктНазначения": "",
    "ДатаПогрузки": NO_DATE,
    "ДатаДоставкиПлан": NO_DATE,
    "ДатаДоставкиФакт": NO_DATE,
    "Дислокация": "",
    "ДислокацияДата": NO_DATE,
    "Стоимость": 0.0,
    "Валюта": "RUB",
    "ГрузНаименование": "",
    "ГрузВес": 0.0,
    "ГрузОбъем": 0.0,
    "ГрузМест": "0",
    "Грузоотправитель": "",
    "Грузополучатель": "",
    "Комментарий": "",
    "Услуги": [],
    "ТранспортныеСредства": [],
    "Документы": [],
}
"""A new order's attributes (the reference's names) with 1C's empty values: what a
``НоваяЗаявка``'s ``ИзмененныеПоля`` may fill, and the type each takes."""
REQUIRED_NEW = (
    "Контрагент_Key",
    "Договор_Key",
    "ПунктОтправления",
    "ПунктНазначения",
    "ДатаПогрузки",
)
"""What a ``НоваяЗаявка`` must fill (the reference's names)."""


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
        self._grouped: dict[str, dict[str, dict[Any, list[tuple[int, dict[str, Any]]]]]] = {}
        self.seq = 0
        self.balances: dict[str, float] = {}
        self.registers: dict[str, list[dict[str, Any]]] = {}
        """Other accumulation registers (reference names): their Balance rows, each its
        dimensions and resources as 1C names them (``ТС_Key``, ``КмBalance``)."""
        self.now = dt.datetime(2025, 3, 1, 9, 0, 0)
        self.lock = threading.RLock()
        self.numbers = 0
        self.order_numbers = 0
        self.auto_answer = ""
        """``accept`` or ``reject``: the operator answers each request as it is written
        (the demo, a test of the whole way); empty: only :meth:`answer_requests` does."""
        self.required_new: tuple[str, ...] = REQUIRED_NEW
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
            self._grouped.pop(name, None)
            if record:
                self._record(name, ref, False)
            return obj

    def delete(self, set_name: str, ref: str) -> None:
        """Delete physically (as an administrator would)."""
        with self.lock:
            name = self.renaming.set(set_name)
            self.sets.get(name, {}).pop(ref, None)
            self._record(name, ref, True)

    def mark_changed(self, set_name: str, ref: str) -> None:
        """Register an object as changed without writing it (its ``DataVersion`` stays), as
        1C's ``РегистрироватьИзменения`` does when a file is attached to it or replaced."""
        with self.lock:
            self._record(self.renaming.set(set_name), ref, False)

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
        self._grouped.pop(name, None)
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

    def grouped(self, name: str, field: str) -> dict[Any, list[tuple[int, dict[str, Any]]]]:
        """(position in the set, row) of set ``name`` by the rows' ``field`` (an owner's
        files); kept until a write. The caller checks each row's field again (a test may
        change a row directly)."""
        by_field = self._grouped.setdefault(name, {})
        rows = self.sets[name]
        found = by_field.get(field)
        if found is None or sum(map(len, found.values())) != len(rows):
            found = {}
            for n, row in enumerate(rows.values()):
                found.setdefault(row.get(field), []).append((n, row))
            by_field[field] = found
        return found

    def answer_requests(self, *, accept: bool = True, answer: str = "", portal_id: str = "") -> int:
        """Decide every new client request (``portal_id``: only that one), as a 1C operator
        would; returns how many.

        Accepted, an ``Изменение`` writes its ``ИзмененныеПоля`` on the order, which must
        name the order's attributes as this 1C publishes them and carry 1C's formats (a
        date as ``YYYY-MM-DDTHH:MM:SS``, a number as a number); anything else is answered
        ``Отклонен`` with the reason, as 1C refuses what it cannot apply. An accepted
        ``Отмена`` cancels the order. An accepted ``НоваяЗаявка`` creates the order from its
        ``ИзмененныеПоля`` (``Статус`` ``Оформлена``, a number ``ТТ-…``) and sets the
        request's ``Заявка_Key`` to it; an unknown counterparty or contract, a contract of
        another counterparty, a required attribute left empty (:attr:`required_new`) or an
        unknown one is answered ``Отклонен`` with the reason. Every name and value is this
        1C's (``renaming``)."""
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
                if portal_id and doc.get(n("ИдентификаторПортала")) != portal_id:
                    continue
                status, text = v("Отклонен"), answer or "Отклонен"
                made: dict[str, Any] = {}
                if accept:
                    status, text = v("Принят"), answer or "Принят"
                    try:
                        if doc.get(n("ВидЗапроса")) == v("НоваяЗаявка"):
                            changed = self._new_order(doc, n, v)
                        else:
                            changed = self._applied(doc, self.sets.get(orders, {}), n, v)
                    except ValueError as exc:
                        status, text = v("Отклонен"), str(exc)
                    else:
                        stored = put_raw(self, orders, changed)
                        if doc.get(n("ВидЗапроса")) == v("НоваяЗаявка"):
                            made = {n("Заявка_Key"): stored["Ref_Key"]}
                put_raw(self, requests, {**doc, **made, n("Статус"): status, n("Ответ"): text})
                decided += 1
        return decided

    def _new_order(
        self, doc: Mapping[str, Any], n: Callable[[str], str], v: Callable[[str], str]
    ) -> dict[str, Any]:
        """The order a ``НоваяЗаявка`` creates; ValueError says why it cannot."""
        try:
            fields = json.loads(doc.get(n("ИзмененныеПоля")) or "{}")
        except ValueError:
            raise ValueError("ИзмененныеПоля: не JSON") from None
        if not isinstance(fields, dict):
            raise ValueError("ИзмененныеПоля: не объект")
        blank = {n(k): value for k, value in NEW_ORDER.items()}
        out = dict(blank)
        for key, value in fields.items():
            if key not in blank:
                raise ValueError(f"Неизвестный реквизит {key!r}")
            out[key] = _onec_value(key, blank[key], value)
        for key in self.required_new:
            if out[n(key)] in ("", EMPTY, NO_DATE, None):
                raise ValueError(f"Не заполнен реквизит {n(key)!r}")
        owner, agreement = str(out[n("Контрагент_Key")]), str(out[n("Договор_Key")])
        if self.get(COUNTERPARTIES, owner) is None:
            raise ValueError(f"Контрагент {owner} не найден")
        found = self.get(CONTRACTS, agreement)
        if found is None:
            raise ValueError(f"Договор {agreement} не найден")
        if found.get(n("Owner_Key")) != owner:
            raise ValueError(f"Договор {agreement} заключен с другим контрагентом")
        self.order_numbers += 1
        return {
            **out,
            "Number": f"ТТ-{self.order_numbers:06d}",
            "Date": self.now.isoformat(),
            "Posted": True,
            n("Статус"): v("Оформлена"),
        }

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


def put_raw(data: OneCData, name: str, obj: dict[str, Any]) -> dict[str, Any]:
    """Store an object already in this 1C's names (a write through the API)."""
    saved = data.renaming
    data.renaming = Renaming()
    try:
        return data.put(name, obj)
    finally:
        data.renaming = saved


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
