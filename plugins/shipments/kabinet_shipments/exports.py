"""Exports of the order registry's current view to CSV and XLSX.

A view of up to ``export_limit`` orders (``[shipments]`` settings) is written at once and
sent back as the answer. A larger one is a background job (``shipments.export``, run by
``host.jobs``: in the web process in the embedded default, by ``kabinet worker`` with
Redis): a row in ``shipments_export`` records who asked, the view's URL parameters and the
progress; the job reads the view in keyset pages of :data:`CHUNK` orders with the asker's
own scope (as it is when the job runs), writes the file in a worker thread (the event loop
stays free for requests), stores it in the host's file storage under
``shipments/exports/<id>.<format>`` and marks the row done. The page polls the row's
status and then links the file. Only the person who asked may see the export or download
its file (anyone else: 404); after ``export_keep_hours`` the hourly job
``shipments.exports_cleanup`` deletes the file and the row.

A file is written for a person: the headers and the statuses in their language (the page's,
or for a background job the language it was asked in), the order's day and the times of
day in their time zone (UTC instants shown as the local day and time), amounts as numbers
(XLSX: number cells with two decimals; CSV: the language's decimal mark, no grouping, so
that a spreadsheet reads them as numbers).
"""

from __future__ import annotations

import asyncio
import csv
import dataclasses
import datetime as dt
import logging
import tempfile
import uuid
from collections.abc import AsyncIterator, Mapping, Sequence
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

import msgspec
from sqlalchemy import delete, insert, select, update

from kabinet.access import Principal
from kabinet.escape import sheet_row
from kabinet.forms import FieldError
from kabinet.i18n import zone as time_zone
from kabinet.identity.services import identity_service
from kabinet.services import ServiceKey
from kabinet_shipments import labels
from kabinet_shipments import models as m
from kabinet_shipments.registry import OrderQuery, bounded_count, order_filters, order_page
from kabinet_shipments.services import VIEW, NotFound, ShipmentsService

if TYPE_CHECKING:
    from kabinet.host import Host

log = logging.getLogger(__name__)

ACTOR = "shipments.export"
CLEANUP_ACTOR = "shipments.exports_cleanup"
FORMATS = ("csv", "xlsx")
CHUNK = 1000
"""Orders read per keyset page (and progress written after each)."""
COLUMNS = (
    "number",
    "date",
    "status",
    "origin",
    "destination",
    "cargo_name",
    "loading_date",
    "delivery_planned",
    "location",
    "cost",
    "currency",
)
HEADERS = {
    "ru": {
        "number": "Номер",
        "date": "Дата",
        "status": "Статус",
        "origin": "Откуда",
        "destination": "Куда",
        "cargo_name": "Груз",
        "loading_date": "Погрузка",
        "delivery_planned": "Доставка (план)",
        "location": "Дислокация",
        "cost": "Стоимость",
        "currency": "Валюта",
    },
    "en": {
        "number": "Number",
        "date": "Date",
        "status": "Status",
        "origin": "From",
        "destination": "To",
        "cargo_name": "Cargo",
        "loading_date": "Loading",
        "delivery_planned": "Delivery (planned)",
        "location": "Location",
        "cost": "Cost",
        "currency": "Currency",
    },
}
"""The columns' headers in each language (:data:`COLUMNS` order)."""
SHEET = {"ru": "Заявки", "en": "Orders"}
DATE_FORMAT = {"ru": "DD.MM.YYYY", "en": "YYYY-MM-DD"}
"""How a date cell shows in XLSX (the CSV writes the same text)."""
TIME_FORMAT = {"ru": "DD.MM.YYYY HH:MM", "en": "YYYY-MM-DD HH:MM"}
MONEY_FORMAT = "#,##0.00"
"""An amount cell's number format in XLSX (the spreadsheet's own separators)."""
TIMED = {"loading_date": "loading_at", "delivery_planned": "delivery_planned_at"}
"""Date columns written as the time of day in the reader's time zone where the production
system gave one (the instant's column), as the day alone otherwise."""
QUERY_FIELDS = frozenset(f.name for f in msgspec.structs.fields(OrderQuery)) - {"after", "before"}
"""The registry's URL parameters an export keeps (not the page it was asked from)."""
LANG = "lang"
"""The key of the language a background export is written in, beside its view's parameters."""
MEDIA = {
    "csv": "text/csv; charset=utf-8",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
}


class ExportError(FieldError):
    """The export cannot be made as asked; ``field`` names the input (a 400 naming it)."""

    def __init__(self, message: str, field: str) -> None:
        super().__init__(message, field)
        self.field: str = field


@dataclasses.dataclass(frozen=True)
class Started:
    """What asking for an export gave: the file at once, or the background job's id."""

    content: bytes | None = None
    file_name: str = ""
    export_id: str | None = None


