"""Untrusted text made safe for a spreadsheet cell.

Every app's CSV and XLSX export writes its cells through :func:`sheet_row` (an import
reads them back through :func:`sheet_value`)::

    writer.writerow(sheet_row(values))

(A search by a part of a text, the other place where typed text becomes syntax, goes
through :mod:`kabinet.lists`: ``lists.search``, ``lists.starts_with``.)
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
"""What makes a spreadsheet (Excel, LibreOffice, Google Sheets) read a cell as a formula."""


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
