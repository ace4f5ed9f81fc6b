"""The shipments invoices page on a phone (390x844), in Debian's chromium, on the session's
demo: the invoices' filters stand apart from the debt panel above them (they touched it),
as far as the shell keeps a panel from what is above it (1 rem).

Read-only: the demo is shared with the other browser tests.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from kabinet.testing import chromium

PASSWORD = "kabinet-demo"
ANNA = "anna@demo.test"
PHONE = {"width": 390, "height": 844}

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def demo(demo_portal: Any) -> str:
    return str(demo_portal.url)


def test_the_invoices_filters_stand_apart_from_the_debt(demo: str, tmp_path: Path) -> None:
    with chromium() as browser:
        context = browser.new_context(
            viewport=PHONE, locale="ru-RU", is_mobile=True, has_touch=True
        )
        context.set_default_timeout(10_000)
        page = context.new_page()
        page.goto(demo + "/login")
        page.fill("input[name=login]", ANNA)
        page.fill("input[name=password]", PASSWORD)
        with page.expect_navigation():
            page.click("form[action='/login'] button[type=submit]")
        page.goto(demo + "/shipments/invoices")
        debt = page.locator("main #debt").bounding_box()
        filters = page.locator("main form.sh-filters").last.bounding_box()
        page.screenshot(path=str(tmp_path / "invoices-390.png"), full_page=True)
        assert debt is not None
        assert filters is not None
        gap = filters["y"] - (debt["y"] + debt["height"])
        assert gap >= 12, gap  # apart, not touching (1 rem is 16 px)
        context.close()
