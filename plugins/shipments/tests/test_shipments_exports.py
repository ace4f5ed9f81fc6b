"""Exports of the registry's view: a small one at once, a large one as a background job
whose progress the page shows, then a link only its person can follow (PostgreSQL and
SQLite; the threshold is lowered in the test settings)."""

from __future__ import annotations

import csv
import datetime as dt
import io
import itertools
import re
from collections.abc import AsyncIterator
from decimal import Decimal
from pathlib import Path
from typing import Any, cast

import pytest
from shipments_support import Site
from shipments_support import site as app_site
from sqlalchemy import Table, select, update

from kabinet.clock import FrozenClock
from kabinet.host import Host
from kabinet.identity.models import Account
from kabinet_shipments import exports as exports_module
from kabinet_shipments import models as m
from kabinet_shipments.demo import generate
from kabinet_shipments.exports import EXPORTS
from kabinet_shipments.labels import ORDER_STATUS, label
from kabinet_shipments.samples import ensure_counterparty
from kabinet_shipments.sinks import apply_contracts, apply_orders

pytestmark = pytest.mark.smoke
_orgs = itertools.count(930_101)
LIMIT = 10
ORDERS = 30


@pytest.fixture
async def site(shipments_url: str, tmp_path: Path, clock: FrozenClock) -> AsyncIterator[Site]:
    settings = f"[shipments]\nexport_limit = {LIMIT}\n"
    # Jobs run when the test says (host.jobs.drain), not in the background runner.
    async with app_site(shipments_url, tmp_path, clock, settings, jobs=False) as found:
        yield found


async def _load(host: Host, org: int) -> list[Any]:
    cp = await ensure_counterparty(host, org)
    batch = generate([cp], ORDERS, host.clock.now().date(), seed=org, prefix=f"X{org}")
    async with host.db.session() as s:
        await apply_contracts(host, s, batch.contracts)
        await apply_orders(host, s, batch.orders)
        rows = (
            await s.execute(
                select(m.order.c.number, m.order.c.cost, m.order.c.status).where(
                    m.order.c.number.like(f"X{org}%")
                )
            )
        ).all()
    assert len(rows) == ORDERS
    return list(rows)


def _csv(content: bytes) -> list[list[str]]:
    text = content.decode("utf-8-sig")
    return list(csv.reader(io.StringIO(text), delimiter=";"))


async def test_a_small_view_is_exported_at_once(site: Site) -> None:
    org = next(_orgs)
    orders = await _load(site.host, org)
    session = await site.client_of(org)
    one = orders[0].number
    answer = await site.post("/shipments/exports", session, {"format": "csv", "q": one})
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("text/csv")
    assert "attachment" in answer.headers["content-disposition"]
    rows = _csv(answer.content)
    assert rows[0][0] == "Номер"
    assert [r[0] for r in rows[1:]] == [one]

    link = await site.get(f"/shipments/orders.xlsx?q={one}", session)
    assert link.status_code == 200
    assert link.content[:2] == b"PK"

    for form in ({"format": "pdf"}, {"format": "csv", "sort": "driver"}):
        assert (await site.post("/shipments/exports", session, form)).status_code == 400


