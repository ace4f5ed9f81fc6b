"""The booking journey in Debian's chromium against ``kabinet serve`` on the test database
(PostgreSQL in CI) connected to the local 1C, with the organization's managers reviewing
new orders (``[booking] review_by_managers``) and messages written to the messages folder.

A client on a 390 px phone places an order through the form and sees it in "My requests";
repeats it from its card (the form opens filled) and sends that; imports an XLSX with one
error row (shown with its error before anything is sent) and sends the valid rows. A
manager returns the first request with a comment; the client reads it, edits the request
and sends it again; the manager accepts it. The portal carries it to the local 1C (the web
process's job runner), 1C accepts and creates the order, staff run a delta, and the client
sees the request accepted, finds the order ТТ-… whose card links back to the request, the
request then names the order with a link, and an e-mail in Russian told them. Every person
meets no console error and no 5xx; screenshots go to the test's temporary folder."""

from __future__ import annotations

import asyncio
import datetime as dt
import io
import json
import os
import re
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, NamedTuple

import pytest

from kabinet.testing import (
    chromium,
    drop_database,
    kabinet_server,
    migrated_database,
    require_chromium,
)
from kabinet.testkit import start_portal
from kabinet_integration_testing import REQUESTS, OneCData, OneCServer, generate

pytestmark = [pytest.mark.browser, pytest.mark.slow]

PASSWORD = "journey-пароль-1"
CONTRACTS = "Catalog_ДоговорыКонтрагентов"
MANAGER_COMMENT = "Уточните вес: на складе говорят о 900 кг"


class People(NamedTuple):
    client: str
    manager: str
    admin: str
    contract_number: str


class Journey(NamedTuple):
    url: str
    onec: OneCServer
    people: People
    messages: Path


def until(predicate: Callable[[], Any], what: str, timeout: float = 30.0) -> Any:
    """Poll a process (bounded): its work, not time, is awaited."""
    end = time.monotonic() + timeout
    while not (found := predicate()):
        if time.monotonic() > end:
            pytest.fail(f"gave up waiting for {what}")
        time.sleep(0.1)
    return found


async def prepare(folder: Path, database_url: str, onec: OneCServer) -> tuple[Path, People]:
    """The first load from the local 1C and the people, through the apps' public services;
    returns the settings file the server is started with."""
    from kabinet_booking.services import BOOKING
    from kabinet_companies.services import COMPANIES, SYSTEM
    from kabinet_integration.sync import integration

    generated = generate(onec.data, counterparties=2, orders=4, invoices=1)
    source = {
        "base_url": onec.base_url,
        "username": "portal",
        "password": "пароль",
        "page_size": 50,
        "rate_per_second": 0,
        "timeout_seconds": 10,
    }
    portal = await start_portal(
        folder,
        database_url,
        settings={
            "integration": {"sources": {"onec": source}},
            "booking": {"review_by_managers": True},
            "notifications": {"digest_minutes": 0},
        },
        web=False,
    )
    try:
        loaded = await integration(portal.host).run("onec")
        assert loaded.state == "succeeded", loaded.error
        contract = onec.data.get(CONTRACTS, generated.contracts[0])
        assert contract is not None
        companies = portal.host.services.of(COMPANIES)
        found = await companies.counterparties(SYSTEM, unassigned=True, limit=500)
        party = next(c for c in found.items if c.external_id == contract["Owner_Key"])
        org = portal.organization_id()
        await companies.ensure_organization(org, "ООО «Маршрут»")
        await companies.move_counterparty(SYSTEM, party.id, org)
        client = await portal.person(
            "client", organization=org, name="Дмитрий Клиентов", password=PASSWORD
        )
        manager = await portal.person(
            "manager", organization=org, name="Мария Менеджерова", password=PASSWORD
        )
        admin = await portal.person("admin", name="Анна Админова", password=PASSWORD)
        (mine,) = await portal.host.services.of(BOOKING).contracts(client.principal)
        return portal.settings_path, People(client.email, manager.email, admin.email, mine.number)
    finally:
        await portal.aclose()


@pytest.fixture(scope="module")
def journey(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Journey]:
    require_chromium()  # before starting a server no test could use
    folder = tmp_path_factory.mktemp("booking-journey")
    database_url = asyncio.run(migrated_database(folder / "db"))
    try:
        with OneCServer(OneCData()) as onec:
            settings, people = asyncio.run(prepare(folder, database_url, onec))
            onec.data.auto_answer = "accept"  # the 1C operator accepts what arrives
            env = {k: v for k, v in os.environ.items() if not k.startswith("KABINET__")}
            with kabinet_server(folder, "--settings", str(settings), "serve", env=env) as url:
                yield Journey(url, onec, people, folder / "var" / "messages")
    finally:
        asyncio.run(drop_database(database_url))


