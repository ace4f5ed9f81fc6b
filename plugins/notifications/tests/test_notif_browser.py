"""Debian's chromium against a real ``kabinet demo`` server (only the built-in apps and
notifications): staff edit an SMS template with its live counter, preview, save and a
refused syntax error; a person's push button registers the service worker.
"""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from kabinet_notifications.commands import vapid_keys

pytestmark = [pytest.mark.browser, pytest.mark.slow]

CHROMIUM = "/usr/bin/chromium"
OTHERS = ("companies", "dictionaries", "integration", "shipments")
ADMIN = "admin@demo.kabinet.example"
USER = "user@demo.kabinet.example"
PASSWORD = "kabinet-demo"  # the demo accounts' printed password


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    if not Path(CHROMIUM).exists():
        pytest.skip("Debian chromium is not installed")
    folder = tmp_path_factory.mktemp("notifications-demo")
    var = folder / "var"
    public, private = vapid_keys()
    disabled = "".join(f"[{name}]\nenabled = false\n" for name in OTHERS)
    (folder / "settings.toml").write_text(
        f'[host]\nvar_dir = "{var}"\n{disabled}'
        f'[notifications]\nvapid_public_key = "{public}"\nvapid_private_key = "{private}"\n'
    )
    port = free_port()
    kabinet = Path(sys.executable).parent / "kabinet"
    log = (folder / "server.log").open("w")
    proc = subprocess.Popen(
        [str(kabinet), "--settings", "settings.toml", "demo", "--port", str(port)],
        cwd=folder,
        env={**os.environ, "KABINET_DEMO_DIR": str(var)},
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            if proc.poll() is not None:
                pytest.fail(f"kabinet demo exited: {(folder / 'server.log').read_text()[-3000:]}")
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


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        b = pw.chromium.launch(
            executable_path=CHROMIUM, args=["--headless", "--no-sandbox", "--disable-gpu"]
        )
        try:
            yield b
        finally:
            b.close()


def signed_in(browser: Any, url: str, login: str, **context: Any) -> tuple[Any, list[str]]:
    page = browser.new_context(locale="ru-RU", **context).new_page()
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(url + "/login")
    page.fill("input[name=login]", login)
    page.fill("input[name=password]", PASSWORD)
    page.click("form[action='/login'] button[type=submit]")
    page.wait_for_load_state()
    return page, errors


def test_staff_edit_an_sms_template_with_its_live_counter(demo: str, browser: Any) -> None:
    from playwright.sync_api import expect

    page, errors = signed_in(browser, demo, ADMIN, viewport={"width": 1280, "height": 900})
    page.goto(demo + "/notifications/")
    page.get_by_role("link", name="Код подтверждения").first.click()
    page.goto(demo + "/notifications/n/identity.code/sms/ru")
    counter = page.locator("#sms-count")
    expect(counter).to_have_text("15 символов · 1 SMS · UCS-2")  # «Код: {{ code }}»
    body = page.locator("#f-body")
    body.fill("Code {{ code }}")  # Latin: GSM-7, where a brace counts twice
    expect(counter).to_have_text("19 символов · 1 SMS · GSM-7")
    body.fill("Ваш код {{ code }}. " + "Никому его не сообщайте. " * 3)
    expect(counter).to_have_text("95 символов · 2 SMS · UCS-2")
    page.click("button[value=preview]")
    preview = page.locator("#preview")
    expect(preview.locator("pre")).to_contain_text("Ваш код 123456. Никому его не сообщайте.")
    # rendered: six digits for "{{ code }}", the trailing space stripped
    expect(preview.locator("#sms-parts")).to_have_text("90 символов · 2 SMS · UCS-2")
    page.click("button[value=save]")
    expect(page.locator(".flash-success")).to_contain_text("Шаблон сохранён.")
    expect(page.locator("#versions tbody tr")).to_have_count(1)
    page.locator("#f-body").fill("Ваш код {{ code }}\n{% if code %}без конца")
    page.click("button[value=save]")
    error = page.locator("#template-error")
    expect(error).to_contain_text("Шаблон не сохранён")
    expect(error).to_contain_text("строка 2")
    page.goto(demo + "/notifications/n/identity.code/sms/ru")
    expect(page.locator("#f-body")).to_have_value(re.compile(r"^Ваш код \{\{ code \}\}\. Никому"))
    expect(page.locator("#versions tbody tr")).to_have_count(1)
    assert errors == []


def test_the_push_button_registers_the_service_worker_without_a_push_service(
    demo: str, browser: Any
) -> None:
    from playwright.sync_api import expect

    page, errors = signed_in(browser, demo, USER, viewport={"width": 360, "height": 740})
    page.goto(demo + "/notifications/me")
    button = page.locator("#push-subscribe")
    assert page.evaluate("navigator.serviceWorker.getRegistration('/notifications/')") is None
    button.click()
    scope = page.evaluate(
        "navigator.serviceWorker.getRegistration('/notifications/').then(r => r && r.scope)"
    )
    assert scope == demo + "/notifications/"
    # No push service is reachable here: the page says so and the button can be tried again.
    status = page.locator("#push-status")
    expect(status).to_contain_text("Не удалось включить уведомления.", timeout=15_000)
    expect(button).to_be_enabled()
    assert page.evaluate("document.documentElement.scrollWidth") <= 360
    assert errors == []
