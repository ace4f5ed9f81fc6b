"""A signed-in client who reaches an address no page has, on a phone (390x844), in Debian's
chromium on the demo: the error page's header is theirs, its menu holds their sections, the
company switch, their name and signing out, and signing out from there works (the page's
CSRF token belongs to their session)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import expect

from kabinet.testing import chromium

PASSWORD = "kabinet-demo"
ANNA = "anna@demo.test"  # a client of two companies
PHONE = {"width": 390, "height": 844}


@pytest.fixture(scope="module")
def demo(demo_portal: Any) -> str:
    """The session's ``kabinet demo`` (tests/conftest.py), shared with the journeys."""
    return str(demo_portal.url)


@pytest.mark.browser
@pytest.mark.slow
def test_a_client_lost_on_a_phone_keeps_their_menu(demo: str, tmp_path: Path) -> None:
    with chromium() as browser:
        context = browser.new_context(
            viewport=PHONE, locale="ru-RU", is_mobile=True, has_touch=True
        )
        context.set_default_timeout(10_000)
        page = context.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.goto(demo + "/login")
        page.fill("input[name=login]", ANNA)
        page.fill("input[name=password]", PASSWORD)
        with page.expect_navigation():
            page.click("form[action='/login'] button[type=submit]")

        answer = page.goto(demo + "/nope")
        assert answer is not None
        assert answer.status == 404
        assert page.locator("h1").inner_text() == "Страница не найдена"
        toggle = page.locator("details.sitemenu > summary")
        assert toggle.is_visible()
        toggle.click()
        expect(toggle).to_have_attribute("aria-expanded", "true")
        assert page.locator(".mainnav a[href='/shipments/']").is_visible()
        assert page.locator("#co-current").is_visible()  # the company switch
        assert page.locator(".sitemenu .usermenu-name").inner_text() == "Анна Клиентова"
        page.screenshot(path=str(tmp_path / "error-390-menu.png"))

        signout = page.get_by_role("button", name="Выйти")
        assert signout.is_visible()
        with page.expect_navigation():
            signout.click()
        page.wait_for_load_state()
        assert page.locator("details.sitemenu").count() == 0
        page.goto(demo + "/shipments/")
        assert "/login" in page.url  # signed out indeed
        assert errors == []
