"""The real demo server in Debian's chromium: home page, language switch, a 360 px phone."""

from __future__ import annotations

from typing import Any

import pytest

from kabinet.testing import chromium

pytestmark = [pytest.mark.browser, pytest.mark.slow]


@pytest.fixture(scope="module")
def demo(demo_portal: Any) -> str:
    """The session's ``kabinet demo`` (tests/conftest.py), shared with the journeys."""
    return str(demo_portal.url)


def test_home_language_switch_and_phone_width(demo: str) -> None:
    with chromium() as browser:
        context = browser.new_context(
            viewport={"width": 360, "height": 740}, locale="ru-RU", is_mobile=True
        )
        page = context.new_page()
        errors: list[str] = []
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        page.goto(demo + "/")
        assert page.locator("h1").inner_text() == "Ваши перевозки — в одном месте"
        assert page.evaluate("document.documentElement.scrollWidth") <= 360
        page.locator("form.lang-switch button[value=en]").click()
        page.wait_for_url(demo + "/")
        assert page.locator("h1").inner_text() == "Your freight, in one place"
        assert page.locator("html").get_attribute("lang") == "en"
        assert page.evaluate("document.documentElement.scrollWidth") <= 360
        page.reload()
        assert page.locator("h1").inner_text() == "Your freight, in one place"
        assert page.evaluate("typeof htmx") == "object"
        assert errors == []


def test_the_admins_header_menus(demo: str) -> None:
    """At 1280 px the admin's sections (grouped by app) and the Administration menu are one
    row; the menus
    open on a click, close on Escape or a click elsewhere, and lead to their pages."""
    with chromium() as browser:
        page = browser.new_page(viewport={"width": 1280, "height": 800}, locale="ru-RU")
        errors: list[str] = []
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        page.goto(demo + "/login")
        page.fill("input[name=login]", "admin@demo.kabinet.example")
        page.fill("input[name=password]", "kabinet-demo")
        page.click("form[action='/login'] button[type=submit]")
        page.wait_for_load_state()
        bar = page.locator(".mainnav-inner")
        tops = bar.locator("> ul > li, > details").evaluate_all(
            "items => items.map(i => Math.round(i.getBoundingClientRect().top))"
        )
        assert len(tops) >= 4
        assert len(set(tops)) == 1, tops  # one row
        assert "Учётные записи" not in bar.locator("> ul").inner_text()
        admin = page.locator("details.adminmenu")
        accounts = admin.locator("a[href='/identity/accounts']")
        assert not accounts.is_visible()
        admin.locator("summary").click()
        assert accounts.is_visible()
        page.keyboard.press("Escape")
        assert not accounts.is_visible()
        admin.locator("summary").click()
        page.locator("main h1").click(position={"x": 5, "y": 5})  # elsewhere
        assert not accounts.is_visible()
        # the personal menu under the name; opening it closes the other
        admin.locator("summary").click()
        page.locator("details.usermenu summary").click()
        profile = page.locator("details.usermenu a[href='/identity/profile']")
        assert profile.is_visible()
        assert not accounts.is_visible()
        page.keyboard.press("Escape")
        assert not profile.is_visible()
        admin.locator("summary").click()
        accounts.click()
        page.wait_for_url(demo + "/identity/accounts")
        summary = page.locator("details.adminmenu summary")
        assert summary.get_attribute("aria-current") == "true"
        assert page.evaluate("document.documentElement.scrollWidth") <= 1280
        # on a phone it is in the header's menu, and opens within the screen
        page.set_viewport_size({"width": 360, "height": 740})
        page.goto(demo + "/shipments/")
        page.locator("details.sitemenu > summary").click()
        summary = page.locator("details.adminmenu summary")
        assert summary.get_attribute("aria-current") is None
        assert summary.inner_text().strip() == "Администрирование"
        summary.click()
        menu = page.locator("details.adminmenu .adminmenu-groups").bounding_box()
        assert menu is not None
        assert menu["x"] >= 0
        assert menu["x"] + menu["width"] <= 360
        assert page.evaluate("document.documentElement.scrollWidth") <= 360
        assert errors == []