async def test_a_large_view_is_a_job_with_progress_then_a_link(
    site: Site, monkeypatch: pytest.MonkeyPatch, clock: FrozenClock
) -> None:
    org = next(_orgs)
    orders = await _load(site.host, org)
    session = await site.client_of(org)
    exports = site.host.services.of(EXPORTS)

    # The registry offers the export of its view as a form (sort, filters, no cursor).
    registry = await site.get("/shipments/?sort=cost&size=25", session)
    assert 'action="/shipments/exports"' in registry.text
    assert 'name="sort" value="cost"' in registry.text

    # A link to a view larger than the limit starts nothing: it offers the job.
    offer = await site.get("/shipments/orders.csv?sort=cost", session)
    assert offer.status_code == 200
    assert 'id="export-start"' in offer.text
    assert f"Заявок в выгрузке больше {LIMIT}" in offer.text  # no plural to get wrong
    assert site.host.jobs.pending == 0  # type: ignore[attr-defined]

    started = await site.post("/shipments/exports", session, {"format": "csv", "sort": "cost"})
    assert started.status_code == 303
    page_url = started.headers["location"]
    export_id = page_url.rsplit("/", 1)[-1]
    page = await site.get(page_url, session)
    assert page.status_code == 200
    assert 'data-status="queued"' in page.text
    assert f'hx-get="/shipments/exports/{export_id}/status"' in page.text  # it polls

    # While the job runs, each poll shows how far it is.
    seen: list[str] = []
    progress = exports.progress

    async def watched(*args: Any, **kwargs: Any) -> None:
        await progress(*args, **kwargs)
        status = await site.get(f"/shipments/exports/{export_id}/status", session)
        seen.append(" ".join(re.sub(r"<[^>]+>", " ", status.text).split()))

    monkeypatch.setattr(exports_module, "CHUNK", 10)
    monkeypatch.setattr(exports, "progress", watched)
    assert await site.host.jobs.drain() == 1  # type: ignore[attr-defined]
    assert seen == [
        "Готовим файл: 0 из 30",
        "Готовим файл: 10 из 30",
        "Готовим файл: 20 из 30",
        "Готовим файл: 30 из 30",
    ]

    done = await site.get(f"/shipments/exports/{export_id}/status", session)
    assert 'data-status="done"' in done.text
    assert "hx-get" not in done.text  # polling stops
    assert "Файл готов, заявок: 30" in done.text
    assert f'href="/shipments/exports/{export_id}/file"' in done.text
    file = await site.get(f"/shipments/exports/{export_id}/file", session)
    assert file.status_code == 200
    assert "attachment" in file.headers["content-disposition"]
    rows = _csv(file.content)
    assert rows[0][:3] == ["Номер", "Дата", "Статус"]
    body = rows[1:]
    assert sorted(r[0] for r in body) == sorted(o.number for o in orders)
    costs = [Decimal(r[9].replace(",", ".")) for r in body]  # the Russian decimal comma
    assert costs == sorted(costs)  # the view's sort
    by_number = {o.number: o for o in orders}
    assert all(label(ORDER_STATUS, by_number[r[0]].status, "ru") == r[2] for r in body)

    # Nobody else sees it: a colleague of the same organization, another organization.
    colleague = await site.client_of(org)
    other = next(_orgs)
    await ensure_counterparty(site.host, other)
    stranger = await site.client_of(other)
    for who in (colleague, stranger):
        for path in ("", "/status", "/file"):
            assert (await site.get(page_url + path, who)).status_code == 404, path

    # XLSX the same way.
    started = await site.post("/shipments/exports", session, {"format": "xlsx", "sort": "-cost"})
    xlsx_id = started.headers["location"].rsplit("/", 1)[-1]
    assert await site.host.jobs.drain() == 1  # type: ignore[attr-defined]
    xlsx = await site.get(f"/shipments/exports/{xlsx_id}/file", session)
    assert xlsx.status_code == 200
    from openpyxl import load_workbook

    sheet = load_workbook(io.BytesIO(xlsx.content), read_only=True).active
    assert sheet is not None
    values = list(sheet.iter_rows(values_only=True))
    assert values[0][0] == "Номер"
    assert len(values) == ORDERS + 1
    assert [Decimal(str(v[9])) for v in values[1:]] == sorted(costs, reverse=True)

    # Kept a day, then removed with their files by the hourly cleanup.
    key = f"shipments/exports/{export_id}.csv"
    assert await site.host.files.exists(key)
    clock.advance(hours=25)
    assert await exports.cleanup() >= 2
    assert not await site.host.files.exists(key)
    again = await site.matrix.session(site.people[session])  # the old one has expired too
    assert (await site.get(page_url, again)).status_code == 404


async def test_an_export_that_fails_says_so(site: Site, monkeypatch: pytest.MonkeyPatch) -> None:
    org = next(_orgs)
    await _load(site.host, org)
    session = await site.client_of(org)
    started = await site.post("/shipments/exports", session, {"format": "csv"})
    status_url = started.headers["location"] + "/status"

    async def broken(*args: Any, **kwargs: Any) -> Any:
        raise OSError("disk full")

    monkeypatch.setattr(site.host.files, "save", broken)
    await site.host.jobs.drain()  # type: ignore[attr-defined]
    status = await site.get(status_url, session)
    assert 'data-status="failed"' in status.text
    assert "Не удалось подготовить файл" in status.text
    assert "hx-get" not in status.text
    failed = await site.host.jobs.failed()
    assert any(f.actor == "shipments.export" and "disk full" in f.error for f in failed)


