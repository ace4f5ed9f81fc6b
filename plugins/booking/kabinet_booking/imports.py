"""Many orders at once: a spreadsheet (XLSX or CSV) of one order a row, every row checked
by the same rules as the form and shown with its errors before anything is sent; the valid
rows are then sent as one batch (one transaction: all of them or none).

The file's first row names the columns (:data:`COLUMNS`, as in the downloadable
template); ``contract`` is the contract's number as the person's contracts show it,
``services`` a list separated by ``;``. An uploaded file is kept in the host's file
storage under a token until it is sent, so the rows sent are the rows shown.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import uuid
from collections.abc import Iterator, Mapping, Sequence
from decimal import Decimal, InvalidOperation
from typing import Any

import msgspec
from sqlalchemy.ext.asyncio import AsyncSession

from kabinet.access import Principal
from kabinet.forms import FieldError, FormErrors
from kabinet_booking.forms import Choices, OrderFields, check, shown_only
from kabinet_booking.services import Batch, BookingService, Contract
from kabinet_booking.settings import FIELDS

COLUMNS: tuple[str, ...] = ("contract", *(f for f in FIELDS if f != "contract_id"))
"""The template's columns, in order."""
EXAMPLE: dict[str, str] = {
    "contract": "K-001",
    "origin": "Москва, ул. Складская, 5",
    "destination": "Казань, ул. Портовая, 12",
    "loading_date": "2026-02-01",
    "loading_from": "09:00",
    "loading_to": "12:00",
    "cargo_name": "Оборудование",
    "cargo_weight": "1200",
    "cargo_places": "4",
}
NOT_A_TABLE = "The file is not a spreadsheet (XLSX or CSV)."
TOO_MANY = "At most {n} rows."
NO_COLUMNS = "The first row names no known column."
DECIMALS = frozenset({"cargo_weight", "cargo_volume"})
TIMES = frozenset({"loading_from", "loading_to"})
DATES = frozenset({"loading_date", "delivery_date"})
WHOLE = frozenset({"cargo_places"})


class Row(msgspec.Struct, kw_only=True):
    """One row of the file: its number (as the spreadsheet counts), what it holds, and
    its errors (field, message id) -- none: it may be sent."""

    number: int
    fields: OrderFields
    errors: list[FieldError] = msgspec.field(default_factory=list)

    @property
    def valid(self) -> bool:
        return not self.errors


def template_xlsx() -> bytes:
    from openpyxl import Workbook  # here, not at every start of the portal (~0.1 s)

    book = Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.title = "orders"
    sheet.append(list(COLUMNS))
    sheet.append([EXAMPLE.get(c, "") for c in COLUMNS])
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def template_csv() -> bytes:
    out = io.StringIO()
    writer = csv.writer(out, delimiter=";")
    writer.writerow(COLUMNS)
    writer.writerow([EXAMPLE.get(c, "") for c in COLUMNS])
    return ("\ufeff" + out.getvalue()).encode("utf-8")


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, dt.datetime):
        return value.date().isoformat() if value.time() == dt.time(0) else value.isoformat()
    if isinstance(value, dt.time):
        return value.strftime("%H:%M")
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value).strip()


def table(content: bytes, name: str = "") -> Iterator[list[str]]:
    """The file's rows as texts: an XLSX workbook's first sheet, else CSV (``;`` or ``,``,
    UTF-8 with or without BOM, or Windows-1251)."""
    if content[:2] == b"PK" or name.lower().endswith(".xlsx"):
        from openpyxl import load_workbook  # here, not at every start of the portal

        try:
            book = load_workbook(io.BytesIO(content), read_only=True, data_only=True)
        except Exception as exc:  # any fault of a broken workbook is the person's file
            raise FieldError(NOT_A_TABLE, "file") from exc
        sheet = book.worksheets[0]
        for cells in sheet.iter_rows(values_only=True):
            yield [_cell(v) for v in cells]
        book.close()
        return
    try:
        text = content.decode("utf-8-sig")
    except UnicodeDecodeError:
        text = content.decode("cp1251", errors="replace")
    first = text.split("\n", 1)[0]
    dialect = ";" if first.count(";") >= first.count(",") else ","
    for texts in csv.reader(io.StringIO(text), delimiter=dialect):
        yield [v.strip() for v in texts]


