"""Pages of the staff on a phone (390x844) and at 1280x800, in Debian's chromium, on the
session's demo: what the screenshots showed wrong once, as a person sees it.

- The companies app's filters fill each row on a phone (the fields line up, the picker's
  label looks like its neighbours'); a contact's companies stand one under another, each
  with its roles and a "Save" that fits on one line.
- My notifications on a phone: each channel's checkbox beside its name, one under another,
  a finger's tap high; the notifications' tabs mark the page, under its heading; their
  filters fill each row.
- The installed apps on a phone: each name, code and "built in" whole (they broke mid-word,
  each a flex item of the card's cell).
- A new-order request's card shows its dates and numbers as the reader writes them
  ("10 дек. 2026 г.", "8,5"), not as stored ("2026-12-10", "8.5").
- The home page's "New orders" panel has one heading (the shell's), not the same one twice.
- A document's size is in the reader's language ("0,1 КБ", not "0.1 KB"); the filters'
  card stands apart from the list; fields side by side line up at 1280 px.

Read-only: the demo is shared with the other browser tests.
"""

from __future__ import annotations

import itertools
import re
from pathlib import Path
from typing import Any

import pytest

from kabinet.testing import chromium

PASSWORD = "kabinet-demo"
ADMIN = "admin@demo.kabinet.example"
ANNA = "anna@demo.test"
PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1280, "height": 800}

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def demo(demo_portal: Any) -> str:
    return str(demo_portal.url)


def _signed_in(browser: Any, url: str, size: dict[str, int], login: str = ADMIN) -> Any:
    phone = size["width"] < 500
    context = browser.new_context(viewport=size, locale="ru-RU", is_mobile=phone, has_touch=phone)
    context.set_default_timeout(10_000)
    page = context.new_page()
    page.goto(url + "/login")
    page.fill("input[name=login]", login)
    page.fill("input[name=password]", PASSWORD)
    with page.expect_navigation():
        page.click("form[action='/login'] button[type=submit]")
    # Signing in sets the account's language; another test on the shared demo may have
    # left the account in English (the journeys' English variants switch the language
    # after signing in, which the account keeps): these pages are read in Russian.
    context.add_cookies([{"name": "kabinet_lang", "value": "ru", "url": url}])
    return page


def _no_sideways_scroll(page: Any) -> None:
    width, client = page.evaluate(
        "[document.documentElement.scrollWidth, document.documentElement.clientWidth]"
    )
    assert width <= client, f"{page.url}: {width} px wide in {client} px"


def _filter_rows(page: Any, form: str = "form.co-filters") -> list[tuple[float, float]]:
    """(left, right) of each row of the filters' fields and button, relative to the form."""
    return [
        (float(left), float(right))
        for left, right in page.locator(form).evaluate(
            """form => {
                const box = form.getBoundingClientRect();
                const rows = new Map();
                for (const child of form.children) {
                    const r = child.getBoundingClientRect();
                    if (!r.width) continue;  // a hidden input
                    const top = Math.round(r.bottom);  // a row's fields end together
                    const row = rows.get(top) || [Infinity, -Infinity];
                    rows.set(top, [Math.min(row[0], r.left), Math.max(row[1], r.right)]);
                }
                return [...rows.values()].map(([l, r]) => [l - box.left, box.right - r]);
            }"""
        )
    ]


