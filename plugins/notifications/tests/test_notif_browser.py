"""Debian's chromium against a real ``kabinet demo`` server (only the built-in apps and
notifications): staff edit an SMS template with its live counter, preview, save and a
refused syntax error; a person's push button registers the service worker.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterator
from typing import Any

import pytest

from kabinet.testing import chromium, disabled_env, kabinet_server, require_chromium
from kabinet_notifications.commands import vapid_keys

pytestmark = [pytest.mark.browser, pytest.mark.slow]

ONLY = ("notifications",)  # the plugins enabled; every other installed one is off
ADMIN = "admin@demo.kabinet.example"
USER = "user@demo.kabinet.example"
PASSWORD = "kabinet-demo"  # the demo accounts' printed password


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    require_chromium()  # before starting a server no test could use
    folder = tmp_path_factory.mktemp("notifications-demo")
    var = folder / "var"
    public, private = vapid_keys()
    (folder / "settings.toml").write_text(
        f'[host]\nvar_dir = "{var}"\n'
        f'[notifications]\nvapid_public_key = "{public}"\nvapid_private_key = "{private}"\n'
    )
    env = {**os.environ, "KABINET_DEMO_DIR": str(var), **disabled_env(ONLY)}
    with kabinet_server(folder, "--settings", "settings.toml", "demo", env=env, timeout=60) as url:
        yield url


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with chromium() as b:
        yield b


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


def test_a_delivery_pushed_twice_shows_one_notification(demo: str, browser: Any) -> None:
    """The service worker shows a push under its delivery's tag: the same delivery pushed
    again (its worker killed after the push service took it) replaces the first, and
    another delivery shows beside it. Pushes are delivered to the worker by Chromium's
    DevTools protocol, as a push service would."""
    page, errors = signed_in(
        browser, demo, USER, permissions=["notifications"], viewport={"width": 360, "height": 740}
    )
    page.goto(demo + "/notifications/me")
    page.evaluate(
        "navigator.serviceWorker.register("
        "'/notifications/sw.js', {scope: '/notifications/'})"
        ".then(() => navigator.serviceWorker.ready)"
    )
    cdp = page.context.new_cdp_session(page)
    registrations: list[dict[str, Any]] = []
    cdp.on(
        "ServiceWorker.workerRegistrationUpdated",
        lambda e: registrations.extend(e["registrations"]),
    )
    cdp.send("ServiceWorker.enable")
    page.wait_for_timeout(300)
    [reg] = [
        r for r in registrations if r["scopeURL"] == demo + "/notifications/" and not r["isDeleted"]
    ][:1]

    def push(tag: str, body: str) -> None:
        data = json.dumps({"title": "Kabinet", "body": body, "url": "/", "tag": tag})
        cdp.send(
            "ServiceWorker.deliverPushMessage",
            {"origin": demo, "registrationId": reg["registrationId"], "data": data},
        )

    shown = (
        "navigator.serviceWorker.getRegistration('/notifications/')"
        ".then(r => r.getNotifications()).then(ns => ns.map(n => [n.tag, n.body]))"
    )
    push("kabinet-41", "W-1 прибыла")
    page.wait_for_function(f"{shown}.then(ns => ns.length === 1)")
    push("kabinet-41", "W-1 прибыла")  # the same delivery again
    push("kabinet-42", "W-2 прибыла")
    page.wait_for_function(f"{shown}.then(ns => ns.some(n => n[0] === 'kabinet-42'))")
    assert sorted(page.evaluate(shown)) == [
        ["kabinet-41", "W-1 прибыла"],
        ["kabinet-42", "W-2 прибыла"],
    ]
    assert errors == []
