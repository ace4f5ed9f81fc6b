"""The OData side of the local 1C: the names of the reference configuration's sets,
``odata.error`` answers, and the ``$filter`` parser (``eq ne gt ge lt le and or not``,
``guid'…'``/``datetime'…'`` literals) with ``$select`` and the strict query decoding of a
real publication (``reference/wire-formats.md`` §1)."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import unquote

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


def odata_error(code: str, message: str) -> dict[str, Any]:
    return {"odata.error": {"code": code, "message": {"lang": "ru", "value": message}}}


def parse_query(raw: str) -> dict[str, str]:
    """Query options, decoded strictly: ``+`` is a plus, as on a real publication."""
    out = {}
    for part in raw.split("&"):
        if part:
            key, _, value = part.partition("=")
            out[unquote(key)] = unquote(value)
    return out


def select_fields(
    row: Mapping[str, Any], select: str | None, keep_storage: bool = False
) -> dict[str, Any]:
    if select:
        names = [s.strip() for s in select.split(",")]
        return {k: row[k] for k in names if k in row}
    return {k: v for k, v in row.items() if keep_storage or not k.endswith("_Base64Data")}
