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
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from kabinet_integration.mapping import Plan

_MISSING = re.compile(r"^(?:Object )?missing required field `(?P<field>[^`]+)`$")
_AT = re.compile(r" - at `\$(?P<path>[^`]*)`$")
_PART = re.compile(r"\.(?P<name>\w+)|\[(?P<index>\d+)\]")
_LEAD = re.compile(r"^(?P<unknown>unknown )?(?P<field>[a-z_]+)(?P<rest>[: ].*)$", re.S)
_VALUE_OF = re.compile(r"^(?P<head>: unknown value .*) of \S+$", re.S)


def attribute(published: str) -> str:
    """The 1C attribute behind a published field: a reference ``Контрагент_Key`` is the
    attribute ``Контрагент``; ``Ref_Key`` and other fields are themselves."""
    if published.endswith("_Key") and published != "Ref_Key":
        return published[: -len("_Key")]
    return published


def _sources(p: Plan) -> dict[str, str]:
    return {field: source for field, source, _convert, _values in p.steps}


def _named(p: Plan, path: str) -> str | None:
    """``.services[0].amount`` as `` `Услуги`, line 1, `Сумма` `` (None: not mapped)."""
    parts: list[str] = []
    plan: Plan | None = p
    for found in _PART.finditer(path):
        name, index = found.group("name"), found.group("index")
        if index is not None:
            parts.append(f"line {int(index) + 1}")
            continue
        if plan is None:
            return None
        source = _sources(plan).get(name)
        if source is None:
            return None
        parts.append(f"`{attribute(source)}`")
        section = plan.sections.get(name)
        plan = section[1] if section is not None else None
    return ", ".join(parts) or None


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
