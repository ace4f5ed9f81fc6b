"""Field kinds: which value table each uses, how a value is read from input and shown.

Input comes from forms and CSV (strings), JSON (numbers, booleans, strings) and XLSX cells
(numbers, dates); :func:`parse` accepts all of them and raises :class:`ValueRefused` with
the reason a person can act on.
"""

from __future__ import annotations

import datetime as dt
import re
import zoneinfo
from decimal import Decimal, InvalidOperation
from typing import Annotated, Any, Literal

import msgspec
from sqlalchemy import Table

from kabinet.inputs import Int, fits
from kabinet_dictionaries import models
from kabinet_dictionaries.errors import ValueRefused

Kind = Literal[
    "text",
    "long_text",
    "number",
    "money",
    "date",
    "datetime",
    "bool",
    "choice",
    "reference",
    "file",
]
KINDS: tuple[str, ...] = (
    "text",
    "long_text",
    "number",
    "money",
    "date",
    "datetime",
    "bool",
    "choice",
    "reference",
    "file",
)
KIND_LABELS: dict[str, tuple[str, str]] = {
    "text": ("Текст", "Text"),
    "long_text": ("Длинный текст", "Long text"),
    "number": ("Число", "Number"),
    "money": ("Деньги", "Money"),
    "date": ("Дата", "Date"),
    "datetime": ("Дата и время", "Date and time"),
    "bool": ("Да/нет", "Yes/no"),
    "choice": ("Выбор из списка", "Choice from a list"),
    "reference": ("Ссылка на запись справочника", "Reference to an entry"),
    "file": ("Файл", "File"),
}
TABLES: dict[str, Table] = {
    "text": models.value_text,
    "long_text": models.value_long,
    "number": models.value_number,
    "money": models.value_number,
    "date": models.value_date,
    "datetime": models.value_datetime,
    "bool": models.value_bool,
    "choice": models.value_text,
    "reference": models.value_ref,
    "file": models.value_file,
}
MAX_TEXT = 500
MAX_LONG = 20_000
MAX_DIGITS = 18
"""Digits before the point a number may have (the column is NUMERIC(24, 6))."""
TRUE = {"1", "true", "yes", "y", "on", "да", "д", "истина", "+"}
FALSE = {"0", "false", "no", "n", "off", "нет", "н", "ложь", "-"}
CODE = re.compile(r"^[a-z][a-z0-9_]{0,63}$")


class Choice(msgspec.Struct, kw_only=True):
    """One value of a choice list: the stored code and its labels."""

    code: Annotated[str, fits(models.value_text.c.value)]
    ru: Annotated[str, fits(models.field.c.name_ru)]
    en: Annotated[str, fits(models.field.c.name_en)] = ""

    def label(self, language: str) -> str:
        return self.ru if language == "ru" or not self.en else self.en


class FieldDef(msgspec.Struct, kw_only=True):
    """A field as parsing and display need it (the service's ``FieldInfo`` is one)."""

    id: Int = 0
    code: Annotated[str, fits(models.field.c.code)]
    name_ru: Annotated[str, fits(models.field.c.name_ru)]
    name_en: Annotated[str, fits(models.field.c.name_en)]
    kind: Kind
    required: bool = False
    unique: bool = False
    default: Annotated[str, fits(models.field.c.default)] | None = None
    choices: list[Choice] = msgspec.field(default_factory=list)
    precision: Int | None = None
    reference: Annotated[str, fits(models.dictionary_type.c.code)] | None = None
    """The code of the dictionary a reference field points into."""
    position: Int = 0

    def name(self, language: str) -> str:
        return self.name_ru if language == "ru" else self.name_en

    @property
    def scale(self) -> int:
        if self.kind == "money":
            return 2
        return 0 if self.precision is None else self.precision


def blank(raw: Any) -> bool:
    return raw is None or (isinstance(raw, str) and not raw.strip())


def _decimal(field: FieldDef, raw: Any) -> Decimal:
    if isinstance(raw, bool):
        raise ValueRefused("number")
    if isinstance(raw, float):
        raw = repr(raw)
    text = str(raw).strip().replace("\u00a0", "").replace(" ", "")
    if "," in text and "." not in text:
        text = text.replace(",", ".")
    try:
        value = Decimal(text)
    except InvalidOperation:
        raise ValueRefused("number") from None
    if not value.is_finite():
        raise ValueRefused("number")
    exponent = value.normalize().as_tuple().exponent
    if isinstance(exponent, int) and -exponent > field.scale:
        raise ValueRefused("precision", precision=field.scale)
    if abs(value) >= Decimal(10) ** MAX_DIGITS:
        raise ValueRefused("too_big")
    return value.quantize(Decimal(1).scaleb(-field.scale))


