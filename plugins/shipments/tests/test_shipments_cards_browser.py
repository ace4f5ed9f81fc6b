"""Issue 16, points 4 and 5 in Debian's chromium against ``kabinet demo``, at 1280 and
390 px: the registry's late filter and sort control, the order card's timeline, an invoice's
card reached from the invoices page with its print form (PDF) to download, and the contract
card that explains its balance and pages its lists. Screenshots go to
``$KABINET_SHIPMENTS_SHOTS`` when set."""

from __future__ import annotations

from typing import Any

import pytest
from test_shipments_browser import login, no_horizontal_scroll, shot

from kabinet.testing import chromium

pytestmark = [pytest.mark.browser, pytest.mark.slow]


@pytest.fixture(scope="module")
def demo(shipments_demo: str) -> str:
    """The demo these browser tests share (conftest.py)."""
    return shipments_demo


def height(page: Any) -> int:
    return int(page.evaluate("document.documentElement.scrollHeight"))


def test_late_orders_the_timeline_an_invoice_and_a_paged_contract(demo: str) -> None:
    with chromium() as browser:
        context = browser.new_context(viewport={"width": 1280, "height": 900}, locale="ru-RU")
        page = context.new_page()
        errors: list[str] = []
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        login(page, demo)

        # the registry: a sort control beside the filters, and late orders only
        page.goto(demo + "/shipments/")
        page.select_option("#sort", "-cost")
        page.wait_for_url("**sort=-cost**")
        page.check("#late-filter")
        page.click(".sh-filters button[type=submit]")
        page.wait_for_url("**late=1**")
        rows = page.locator("#orders tbody tr")
        assert page.locator("#late-filter").is_checked()
        for i in range(rows.count()):
            assert rows.nth(i).locator("[data-late]").inner_text() == "Опаздывает"
        shot(page, "late-1280")

        # an order's card: the statuses as a timeline, each with its time, said what it is
        page.goto(demo + "/shipments/?status=in_progress")
        page.locator("#orders tbody td[data-label='Номер'] a").first.click()
        page.wait_for_load_state()
        card_url = page.url
        steps = page.locator("#history li")
        assert steps.count() >= 1
        assert steps.first.locator("time").inner_text().strip()
        assert "портал получил статус" in page.locator("#history-note").inner_text()
        shot(page, "card-1280")

        # the invoices page: one period; an invoice's number opens its card
        page.goto(demo + "/shipments/invoices")
        assert page.locator("input[type=date]").count() == 2
        # each invoice with a print form says so beside its number
        assert page.locator("#invoices tbody a.sh-pdf").first.is_visible()
        page.locator("#invoices tbody td[data-label='Номер'] a").first.click()
        page.wait_for_url("**/shipments/invoices/*")
        assert page.locator("#invoice-amount").inner_text().strip()
        assert page.locator("#invoice-remaining").is_visible()
        invoice_url = page.url
        # its print form from 1C, a PDF to download
        form = page.locator("#invoice-print a[data-print-form]")
        assert form.count() == 1
        assert form.inner_text().strip() == "Печатная форма (PDF)"
        assert ".pdf" in page.locator("#invoice-print").inner_text()
        with page.expect_download() as got:
            form.click()
        assert got.value.suggested_filename.endswith(".pdf")
        shot(page, "invoice-1280")

        # its contract: the balance explained, its lists paged
        page.click("#invoice-contract")
        page.wait_for_url("**/shipments/contracts/*")
        assert page.locator("#balance-explain").is_visible()
        assert page.locator("#contract-orders ~ .table-wrap tbody tr").first.is_visible()
        contract_url = page.url
        assert height(page) < 3500
        shot(page, "contract-1280")
        nxt = page.locator("[data-pager=orders_page] a[rel=next]")
        if nxt.count():
            first = page.locator("a[href^='/shipments/orders/']").first.inner_text()
            nxt.click()
            page.wait_for_url("**orders_page=2**")
            assert page.locator("a[href^='/shipments/orders/']").first.inner_text() != first
        assert errors == []

        # a 390 px phone: compact order cards, nothing scrolls sideways
        phone = browser.new_context(
            viewport={"width": 390, "height": 844}, locale="ru-RU", is_mobile=True
        )
        phone.add_cookies(context.cookies())
        mobile = phone.new_page()
        mobile.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        mobile.goto(demo + "/shipments/")
        row = mobile.locator("#orders tbody tr").first
        box = row.bounding_box()
        assert box is not None
        assert box["height"] < 130  # 3-4 lines, not 9
        assert mobile.locator("#orders").bounding_box()["height"] < 25 * 140
        assert mobile.locator("#sort").count() == 1
        for name, path in (
            ("registry-late", "/shipments/?late=1"),
            ("card", card_url.removeprefix(demo)),
            ("invoice", invoice_url.removeprefix(demo)),
            ("contract", contract_url.removeprefix(demo)),
        ):
            mobile.goto(demo + path)
            shot(mobile, f"{name}-390")
            assert no_horizontal_scroll(mobile), name
        assert height(mobile) < 9000  # the contract card, paged
        assert errors == []
