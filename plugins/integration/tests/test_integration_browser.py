"""In Debian's chromium against a real ``kabinet demo`` server synced from a local 1C.

Staff start a run from the runs page and watch it go from running to done; a client asks
to cancel an order, the request reaches 1C, 1C cancels the order, the next run brings it
back and the card shows the order cancelled. Screenshots of the runs and quarantine pages
at 1280 and 360 px go to ``$KABINET_SCREENSHOTS`` (or the test's temporary folder).
"""

from __future__ import annotations

import os
import sqlite3
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from kabinet.testing import chromium, kabinet_server
from kabinet_integration_testing import (
    REQUESTS,
    Generated,
    OneCData,
    OneCServer,
    generate,
)

pytestmark = [pytest.mark.browser, pytest.mark.slow]

ORDERS = "Document_ЗаявкаНаПеревозку"
ADMIN = ("admin@demo.kabinet.example", "kabinet-demo")  # identity's demo accounts
CLIENT = ("dmitry@demo.test", "kabinet-demo")  # shipments' demo client of demo-0-0
OWNER = "demo-0-0"  # the companies demo's first counterparty (ООО «Ромашка»)
NUMBER = "ЗП-1С-0001"


def until(predicate: Callable[[], Any], what: str, timeout: float = 30.0) -> Any:
    """Poll a server or a process (bounded): their work, not time, is awaited."""
    end = time.monotonic() + timeout
    while not (found := predicate()):
        if time.monotonic() > end:
            pytest.fail(f"gave up waiting for {what}")
        time.sleep(0.1)
    return found


@pytest.fixture(scope="module")
def onec() -> Iterator[tuple[OneCServer, Generated]]:
    data = OneCData()
    made = generate(data, owners=[OWNER], orders=4, invoices=2, seed=11)
    order = dict(data.get(ORDERS, made.orders[0]) or {})
    order.update({"Number": NUMBER, "Статус": "Оформлена"})
    data.put(ORDERS, order)
    with OneCServer(data) as server:
        yield server, made


@pytest.fixture(scope="module")
def portal(
    tmp_path_factory: pytest.TempPathFactory, onec: tuple[OneCServer, Generated]
) -> Iterator[tuple[str, Path]]:
    server, _made = onec
    folder = tmp_path_factory.mktemp("integration-demo")
    var = folder / "var"
    (folder / "settings.toml").write_text(
        f'[host]\nvar_dir = "{var}"\n'
        f"[integration.sources.onec]\n"
        f'base_url = "{server.base_url}"\nusername = "portal"\npassword = "пароль"\n'
        f"page_size = 50\nrate_per_second = 0\ntimeout_seconds = 20\n"
    )
    env = {**os.environ, "KABINET_DEMO_DIR": str(var)}
    with kabinet_server(folder, "--settings", "settings.toml", "demo", env=env, timeout=180) as url:
        yield url, var / "demo.sqlite3"


def login(page: Any, url: str, who: tuple[str, str]) -> None:
    page.goto(url + "/login")
    page.fill("input[name=login]", who[0])
    page.fill("input[name=password]", who[1])
    page.click("form[action='/login'] button[type=submit]")
    page.wait_for_load_state()


def run_now(page: Any, url: str) -> int:
    """Press "run now" for the 1C source; returns the id of the run it started."""
    page.goto(url + "/integration/runs")
    page.click("form[action='/integration/runs/sync'] button[value=delta]")
    page.wait_for_url("**/integration/runs?after=*")
    after = int(page.url.rsplit("after=", 1)[1])
    page.wait_for_function(
        """after => [...document.querySelectorAll('#runs-table tr[data-source=onec]')]
            .some(r => Number(r.dataset.run) > after)""",
        arg=after,
        timeout=20_000,
    )
    return int(
        page.eval_on_selector_all(
            "#runs-table tr[data-source=onec]", "rs => Math.max(...rs.map(r => +r.dataset.run))"
        )
    )


def shoot(page: Any, url: str, path: str, name: str, folder: Path) -> None:
    for width in (1280, 360):
        page.set_viewport_size({"width": width, "height": 900})
        page.goto(url + path)
        page.screenshot(path=str(folder / f"{name}-{width}.png"), full_page=True)
        overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
        assert overflow <= 0, f"{path} is {overflow}px wider than a {width}px screen"


