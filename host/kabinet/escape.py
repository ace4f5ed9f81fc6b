"""Untrusted text made safe for where it goes: spreadsheet cells and ``LIKE`` patterns.

Every app's CSV and XLSX export writes its cells through :func:`sheet_row` (an import
reads them back through :func:`sheet_value`), and every
search by a part of a text goes through :func:`contains` or :func:`starts_with` (or
:func:`like_escape` with ``escape=LIKE_ESCAPE``)::

    writer.writerow(sheet_row(values))
    query.where(contains(func.lower(table.c.name), q.lower()))
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlalchemy import ColumnElement

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
"""What makes a spreadsheet (Excel, LibreOffice, Google Sheets) read a cell as a formula."""

LIKE_ESCAPE = "\\"


def sheet_cell(value: Any) -> Any:
    """A text cell a spreadsheet would run as a formula (``=HYPERLINK(…)``, ``+cmd|…``,
    ``@SUM(…)``) gets a leading apostrophe, so it shows as the text it is; numbers, dates
    and other text stay as they are (OWASP "CSV injection")."""
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value


def sheet_row(values: Iterable[Any]) -> list[Any]:
    """:func:`sheet_cell` of each value of a row."""
    return [sheet_cell(v) for v in values]


def sheet_value(value: Any) -> Any:
    """The inverse of :func:`sheet_cell`, for a table read back (an export re-imported)."""
    if isinstance(value, str) and value.startswith("'") and value[1:].startswith(FORMULA_STARTS):
        return value[1:]
    return value


def like_escape(text: str) -> str:
    """``text`` for a ``LIKE`` pattern with ``escape=LIKE_ESCAPE``: ``%`` and ``_`` (and
    the escape character itself) stand for themselves, not for any characters."""
    return (
        text.replace(LIKE_ESCAPE, LIKE_ESCAPE * 2)
        .replace("%", LIKE_ESCAPE + "%")
        .replace("_", LIKE_ESCAPE + "_")
    )


def contains(column: Any, text: str) -> ColumnElement[bool]:
    """``column`` contains ``text`` literally."""
    return column.like(f"%{like_escape(text)}%", escape=LIKE_ESCAPE)  # type: ignore[no-any-return]


def starts_with(column: Any, text: str) -> ColumnElement[bool]:
    """``column`` starts with ``text`` literally (a prefix search: an ИНН, an action)."""
    return column.like(f"{like_escape(text)}%", escape=LIKE_ESCAPE)  # type: ignore[no-any-return]
