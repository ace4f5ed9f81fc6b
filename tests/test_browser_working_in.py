"""In a real browser, on the demo (issue 16, points 1 and 2).

- anna, a client of two companies, switches company in the header on the home page, the
  registry and the contracts page: each time the page reloads whole (one header, the
  select showing the choice, no console error), the counts and the debt are that
  company's, and "all my companies" brings back the sum; at 1280 and at 390 px.
- the demo serves on a port of its own, and the password-reset e-mail's link leads there
  and opens the form to set a new password.
"""

from __future__ import annotations

import json
import re
import time
from pathlib import Path
from typing import Any

import pytest

from kabinet.testing import chromium

pytestmark = [pytest.mark.browser, pytest.mark.slow]

PASSWORD = "kabinet-demo"


@pytest.fixture(scope="module")
def demo(demo_portal: Any) -> tuple[str, Path]:
    """The session's ``kabinet demo`` (tests/conftest.py: a free port, never 8000's
    address), shared with the journeys, and its messages folder."""
    return demo_portal.url, demo_portal.messages


def _sign_in(page: Any, url: str, login: str) -> None:
    page.goto(url + "/login")
    page.fill("input[name=login]", login)
    page.fill("input[name=password]", PASSWORD)
    page.click("form[action='/login'] button[type=submit]")
    page.wait_for_load_state()


def _number(text: str) -> int:
    return int(re.sub(r"\D", "", text) or "0")


def _switch(page: Any, value: str) -> None:
    """Choose in the header's select, as a person does; the page loads again whole."""
    menu = page.locator("details.sitemenu > summary")
    if menu.is_visible():  # on a phone the switch is in the header's menu
        menu.click()
    with page.expect_navigation():
        page.select_option("#co-current", value)
    page.wait_for_load_state()
    assert page.locator("header.topbar").count() == 1
    assert page.locator("#co-current").evaluate("s => s.value") == value


def _home(page: Any) -> tuple[int, int]:
    """(orders, overdue debt) on the home page."""
    orders = page.locator("#shipments-home strong[data-count=all]").inner_text()
    overdue = page.locator("#home-overdue").inner_text()
    return _number(orders), _number(overdue)


def _registry_count(page: Any) -> int:
    page.wait_for_function(
        "() => { const c = document.querySelector('#sh-count-all');"
        " return c && c.textContent.trim() && c.textContent.trim() !== '…'; }"
    )
    return _number(page.locator("#sh-count-all").inner_text())


@pytest.mark.parametrize("width", [1280, 390])
def test_a_client_of_two_companies_switches_company_on_every_page(
    demo: tuple[str, Path], width: int, tmp_path: Path
) -> None:
    url, _ = demo
    with chromium() as browser:
        context = browser.new_context(
            viewport={"width": width, "height": 900}, locale="ru-RU", is_mobile=width < 500
        )
        page = context.new_page()
        errors: list[str] = []
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        _sign_in(page, url, "anna@demo.test")
        options = page.locator("#co-current option")
        values = [options.nth(i).get_attribute("value") for i in range(options.count())]
        assert values[0] == "all"
        companies = [v for v in values if v != "all"]
        assert len(companies) == 2
        assert page.locator("#co-current").evaluate("s => s.value") == "all"
        everything = _home(page)

        per_company: dict[str, tuple[int, int]] = {}
        for company in companies:  # on the home page
            _switch(page, company)
            assert page.url == url + "/"
            per_company[company] = _home(page)
        first, second = (per_company[c] for c in companies)
        assert first[0] + second[0] == everything[0]  # the orders of one, then the other
        assert first[1] + second[1] == everything[1]  # and their debts
        assert first != second
        page.screenshot(path=str(tmp_path / f"home-{width}.png"), full_page=True)

        page.goto(url + "/shipments/")  # the registry, working in the second company
        assert _registry_count(page) == second[0]
        _switch(page, companies[0])
        assert page.url.rstrip("/") == url + "/shipments"
        assert _registry_count(page) == first[0]
        page.screenshot(path=str(tmp_path / f"registry-{width}.png"))

        page.goto(url + "/shipments/contracts")  # the debt per contract
        first_contracts = page.locator("main").inner_text()
        _switch(page, companies[1])
        assert page.url == url + "/shipments/contracts"
        assert page.locator("main").inner_text() != first_contracts

        _switch(page, "all")  # all my companies again
        page.goto(url + "/")
        assert _home(page) == everything
        assert errors == []
        context.close()


def test_the_demos_reset_link_leads_to_where_it_serves(demo: tuple[str, Path]) -> None:
    url, messages = demo
    assert not url.endswith(":8000")
    with chromium() as browser:
        page = browser.new_page(viewport={"width": 1280, "height": 900}, locale="ru-RU")
        page.goto(url + "/identity/reset")
        page.fill("input[name=login]", "dmitry@demo.test")
        page.click("main form button[type=submit]")
        page.wait_for_load_state()
        resets: list[dict[str, Any]] = []
        deadline = time.monotonic() + 15
        while not resets and time.monotonic() < deadline:  # the demo sends it in a moment
            sent = [json.loads(p.read_text()) for p in sorted(messages.glob("*.json"))]
            resets = [m for m in sent if m["kind"] == "identity.password_reset"]
            if not resets:
                page.wait_for_timeout(200)
        assert resets, "no password-reset message in the demo's messages folder"
        body = resets[-1]["body"]
        links = re.findall(r"https?://\S+", body)
        assert links, body
        assert all(link.startswith(url + "/identity/reset/confirm?token=") for link in links)
        page.goto(links[0])
        assert page.locator("input[name=token]").count() == 1