def file_name(fmt: str, today: dt.date) -> str:
    return f"orders-{today.isoformat()}.{fmt}"


def language(lang: str) -> str:
    """A language the export is written in (Russian unless English is asked for)."""
    return lang if lang in HEADERS else "ru"


def headers(lang: str) -> list[str]:
    names = HEADERS[language(lang)]
    return [names[c] for c in COLUMNS]


def _aware(value: dt.datetime | None) -> dt.datetime | None:
    if value is None or value.tzinfo is not None:
        return value
    return value.replace(tzinfo=dt.UTC)


# -- writers (run in a worker thread) -----------------------------------------------------------


class _Csv:
    """Semicolon-separated UTF-8 with a BOM (what Excel opens in Russian locales); dates,
    times and amounts as text a spreadsheet of the language reads as such."""

    def __init__(self, path: Path, lang: str = "ru") -> None:
        self.lang = language(lang)
        self.file = path.open("w", encoding="utf-8-sig", newline="")
        self.writer = csv.writer(self.file, delimiter=";")
        self.writer.writerow(headers(self.lang))

    def write(self, rows: Sequence[Sequence[Any]]) -> None:
        self.writer.writerows([_text(v, self.lang) for v in sheet_row(row)] for row in rows)

    def close(self) -> None:
        self.file.close()


def _text(value: Any, lang: str) -> Any:
    if isinstance(value, dt.datetime):
        return value.strftime("%d.%m.%Y %H:%M" if lang == "ru" else "%Y-%m-%d %H:%M")
    if isinstance(value, dt.date):
        return value.strftime("%d.%m.%Y") if lang == "ru" else value.isoformat()
    if isinstance(value, Decimal):
        text = f"{value:.2f}"
        return text.replace(".", ",") if lang == "ru" else text
    return value


class _Xlsx:
    def __init__(self, path: Path, lang: str = "ru") -> None:
        from openpyxl import Workbook

        self.lang = language(lang)
        self.path = path
        self.book = Workbook(write_only=True)
        self.sheet = self.book.create_sheet(SHEET[self.lang])
        self.sheet.append(headers(self.lang))

    def write(self, rows: Sequence[Sequence[Any]]) -> None:
        for row in rows:
            self.sheet.append([self._cell(v) for v in sheet_row(row)])

    def _cell(self, value: Any) -> Any:
        from openpyxl.cell import WriteOnlyCell

        if isinstance(value, dt.datetime):
            cell = WriteOnlyCell(self.sheet, value.replace(tzinfo=None))  # already local
            cell.number_format = TIME_FORMAT[self.lang]
        elif isinstance(value, dt.date):
            cell = WriteOnlyCell(self.sheet, dt.datetime.combine(value, dt.time()))
            cell.number_format = DATE_FORMAT[self.lang]
        elif isinstance(value, Decimal):
            cell = WriteOnlyCell(self.sheet, float(value))  # what a spreadsheet holds
            cell.number_format = MONEY_FORMAT
        else:
            return value
        return cell

    def close(self) -> None:
        self.book.save(self.path)


def _writer(fmt: str, path: Path, lang: str = "ru") -> _Csv | _Xlsx:
    return _Csv(path, lang) if fmt == "csv" else _Xlsx(path, lang)


def _values(rows: Sequence[Any], zone: ZoneInfo, lang: str = "ru") -> list[list[Any]]:
    return [[_value(r, c, zone, lang) for c in COLUMNS] for r in rows]


def _value(row: Any, column: str, zone: ZoneInfo, lang: str) -> Any:
    """A cell as the person reads it: a label for the status, the local day of the order's
    time, the local time of day where the production system gave one."""
    if column == "status":
        return labels.label(labels.ORDER_STATUS, row.status, language(lang))
    if column == "date":
        return _aware(row.date).astimezone(zone).date()  # type: ignore[union-attr]
    timed = TIMED.get(column)
    if timed is not None:
        at = _aware(getattr(row, timed))
        if at is not None:
            return at.astimezone(zone).replace(tzinfo=None)  # the local time of day
    value = getattr(row, column)
    if column == "cost" and value is not None:
        return Decimal(value)
    return value


