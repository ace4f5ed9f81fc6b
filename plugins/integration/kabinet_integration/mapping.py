"""From 1C objects to the structs the owning apps' entity sinks accept.

The reference configuration's names are the defaults here; a source's settings override
any set, field or value (:class:`kabinet_integration.settings.Source`). The integration
app knows the sinks only by name and struct (the ``entity_sinks`` hook), never a table.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from typing import Any

import msgspec

from kabinet.contrib import EntitySink
from kabinet_integration.settings import Source

EMPTY_GUID = "00000000-0000-0000-0000-000000000000"
EMPTY_DATE = "0001-01-01"

ORDER = ("counterparty", "contract", "order", "invoice", "answer")
"""Entities in dependency order: a batch is applied in this order."""

SINKS: dict[str, str] = {
    "counterparty": "companies.counterparty",
    "contract": "shipments.contract",
    "order": "shipments.order",
    "invoice": "shipments.invoice",
    "answer": "shipments.request_answer",
    "balance": "shipments.balance",
}
"""Entity -> the entity sink that accepts it."""

SETS: dict[str, str] = {
    "counterparty": "Catalog_Контрагенты",
    "contract": "Catalog_ДоговорыКонтрагентов",
    "order": "Document_ЗаявкаНаПеревозку",
    "invoice": "Document_СчетНаОплатуПокупателю",
    "answer": "Document_ЗапросКлиента",
    "balance": "AccumulationRegister_ВзаиморасчетыСКлиентами",
    "file": "Catalog_ЗаявкаНаПеревозкуПрисоединенныеФайлы",
}

FIELDS: dict[str, dict[str, str]] = {
    "counterparty": {
        "external_id": "Ref_Key",
        "deleted": "DeletionMark",
        "name": "Description",
        "full_name": "НаименованиеПолное",
        "inn": "ИНН",
        "kpp": "КПП",
        "address": "ЮридическийАдрес",
        "phone": "Телефон",
        "email": "ЭлектроннаяПочта",
    },
    "contract": {
        "external_id": "Ref_Key",
        "deleted": "DeletionMark",
        "counterparty": "Owner_Key",
        "name": "Description",
        "number": "Номер",
        "date": "Дата",
        "start_date": "ДатаНачала",
        "end_date": "ДатаОкончания",
        "status": "Статус",
        "currency": "ВалютаВзаиморасчетов",
        "credit_limit": "ЛимитЗадолженности",
    },
    "order": {
        "external_id": "Ref_Key",
        "deleted": "DeletionMark",
        "number": "Number",
        "date": "Date",
        "counterparty": "Контрагент_Key",
        "contract": "Договор_Key",
        "status": "Статус",
        "origin": "ПунктОтправления",
        "destination": "ПунктНазначения",
        "loading_date": "ДатаПогрузки",
        "delivery_planned": "ДатаДоставкиПлан",
        "delivery_actual": "ДатаДоставкиФакт",
        "location": "Дислокация",
        "location_at": "ДислокацияДата",
        "cost": "Стоимость",
        "currency": "Валюта",
        "cargo_name": "ГрузНаименование",
        "cargo_weight": "ГрузВес",
        "cargo_volume": "ГрузОбъем",
        "cargo_places": "ГрузМест",
        "shipper": "Грузоотправитель",
        "consignee": "Грузополучатель",
        "comment": "Комментарий",
        "services": "Услуги",
        "vehicles": "ТранспортныеСредства",
        "documents": "Документы",
    },
    "order.services": {"name": "Услуга", "quantity": "Количество", "amount": "Сумма"},
    "order.vehicles": {
        "kind": "ТипТС",
        "plate": "ГосНомер",
        "driver": "Водитель",
        "driver_phone": "ТелефонВодителя",
        "status": "Статус",
    },
    "order.documents": {
        "kind": "ВидДокумента",
        "number": "НомерДокумента",
        "date": "ДатаДокумента",
        "file": "Файл_Key",
    },
    "invoice": {
        "external_id": "Ref_Key",
        "deleted": "DeletionMark",
        "number": "Number",
        "date": "Date",
        "counterparty": "Контрагент_Key",
        "contract": "Договор_Key",
        "order": "Заявка_Key",
        "amount": "СуммаДокумента",
        "paid": "СуммаОплаты",
        "currency": "Валюта",
        "due_date": "СрокОплаты",
        "payment_status": "СтатусОплаты",
    },
    "answer": {
        "external_id": "Ref_Key",
        "portal_id": "ИдентификаторПортала",
        "status": "Статус",
        "answer": "Ответ",
    },
    "balance": {"contract": "Договор_Key", "balance": "СуммаBalance"},
    "file": {
        "name": "Description",
        "extension": "Расширение",
        "size": "Размер",
        "owner": "ВладелецФайла_Key",
        "content": "ФайлХранилище_Base64Data",
    },
    "request": {
        "number": "Number",
        "date": "Date",
        "order": "Заявка_Key",
        "kind": "ВидЗапроса",
        "description": "Описание",
        "changes": "ИзмененныеПоля",
        "contact_name": "КонтактФИО",
        "contact_email": "КонтактEmail",
        "portal_id": "ИдентификаторПортала",
        "status": "Статус",
    },
    "changes": {
        "object": "Объект",
        "type": "Объект_Type",
        "changed_at": "ДатаИзменения",
        "deleted": "Удален",
    },
}
"""Entity (or ``entity.section`` for a tabular section) -> portal field -> 1C field."""

VALUES: dict[str, dict[str, dict[str, str]]] = {
    "contract": {
        "status": {"Действует": "active", "Приостановлен": "suspended", "Расторгнут": "terminated"}
    },
    "order": {
        "status": {
            "Оформлена": "registered",
            "ВРаботе": "in_progress",
            "Выполнена": "done",
            "Отменена": "cancelled",
        }
    },
    "invoice": {
        "payment_status": {
            "НеОплачен": "unpaid",
            "ОплаченЧастично": "part_paid",
            "Оплачен": "paid",
        }
    },
    "answer": {
        "status": {"Новый": "new", "Принят": "accepted", "Отклонен": "rejected", "Выполнен": "done"}
    },
    "request": {"kind": {"Изменение": "edit", "Отмена": "cancel"}, "status": {"Новый": "new"}},
}
"""Entity -> portal field -> 1C value -> portal value."""


class MappingError(ValueError):
    """A record that cannot be mapped: the reason goes to quarantine."""


@dataclasses.dataclass(frozen=True)
class Names:
    """The effective names of one source: the reference's, overridden by its settings."""

    sets: Mapping[str, str]
    fields: Mapping[str, Mapping[str, str]]
    values: Mapping[str, Mapping[str, Mapping[str, str]]]

    @classmethod
    def of(cls, source: Source) -> Names:
        fields = {k: {**v, **source.fields.get(k, {})} for k, v in FIELDS.items()}
        values: dict[str, dict[str, dict[str, str]]] = {}
        for entity in {*VALUES, *source.values}:
            base = VALUES.get(entity, {})
            extra = source.values.get(entity, {})
            values[entity] = {f: {**base.get(f, {}), **extra.get(f, {})} for f in {*base, *extra}}
        return cls(sets={**SETS, **source.sets}, fields=fields, values=values)

    def entity_of_set(self, name: str) -> str | None:
        """``Document_X`` or ``StandardODATA.Document_X`` -> the entity it holds."""
        bare = name.removeprefix("StandardODATA.")
        for entity, set_name in self.sets.items():
            if set_name == bare:
                return entity
        return None

    def to_onec(self, entity: str, field: str, value: str) -> str:
        """A portal value written back (``cancel`` -> ``Отмена``)."""
        for onec, portal in self.values.get(entity, {}).get(field, {}).items():
            if portal == value:
                return onec
        return value


