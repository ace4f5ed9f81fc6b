"""The real demo server in Debian's chromium: home page, language switch, a 360 px phone."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from kabinet.testing import chromium, kabinet_server

pytestmark = [pytest.mark.browser, pytest.mark.slow]


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """``kabinet demo`` in a subprocess on a free port, with its data in a temporary folder."""
    folder = tmp_path_factory.mktemp("demo")
    env = {**os.environ, "KABINET_DEMO_DIR": str(folder / "var")}
    with kabinet_server(folder, "demo", env=env, timeout=60) as url:
        yield url


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
