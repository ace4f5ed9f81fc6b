"""Why a record was quarantined, in 1C's names.

The reasons come from the decoding (msgspec: "Object missing required field
`counterparty`", "Expected `int`, got `str` - at `$.services[0].amount`"), from the
mapping ("status: unknown value 'X' of Статус") and from the owning apps' sinks ("inn:
…", "unknown contract '…'"), all in the portal's field names. Staff compare them with
the object in 1C, so each portal field is named by the 1C attribute it is read from,
through the same mapping plan the read side uses (a renamed configuration shows its own
names), with the portal's name in brackets:

    missing required field `Контрагент` (counterparty)
    Expected `int`, got `str` - at `Услуги`, line 1, `Сумма` (services[0].amount)
    `ИНН` (inn): …
    unknown contract '…' (1C: `Договор`)

Each reason is also kept as a code of :data:`CODES` with its parameters
(:func:`structured`), which the quarantine page shows in the reader's language
(:func:`text`); the API answers the code beside the English message. The decoding's and
the mapping's reasons are this app's; the owning apps' sinks give theirs as a
:class:`kabinet.contrib.Rejection` (a message with a code and parameters: they require
nothing of this app, it requires them). A reason of no known code, and a record set aside
before reasons had codes, is shown as its stored message.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from kabinet import i18n
from kabinet.contrib import Rejection

if TYPE_CHECKING:
    from kabinet_integration.mapping import Plan

_MISSING = re.compile(r"^(?:Object )?missing required field `(?P<field>[^`]+)`$")
_AT = re.compile(r" - at `\$(?P<path>[^`]*)`$")
_PART = re.compile(r"\.(?P<name>\w+)|\[(?P<index>\d+)\]")
_LEAD = re.compile(r"^(?P<unknown>unknown )?(?P<field>[a-z_]+)(?P<rest>[: ].*)$", re.S)
_VALUE_OF = re.compile(r"^(?P<head>: unknown value .*) of \S+$", re.S)
_EXPECTED = re.compile(r"^Expected `(?P<expected>[^`]+)`, got `(?P<got>[^`]+)`$")


def attribute(published: str) -> str:
    """The 1C attribute behind a published field: a reference ``Контрагент_Key`` is the
    attribute ``Контрагент``; ``Ref_Key`` and other fields are themselves."""
    if published.endswith("_Key") and published != "Ref_Key":
        return published[: -len("_Key")]
    return published


def _sources(p: Plan) -> dict[str, str]:
    return {field: source for field, source, _convert, _values in p.steps}


def _parts(p: Plan, path: str) -> list[str | int] | None:
    """``.services[0].amount`` as ``["Услуги", 1, "Сумма"]``: 1C's attributes and line
    numbers from 1 (None: not mapped)."""
    parts: list[str | int] = []
    plan: Plan | None = p
    for found in _PART.finditer(path):
        name, index = found.group("name"), found.group("index")
        if index is not None:
            parts.append(int(index) + 1)
            continue
        if plan is None:
            return None
        source = _sources(plan).get(name)
        if source is None:
            return None
        parts.append(attribute(source))
        section = plan.sections.get(name)
        plan = section[1] if section is not None else None
    return parts or None


def _said(parts: list[str | int] | None, line: str = "line") -> str | None:
    """1C's attributes of :func:`_parts` as staff read them: `` `Услуги`, line 1, `Сумма` ``."""
    if not parts:
        return None
    return ", ".join(f"{line} {x}" if isinstance(x, int) else f"`{x}`" for x in parts)


def _named(p: Plan, path: str) -> str | None:
    """``.services[0].amount`` as `` `Услуги`, line 1, `Сумма` `` (None: not mapped)."""
    return _said(_parts(p, path))