def _guid(value: Any) -> Any:
    return None if value in (EMPTY_GUID, "") else value


def _date(value: Any) -> Any:
    if isinstance(value, str):
        return None if value.startswith(EMPTY_DATE) or not value else value[:10]
    return value


def _datetime(value: Any) -> Any:
    if isinstance(value, str) and (value.startswith(EMPTY_DATE) or not value):
        return None
    return value


def _converter(info: Any) -> Callable[[Any], Any] | None:
    """How a 1C value becomes what the struct field accepts, by the field's type."""
    kinds = info.types if isinstance(info, msgspec.inspect.UnionType) else (info,)
    for kind in kinds:
        if isinstance(kind, msgspec.inspect.DateType):
            return _date
        if isinstance(kind, msgspec.inspect.DateTimeType):
            return _datetime
    return None


@dataclasses.dataclass(frozen=True)
class Plan:
    """How one entity's 1C object becomes the sink's struct."""

    entity: str
    sink: EntitySink
    steps: tuple[tuple[str, str, Callable[[Any], Any] | None, Mapping[str, str] | None], ...]
    sections: Mapping[str, tuple[type[msgspec.Struct], Plan]]
    required: tuple[str, ...]

    @property
    def key_field(self) -> str:
        return self.sink.key


def plan(names: Names, entity: str, sink: EntitySink, struct: type[Any] | None = None) -> Plan:
    """The mapping plan of ``entity`` into ``struct`` (the sink's, or a section's)."""
    struct = struct or sink.struct
    info = msgspec.inspect.type_info(struct)
    assert isinstance(info, msgspec.inspect.StructType)
    onec = names.fields.get(entity, {})
    values = names.values.get(entity, {})
    steps = []
    sections: dict[str, tuple[type[msgspec.Struct], Plan]] = {}
    for f in info.fields:
        source_name = onec.get(f.name)
        if source_name is None:
            continue
        kinds = f.type.types if isinstance(f.type, msgspec.inspect.UnionType) else (f.type,)
        for kind in kinds:
            if isinstance(kind, msgspec.inspect.VarTupleType | msgspec.inspect.ListType):
                item = kind.item_type
                if isinstance(item, msgspec.inspect.StructType):
                    sections[f.name] = (item.cls, plan(names, f"{entity}.{f.name}", sink, item.cls))
        convert = _converter(f.type)
        if source_name.endswith("_Key"):
            convert = _guid
        steps.append((f.name, source_name, convert, values.get(f.name)))
    required = tuple(f.name for f in info.fields if f.required)
    return Plan(entity, sink, tuple(steps), sections, required)


