"""The security log at 1280x800, in Debian's chromium, on the session's demo: each event's
time stays on one line (it wrapped under its date, the table being ten columns wide).

Read-only: the demo is shared with the other browser tests.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from kabinet.testing import chromium

PASSWORD = "kabinet-demo"
ADMIN = "admin@demo.kabinet.example"
DESKTOP = {"width": 1280, "height": 800}

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def demo(demo_portal: Any) -> str:
    return str(demo_portal.url)


def test_the_security_logs_times_stay_on_one_line(demo: str, tmp_path: Path) -> None:
    with chromium() as browser:
        context = browser.new_context(viewport=DESKTOP, locale="ru-RU")
        context.set_default_timeout(10_000)
        page = context.new_page()
        page.goto(demo + "/login")
        page.fill("input[name=login]", ADMIN)
        page.fill("input[name=password]", PASSWORD)
        with page.expect_navigation():
            page.click("form[action='/login'] button[type=submit]")
        page.goto(demo + "/identity/audit")
        page.screenshot(path=str(tmp_path / "audit-1280.png"), full_page=True)
        lines = page.locator("td.id-when time").evaluate_all(
            """ts => ts.map(t => {
                const r = t.getClientRects();
                return [t.textContent, r.length, t.getBoundingClientRect().height,
                        parseFloat(getComputedStyle(t).lineHeight) || 24];
            })"""
        )
        assert lines  # the demo's sign-ins at least
        for text, rects, height, line in lines:
            assert rects == 1, text  # one line box: not wrapped
            assert height <= line * 1.5, (text, height, line)
        context.close()
