"""Exports of the registry's view: a small one at once, a large one as a background job
whose progress the page shows, then a link only its person can follow (PostgreSQL and
SQLite; the threshold is lowered in the test settings)."""

from __future__ import annotations

import csv
import io
import itertools
import re
from collections.abc import AsyncIterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from shipments_support import Site
from shipments_support import site as app_site
from sqlalchemy import select

from kabinet.clock import FrozenClock
from kabinet.host import Host
from kabinet_shipments import exports as exports_module
from kabinet_shipments import models as m
from kabinet_shipments.demo import generate
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
    assert rows[0][0] == "number"
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
    exports = site.host.services["shipments.exports"]

    # The registry offers the export of its view as a form (sort, filters, no cursor).
    registry = await site.get("/shipments/?sort=cost&size=25", session)
    assert 'action="/shipments/exports"' in registry.text
    assert 'name="sort" value="cost"' in registry.text

    # A link to a view larger than the limit starts nothing: it offers the job.
    offer = await site.get("/shipments/orders.csv?sort=cost", session)
    assert offer.status_code == 200
    assert 'id="export-start"' in offer.text
    assert f"больше {LIMIT} заявок" in offer.text
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
    assert rows[0][:3] == ["number", "date", "status"]
    body = rows[1:]
    assert sorted(r[0] for r in body) == sorted(o.number for o in orders)
    costs = [Decimal(r[9]) for r in body]
    assert costs == sorted(costs)  # the view's sort
    by_number = {o.number: o for o in orders}
    assert all(by_number[r[0]].status == r[2] for r in body)

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
    assert values[0][0] == "number"
    assert len(values) == ORDERS + 1
    assert [Decimal(str(v[9])) for v in values[1:]] == sorted(costs, reverse=True)

    # Kept a day, then removed with their files by the hourly cleanup.
    key = f"shipments/exports/{export_id}.csv"
    assert await site.host.files.exists(key)
    clock.advance(hours=25)
    assert await exports.cleanup() >= 2
    assert not await site.host.files.exists(key)
    again = await site.matrix._session(site.people[session])  # the old one has expired too
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
