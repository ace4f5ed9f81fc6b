"""Import from and export to CSV and XLSX.

An import goes row by row, each in a savepoint: good rows go in, a bad row is reported
with its number and each field's reason, and leaves nothing behind. The first row holds
the headers: field codes or names (Russian or English), and optionally ``id`` to update
existing entries. Export writes the same headers, so an exported table imports back.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import zoneinfo
from collections.abc import Iterator, Sequence
from decimal import Decimal
from typing import Any, Literal

import msgspec
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from kabinet.db import savepoint
from kabinet.escape import sheet_row, sheet_value
from kabinet_dictionaries import entries, kinds
from kabinet_dictionaries.errors import DictionaryError, Invalid
from kabinet_dictionaries.kinds import FieldDef
from kabinet_dictionaries.models import entry
from kabinet_dictionaries.structure import Actor, TypeInfo

Format = Literal["csv", "xlsx"]
ID_HEADERS = {"id", "№", "#", "номер записи"}
MAX_ROWS = 100_000


class RowFailure(msgspec.Struct, kw_only=True):
    row: int
    """The row's number in the table (the header is row 1)."""
    errors: dict[str, str]


class ImportReport(msgspec.Struct, kw_only=True):
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    failed: list[RowFailure] = msgspec.field(default_factory=list)
    ignored_columns: list[str] = msgspec.field(default_factory=list)


def _rows(data: bytes) -> Iterator[list[Any]]:
    """The table's rows as lists of cells, from XLSX (a zip) or CSV (UTF-8 or Windows-1251)."""
    if data[:4] == b"PK\x03\x04":
        try:
            from openpyxl import load_workbook  # only when a workbook is imported

            book = load_workbook(io.BytesIO(data), read_only=True, data_only=True)
        except Exception as exc:  # openpyxl raises many kinds for a broken file
            raise DictionaryError("import_format", "file") from exc
        sheet = book.worksheets[0]
        for cells in sheet.iter_rows(values_only=True):
            yield [sheet_value(c) for c in cells]
        book.close()
        return
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        text = data.decode("cp1251", errors="replace")
    first = text.split("\n", 1)[0]
    delimiter = ";" if first.count(";") > first.count(",") else ","
    try:
        for row in csv.reader(io.StringIO(text), delimiter=delimiter):
            yield [sheet_value(c) for c in row]
    except csv.Error as exc:  # a cell beyond the reader's limit, a stray NUL, …
        raise DictionaryError("import_format", "file") from exc


def _match(found: TypeInfo, header: str) -> FieldDef | None:
    wanted = header.strip().lower()
    for f in found.fields:
        if wanted in (f.code.lower(), f.name_ru.strip().lower(), f.name_en.strip().lower()):
            return f
    return None


async def import_table(
    session: AsyncSession,
    found: TypeInfo,
    data: bytes,
    *,
    actor: Actor,
    now: dt.datetime,
    language: str = "en",
    timezone: str = "UTC",
) -> ImportReport:
    rows = _rows(data)
    header = next(rows, None)
    if not header or not any(h is not None and str(h).strip() for h in header):
        raise DictionaryError("import_format", "file")
    columns: list[FieldDef | Literal["id"] | None] = []
    report = ImportReport()
    for cell in header:
        name = "" if cell is None else str(cell).strip()
        field = _match(found, name) if name else None
        if name.lower() in ID_HEADERS:
            columns.append("id")
        elif field is None or field.kind == "file":
            columns.append(None)
            if name:
                report.ignored_columns.append(name)
        else:
            columns.append(field)
    if not any(isinstance(c, FieldDef) for c in columns):
        raise DictionaryError("import_header", "file", header=str(header[0] or ""))
    for number, cells in enumerate(rows, start=2):
        if number > MAX_ROWS + 1:
            break
        if all(kinds.blank(c) for c in cells):
            continue
        raw: dict[str, Any] = {}
        entry_id: int | None = None
        for column, cell in zip(columns, cells, strict=False):
            if column == "id":
                text = "" if cell is None else str(cell).strip().lstrip("#")
                if text:
                    entry_id = int(float(text)) if text.replace(".", "", 1).isdigit() else -1
            elif column is not None:
                raw[column.code] = cell
        try:
            async with savepoint(session):
                current = None
                if entry_id is not None:
                    if not await _exists(session, found, entry_id):
                        raise DictionaryError("not_found", "id")
                    current = (await entries.read_values(session, found, [entry_id]))[entry_id]
                values = await entries.validate(
                    session,
                    found,
                    raw,
                    entry_id=entry_id,
                    current=current,
                    timezone=timezone,
                )
                if current is not None and values == current:
                    report.unchanged += 1
                    continue
                await entries.write(
                    session,
                    found,
                    values,
                    actor=actor,
                    now=now,
                    entry_id=entry_id,
                    action="imported",
                )
        except Invalid as exc:
            report.failed.append(RowFailure(row=number, errors=exc.by_field(language)))
            continue
        except DictionaryError as exc:
            report.failed.append(
                RowFailure(row=number, errors={exc.field or "row": exc.text(language)})
            )
            continue
        if entry_id is None:
            report.created += 1
        else:
            report.updated += 1
    return report


