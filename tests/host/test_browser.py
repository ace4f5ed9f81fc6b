"""The real demo server in Debian's chromium: home page, language switch, a 360 px phone."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

pytestmark = [pytest.mark.browser, pytest.mark.slow]

CHROMIUM = "/usr/bin/chromium"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """``kabinet demo`` in a subprocess on a free port, with its data in a temporary folder."""
    folder = tmp_path_factory.mktemp("demo")
    port = free_port()
    kabinet = Path(sys.executable).parent / "kabinet"
    log = (folder / "server.log").open("w")
    proc = subprocess.Popen(
        [str(kabinet), "demo", "--port", str(port)],
        cwd=folder,
        env={**os.environ, "KABINET_DEMO_DIR": str(folder / "var")},
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            if proc.poll() is not None:
                pytest.fail(f"kabinet demo exited: {(folder / 'server.log').read_text()[-2000:]}")
            try:
                if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                pytest.fail("kabinet demo did not answer /health within 60 s")
            time.sleep(0.2)  # polling a starting process, not waiting for time to pass
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        log.close()


def test_home_language_switch_and_phone_width(demo: str) -> None:
    if not Path(CHROMIUM).exists():
        pytest.skip("Debian chromium is not installed")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(
            executable_path=CHROMIUM, args=["--headless", "--no-sandbox", "--disable-gpu"]
        )
        try:
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
        finally:
            browser.close()