def _date(raw: Any) -> dt.date:
    if isinstance(raw, dt.datetime):
        return raw.date()
    if isinstance(raw, dt.date):
        return raw
    text = str(raw).strip()
    for fmt in ("%Y-%m-%d", "%d.%m.%Y"):
        try:
            return dt.datetime.strptime(text, fmt).date()
        except ValueError:
            continue
    raise ValueRefused("date")


def _datetime(raw: Any, timezone: str) -> dt.datetime:
    if isinstance(raw, dt.datetime):
        value = raw
    else:
        text = str(raw).strip().replace(" ", "T", 1)
        try:
            value = dt.datetime.fromisoformat(text)
        except ValueError:
            try:
                value = dt.datetime.strptime(text, "%d.%m.%YT%H:%M")
            except ValueError:
                raise ValueRefused("datetime") from None
    if value.tzinfo is None:
        value = value.replace(tzinfo=zoneinfo.ZoneInfo(timezone))
    return value.astimezone(dt.UTC)


def _bool(raw: Any) -> bool:
    if isinstance(raw, bool):
        return raw
    if isinstance(raw, int | float) and raw in (0, 1):
        return bool(raw)
    text = str(raw).strip().lower()
    if text in TRUE:
        return True
    if text in FALSE:
        return False
    raise ValueRefused("bool")


def _choice(field: FieldDef, raw: Any) -> str:
    text = str(raw).strip()
    for choice in field.choices:
        if text == choice.code:
            return choice.code
    lowered = text.lower()
    for choice in field.choices:
        if lowered in (choice.ru.lower(), choice.en.lower()):
            return choice.code
    raise ValueRefused("choice", choices=", ".join(c.code for c in field.choices))


def parse(field: FieldDef, raw: Any, *, timezone: str = "UTC") -> Any:
    """The stored value of ``raw`` for ``field``; ``None`` when blank (emptiness is the
    caller's rule: required fields and defaults). References come back as an ``int`` id or
    the ``str`` title to look up; files as the storage key."""
    if blank(raw):
        return None
    kind = field.kind
    if kind in ("text", "long_text"):
        text = str(raw).strip() if kind == "text" else str(raw).replace("\r\n", "\n")
        limit = MAX_TEXT if kind == "text" else MAX_LONG
        if len(text) > limit:
            raise ValueRefused("too_long", max=limit)
        return text
    if kind in ("number", "money"):
        return _decimal(field, raw)
    if kind == "date":
        return _date(raw)
    if kind == "datetime":
        return _datetime(raw, timezone)
    if kind == "bool":
        return _bool(raw)
    if kind == "choice":
        return _choice(field, raw)
    if kind == "reference":
        if isinstance(raw, bool):
            raise ValueRefused("reference", type=field.reference or "")
        if isinstance(raw, int):
            return raw
        text = str(raw).strip()
        if text.startswith("#") and text[1:].isdigit():
            return int(text[1:])
        return text
    if kind == "file":
        if not isinstance(raw, str):
            raise ValueRefused("file")
        return raw.strip()
    raise ValueRefused("kind", kind=kind)


def to_json(field: FieldDef, value: Any) -> Any:
    """A stored value as JSON carries it (decimals as strings, dates ISO, UTC times)."""
    if value is None:
        return None
    if isinstance(value, Decimal):
        return str(value.quantize(Decimal(1).scaleb(-field.scale)))
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat()
    return value


def display(
    field: FieldDef,
    value: Any,
    language: str,
    *,
    timezone: str = "UTC",
    titles: dict[int, str] | None = None,
    files: dict[str, str] | None = None,
) -> str:
    """A stored value as a person reads it (history keeps this text)."""
    if value is None:
        return ""
    kind = field.kind
    if kind in ("number", "money"):
        text = str(Decimal(value).quantize(Decimal(1).scaleb(-field.scale)))
        return f"{text} ₽" if kind == "money" else text
    if kind == "date":
        day: dt.date = value
        return day.strftime("%d.%m.%Y") if language == "ru" else day.isoformat()
    if kind == "datetime":
        moment: dt.datetime = value
        local = moment.astimezone(zoneinfo.ZoneInfo(timezone))
        return local.strftime("%d.%m.%Y %H:%M" if language == "ru" else "%Y-%m-%d %H:%M")
    if kind == "bool":
        yes, no = ("да", "нет") if language == "ru" else ("yes", "no")
        return yes if value else no
    if kind == "choice":
        for choice in field.choices:
            if choice.code == value:
                return choice.label(language)
        return str(value)
    if kind == "reference":
        return str((titles or {}).get(int(value), f"#{value}"))
    if kind == "file":
        return str((files or {}).get(str(value), str(value).rsplit("/", 1)[-1]))
    return str(value)


def check_default(field: FieldDef) -> Any:
    """The parsed default, or the reason it is refused."""
    if field.default is None or not field.default.strip():
        return None
    if field.kind == "file":
        raise ValueRefused("default_file")
    return parse(field, field.default)