class Person:
    """One person's browser context; what they must never meet is collected in ``faults``."""

    def __init__(self, browser: Any, url: str, login: str, width: int, shots: Path) -> None:
        phone = width < 500
        self.url, self.width, self.shots = url, width, shots
        self.context = browser.new_context(
            viewport={"width": width, "height": 844 if phone else 900},
            locale="ru-RU",
            is_mobile=phone,
            has_touch=phone,
        )
        self.context.set_default_timeout(20_000)  # a loaded 2-core machine
        self.page = self.context.new_page()
        self.faults: list[str] = []
        self.page.on("console", self._console)
        self.page.on("pageerror", lambda e: self.faults.append(f"script error: {e}"))
        self.page.on("response", self._response)
        self.page.goto(url + "/login")
        self.page.fill("input[name=login]", login)
        self.page.fill("input[name=password]", PASSWORD)
        self.page.click("form[action='/login'] button[type=submit]")
        self.page.wait_for_url(lambda u: "/login" not in u)
        assert self.page.locator("html").get_attribute("lang") == "ru"

    def _console(self, message: Any) -> None:
        if message.type == "error":
            self.faults.append(f"console error on {self.page.url}: {message.text}")

    def _response(self, response: Any) -> None:
        if response.status >= 500:
            self.faults.append(f"{response.status} on {response.request.method} {response.url}")

    def goto(self, path: str) -> None:
        self.page.goto(self.url + path)
        self.look()

    def look(self) -> None:
        """The page as it stands: on a phone nothing wider than the screen."""
        self.page.wait_for_load_state()
        wide = self.page.evaluate("document.documentElement.scrollWidth")
        if wide > self.width:
            self.faults.append(f"{self.page.url}: {wide} px wide on a {self.width} px screen")

    def shot(self, name: str) -> None:
        self.page.screenshot(path=str(self.shots / f"{name}-{self.width}.png"), full_page=True)

    def text(self, selector: str) -> str:
        return str(self.page.locator(selector).inner_text())

    def request_id(self) -> int:
        """The request whose card is open."""
        self.page.wait_for_url(re.compile(r"/booking/\d+$"))
        return int(self.page.url.rstrip("/").rsplit("/", 1)[1])


def workbook(rows: list[dict[str, str]]) -> bytes:
    from openpyxl import Workbook

    from kabinet_booking.imports import COLUMNS

    book = Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.append(list(COLUMNS))
    for row in rows:
        sheet.append([row.get(c, "") for c in COLUMNS])
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def e_mail_saying(messages: Path, to: str, text: str) -> dict[str, Any]:
    """The e-mail written for ``to`` that says ``text``: on its own, or in a digest with
    what else was queued for them when it was sent (it may take a moment to be sent)."""

    def found() -> dict[str, Any] | None:
        for path in sorted(messages.glob("*-email-*.json")):
            message: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
            if message["to"] == to and text in message["body"]:
                return message
        return None

    # Usually seconds. Now and then (about one run in three on a loaded machine) a queued
    # delivery's sending job never runs in the web process (the delivery stays queued with
    # no attempt); the notifications sweep sends it once it is a minute old, at its next
    # tick (every minute): hence the bound.
    return dict(until(found, f"an e-mail to {to} saying {text!r}", timeout=150))