async def _exists(session: AsyncSession, found: TypeInfo, entry_id: int) -> bool:
    return (
        await session.scalar(
            select(entry.c.id).where(entry.c.id == entry_id, entry.c.type_id == found.id)
        )
        is not None
    )


def _cell(
    field: FieldDef, value: Any, renderer: entries.Renderer, fmt: Format, readable: bool
) -> Any:
    """A stored value as a table cell: for a machine (codes, ISO, UTC) or, ``readable``, for
    the person who asked (choice labels, dates and times in their language and zone), both
    of which the import reads back."""
    if value is None:
        return None
    lang = renderer.language
    if field.kind == "datetime":
        moment: dt.datetime = value
        if readable:
            moment = moment.astimezone(zoneinfo.ZoneInfo(renderer.timezone))
        if fmt == "xlsx":
            return moment.replace(tzinfo=None)  # the reader's time, or UTC for a machine
        if readable:
            return moment.strftime("%d.%m.%Y %H:%M" if lang == "ru" else "%Y-%m-%d %H:%M")
        return value.isoformat()
    if fmt == "xlsx":
        if field.kind in ("number", "money") and isinstance(value, Decimal):
            return float(value) if field.scale else int(value)
        if field.kind == "date":
            return value
        if field.kind == "bool":
            return bool(value)
    if field.kind in ("number", "money"):
        text = str(value)
        return text.replace(".", ",") if readable and lang == "ru" else text
    if field.kind == "date":
        day: dt.date = value
        return day.strftime("%d.%m.%Y") if readable and lang == "ru" else day.isoformat()
    if field.kind == "choice":
        return renderer.show(field, value) if readable else value
    return renderer.show(field, value)


def _headers(found: TypeInfo, language: str, readable: bool) -> list[str]:
    """``id`` and the field codes, or (``readable``) "№" and the fields' names in the
    language; a name two fields share (or another field's code) stays its code, so that
    the import still tells the columns apart."""
    if not readable:
        return ["id", *(f.code for f in found.fields)]
    names = [(f.name_ru if language == "ru" else f.name_en).strip() or f.code for f in found.fields]
    heads = []
    for i, (name, field) in enumerate(zip(names, found.fields, strict=True)):
        others = [n.lower() for j, n in enumerate(names) if j != i]
        others += [f.code.lower() for j, f in enumerate(found.fields) if j != i]
        clear = name.lower() not in others and name.lower() not in ID_HEADERS
        heads.append(name if clear else field.code)
    return ["№" if language == "ru" else "ID", *heads]


def export_table(
    found: TypeInfo,
    items: Sequence[tuple[int, dict[str, Any]]],
    renderer: entries.Renderer,
    fmt: Format,
    *,
    readable: bool = False,
) -> bytes:
    """The entries as a table: headers the field codes (``id`` first), values as stored
    (UTC times); ``readable``: for the person who asked, in the renderer's language and
    time zone (headers the fields' names, choice labels, local dates and times). Either
    imports back."""
    header = _headers(found, renderer.language, readable)
    rows = [
        [entry_id, *(_cell(f, values.get(f.code), renderer, fmt, readable) for f in found.fields)]
        for entry_id, values in items
    ]
    if fmt == "csv":
        out = io.StringIO()
        writer = csv.writer(out, delimiter=";")
        writer.writerow(header)
        writer.writerows(sheet_row("" if c is None else c for c in row) for row in rows)
        return out.getvalue().encode("utf-8-sig")
    from openpyxl import Workbook  # only when a workbook is exported

    book = Workbook(write_only=True)
    sheet = book.create_sheet(found.code[:31])
    sheet.append(header)
    for row in rows:
        sheet.append(sheet_row(row))
    buffer = io.BytesIO()
    book.save(buffer)
    return buffer.getvalue()