def test_the_companies_filters_and_a_contacts_companies_on_a_phone(
    demo: str, tmp_path: Path
) -> None:
    with chromium() as browser:
        page = _signed_in(browser, demo, PHONE)
        for path in ("/companies/contacts", "/companies/requests", "/companies/organizations"):
            page.goto(demo + path)
            _no_sideways_scroll(page)
            rows = _filter_rows(page)
            assert len(rows) >= 2, path
            for left, right in rows:  # every row of the filters spans the form
                assert abs(left) <= 2, (path, rows)
                assert abs(right) <= 2, (path, rows)
        page.goto(demo + "/companies/contacts")
        weights = page.locator("form.co-filters label").evaluate_all(
            "ls => ls.map(l => getComputedStyle(l).fontWeight)"
        )
        assert len(weights) >= 3
        assert len(set(weights)) == 1, weights  # the picker's label is like the others

        # Анна Клиентова works for two companies: each on its own line with its form
        cell = page.locator("tr:has-text('Анна Клиентова') td.co-memberships")
        companies = cell.locator(":scope > div")
        assert companies.count() == 2
        first, second = (companies.nth(i).bounding_box() for i in range(2))
        assert first is not None
        assert second is not None
        assert second["y"] >= first["y"] + first["height"] - 1  # one under the other
        assert abs(first["x"] - second["x"]) <= 1
        for i in range(2):
            save = companies.nth(i).locator("button")
            box = save.bounding_box()
            assert box is not None
            assert box["height"] <= 44, box  # "Сохранить" on one line, not "Сохрани / ть"
            name = companies.nth(i).locator("a")
            assert len(name.evaluate("a => [...a.getClientRects()]")) == 1  # one line
        page.screenshot(path=str(tmp_path / "contacts-390.png"), full_page=True)

        # deciding a request: every box as wide as the form, its name over it
        page.goto(demo + "/companies/requests")
        with page.expect_navigation():
            page.locator("#co-results td a[href^='/companies/requests/']").first.click()
        boxes = page.locator(
            ".co-decide form :is(input[type=search], select, input[name=comment],"
            " input[name=reason])"
        ).evaluate_all(
            """els => els.filter(e => e.offsetParent).map(e => {
                const r = e.getBoundingClientRect();
                const own = e.closest('label');
                const name = document.createRange();
                if (own) name.selectNodeContents(own.firstChild);  // its text
                else name.selectNodeContents(e.closest('.field').querySelector('label'));
                return [e.name || e.type, Math.round(r.left), Math.round(r.right),
                        name.getBoundingClientRect().bottom <= r.top + 1];
            })"""
        )
        assert len(boxes) >= 4, boxes
        assert len({(left, right) for _, left, right, _ in boxes}) == 1, boxes
        assert all(above for *_, above in boxes), boxes

        # an organization's contacts: the cell with the e-mail and the phone says so
        page.goto(demo + "/companies/organizations/1")
        cell = page.locator("tr:has-text('Анна Клиентова') td:has-text('+7916')")
        assert cell.get_attribute("data-label") == "E-mail · Телефон"


def test_documents_sizes_spacing_and_fields_in_line(demo: str, tmp_path: Path) -> None:
    with chromium() as browser:
        page = _signed_in(browser, demo, PHONE)
        page.goto(demo + "/dictionaries/documents/")
        _no_sideways_scroll(page)
        files = page.locator("main td[data-label='Файл']").all_inner_texts()
        assert files
        for text in files:
            assert re.fullmatch(r"Скачать \d+,\d КБ", text.strip()), text
        filters = page.locator("form.dict-filters").bounding_box()
        table = page.locator("main table.table").bounding_box()
        assert filters is not None
        assert table is not None
        assert table["y"] - (filters["y"] + filters["height"]) >= 12  # apart, not touching
        page.screenshot(path=str(tmp_path / "documents-390.png"), full_page=True)
        page.goto(demo + "/dictionaries/documents/1")
        versions = page.locator(".dict-changes").inner_text()
        assert re.search(r"\d+,\d КБ", versions), versions
        assert "KB" not in versions
        page.context.close()

        page = _signed_in(browser, demo, DESKTOP)
        page.goto(demo + "/dictionaries/documents/")
        inputs = (
            page.locator("#upload .dict-row")
            .nth(1)
            .evaluate(
                """row => [...row.children].map(f => {
                const shown = [...f.querySelectorAll('input, select')].filter(i => i.offsetParent);
                return Math.round(shown[0].getBoundingClientRect().top);
            })"""
            )
        )
        assert len(inputs) >= 2
        assert max(inputs) - min(inputs) <= 2, inputs  # the date beside the organization
        page.screenshot(path=str(tmp_path / "documents-1280.png"), full_page=True)


