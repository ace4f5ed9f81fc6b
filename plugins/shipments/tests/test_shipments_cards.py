"""The invoice card, the contract card that explains its balance and pages its lists, the
order card's timeline, late orders and requests, over HTTP (issue 16, points 4 and 5)."""

from __future__ import annotations

import asyncio
import datetime as dt
import itertools
import re
from collections.abc import AsyncIterator
from decimal import Decimal
from pathlib import Path

import pytest
from shipments_support import Site, site
from sqlalchemy import event, update

from kabinet.clock import FrozenClock
from kabinet_shipments import models as m
from kabinet_shipments.records import ContractRecord, InvoiceRecord, OrderRecord
from kabinet_shipments.samples import ensure_counterparty, make_order
from kabinet_shipments.sinks import apply_contracts, apply_invoices, apply_orders

pytestmark = pytest.mark.smoke
_orgs = itertools.count(916_401)


@pytest.fixture
async def web(shipments_url: str, tmp_path: Path, clock: FrozenClock) -> AsyncIterator[Site]:
    async with site(shipments_url, tmp_path, clock) as found:
        yield found


async def _late_and_on_time(web: Site, org: int) -> dict[str, str]:
    """Orders of one contract: late (planned yesterday, in progress), on time (planned
    tomorrow), done late (not late: done) and registered with no plan."""
    cp = await ensure_counterparty(web.host, org)
    today = web.host.clock.now().date()
    contract = ContractRecord(
        external_id=f"k-{org}", counterparty=cp, number=f"K-{org}", date=today
    )
    plans = {
        "late": ("in_progress", today - dt.timedelta(days=1)),
        "ontime": ("in_progress", today + dt.timedelta(days=1)),
        "donelate": ("done", today - dt.timedelta(days=3)),
        "noplan": ("registered", None),
    }
    orders = [
        OrderRecord(
            external_id=f"o-{org}-{name}",
            number=f"L{org}-{name}",
            date=dt.datetime.combine(today, dt.time(9)),
            counterparty=cp,
            contract=contract.external_id,
            status=status,  # type: ignore[arg-type]
            origin="Москва",
            destination="Казань",
            cost=Decimal(100),
        )
        for name, (status, _) in plans.items()
    ]
    async with web.host.db.session() as s:
        await apply_contracts(web.host, s, [contract])
        await apply_orders(web.host, s, orders)
        for name, (_, planned) in plans.items():  # the planned day as the registry reads it
            await s.execute(
                update(m.order)
                .where(m.order.c.external_id == f"o-{org}-{name}")
                .values(delivery_planned=planned)
            )
    return {name: f"L{org}-{name}" for name in plans}


def _numbers(html: str) -> set[str]:
    return set(re.findall(r'href="/shipments/orders/\d+"[^>]*>([^<]+)<', html))


async def test_late_orders_are_flagged_and_filtered_in_the_registry(web: Site) -> None:
    org = next(_orgs)
    names = await _late_and_on_time(web, org)
    session = await web.client_of(org)
    every = await web.get("/shipments/", session)
    assert _numbers(every.text) == set(names.values())
    rows = re.findall(r"<tr class=\"sh-row[^\"]*\">.*?</tr>", every.text, re.S)
    late_rows = [r for r in rows if "data-late" in r]
    assert len(late_rows) == 1
    assert names["late"] in late_rows[0]
    assert "Опаздывает" in late_rows[0]
    # the filter: late only, through the registry's own mechanism (the URL, the counts)
    late = await web.get("/shipments/?late=1", session)
    assert late.status_code == 200
    assert _numbers(late.text) == {names["late"]}
    assert 'id="late-filter" checked' in late.text
    counts = await web.get("/shipments/counts?late=1", session)
    assert 'id="sh-count-all" hx-swap-oob="true">1<' in counts.text
    api = await web.get("/api/shipments/orders?late=1", session)
    assert [o["number"] for o in api.json()["items"]] == [names["late"]]
    csv = await web.get("/shipments/orders.csv?late=1", session)
    assert names["late"] in csv.text
    assert names["ontime"] not in csv.text
    bad = await web.get("/shipments/?late=yes", session)
    assert bad.status_code == 400
    problem = await web.get("/api/shipments/orders?late=yes", session)
    assert problem.status_code == 400
    assert problem.json()["errors"][0]["field"] == "late"
    english = await web.get("/shipments/?late=1", f"{session}; kabinet_lang=en")
    assert "Late only" in english.text
    assert ">Late<" in english.text


