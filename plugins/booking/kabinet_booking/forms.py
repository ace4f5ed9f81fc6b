"""The new order's fields (one struct for the form, the API and the import) and the rules
every channel checks them by, with the settings' say on what is shown and required."""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection, Mapping
from decimal import Decimal
from typing import Annotated, Any, Literal

import msgspec

from kabinet.forms import FieldError
from kabinet_booking.settings import FIELDS, FieldRule

Text200 = Annotated[str, msgspec.Meta(max_length=200)]
Text300 = Annotated[str, msgspec.Meta(max_length=300)]
ClockTime = Annotated[str, msgspec.Meta(pattern=r"^$|^([01]\d|2[0-3]):[0-5]\d$")]
"""A time of day as ``HH:MM`` (what a browser's time input sends), or empty."""
DangerClass = Literal["", "1", "2", "3", "4", "5", "6", "7", "8", "9"]

FILL_IN = "Fill this in."
BOUNDS = {"cargo_weight": Decimal(1_000_000), "cargo_volume": Decimal(10_000)}
"""The most a field may hold (msgspec bounds no ``Decimal``: :func:`check` does)."""
NOT_OFFERED = "Choose one of the offered values."


class OrderFields(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """What a client enters for a new order (every field optional here: the settings say
    which are required, checked by :func:`check`)."""

    contract_id: Annotated[int, msgspec.Meta(ge=1, le=2_147_483_647)] | None = None
    origin: Text300 = ""
    origin_contact: Text200 = ""
    destination: Text300 = ""
    destination_contact: Text200 = ""
    loading_date: dt.date | None = None
    loading_from: ClockTime = ""
    """The loading window's start, ``HH:MM`` (local time at the place)."""
    loading_to: ClockTime = ""
    delivery_date: dt.date | None = None
    cargo_name: Text300 = ""
    cargo_weight: Decimal | None = None
    """Kilograms, above 0 and at most :data:`BOUNDS` (checked by :func:`check`)."""
    cargo_volume: Decimal | None = None
    cargo_places: Annotated[int, msgspec.Meta(ge=1, le=100_000)] | None = None
    packaging: Text200 = ""
    temperature: Annotated[str, msgspec.Meta(max_length=40)] = ""
    danger_class: DangerClass = ""
    vehicle_type: Text200 = ""
    services: list[Text200] = msgspec.field(default_factory=list)
    shipper: Text300 = ""
    shipper_contact: Text200 = ""
    consignee: Text300 = ""
    consignee_contact: Text200 = ""
    comment: Annotated[str, msgspec.Meta(max_length=2000)] = ""


class Choices(msgspec.Struct, kw_only=True):
    """What the person may pick: contracts (id -> label), vehicle types, services."""

    contracts: Mapping[int, str]
    more_contracts: bool = False
    """The person may order under more contracts than listed (the form offers a search)."""
    vehicle_types: Collection[str] = ()
    services: Collection[str] = ()


def empty(value: Any) -> bool:
    return value is None or value == "" or value == []


def shown_only(fields: OrderFields, rules: Mapping[str, FieldRule]) -> OrderFields:
    """The fields with what the form does not show cleared (never sent on, never kept)."""
    blank = OrderFields()
    cleared = {name: getattr(blank, name) for name in FIELDS if not rules[name].shown}
    return msgspec.structs.replace(fields, **cleared) if cleared else fields


def check(
    fields: OrderFields,
    rules: Mapping[str, FieldRule],
    choices: Choices,
    *,
    today: dt.date | None = None,
) -> list[FieldError]:
    """Every refusal of ``fields`` (empty: they may be sent). ``today`` set: the request
    is being sent, so a loading date in the past is refused too."""
    errors: list[FieldError] = []
    for name in FIELDS:
        rule = rules[name]
        if rule.shown and rule.required and empty(getattr(fields, name)):
            errors.append(FieldError(FILL_IN, name))
    for name, high in BOUNDS.items():
        value = getattr(fields, name)
        if value is not None and not (0 < value <= high):
            errors.append(
                FieldError(
                    "Enter a number above 0 and at most {high}.", name, params={"high": high}
                )
            )
    if fields.contract_id is not None and fields.contract_id not in choices.contracts:
        errors.append(FieldError(NOT_OFFERED, "contract_id"))
    if fields.vehicle_type and fields.vehicle_type not in choices.vehicle_types:
        errors.append(FieldError(NOT_OFFERED, "vehicle_type"))
    if any(s not in choices.services for s in fields.services):
        errors.append(FieldError(NOT_OFFERED, "services"))
    if fields.loading_from and fields.loading_to and fields.loading_to <= fields.loading_from:
        errors.append(FieldError("The window must end after it starts.", "loading_to"))
    if fields.loading_date and fields.delivery_date and fields.delivery_date < fields.loading_date:
        errors.append(FieldError("Delivery cannot be before loading.", "delivery_date"))
    if today is not None and fields.loading_date and fields.loading_date < today:
        errors.append(FieldError("The loading date has passed.", "loading_date"))
    return errors


# -- what goes to the production system ------------------------------------------------------

LABELS_RU: dict[str, str] = {
    "origin_contact": "Контакт на погрузке",
    "destination_contact": "Контакт на выгрузке",
    "loading_from": "Погрузка с",
    "loading_to": "Погрузка до",
    "packaging": "Упаковка",
    "temperature": "Температурный режим",
    "danger_class": "Класс опасности",
    "vehicle_type": "Тип ТС",
    "services": "Доп. услуги",
    "shipper_contact": "Контакт грузоотправителя",
    "consignee_contact": "Контакт грузополучателя",
    "origin": "Пункт отправления",
    "destination": "Пункт назначения",
    "loading_date": "Дата погрузки",
    "delivery_date": "Желаемая дата доставки",
    "cargo_name": "Груз",
    "cargo_weight": "Вес, кг",
    "cargo_volume": "Объём, м³",
    "cargo_places": "Мест",
    "shipper": "Грузоотправитель",
    "consignee": "Грузополучатель",
    "comment": "Комментарий",
    "contract_id": "Договор",
}
"""The comment is read by the carrier's staff in 1C, in Russian."""


def clock(text: str) -> dt.time:
    """``HH:MM`` as a time (midnight when empty)."""
    return dt.time.fromisoformat(f"{text}:00") if text else dt.time(0)


def readable(value: Any) -> str:
    if isinstance(value, list):
        return ", ".join(str(v) for v in value)
    if isinstance(value, dt.time):
        return value.strftime("%H:%M")
    if isinstance(value, dt.date):
        return value.strftime("%d.%m.%Y")
    return str(value)


def full_comment(fields: OrderFields, rules: Mapping[str, FieldRule]) -> str:
    """The client's comment, then every shown field that has no attribute, one a line
    ("Упаковка: паллеты"), so nothing the client entered is lost."""
    lines = [fields.comment.strip()] if fields.comment.strip() else []
    for name in FIELDS:
        rule = rules[name]
        value = getattr(fields, name)
        if name == "comment" or rule.order_field or not rule.shown or empty(value):
            continue
        lines.append(f"{LABELS_RU[name]}: {readable(value)}")
    return "\n".join(lines)


def order_value(name: str, fields: OrderFields) -> Any:
    """A field's value as the order's sink takes it from JSON: local date-times without a
    zone (``2026-02-01T09:00:00``, the loading date with its window's start), numbers as
    numbers."""
    value = getattr(fields, name)
    if name == "loading_date" and value is not None:
        return dt.datetime.combine(value, clock(fields.loading_from)).strftime("%Y-%m-%dT%H:%M:%S")
    if isinstance(value, dt.date):
        return dt.datetime.combine(value, dt.time(0)).strftime("%Y-%m-%dT%H:%M:%S")
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, dt.time):
        return value.strftime("%H:%M")
    return value


def order_fields(
    fields: OrderFields,
    rules: Mapping[str, FieldRule],
    *,
    counterparty_key: str,
    contract_key: str | None,
) -> dict[str, Any]:
    """The new order's fields under the order's portal names (``counterparty``,
    ``contract`` by the production system's keys), what the settings give no order field
    written into the comment. The integration app writes them as ``ИзмененныеПоля`` under
    1C's attribute names."""
    found: dict[str, Any] = {"counterparty": counterparty_key}
    for name in FIELDS:
        rule = rules[name]
        if not rule.order_field or not rule.shown:
            continue
        if name == "contract_id":
            if contract_key:
                found[rule.order_field] = contract_key
        elif name == "comment":
            text = full_comment(fields, rules)
            if text:
                found[rule.order_field] = text
        elif not empty(getattr(fields, name)):
            found[rule.order_field] = order_value(name, fields)
    return found


def summary(fields: OrderFields) -> str:
    """One line naming the request in lists: "Москва → Казань · Оборудование"."""
    route = " → ".join(p for p in (fields.origin, fields.destination) if p)
    return " · ".join(p for p in (route, fields.cargo_name) if p)[:300]