def explain(p: Plan, reason: str) -> str:
    """``reason`` with each portal field named by its 1C attribute (unchanged when it
    names none)."""
    at = _AT.search(reason)
    base, path = (reason[: at.start()], at.group("path")) if at else (reason, "")
    missing = _MISSING.match(base)
    if missing is not None:
        full = f"{path}.{missing.group('field')}"
        named = _named(p, full)
        if named is not None:
            return f"missing required field {named} ({full.lstrip('.')})"
        return reason
    if at is not None:
        named = _named(p, path)
        return f"{base} - at {named} ({path.lstrip('.')})" if named is not None else reason
    lead = _LEAD.match(reason)
    if lead is None:
        return reason
    field = lead.group("field")
    source = _sources(p).get(field)
    if source is None:
        return reason
    if lead.group("unknown") or not lead.group("rest").startswith(":"):
        return f"{reason} (1C: `{attribute(source)}`)"
    rest = lead.group("rest")
    value_of = _VALUE_OF.match(rest)
    if value_of is not None:  # "unknown value 'X' of Статус": the name is said in front
        rest = value_of.group("head")
    return f"`{attribute(source)}` ({field}){rest}"


# -- reasons as codes, shown in the reader's language ---------------------------------------

CODES: dict[str, tuple[str, str]] = {
    # The decoding and the mapping (this app's own).
    "missing_field": ("Не заполнен обязательный реквизит {at}", "missing required field {at}"),
    "wrong_type": (
        "{at}: ожидается {expected}, а пришло {got}",
        "{at}: expected {expected}, got {got}",
    ),
    "invalid_data": ("{at}: недопустимое значение", "{at}: {detail}"),
    "unreadable": ("Объект 1С не читается", "the 1C object cannot be read: {detail}"),
    "unknown_value": ("{at}: неизвестное значение {value}", "{at}: unknown value {value}"),
    "cannot_delete": (
        "Объект нельзя пометить удалённым: в портале о нём недостаточно данных",
        "cannot mark deleted: {detail}",
    ),
    # A sink that failed outright: what it writes by its title in the reader's language,
    # the program's error by its kind (its own text is in English: the page in English,
    # the API and the log show it).
    "sink_failed": (
        "Не удалось записать в портал ({title}): внутренняя ошибка {error_type}; "
        "сообщите администратору портала",
        "could not be written ({title}): {error}",
    ),
    # The owning apps' sinks (kabinet.contrib.Rejection).
    "empty_id": ("Пустой идентификатор объекта", "the object's id is empty"),
    "invalid_field": ("{at}: {message}", "{at}: {message}"),
    "unknown_counterparty": (
        "{at}: неизвестный контрагент {value}",
        "{at}: unknown counterparty {value}",
    ),
    "unknown_contract": ("{at}: неизвестный договор {value}", "{at}: unknown contract {value}"),
    "unknown_order": (
        "{at}: заявка {value} ещё не получена",
        "{at}: unknown order {value} (not received yet)",
    ),
    "foreign_reference": (
        "{kind} {value} принадлежит другому контрагенту: {owner}, а не {holder}",
        "{kind} {value} belongs to another counterparty: {owner}, not {holder}",
    ),
    "not_our_request": (
        "ИдентификаторПортала {value} — не ключ запроса этого портала",
        "ИдентификаторПортала {value} is not a request key of this portal",
    ),
    "answer_mismatch": (
        "Ответ на запрос 1С {external_id} указывает запрос портала {portal_id}, "
        "а это запрос 1С {linked}",
        "the answer of 1C request {external_id} names portal request {portal_id}, "
        "which is 1C request {linked}",
    ),
}
"""Reason codes with their texts in Russian and English (``{at}``: 1C's attributes of the
field at fault, else the field's name; values in quotes)."""

OTHER = "other"
"""The API's code of a reason of no known code (and of records set aside before codes)."""

FIELDS: dict[str, tuple[str, str]] = {
    "counterparty": ("Контрагент", "counterparty"),
    "contract": ("Договор", "contract"),
    "order": ("Заявка", "order"),
    "inn": ("ИНН", "ИНН"),
    "kpp": ("КПП", "КПП"),
    "name": ("Наименование", "name"),
    "external_id": ("Идентификатор", "id"),
}
"""Names of the fields a reason may name when the mapping names no 1C attribute for them."""

TYPES: dict[str, tuple[str, str]] = {
    "int": ("целое число", "`int`"),
    "float": ("число", "`float`"),
    "decimal": ("число", "`decimal`"),
    "str": ("строка", "`str`"),
    "bool": ("да или нет", "`bool`"),
    "array": ("список", "`array`"),
    "object": ("объект", "`object`"),
    "null": ("пустое значение", "`null`"),
    "datetime": ("дата и время", "`datetime`"),
    "date": ("дата", "`date`"),
}