def _convert(name: str, text: str) -> Any:
    """A cell's text as the field's value (a spreadsheet's ways: ``12,5``, ``31.12.2026``)."""
    if name == "services":
        return [s.strip() for s in text.split(";") if s.strip()]
    if name in DECIMALS:
        try:
            return Decimal(text.replace(",", ".").replace(" ", "").replace("\xa0", ""))
        except InvalidOperation as exc:
            raise FieldError("Enter a number.", name) from exc
    if name in TIMES:
        try:
            return dt.time.fromisoformat(text if len(text) > 5 else f"{text}:00").strftime("%H:%M")
        except ValueError as exc:
            raise FieldError("Enter a time as HH:MM.", name) from exc
    if name in DATES:
        try:
            return dt.date.fromisoformat(text[:10])
        except ValueError:
            try:
                return dt.datetime.strptime(text[:10], "%d.%m.%Y").date()
            except ValueError as exc:
                raise FieldError("Enter a date as YYYY-MM-DD.", name) from exc
    if name in WHOLE:
        try:
            return int(text.replace(" ", ""))
        except ValueError as exc:
            raise FieldError("Enter a whole number.", name) from exc
    return text


def read_row(
    number: int, values: Mapping[str, str], contracts: Mapping[str, Contract]
) -> tuple[OrderFields, list[FieldError]]:
    """One row's fields (what could be read) and the errors of reading it."""
    errors: list[FieldError] = []
    found: dict[str, Any] = {}
    wanted = values.get("contract", "")
    if wanted:
        contract = contracts.get(wanted.casefold())
        if contract is None:
            errors.append(FieldError("Choose one of the offered values.", "contract"))
        else:
            found["contract_id"] = contract.id
    elif len(contracts) == 1:  # the person's only contract
        found["contract_id"] = next(iter(contracts.values())).id
    for name in FIELDS:
        text = values.get(name, "")
        if name == "contract_id" or not text:
            continue
        try:
            found[name] = _convert(name, text)
        except FieldError as exc:
            errors.append(exc)
    try:
        fields = msgspec.convert(found, OrderFields)
    except msgspec.ValidationError as exc:
        path = str(exc).rsplit("$.", 1)[-1].split("[")[0].rstrip("`")
        errors.append(FieldError("This value is not valid.", path if path in FIELDS else None))
        for key in list(found):
            try:
                msgspec.convert({key: found[key]}, OrderFields)
            except msgspec.ValidationError:
                found.pop(key)
        fields = msgspec.convert(found, OrderFields)
    return fields, errors


def validate(
    content: bytes,
    name: str,
    *,
    contracts: Sequence[Contract],
    choices: Choices,
    rules: Mapping[str, Any],
    today: dt.date,
    most: int,
) -> list[Row]:
    """Every row of the file read and checked (nothing is stored)."""
    rows = table(content, name)
    header = [h.strip().lower() for h in next(rows, [])]
    if not any(h in COLUMNS for h in header):
        raise FieldError(NO_COLUMNS, "file")
    by_number = {c.number.casefold(): c for c in contracts}
    found: list[Row] = []
    for index, values in enumerate(rows, start=2):
        if not any(values):
            continue
        if len(found) >= most:
            raise FieldError(TOO_MANY, "file", params={"n": most})
        named = dict(zip(header, values, strict=False))
        fields, errors = read_row(index, named, by_number)
        fields = shown_only(fields, rules)
        for error in check(fields, rules, choices, today=today):
            if error.field == "contract_id":
                error.field = "contract"
            if not any(e.field == error.field for e in errors):
                errors.append(error)
        found.append(Row(number=index, fields=fields, errors=errors))
    return found


async def keep(service: BookingService, content: bytes, name: str) -> str:
    """Keep the uploaded file until it is sent; returns its token."""
    token = uuid.uuid4().hex
    await service.host.files.save(f"booking/imports/{token}", content, filename=name)
    return token


async def kept(service: BookingService, token: str) -> bytes:
    if not token.isalnum() or len(token) != 32:
        raise FieldError("Choose a file.", "file")
    try:
        return await service.host.files.read(f"booking/imports/{token}")
    except Exception as exc:  # gone or never there: upload it again
        raise FieldError("Choose a file.", "file") from exc


async def rows_of(
    service: BookingService, principal: Principal, content: bytes, name: str, language: str
) -> list[Row]:
    return validate(
        content,
        name,
        contracts=await service.contracts(principal),
        choices=await service.choices(principal, language, every=True),
        rules=service.rules(),
        today=service.today(),
        most=service.settings.import_max_rows,
    )


async def send_valid(
    service: BookingService, session: AsyncSession, principal: Principal, rows: Sequence[Row]
) -> list[int]:
    """Send the valid rows as one batch, in the caller's transaction; their request ids."""
    choices = await service.choices(principal, every=True)
    batch = Batch()
    made: list[int] = []
    for row in rows:
        if not row.valid:
            continue
        request_id = await service.save(
            session, principal, row.fields, source="import", batch=batch
        )
        try:
            await service.send(session, principal, request_id, choices, batch=batch)
        except FormErrors as exc:  # checked a moment ago: the rules changed meanwhile
            raise FieldError(
                "Row {n}: {message}", "file", params={"n": row.number, "message": exc.message}
            ) from exc
        made.append(request_id)
    return made