def test_staff_run_a_sync_and_a_cancel_request_comes_back_from_1c(
    portal: tuple[str, Path], onec: tuple[OneCServer, Generated], tmp_path: Path
) -> None:
    from playwright.sync_api import expect

    url, database = portal
    server, made = onec
    shots = Path(os.environ.get("KABINET_SCREENSHOTS", tmp_path))
    shots.mkdir(parents=True, exist_ok=True)
    with chromium() as browser:
        staff = browser.new_context(locale="ru-RU", viewport={"width": 1280, "height": 900})
        admin = staff.new_page()
        login(admin, url, ADMIN)
        admin.goto(url + "/integration/runs")
        # The demo's own syncs from its local 1C, done.
        expect(admin.locator("tr[data-source=demo-1c][data-state=succeeded]")).to_have_count(2)

        # Orders moved on in 1C, which answers slowly for a moment: the page shows the
        # run going, then its end.
        server.data.tick(60)
        for ref in made.orders:
            moved = dict(server.data.get(ORDERS, ref) or {})
            server.data.put(ORDERS, {**moved, "Дислокация": "Тверь"})
        server.fault("slow", match="$filter=Ref_Key", delay=4.0, after=1)
        # The run shows while it goes, then its end: the page follows it without a
        # reload. On the embedded SQLite a run can lose the write lock to the event
        # relay ("database is locked", shown as a failed run with its reason): staff
        # then press "run now" again, which is what the page offers.
        for _attempt in range(3):
            first = run_now(admin, url)
            ended = admin.locator(
                f"tr[data-run='{first}'][data-state=succeeded], "
                f"tr[data-run='{first}'][data-state=failed]"
            )
            expect(ended).to_be_visible(timeout=40_000)
            if ended.get_attribute("data-state") == "succeeded":
                break
            server.fault("slow", match="$filter=Ref_Key", delay=1.0, after=1)
        done = admin.locator(f"tr[data-run='{first}'][data-state=succeeded]")
        expect(done).to_be_visible(timeout=5_000)
        with sqlite3.connect(database) as db:
            (order_id,) = db.execute(
                "select id from shipments_order where external_id = ?", (made.orders[0],)
            ).fetchone()
            # What moved in 1C is in the portal (a failed attempt may have committed
            # some pages already: each page is its own transaction).
            places = {
                db.execute(
                    "select location from shipments_order where external_id = ?", (ref,)
                ).fetchone()[0]
                for ref in made.orders
            }
            assert places == {"Тверь"}

        phone = browser.new_context(locale="ru-RU", viewport={"width": 360, "height": 740})
        client = phone.new_page()
        login(client, url, CLIENT)
        client.goto(f"{url}/shipments/orders/{order_id}")
        expect(client.locator("h1")).to_contain_text(NUMBER)
        client.fill("#cancel-form textarea[name=comment]", "Груз не готов к отгрузке")
        client.click("#cancel-form button[type=submit]")
        expect(client.locator("#requests li[data-kind=cancel]")).to_be_visible()

        # The request reaches 1C (the outbound queue, through the event bus and a job).
        def written() -> dict[str, Any] | None:
            # the booking demo's new orders went to 1C too: the cancel request is ours
            rows = [r for r in server.data.sets[REQUESTS].values() if r["ВидЗапроса"] == "Отмена"]
            return rows[0] if rows else None

        request = until(written, "the cancel request in 1C")
        assert request["ВидЗапроса"] == "Отмена"
        assert request["Заявка_Key"] == made.orders[0]

        # The 1C operator cancels the order and answers; a broken order comes along.
        server.data.tick(60)
        order = dict(server.data.get(ORDERS, made.orders[0]) or {})
        order["Статус"] = "Отменена"
        server.data.put(ORDERS, order)
        server.data.put(REQUESTS, {**request, "Статус": "Принят", "Ответ": "Заявка отменена"})
        broken = dict(server.data.get(ORDERS, made.orders[1]) or {})
        broken["Статус"] = "Потеряна"
        server.data.put(ORDERS, broken)

        second = run_now(admin, url)
        expect(admin.locator(f"tr[data-run='{second}'][data-state=succeeded]")).to_be_visible(
            timeout=30_000
        )
        client.reload()
        expect(client.locator("#order-status")).to_have_text("Отменена")
        expect(client.locator("#order-status")).to_have_class("sh-status sh-cancelled")
        expect(client.locator("#cancel-form")).to_have_count(0)

        admin.goto(url + "/integration/quarantine")
        expect(admin.locator("#items")).to_contain_text("Потеряна")
        shoot(admin, url, "/integration/runs", "integration-runs", shots)
        shoot(admin, url, "/integration/quarantine", "integration-quarantine", shots)