async def test_the_registry_offers_a_sort_control_and_a_compact_phone_card(web: Site) -> None:
    org = next(_orgs)
    await _late_and_on_time(web, org)
    session = await web.client_of(org)
    page = await web.get("/shipments/?sort=number", session)
    sort = re.search(r'<select name="sort" id="sort">(.*?)</select>', page.text, re.S)
    assert sort is not None
    values = re.findall(r'<option value="([^"]+)"', sort.group(1))
    assert {"-date", "date", "number", "-cost", "-delivery_planned"} <= set(values)
    assert re.search(r'<option value="number" selected>', sort.group(1))
    # one sort field only in the filters (the control), so the form never sends two
    filters = page.text.split('<form class="sh-filters"')[1].split("</form>")[0]
    assert filters.count('name="sort"') == 1
    for part in ("sh-c-number", "sh-c-status", "sh-c-route", "sh-c-date", "sh-c-cost"):
        assert part in page.text


async def test_the_order_card_shows_a_timeline_late_flag_and_answers(web: Site) -> None:
    org = next(_orgs)
    names = await _late_and_on_time(web, org)
    session = await web.client_of(org)
    listed = await web.get("/shipments/", session)
    ids = {
        number: int(i)
        for i, number in re.findall(r'href="/shipments/orders/(\d+)"[^>]*>([^<]+)<', listed.text)
    }
    late = await web.get(f"/shipments/orders/{ids[names['late']]}", session)
    assert 'id="order-late"' in late.text
    assert 'id="late-note"' in late.text
    timeline = re.search(r'<ol id="history" class="sh-timeline"[^>]*>(.*?)</ol>', late.text, re.S)
    assert timeline is not None
    assert re.search(r'<time datetime="2026-11-25T09:00:00', timeline.group(1))
    assert "портал получил статус" in late.text  # what the time is, said
    ontime = await web.get(f"/shipments/orders/{ids[names['ontime']]}", session)
    assert 'id="order-late"' not in ontime.text
    done = await web.get(f"/shipments/orders/{ids[names['donelate']]}", session)
    assert 'id="order-late"' not in done.text
    # a done order has no request: no empty "Requests" heading
    assert "Запросы по заявке" not in done.text

    # an answered request shows the answer
    on_card = ids[names["ontime"]]
    sent = await web.post(
        f"/shipments/orders/{on_card}/requests", session, {"kind": "cancel", "comment": "Не нужна"}
    )
    assert sent.status_code == 303
    async with web.host.db.session() as s:
        await s.execute(
            update(m.request)
            .where(m.request.c.order_id == on_card)
            .values(status="rejected", answer="Машина уже в пути")
        )
    card = await web.get(f"/shipments/orders/{on_card}", session)
    assert "Запросы по заявке" in card.text
    answer = re.search(r"<p class=\"sh-answer\" data-answer>(.*?)</p>", card.text, re.S)
    assert answer is not None
    assert "Машина уже в пути" in answer.group(1)
    english = await web.get(f"/shipments/orders/{on_card}", f"{session}; kabinet_lang=en")
    assert "Answer:" in english.text
    assert "the time the portal received it" in english.text