def test_my_notifications_and_the_notifications_tabs_on_a_phone(demo: str, tmp_path: Path) -> None:
    with chromium() as browser:
        page = _signed_in(browser, demo, PHONE, ANNA)
        page.goto(demo + "/notifications/me")
        _no_sideways_scroll(page)
        channels = page.locator("#preferences tbody tr").first.locator("label.notif-check")
        assert channels.count() >= 3
        boxes = channels.evaluate_all(
            """labels => labels.map(l => {
                const box = l.getBoundingClientRect();
                const check = l.querySelector('input').getBoundingClientRect();
                return {left: box.left, top: box.top, height: box.height,
                        checkMid: check.top + check.height / 2};
            })"""
        )
        lefts = {round(b["left"]) for b in boxes}
        assert len(lefts) == 1, boxes  # one under another, at the card's left
        for before, after in itertools.pairwise(boxes):
            assert after["top"] >= before["top"] + before["height"] - 1, boxes
        for b in boxes:
            assert b["height"] >= 40, b  # a finger's tap
            assert b["top"] <= b["checkMid"] <= b["top"] + b["height"], b  # beside its name
        page.screenshot(path=str(tmp_path / "my-notifications-390.png"), full_page=True)
        page.context.close()

        page = _signed_in(browser, demo, PHONE)
        for path in ("/notifications/", "/notifications/stats", "/notifications/failed"):
            page.goto(demo + path)
            _no_sideways_scroll(page)
            heading = page.locator("main h1").bounding_box()
            tabs = page.locator("nav.notif-tabs").bounding_box()
            assert heading is not None
            assert tabs is not None
            assert heading["y"] < tabs["y"], path  # the page's name first, as on every page
            current = page.locator("nav.notif-tabs a[aria-current=page]")
            assert current.count() == 1, path
            assert current.get_attribute("href") == path
        for path in ("/notifications/stats", "/notifications/failed"):
            page.goto(demo + path)
            rows = _filter_rows(page, "form.notif-filters")
            assert len(rows) >= 2, path
            for left, right in rows:
                assert abs(left) <= 2, (path, rows)
                assert abs(right) <= 2, (path, rows)
        page.screenshot(path=str(tmp_path / "failed-390.png"), full_page=True)


def test_the_home_pages_new_orders_panel_has_one_heading(demo: str) -> None:
    with chromium() as browser:
        page = _signed_in(browser, demo, PHONE, ANNA)
        page.goto(demo + "/")
        panel = page.locator("section.panel[data-panel='booking.requests']")
        headings = panel.locator("h1, h2, h3, h4").all_inner_texts()
        assert headings == ["Новые заявки"]
        assert panel.locator("a[href='/booking/new']").is_visible()
        assert panel.locator("a[href='/booking/']").is_visible()
        _no_sideways_scroll(page)


def test_the_installed_apps_on_a_phone(demo: str) -> None:
    with chromium() as browser:
        page = _signed_in(browser, demo, PHONE)
        page.goto(demo + "/shell/plugins")
        _no_sideways_scroll(page)
        parts = page.locator("main td[data-label='Название'] :is(strong, code, .badge)")
        assert parts.count() >= 10
        lines = parts.evaluate_all(
            """els => els.map(e => {
                const r = document.createRange(); r.selectNodeContents(e);
                const tops = new Set([...r.getClientRects()].map(x => Math.round(x.top)));
                return [e.textContent, tops.size, e.textContent.trim().split(/\\s+/).length];
            })"""
        )
        for text, count, words in lines:  # a word is never cut: "host", not "hos / t"
            assert count <= words, (text, count)


def test_a_requests_card_shows_dates_and_numbers_in_the_readers_language(demo: str) -> None:
    with chromium() as browser:
        page = _signed_in(browser, demo, PHONE)
        page.goto(demo + "/booking/?state=accepted")
        card = page.locator(".booking-requests li a[href^='/booking/']").first
        with page.expect_navigation():
            card.click()
        values = dict(
            page.locator("dl.booking-fields dt").evaluate_all(
                "dts => dts.map(dt => [dt.textContent.trim(),"
                " dt.nextElementSibling.textContent.trim()])"
            )
        )
        assert re.fullmatch(r"\d{1,2} [а-я]+\.? \d{4}\xa0?\s?г\.", values["Дата погрузки"]), values
        assert not re.search(r"\d{4}-\d{2}-\d{2}", " ".join(values.values())), values
        for name in ("Вес, кг", "Объём, м³"):
            assert re.fullmatch(r"\d{1,3}(\xa0\d{3})*(,\d+)?", values[name]), values
        _no_sideways_scroll(page)
