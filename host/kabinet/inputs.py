"""Bounds of what a request may carry, declared once for the host and every app.

The host checks every request before its handler runs (:func:`kabinet.web.input_guard`):
a JSON body nested deeper than :data:`MAX_JSON_DEPTH`, a body larger than
:data:`MAX_BODY`, and a whole number in the path or in a query parameter the handler
declares as ``int`` that no ``integer`` column holds are refused with a 400 naming the
field, before anything decodes them. What a handler reads by hand goes through
:func:`whole_number`; request bodies are msgspec structs whose fields use :data:`Id`,
:data:`Int` and :func:`fits` (a text's bound is its column's length, declared once, in the
table).

Every refusal is a :class:`litestar.exceptions.ValidationException` naming the field, which
:mod:`kabinet.problems` turns into problem details (``errors: [{field, message}]``) on the
API and a 400 page for people.
"""

from __future__ import annotations

import re
from typing import Annotated, Any

import msgspec
from litestar.exceptions import ValidationException

INT_MAX = 2**31 - 1
"""The largest ``integer`` (PostgreSQL's, and most ids' column type)."""
INT_MIN = -(2**31)
MAX_JSON_DEPTH = 32
"""How deep a JSON body may nest (the deepest the portal reads is well under 10)."""
MAX_BODY = 10_000_000
"""The largest request body, in bytes (uploads included); larger ones are a 413."""
TEXT_MAX = 20_000
"""The bound of a text without a column length (a comment, a template's body)."""

Id = Annotated[int, msgspec.Meta(ge=1, le=INT_MAX)]
"""A row's id: what a path, a query or a body names a row by."""
Int = Annotated[int, msgspec.Meta(ge=INT_MIN, le=INT_MAX)]
"""Any whole number stored in an ``integer`` column."""
Text = Annotated[str, msgspec.Meta(max_length=TEXT_MAX)]
"""A text stored without a length of its own."""

_STRINGS = re.compile(rb'"(?:[^"\\]|\\.)*"', re.DOTALL)
_NOT_BRACKETS = bytes(b for b in range(256) if b not in b"[]{}")


def fits(column: Any) -> msgspec.Meta:
    """The msgspec bound of a text stored in ``column`` (a SQLAlchemy ``String(n)``)::

    Name = Annotated[str, fits(m.organization.c.name)]
    """
    length = getattr(column.type, "length", None)
    return msgspec.Meta(max_length=int(length) if length else TEXT_MAX)


def bad(field: str, message: str) -> ValidationException:
    """The refusal naming ``field`` (400 problem details on the API, a 400 page for people)."""
    return ValidationException(
        detail=f"{field}: {message}", extra=[{"key": field, "message": message}]
    )


def in_range(value: int) -> bool:
    return INT_MIN <= value <= INT_MAX


def whole_number(value: str | None, field: str, *, minimum: int = 0) -> int | None:
    """A whole number a handler reads by hand (query or form); ``None`` when empty.

    Raises :func:`bad` for anything else, a number beyond an ``integer`` column included.
    """
    text = (value or "").strip()
    if not text:
        return None
    if not re.fullmatch(r"[+-]?\d{1,12}", text) or not minimum <= int(text) <= INT_MAX:
        raise bad(field, f"a whole number from {minimum} to {INT_MAX} is expected")
    return int(text)


def json_depth(body: bytes) -> int:
    """How deep ``body`` nests arrays and objects (brackets inside strings do not count)."""
    brackets = _STRINGS.sub(b"", body).translate(None, _NOT_BRACKETS)
    depth = deepest = 0
    for byte in brackets:
        if byte in (0x5B, 0x7B):  # [ {
            depth += 1
            if depth > deepest:
                deepest = depth
        else:
            depth -= 1
    return deepest