_REFERENCE = {
    "unknown_counterparty": "counterparty",
    "unknown_contract": "contract",
    "unknown_order": "order",
}
"""A sink's code of an unknown reference -> the field holding it."""


def _where(p: Plan | None, path: str) -> dict[str, Any]:
    """``field`` (the portal's path) and ``at`` (its 1C attributes, when mapped)."""
    found: dict[str, Any] = {"field": path.lstrip(".")}
    parts = _parts(p, path) if p is not None and path else None
    if parts:
        found["at"] = parts
    return found


def structured(p: Plan | None, reason: str) -> tuple[str | None, dict[str, Any]]:
    """``reason`` as a code of :data:`CODES` with its parameters, 1C's attributes named
    through ``p`` (``None`` and no parameters: a reason of no known code)."""
    if isinstance(reason, Rejection):
        params: dict[str, Any] = dict(reason.params)
        field = params.get("field") or _REFERENCE.get(reason.code)
        if field:
            params.update(_where(p, f".{field}"))
        return reason.code[:64], params
    at = _AT.search(reason)
    base, path = (reason[: at.start()], at.group("path")) if at else (reason, "")
    missing = _MISSING.match(base)
    if missing is not None:
        return "missing_field", _where(p, f"{path}.{missing.group('field')}")
    expected = _EXPECTED.match(base)
    if at is not None and expected is not None:
        return "wrong_type", {**_where(p, path), **expected.groupdict()}
    if at is not None:
        return "invalid_data", {**_where(p, path), "detail": base}
    if expected is not None:
        return "unreadable", {"detail": base}
    return None, {}


def text(code: str | None, params: Mapping[str, Any] | None, lang: str, stored: str) -> str:
    """The reason in ``lang`` (Russian, else English); ``stored`` (the English message kept
    with it) for a code this catalog does not know or parameters it cannot fill."""
    pair = CODES.get(code or "")
    if pair is None:
        return stored
    ru = lang == "ru"
    try:
        return pair[0 if ru else 1].format_map(_filled(params or {}, lang, ru))
    except (KeyError, IndexError, ValueError, TypeError):
        return stored


def _filled(params: Mapping[str, Any], lang: str, ru: bool) -> dict[str, str]:
    i = 0 if ru else 1
    field = str(params.get("field") or "")
    parts = params.get("at")
    named = _said(list(parts), "строка" if ru else "line") if isinstance(parts, list) else None
    label = FIELDS.get(field, (f"`{field}`", f"`{field}`"))[i]
    if named is None:
        at = label
    elif ru or not field:
        at = named
    else:
        at = f"{named} ({field})"

    def quoted(key: str) -> str:
        value = str(params[key])
        return f"«{value}»" if ru else repr(value)

    filled = {k: str(v) for k, v in params.items() if k != "at"}
    filled["at"] = at
    for key in ("value", "owner", "holder", "external_id", "portal_id", "linked"):
        if key in params:
            filled[key] = quoted(key)
    for key in ("expected", "got"):
        if key in params:
            name = str(params[key])
            filled[key] = TYPES.get(name, (f"`{name}`", f"`{name}`"))[i]
    if "kind" in params:
        filled["kind"] = FIELDS.get(str(params["kind"]), (str(params["kind"]),) * 2)[i]
    if "message" in params:
        filled["message"] = i18n.gettext_(lang, str(params["message"]))
    if "sink" in params:  # a sink that failed: its title, else (kept before) its name
        title = params.get("title_ru" if ru else "title_en") or params["sink"]
        filled["title"] = f"«{title}»" if ru else str(title)
        kind = params.get("error_type") or str(params.get("error", "")).partition(":")[0]
        filled["error_type"] = f"`{kind or '?'}`"
    return filled


def shown(row: Any, lang: str) -> str:
    """A quarantined record's reason as the page shows it to a reader of ``lang``."""
    return text(row.reason_code, row.reason_params, lang, row.reason)