async def _one_order_at(host: Host, org: int, at: dt.datetime) -> str:
    """An order made and loaded at ``at`` (UTC), in progress, costing 1 234 567.50."""
    from kabinet_shipments.samples import make_order

    ids = await make_order(host, org, status="in_progress")
    o = m.order
    async with host.db.session() as s:
        await s.execute(
            update(o)
            .where(o.c.id == ids["order_id"])
            .values(date=at, loading_date=at.date(), loading_at=at, cost=Decimal("1234567.50"))
        )
        number = (await s.execute(select(o.c.number).where(o.c.id == ids["order_id"]))).scalar()
    return str(number)


@pytest.mark.parametrize(
    ("lang", "headers", "status", "day_format"),
    [
        ("ru", ["Номер", "Дата", "Статус"], "В работе", "DD.MM.YYYY"),
        ("en", ["Number", "Date", "Status"], "In progress", "YYYY-MM-DD"),
    ],
    ids=["ru", "en"],
)
async def test_an_xlsx_export_speaks_the_persons_language_in_their_time_zone(
    site: Site, lang: str, headers: list[str], status: str, day_format: str
) -> None:
    """Opened in a spreadsheet: headers and statuses in the person's language, the
    order's day and its loading time in their zone (Vladivostok, UTC+10: an order made at
    20:00 UTC on 6 December is theirs on 7 December at 06:00), the cost a number."""
    from openpyxl import load_workbook

    org = next(_orgs)
    number = await _one_order_at(site.host, org, dt.datetime(2026, 12, 6, 20, 0, tzinfo=dt.UTC))
    session = await site.client_of(org)
    async with site.host.db.session() as s:
        a = cast(Table, Account.__table__)
        await s.execute(
            update(a).where(a.c.id == site.people[session]).values(timezone="Asia/Vladivostok")
        )
    cookie = f"{session}; kabinet_lang={lang}"
    for file in (
        await site.get(f"/shipments/orders.xlsx?q={number}", cookie),
        await site.post("/shipments/exports", cookie, {"format": "xlsx", "q": number}),
    ):
        assert file.status_code == 200
        book = load_workbook(io.BytesIO(file.content))
        sheet = book.active
        assert sheet is not None
        rows = list(sheet.iter_rows())
        assert [c.value for c in rows[0]][:3] == headers
        assert len(rows) == 2
        cells = dict(zip(exports_module.COLUMNS, rows[1], strict=True))
        assert cells["number"].value == number
        assert cells["status"].value == status
        assert cells["date"].value == dt.datetime(2026, 12, 7)  # the local day, not the 6th
        assert cells["date"].number_format == day_format
        assert cells["loading_date"].value == dt.datetime(2026, 12, 7, 6, 0)
        assert cells["loading_date"].number_format == day_format + " HH:MM"
        assert cells["cost"].value == 1234567.5
        assert cells["cost"].data_type == "n"
        assert cells["cost"].number_format == "#,##0.00"


async def test_a_background_export_is_written_in_the_language_it_was_asked_in(
    site: Site,
) -> None:
    """A job runs without the page: the file keeps the language of the page it was asked
    from (English), and the person's zone."""
    org = next(_orgs)
    await _load(site.host, org)
    number = await _one_order_at(site.host, org, dt.datetime(2026, 12, 6, 20, 0, tzinfo=dt.UTC))
    session = await site.client_of(org)
    async with site.host.db.session() as s:
        a = cast(Table, Account.__table__)
        await s.execute(
            update(a).where(a.c.id == site.people[session]).values(timezone="Asia/Vladivostok")
        )
    started = await site.post(
        "/shipments/exports", f"{session}; kabinet_lang=en", {"format": "csv", "sort": "cost"}
    )
    assert started.status_code == 303
    export_id = started.headers["location"].rsplit("/", 1)[-1]
    assert await site.host.jobs.drain() == 1  # type: ignore[attr-defined]
    file = await site.get(f"/shipments/exports/{export_id}/file", session)
    rows = _csv(file.content)
    assert rows[0] == [
        "Number", "Date", "Status", "From", "To", "Cargo", "Loading", "Delivery (planned)",
        "Location", "Cost", "Currency",
    ]  # fmt: skip
    mine = next(r for r in rows if r[0] == number)
    assert mine[1:3] == ["2026-12-07", "In progress"]
    assert mine[6] == "2026-12-07 06:00"
    assert mine[9] == "1234567.50"
