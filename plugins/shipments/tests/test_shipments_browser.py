"""The registry, the card and a cancel request in Debian's chromium against ``kabinet demo``.

A client of one company (the demo's dmitry@demo.test) exports the registry (more orders
than the lowered ``export_limit``: a background job, its progress page, then the file),
switches tabs, filters, sorts, goes to the next page and back, opens a card, downloads a
document and asks to cancel the order, then sees the request pending. At 360 px the
registry is cards with no horizontal scroll, and its filters are folded under their
summary until opened (or set). Screenshots go to ``$KABINET_SHIPMENTS_SHOTS`` when set.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from kabinet.testing import chromium, kabinet_server
from kabinet_shipments.demo import CLIENT, PASSWORD

pytestmark = [pytest.mark.browser, pytest.mark.slow]

OTHERS = ("dictionaries", "notifications", "integration", "booking")
EXPORT_LIMIT = 50


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    folder = tmp_path_factory.mktemp("shipments-demo")
    var = folder / "var"
    disabled = "".join(f"[{name}]\nenabled = false\n" for name in OTHERS)
    # The demo client has 120 orders: an export of all of them goes through the job.
    exports = f"[shipments]\nexport_limit = {EXPORT_LIMIT}\n"
    (folder / "settings.toml").write_text(f'[host]\nvar_dir = "{var}"\n{disabled}{exports}')
    env = {**os.environ, "KABINET_DEMO_DIR": str(var)}
    with kabinet_server(folder, "--settings", "settings.toml", "demo", env=env) as url:
        yield url


def shot(page: Any, name: str) -> None:
    folder = os.environ.get("KABINET_SHIPMENTS_SHOTS")
    if folder:
        Path(folder).mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(Path(folder) / f"{name}.png"), full_page="360" not in name)


def login(page: Any, url: str) -> None:
    page.goto(url + "/login")
    page.fill("input[name=login]", CLIENT[1])
    page.fill("input[name=password]", PASSWORD)
    page.click("form[action='/login'] button[type=submit]")
    page.wait_for_load_state()


def column(page: Any, label: str) -> list[str]:
    texts: list[str] = page.locator(f"#orders tbody td[data-label='{label}']").all_inner_texts()
    return texts


def money(text: str) -> Decimal:
    digits = "".join(ch for ch in text if ch.isdigit() or ch in ",.").replace(",", ".")
    return Decimal(digits.rstrip("."))


def no_horizontal_scroll(page: Any) -> bool:
    return bool(page.evaluate("document.documentElement.scrollWidth <= window.innerWidth"))


def test_a_client_filters_sorts_pages_opens_downloads_and_asks_to_cancel(demo: str) -> None:
    with chromium() as browser:
        context = browser.new_context(
            viewport={"width": 1280, "height": 900}, locale="ru-RU", accept_downloads=True
        )
        page = context.new_page()
        errors: list[str] = []
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        login(page, demo)
        page.goto(demo + "/shipments/")
        assert page.locator("h1").inner_text() == "Заявки"
        assert page.locator("#filters").evaluate("d => d.open")  # wide: filters shown
        assert page.locator("input[name=origin]").is_visible()
        page.wait_for_selector("nav.sh-tabs a[data-tab=all] .sh-count >> text=/\\d/")
        total = int(page.locator("nav.sh-tabs a[data-tab=all] .sh-count").inner_text())
        assert total > EXPORT_LIMIT
        # every column, the status last, is in view at 1280 px (no sideways scroll)
        status_th = page.locator("#orders thead th").last
        assert status_th.inner_text().strip() == "Статус"
        box = status_th.bounding_box()
        assert box is not None
        assert box["x"] + box["width"] <= 1280
        assert page.locator("#orders").evaluate(
            "t => t.parentElement.scrollWidth <= t.parentElement.clientWidth"
        )
        shot(page, "registry-desktop")

        # the whole view as CSV: more than the limit, so a job; its page shows the
        # progress, then the link
        page.click(".sh-export button[value=csv]")
        page.wait_for_url("**/shipments/exports/**")
        page.wait_for_selector("#export-status[data-status=done]", timeout=30_000)
        assert f"Файл готов, заявок: {total}" in page.locator("#export-status").inner_text()
        shot(page, "export-desktop")
        with page.expect_download() as exported:
            page.click("#export-file")
        saved = exported.value.path()
        assert saved is not None
        lines = Path(saved).read_text(encoding="utf-8-sig").splitlines()
        assert lines[0].startswith("Номер;Дата;Статус")
        assert len(lines) == total + 1
        page.goto(demo + "/shipments/")

        # a tab: only done orders, swapped by htmx, in the URL
        page.click("nav.sh-tabs a[data-tab=done]")
        page.wait_for_url("**status=done**")
        assert set(column(page, "Статус")) == {"Выполнена"}

        # a filter: the route's origin
        origin = column(page, "Маршрут")[0].split(" → ")[0]
        page.fill("input[name=origin]", origin)
        page.click(".sh-filters button[type=submit]")
        page.wait_for_url("**origin=**")
        assert all(r.startswith(origin) for r in column(page, "Маршрут"))

        # a sort: by cost, highest first
        page.goto(demo + "/shipments/")
        page.click("#orders th a[data-sort=cost]")
        page.wait_for_url("**sort=-cost**")
        costs = [money(c) for c in column(page, "Стоимость")]
        assert costs == sorted(costs, reverse=True)
        assert len(costs) == 25

        # the next page starts after the last row; back returns to the first
        first_numbers = column(page, "Номер")
        page.click("a[rel=next]")
        page.wait_for_url("**after=**")
        second_numbers = column(page, "Номер")
        assert second_numbers
        assert not set(first_numbers) & set(second_numbers)
        assert money(column(page, "Стоимость")[0]) <= costs[-1]
        page.go_back()
        page.wait_for_url(lambda u: "after=" not in u)
        assert column(page, "Номер") == first_numbers

        # a card of an order in progress that has its documents: download, cancel
        page.goto(demo + "/shipments/?status=in_progress")
        links = page.locator("#orders tbody td[data-label='Номер'] a")
        hrefs = [links.nth(i).get_attribute("href") for i in range(links.count())]
        for href in hrefs:
            page.goto(demo + str(href))
            if page.locator("#documents a[download]").count():
                break
        else:
            pytest.fail("no order in progress with a stored document")
        shot(page, "card-desktop")
        with page.expect_download() as download:
            page.locator("#documents a[download]").first.click()
        path = download.value.path()
        assert path is not None
        assert Path(path).read_bytes().startswith(b"%PDF")
        page.fill("#cancel-form textarea[name=comment]", "Груз больше не нужен")
        page.click("#cancel-form button[type=submit]")
        page.wait_for_load_state()
        pending = page.locator("#requests li[data-kind=cancel]")
        assert pending.get_attribute("data-status") == "pending"
        assert "На рассмотрении" in pending.inner_text()
        assert page.locator("#cancel-form").count() == 0  # a second one is not offered

        page.goto(demo + "/shipments/invoices")
        shot(page, "invoices-desktop")
        page.goto(demo + "/shipments/contracts")
        page.locator("main a[href^='/shipments/contracts/']").first.click()
        page.wait_for_load_state()
        shot(page, "contract-desktop")
        assert errors == []

        # a 360 px phone: the registry is cards, nothing scrolls sideways
        phone = browser.new_context(
            viewport={"width": 360, "height": 740}, locale="ru-RU", is_mobile=True
        )
        phone.add_cookies(context.cookies())
        mobile = phone.new_page()
        for name, path_ in (
            ("registry", "/shipments/"),
            ("card", str(href)),
            ("invoices", "/shipments/invoices"),
            ("contract", page.url.removeprefix(demo)),
        ):
            mobile.goto(demo + path_)
            shot(mobile, f"{name}-360")
            assert no_horizontal_scroll(mobile), name
        mobile.goto(demo + "/shipments/")
        row = mobile.locator("#orders tbody tr").first
        assert row.evaluate("r => getComputedStyle(r).display") != "table-row"

        # on the phone the filters are folded under their summary, the table comes first
        filters = mobile.locator("#filters")
        assert not filters.evaluate("d => d.open")
        assert not mobile.locator("input[name=origin]").is_visible()
        summary = mobile.locator("#filters > summary")
        box = summary.bounding_box()
        assert box is not None
        assert box["height"] >= 40
        table_top = mobile.locator("#orders").bounding_box()
        assert table_top is not None
        assert table_top["y"] < 740
        # … and usable: open, filter, the view and the URL follow, still no sideways scroll
        summary.click()
        origin_box = mobile.locator("input[name=origin]")
        assert origin_box.is_visible()
        field = origin_box.bounding_box()
        assert field is not None
        assert field["width"] >= 300
        assert no_horizontal_scroll(mobile)
        shot(mobile, "filters-360")
        origin_box.fill(origin)
        mobile.click(".sh-filters button[type=submit]")
        mobile.wait_for_url("**origin=**")
        routes = mobile.locator("#orders tbody td[data-label='Маршрут']").all_inner_texts()
        assert routes
        assert all(r.startswith(origin) for r in routes)
        mobile.reload()
        assert filters.evaluate("d => d.open")  # a filter is set: shown unfolded
        assert "заданы" in summary.inner_text()