def to_dict(p: Plan, obj: Mapping[str, Any]) -> dict[str, Any]:
    """The 1C object as the struct's fields (not yet validated); raises MappingError."""
    out: dict[str, Any] = {}
    for name, source_name, convert, values in p.steps:
        if source_name not in obj:
            continue
        value = obj[source_name]
        if name in p.sections:
            section = p.sections[name][1]
            out[name] = [to_dict(section, row) for row in value or ()]
            continue
        if convert is not None:
            value = convert(value)
        if values is not None and value is not None:
            if value not in values:
                raise MappingError(f"{name}: unknown value {value!r} of {source_name}")
            value = values[value]
        out[name] = value
    return out


def decode(p: Plan, obj: Mapping[str, Any]) -> msgspec.Struct:
    """One 1C object as the sink's struct; raises MappingError with the reason."""
    try:
        record: msgspec.Struct = msgspec.convert(to_dict(p, obj), p.sink.struct, strict=False)
    except msgspec.ValidationError as exc:
        raise MappingError(str(exc)) from None
    return record


def tombstone(p: Plan, remembered: Mapping[str, Any]) -> msgspec.Struct:
    """A deleted record for an object 1C no longer has, from what was remembered of it."""
    try:
        record: msgspec.Struct = msgspec.convert(
            {**remembered, "deleted": True}, p.sink.struct, strict=False
        )
    except msgspec.ValidationError as exc:
        raise MappingError(f"cannot mark deleted: {exc}") from None
    return record


def identity(p: Plan, record: msgspec.Struct) -> dict[str, Any]:
    """The required fields of a record: enough to mark it deleted later."""
    return msgspec.to_builtins({f: getattr(record, f) for f in p.required})  # type: ignore[no-any-return]


def key_of(p: Plan, obj: Mapping[str, Any]) -> str:
    """The production system's id of an object (its ``Ref_Key`` by default)."""
    source_name = {n: s for n, s, _c, _v in p.steps}.get(p.key_field, "Ref_Key")
    return str(obj.get(source_name) or obj.get("Ref_Key") or "")