class Exports:
    """The registry's exports (:data:`EXPORTS`)."""

    def __init__(self, shipments: ShipmentsService) -> None:
        self.shipments = shipments

    @property
    def host(self) -> Host:
        return self.shipments.host

    # -- reading the view ---------------------------------------------------------------------

    def parse(self, params: Mapping[str, str], fmt: str) -> OrderQuery:
        """The view to export (QueryError names a bad parameter); cursors are ignored."""
        if fmt not in FORMATS:
            raise ExportError(f"format: one of {', '.join(FORMATS)}", "format")
        return self.shipments.parse_orders(_view(params))

    async def _conds(
        self, principal: Principal, query: OrderQuery, tz: str = ""
    ) -> list[Any] | None:
        """The view's conditions in ``principal``'s scope (as it is now), its days in time
        zone ``tz`` (else the principal's own); None: no orders."""
        scope = await self.shipments.scope(principal, VIEW, query.organization)
        if scope.empty:
            return None
        zone = self.shipments.zone_of(principal, tz)
        conds = order_filters(query, scope.counterparties, self.shipments.today(), zone)
        if query.status:
            conds.append(m.order.c.status == query.status)
        return conds

    async def count(self, principal: Principal, query: OrderQuery, bound: int, tz: str = "") -> int:
        """Orders in the view, exact up to ``bound`` (``bound + 1``: more)."""
        conds = await self._conds(principal, query, tz)
        if conds is None:
            return 0
        async with self.host.db.read_connection() as conn:
            return await bounded_count(conn, select(m.order.c.id).where(*conds), bound)

    async def chunks(
        self, principal: Principal, query: OrderQuery, limit: int, tz: str = "", lang: str = "ru"
    ) -> AsyncIterator[list[list[Any]]]:
        """The view's rows in its own order, :data:`CHUNK` at a time (keyset pages); days
        and times of day in time zone ``tz`` (the portal's by default), statuses in
        language ``lang``."""
        zone = time_zone(tz or self.host.settings.host.timezone)
        conds = await self._conds(principal, query, tz)
        if conds is None:
            return
        cursor = ""
        sent = 0
        while sent < limit:
            size = min(CHUNK, limit - sent)
            page_query = _with(query, size=size, after=cursor, before="")
            async with self.host.db.read_connection() as conn:
                page = await order_page(conn, page_query, conds, with_names=False)
            if not page.rows:
                return
            yield _values(page.rows, zone, lang)
            sent += len(page.rows)
            if not page.next:
                return
            cursor = page.next

    # -- asking for one ---------------------------------------------------------------------------

    async def start(
        self,
        principal: Principal,
        params: Mapping[str, str],
        fmt: str,
        tz: str = "",
        lang: str = "ru",
    ) -> Started:
        """A view up to ``export_limit`` orders as the file itself, a larger one as a job
        (written in language ``lang`` either way)."""
        query = self.parse(params, fmt)
        settings = self.shipments.settings
        if await self.count(principal, query, settings.export_limit, tz) <= settings.export_limit:
            limit = settings.export_limit
            content = await self.write_now(principal, query, fmt, limit, tz, lang)
            return Started(content=content, file_name=file_name(fmt, self.shipments.today()))
        return Started(export_id=await self.create(principal, params, fmt, lang=lang))

    async def write_now(
        self,
        principal: Principal,
        query: OrderQuery,
        fmt: str,
        limit: int,
        tz: str = "",
        lang: str = "ru",
    ) -> bytes:
        """The file of the view now, its times in time zone ``tz`` (the reader's), its
        headers and statuses in language ``lang``."""
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / f"orders.{fmt}"
            writer = _writer(fmt, path, lang)
            try:
                async for chunk in self.chunks(principal, query, limit, tz, lang):
                    writer.write(chunk)
            finally:
                writer.close()
            return path.read_bytes()

    async def create(
        self,
        principal: Principal,
        params: Mapping[str, str],
        fmt: str,
        *,
        send: bool = True,
        lang: str = "",
    ) -> str:
        """Record an export of the view for ``principal`` and send the job that makes it
        (``send=False``: the caller runs it, as the route samples do); the file is written
        in language ``lang`` (empty: the person's own setting)."""
        self.parse(params, fmt)
        if principal.person_id is None:
            raise ExportError("only a signed-in person can ask for an export", "person")
        export_id = uuid.uuid4().hex
        now = self.host.clock.now()
        keep = dt.timedelta(hours=self.shipments.settings.export_keep_hours)
        clean = _view(params)
        chosen = principal.working_in
        # The company chosen in the header narrowed the view to it: the job (run later,
        # without the cookie) keeps that as the view's organization filter.
        if (
            chosen is not None
            and not clean.get("organization")
            and await self.host.access.organizations(principal, VIEW) == frozenset({chosen})
        ):
            clean["organization"] = str(chosen)
        if lang:
            clean[LANG] = language(lang)  # kept beside the view (parse leaves it out)
        async with self.host.db.session() as s:
            await s.execute(
                insert(m.export).values(
                    id=export_id,
                    person_id=principal.person_id,
                    format=fmt,
                    params=clean,
                    status="queued",
                    rows_done=0,
                    capped=False,
                    file_name=file_name(fmt, self.shipments.today()),
                    error="",
                    created_at=now,
                    expires_at=now + keep,
                )
            )
        if send:
            await self.host.jobs.send(ACTOR, export_id=export_id)
        return export_id

    async def get(self, principal: Principal, export_id: str) -> Any:
        """The person's own export (not expired); :class:`NotFound` for anyone else's."""
        if principal.person_id is None or len(export_id) > 32:
            raise NotFound(f"no export {export_id}")
        e = m.export
        async with self.host.db.read_connection() as conn:
            row = (
                await conn.execute(
                    select(e).where(
                        e.c.id == export_id,
                        e.c.person_id == principal.person_id,
                        e.c.expires_at > self.host.clock.now(),
                    )
                )
            ).first()
        if row is None:
            raise NotFound(f"no export {export_id}")
        return row

    # -- the job -----------------------------------------------------------------------------------

    async def run(self, export_id: str) -> None:
        """Make the export's file (the ``shipments.export`` job); a second run does nothing."""
        e = m.export
        async with self.host.db.session() as s:
            claimed = (
                await s.execute(
                    update(e)
                    .where(e.c.id == export_id, e.c.status == "queued")
                    .values(status="running")
                    .returning(e.c.id)
                )
            ).first()
            if claimed is None:
                return
            row = (await s.execute(select(e).where(e.c.id == export_id))).one()
        try:
            await self._make(row)
        except Exception as exc:
            await self._finish(export_id, status="failed", error=str(exc)[:500] or repr(exc))
            raise

    async def _make(self, row: Any) -> None:
        principal = Principal(person_id=row.person_id, kind="person")
        query = self.parse(row.params, row.format)
        tz, own = await self._preferences(row.person_id)
        lang = language(row.params.get(LANG) or own)
        most = self.shipments.settings.export_max_rows
        found = await self.count(principal, query, most, tz)
        total = min(found, most)
        await self.progress(row.id, 0, total, capped=found > most)
        key = f"shipments/exports/{row.id}.{row.format}"
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / row.file_name
            writer = await asyncio.to_thread(_writer, row.format, path, lang)
            done = 0
            try:
                async for chunk in self.chunks(principal, query, total, tz, lang):
                    await asyncio.to_thread(writer.write, chunk)
                    done += len(chunk)
                    await self.progress(row.id, done, total)
            finally:
                await asyncio.to_thread(writer.close)
            with path.open("rb") as source:
                stored = await self.host.files.save(
                    key, source, content_type=MEDIA[row.format], filename=row.file_name
                )
        await self._finish(row.id, status="done", file_key=key, size=stored.size, rows_done=done)

    async def _preferences(self, person_id: int) -> tuple[str, str]:
        """The time zone and language of the person who asked (their own settings), as a
        page has them."""
        own = (await identity_service(self.host).people([person_id])).get(person_id)
        if own is None:
            return "", ""
        return str(own.timezone or ""), str(own.language or "")

    async def progress(self, export_id: str, done: int, total: int, **more: Any) -> None:
        """Write how far the job is (the page polls it)."""
        async with self.host.db.session() as s:
            await s.execute(
                update(m.export)
                .where(m.export.c.id == export_id)
                .values(rows_done=done, rows_total=total, **more)
            )

    async def _finish(self, export_id: str, **values: Any) -> None:
        async with self.host.db.session() as s:
            await s.execute(
                update(m.export)
                .where(m.export.c.id == export_id)
                .values(finished_at=self.host.clock.now(), **values)
            )

    async def cleanup(self) -> int:
        """Delete expired exports and their files (the hourly ``shipments.exports_cleanup``)."""
        e = m.export
        now = self.host.clock.now()
        async with self.host.db.read_connection() as conn:
            rows = (
                await conn.execute(select(e.c.id, e.c.file_key).where(e.c.expires_at <= now))
            ).all()
        for row in rows:
            if row.file_key:
                await self.host.files.delete(row.file_key)
        if rows:
            async with self.host.db.session() as s:
                await s.execute(delete(e).where(e.c.id.in_([r.id for r in rows])))
            log.info("shipments: %d expired exports removed", len(rows))
        return len(rows)


def _view(params: Mapping[str, str]) -> dict[str, str]:
    return {k: v for k, v in params.items() if k in QUERY_FIELDS and v}


def _with(query: OrderQuery, **changes: Any) -> OrderQuery:
    return msgspec.structs.replace(query, **changes)


def expires_at(row: Any) -> dt.datetime | None:
    return _aware(row.expires_at)


EXPORTS: ServiceKey[Exports] = ServiceKey("shipments.exports", Exports)
"""Published by the app's ``startup``; re-exported by :mod:`kabinet_shipments.services`."""