async def test_the_invoice_card_and_links_to_it(web: Site) -> None:
    org = next(_orgs)
    ids = await make_order(web.host, org)
    session = await web.client_of(org)
    path = f"/shipments/invoices/{ids['invoice_id']}"
    card = await web.get(path, session)
    assert card.status_code == 200
    assert 'id="invoice-amount"' in card.text
    assert re.search(r'id="invoice-amount">1\s?000,00', card.text)
    assert f'id="invoice-order" href="/shipments/orders/{ids["order_id"]}"' in card.text
    assert f'id="invoice-contract" href="/shipments/contracts/{ids["contract_id"]}"' in card.text
    assert 'id="invoice-due"' in card.text
    assert 'id="invoice-status"' in card.text
    # its print form (a file 1C attached to it) on the card and beside it in every list
    form = f"{path}/files/{ids['invoice_file_id']}"
    assert f'href="{form}" data-print-form' in card.text
    assert "Печатная форма (PDF)" in card.text
    for listing in (
        "/shipments/invoices",
        f"/shipments/orders/{ids['order_id']}",
        f"/shipments/contracts/{ids['contract_id']}",
    ):
        page = await web.get(listing, session)
        assert f'href="{path}"' in page.text, listing
        assert f'href="{form}"' in page.text, listing
    got = await web.get(form, session)
    assert got.content == b"%PDF-1.4 invoice"
    assert got.headers["content-type"] == "application/pdf"
    english = await web.get(path, f"{session}; kabinet_lang=en")
    assert "Left to pay" in english.text
    assert "Print form (PDF)" in english.text
    stranger = await web.client_of(next(_orgs))
    assert (await web.get(path, stranger)).status_code == 404
    assert (await web.get(form, stranger)).status_code == 404


async def test_the_home_pages_new_invoices_link_to_their_cards(
    web: Site, clock: FrozenClock
) -> None:
    org = next(_orgs)
    session = await web.client_of(org)
    assert (await web.get("/", session)).status_code == 200  # a visit
    clock.advance(31 * 60)
    ids = await make_order(web.host, org)  # a new invoice since then
    clock.advance(31 * 60)
    home = await web.get("/", session)  # the next visit: what is new since the previous
    assert f'href="/shipments/invoices/{ids["invoice_id"]}"' in home.text


async def test_the_invoices_page_has_one_period(web: Site) -> None:
    org = next(_orgs)
    await make_order(web.host, org)
    session = await web.client_of(org)
    page = await web.get("/shipments/invoices?date_from=2026-11-01&date_to=2026-11-30", session)
    assert page.status_code == 200
    assert page.text.count('type="date"') == 2  # one period: from and to
    assert "debt_from" not in page.text
    # the debt follows the same period
    assert re.search(r"<h2>Задолженность за период: 1 нояб\.? 2026 г?\.?", page.text) or (
        "2026" in page.text.split('id="debt"')[1].split("</h2>")[0]
    )