def test_a_client_orders_repeats_imports_is_reviewed_and_the_order_comes_from_1c(
    journey: Journey, tmp_path: Path
) -> None:
    from playwright.sync_api import expect

    url, people = journey.url, journey.people
    today = dt.date.today()
    loading = (today + dt.timedelta(days=5)).isoformat()
    with chromium() as browser:
        client = Person(browser, url, people.client, 390, tmp_path)
        manager = Person(browser, url, people.manager, 1280, tmp_path)
        everyone = [client, manager]
        page = client.page

        # 1. The client places an order through the form, on their phone.
        client.goto("/booking/")
        assert client.text("h1") == "Мои заявки"
        page.get_by_role("link", name="Новая заявка").first.click()
        client.look()
        assert client.text("h1") == "Новая заявка"
        offered = page.locator("#f-contract_id option", has_text=people.contract_number)
        page.select_option("#f-contract_id", offered.get_attribute("value"))
        page.fill("#f-origin", "Москва, ул. Складская, 5")
        page.fill("#f-destination", "Казань, ул. Портовая, 12")
        page.fill("#f-loading_date", loading)
        page.fill("#f-loading_from", "09:00")
        page.fill("#f-loading_to", "12:00")
        page.fill("#f-cargo_name", "Станки токарные")
        page.fill("#f-cargo_weight", "1200")
        page.fill("#f-cargo_places", "4")
        page.fill("#f-consignee", "ООО «Получатель»")
        client.look()
        client.shot("1-form")
        page.click("button[name=action][value=send]")
        first = client.request_id()
        client.look()
        assert "На согласовании" in client.text("h1")
        fields = client.text(".booking-fields")
        assert "Станки токарные" in fields
        assert f"— {people.contract_number}" in fields  # the contract by its number
        client.goto("/booking/")
        mine = page.locator(".booking-requests li", has_text="Станки токарные")
        expect(mine).to_have_count(1)
        assert "На согласовании" in mine.inner_text()
        client.shot("1-my-requests")

        # 2. They repeat it from its card: the form opens filled; they send it.
        mine.get_by_role("link").first.click()
        client.look()
        page.get_by_role("link", name="Повторить", exact=True).click()
        client.look()
        assert client.text("h1") == "Новая заявка"
        expect(page.locator("#f-origin")).to_have_value("Москва, ул. Складская, 5")
        expect(page.locator("#f-cargo_name")).to_have_value("Станки токарные")
        expect(page.locator("#f-cargo_weight")).to_have_value("1200")
        page.fill("#f-loading_date", (today + dt.timedelta(days=6)).isoformat())
        page.click("button[name=action][value=send]")
        repeated = client.request_id()
        assert repeated != first
        assert "На согласовании" in client.text("h1")

        # 3. An XLSX with one error row: shown with its error before anything is sent.
        client.goto("/booking/import")
        row = {
            "contract": people.contract_number,
            "origin": "Москва",
            "destination": "Тверь",
            "loading_date": (today + dt.timedelta(days=3)).isoformat(),
            "cargo_name": "Кирпич",
            "cargo_weight": "12,5",
        }
        rows = [
            {**row, "cargo_name": "Кирпич облицовочный"},
            {**row, "cargo_name": "Плитка", "loading_date": "2020-01-10"},  # passed
            {**row, "cargo_name": "Цемент М500", "destination": "Ярославль"},
        ]
        page.set_input_files(
            "#f-file",
            files=[
                {
                    "name": "заказы.xlsx",
                    "mimeType": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
                    "buffer": workbook(rows),
                }
            ],
        )
        page.click("form[action='/booking/import'] button[type=submit]")
        client.look()
        expect(page.locator("#import-valid")).to_have_text("2")
        bad = page.locator(".booking-import li.invalid")
        expect(bad).to_have_count(1)
        assert bad.get_attribute("data-row") == "3"  # the header is row 1
        assert "Плитка" in bad.inner_text()
        error = bad.locator("li[data-field=loading_date]")
        assert error.inner_text().startswith("Дата погрузки: ")
        client.shot("3-import-checked")
        page.goto(url + "/booking/")  # nothing was sent yet
        expect(page.locator(".booking-requests li", has_text="Кирпич облицовочный")).to_have_count(
            0
        )
        page.go_back()
        client.look()
        page.get_by_role("button", name="(2)").click()
        client.look()
        client.goto("/booking/")
        for cargo in ("Кирпич облицовочный", "Цемент М500"):
            expect(page.locator(".booking-requests li", has_text=cargo)).to_have_count(1)
        expect(page.locator(".booking-requests li", has_text="Плитка")).to_have_count(0)

        # 4. The manager returns the first request with a comment.
        manager.goto("/booking/?state=under_review")
        waiting = manager.page.locator(".booking-requests li")
        expect(waiting).to_have_count(4)
        manager.goto(f"/booking/{first}")
        assert f"— {people.contract_number}" in manager.text(".booking-fields")
        review = manager.page.locator(f"form[action='/booking/{first}/review']")
        review.locator("textarea[name=comment]").fill(MANAGER_COMMENT)
        review.locator("button[name=decision][value=return]").click()
        manager.look()
        assert "Возвращена" in manager.text("h1")

        # The client reads the comment, edits the request and sends it again.
        client.goto(f"/booking/{first}")
        assert "Возвращена" in client.text("h1")
        assert MANAGER_COMMENT in client.text("main")
        client.shot("4-returned")
        page.get_by_role("link", name="Изменить").click()
        client.look()
        expect(page.locator("#f-cargo_weight")).to_have_value("1200")
        page.fill("#f-cargo_weight", "900")
        page.click("button[name=action][value=send]")
        client.look()
        assert "На согласовании" in client.text("h1")
        assert "900" in client.text(".booking-fields")

        # The manager accepts it: it is sent on.
        manager.goto(f"/booking/{first}")
        manager.page.locator(
            f"form[action='/booking/{first}/review'] button[name=decision][value=accept]"
        ).click()
        manager.look()
        assert "Отправлена" in manager.text("h1")

        # 5. The portal carries it to the local 1C, whose operator accepts it: 1C creates
        # the order. Only the accepted request went; the others wait for review.
        def carried() -> list[dict[str, Any]]:
            docs = journey.onec.data.sets[REQUESTS].values()
            return [d for d in docs if d.get("ВидЗапроса") == "НоваяЗаявка"]

        (doc,) = until(carried, "the request in 1C")
        assert json.loads(doc["ИзмененныеПоля"])["ГрузВес"] == 900
        until(
            lambda: journey.onec.data.sets[REQUESTS][doc["Ref_Key"]].get("Заявка_Key"),
            "1C to create the order",
        )
        made = journey.onec.data.get(
            "Document_ЗаявкаНаПеревозку",
            journey.onec.data.sets[REQUESTS][doc["Ref_Key"]]["Заявка_Key"],
        )
        assert made is not None
        number = made["Number"]
        assert number.startswith("ТТ-")

        # Staff run a delta from the runs page: it brings the order and the answer.
        admin = Person(browser, url, people.admin, 1280, tmp_path)
        everyone.append(admin)
        admin.goto("/integration/runs")
        admin.page.click("form[action='/integration/runs/sync'] button[value=delta]")
        admin.page.wait_for_url("**/integration/runs?after=*")
        after = int(admin.page.url.rsplit("after=", 1)[1])
        admin.page.wait_for_function(
            """after => [...document.querySelectorAll('#runs-table tr[data-source=onec]')]
                .some(r => Number(r.dataset.run) > after && r.dataset.state === 'succeeded')""",
            arg=after,
            timeout=60_000,
        )

        client.goto(f"/booking/{first}")
        assert "Принята" in client.text("h1")
        # the delta brought the order before 1C's answer: the request names it at once
        assert f"Заявка стала заказом {number}" in client.text("main")
        client.goto(f"/shipments/?q={number}")
        page.locator("#orders tbody td[data-label='Номер'] a", has_text=number).click()
        client.look()
        expect(page.locator("h1")).to_contain_text(number)
        back = page.get_by_role("link", name=f"Из заявки № {first}")
        expect(back).to_have_count(1)
        expect(page.get_by_role("link", name="Повторить этот заказ")).to_have_count(1)
        client.shot("5-order-card")
        order_card = page.url
        back.click()
        client.look()
        became = page.locator(".flash-success", has_text="Заявка стала заказом")
        expect(became).to_contain_text(number)
        assert became.locator("a").get_attribute("href") == order_card.removeprefix(url)
        client.shot("5-request-became-order")

        # "Repeat this order" on the order's card opens the form filled from the order.
        page.goto(order_card)
        page.get_by_role("link", name="Повторить этот заказ").click()
        client.look()
        expect(page.locator("#f-origin")).to_have_value("Москва, ул. Складская, 5")
        expect(page.locator("#f-cargo_name")).to_have_value("Станки токарные")

        # 6. The client was told, in Russian, by e-mail (the messages folder).
        told = e_mail_saying(
            journey.messages,
            people.client,
            f"Ваша заявка № {first} (Москва, ул. Складская, 5 → Казань, ул. Портовая, 12"
            f" · Станки токарные) принята и стала заказом {number}.",
        )
        assert told["language"] == "ru"
        assert told["kind"] in ("booking.request.accepted", "notifications.digest")
        if told["kind"] == "booking.request.accepted":
            assert told["subject"] == f"Заявка № {first} принята"
        # The order's number too: the delta brought the order before 1C's answer.
        returned = e_mail_saying(journey.messages, people.client, MANAGER_COMMENT)
        assert f"Заявку № {first} (" in returned["body"]
        assert "вернули на доработку" in returned["body"]

        faults = [f for p in everyone for f in p.faults]
        for one in everyone:
            one.context.close()
    assert faults == [], "\n".join(faults)