async def test_the_contract_card_explains_its_balance_and_pages_its_lists(web: Site) -> None:
    org = next(_orgs)
    cp = await ensure_counterparty(web.host, org)
    today = web.host.clock.now().date()
    contract = ContractRecord(
        external_id=f"kp-{org}", counterparty=cp, number=f"KP-{org}", date=today
    )
    orders = [
        OrderRecord(
            external_id=f"op-{org}-{n}",
            number=f"P{org}-{n:02}",
            date=dt.datetime.combine(today, dt.time(9)) - dt.timedelta(days=n),
            counterparty=cp,
            contract=contract.external_id,
            status="done",
            origin="Москва",
            destination="Казань",
            cost=Decimal(100),
        )
        for n in range(23)
    ]
    invoices = [
        InvoiceRecord(
            external_id=f"ip-{org}-{n}",
            number=f"IP{org}-{n:02}",
            date=today - dt.timedelta(days=n),
            counterparty=cp,
            contract=contract.external_id,
            amount=Decimal(100),
        )
        for n in range(12)
    ]
    async with web.host.db.session() as s:
        await apply_contracts(web.host, s, [contract])
        await apply_orders(web.host, s, orders)
        await apply_invoices(web.host, s, invoices)
        await s.execute(
            update(m.contract)
            .where(m.contract.c.external_id == contract.external_id)
            .values(
                balance=Decimal("-38064"),
                balance_at=dt.datetime(2026, 11, 25, 6, 30, tzinfo=dt.UTC),
            )
        )
        stored = (
            await s.execute(
                m.contract.select().where(m.contract.c.external_id == contract.external_id)
            )
        ).first()
        assert stored is not None
        contract_id = stored.id
    session = await web.client_of(org)
    path = f"/shipments/contracts/{contract_id}"
    card = await web.get(path, session)
    assert card.status_code == 200
    assert 'id="balance-explain"' in card.text
    assert "аванс" in card.text
    # as of 06:30 UTC in the portal's zone (Europe/Moscow): 09:30
    at = re.search(r'id="balance-at">(.*?)</p>', card.text, re.S)
    assert at is not None
    assert "09:30" in at.group(1)
    assert "по данным 1С на" in at.group(1)
    orders_on = re.findall(r'href="/shipments/orders/\d+">(P\d+-\d+)<', card.text)
    assert len(orders_on) == 10
    invoices_on = re.findall(r'href="/shipments/invoices/\d+">(IP\d+-\d+)<', card.text)
    assert len(invoices_on) == 10
    assert f'href="{path}?orders_page=2#contract-orders"' in card.text  # back to the list
    third = await web.get(f"{path}?orders_page=3&invoices_page=2", session)
    assert len(re.findall(r'href="/shipments/orders/\d+">P\d+', third.text)) == 3
    assert len(re.findall(r'href="/shipments/invoices/\d+">IP\d+', third.text)) == 2
    assert "Показаны 21–23" in third.text
    assert '<span aria-current="page">3 / 3</span>' in third.text  # orders: 23 of them
    # the orders' previous page keeps the invoices' page (each list is paged on its own)
    back = f'href="{path}?invoices_page=2&amp;orders_page=2#contract-orders" rel="prev"'
    assert back in third.text
    bad = await web.get(f"{path}?orders_page=0", session)
    assert bad.status_code == 400
    english = await web.get(path, f"{session}; kabinet_lang=en")
    assert "in 1C as of" in english.text
    assert "advance" in english.text


async def test_a_page_holds_one_database_connection_at_a_time(web: Site) -> None:
    """A request holds at most one pooled connection at once: the order card is read in
    the request's unit of work, and so is what the page adds (the invoices' print forms,
    the other apps' links); the home page's shipments summary reads in the unit that read
    the account and noted the visit. A request that held its unit's connection while it
    waited for a second one from the pool deadlocked under load (16 cards at once, a pool
    of 15: every request held one and waited for another)."""
    org = next(_orgs)
    ids = await make_order(web.host, org)
    session = await web.client_of(org)
    mine = asyncio.current_task()  # the in-process request runs in it; background work not
    held: set[int] = set()
    most: dict[str, int] = {}
    path = ""

    def out(_dbapi: object, record: object, _proxy: object) -> None:
        if asyncio.current_task() is mine:
            held.add(id(record))
            most[path] = max(most.get(path, 0), len(held))

    def back(_dbapi: object, record: object) -> None:
        held.discard(id(record))

    pool = web.host.db.engine.sync_engine.pool
    card_path = f"/shipments/orders/{ids['order_id']}"
    assert (await web.get(card_path, session)).status_code == 200
    event.listen(pool, "checkout", out)
    event.listen(pool, "checkin", back)
    pages = {}
    try:
        for path in (
            card_path,
            "/",
            "/shipments/",
            f"/shipments/contracts/{ids['contract_id']}",
            "/shipments/orders.xlsx",  # an export counts, then reads its rows: one at a time
        ):
            pages[path] = await web.get(path, session)
    finally:
        event.remove(pool, "checkout", out)
        event.remove(pool, "checkin", back)
    assert {p: r.status_code for p, r in pages.items()} == dict.fromkeys(pages, 200)
    assert f'href="/shipments/invoices/{ids["invoice_id"]}/files/{ids["invoice_file_id"]}"' in (
        pages[card_path].text
    )  # the invoice's print form, read in the unit too
    assert most == dict.fromkeys(pages, 1)
