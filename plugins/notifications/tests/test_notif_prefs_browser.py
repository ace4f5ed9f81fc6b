"""Debian's chromium against a real ``kabinet demo`` server (built-ins, companies, shipments,
notifications): a client opens their notification preferences, turns a channel off for one
kind of message, sets quiet hours, saves, reloads and finds the choice kept, on a wide
screen and on a 390 px phone (issue 16, point 3).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import pytest

from kabinet.testing import chromium, disabled_env, kabinet_server, require_chromium

pytestmark = [pytest.mark.browser, pytest.mark.slow]

ONLY = ("companies", "shipments", "notifications")  # enabled; every other plugin is off
CLIENT = "dmitry@demo.test"
PASSWORD = "kabinet-demo"  # the demo accounts' printed password


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    require_chromium()  # before starting a server no test could use
    folder = tmp_path_factory.mktemp("notifications-prefs-demo")
    var = folder / "var"
    (folder / "settings.toml").write_text(f'[host]\nvar_dir = "{var}"\n')
    env = {**os.environ, "KABINET_DEMO_DIR": str(var), **disabled_env(ONLY)}
    with kabinet_server(folder, "--settings", "settings.toml", "demo", env=env, timeout=120) as url:
        yield url


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with chromium() as b:
        yield b


def signed_in(browser: Any, url: str, width: int) -> tuple[Any, list[str]]:
    page = browser.new_context(locale="ru-RU", viewport={"width": width, "height": 900}).new_page()
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.goto(url + "/login")
    page.fill("input[name=login]", CLIENT)
    page.fill("input[name=password]", PASSWORD)
    page.click("form[action='/login'] button[type=submit]")
    page.wait_for_load_state()
    return page, errors


@pytest.mark.parametrize(
    ("width", "channel", "start", "end"),
    [(1280, "sms", "22:00", "08:00"), (390, "email", "23:30", "07:15")],
    ids=["1280", "390"],
)
def test_a_client_turns_a_channel_off_sets_quiet_hours_and_finds_them_kept(
    demo: str, browser: Any, width: int, channel: str, start: str, end: str
) -> None:
    from playwright.sync_api import expect

    page, errors = signed_in(browser, demo, width)
    page.goto(demo + "/notifications/me")
    expect(page.locator("h1")).to_have_text("Мои уведомления")
    expect(page.locator("#quiet legend")).to_have_text("Тихие часы")
    # The first kind of message the client may turn off on this channel, on for now.
    boxes = page.locator(f"#preferences input[name=p][value$=':{channel}']:not([disabled])")
    assert boxes.count() >= 2, "the client has kinds of messages to choose from"
    box = boxes.first
    value = box.get_attribute("value")
    assert value
    box.check()  # start from "on", whatever an earlier run left
    others = [b.get_attribute("value") for b in boxes.all()[1:]]
    page.fill("#quiet-from", "")
    page.fill("#quiet-to", "")
    page.click("#preferences button[type=submit]")
    expect(page.locator(".flash-success")).to_have_text("Сохранено.")
    page.locator(f"#preferences input[value='{value}']").uncheck()
    page.fill("#quiet-from", start)
    page.fill("#quiet-to", end)
    page.click("#preferences button[type=submit]")
    expect(page.locator(".flash-success")).to_have_text("Сохранено.")
    page.reload()
    expect(page.locator(".flash-success")).to_have_count(0)  # the message was shown once
    expect(page.locator(f"#preferences input[value='{value}']")).not_to_be_checked()
    for other in others:  # only the one turned off
        expect(page.locator(f"#preferences input[value='{other}']")).to_be_checked()
    expect(page.locator("#quiet-from")).to_have_value(start)
    expect(page.locator("#quiet-to")).to_have_value(end)
    # The channel is named for a person, not by its code.
    label = page.locator(f"label.notif-check:has(input[value='{value}'])")
    expect(label).to_have_text({"sms": "SMS", "email": "Электронная почта"}[channel])
    assert page.evaluate("document.documentElement.scrollWidth") <= width
    assert errors == []
    # A time that is no time is refused beside its field, and nothing is changed.
    page.locator(f"#preferences input[value='{value}']").check()
    page.evaluate("document.querySelector('#quiet-to').type = 'text'")
    page.fill("#quiet-to", "7 утра")
    page.click("#preferences button[type=submit]")
    expect(page.locator("#e-quiet_to")).to_contain_text("время пишется как ЧЧ:ММ")
    expect(page.locator("#quiet-to")).to_have_attribute("aria-describedby", "e-quiet_to")
    expect(page.locator("#quiet-error")).to_contain_text("Не сохранено")
    page.goto(demo + "/notifications/me")
    expect(page.locator(f"#preferences input[value='{value}']")).not_to_be_checked()
    expect(page.locator("#quiet-to")).to_have_value(end)
    # the refusal's 400 is the browser's only complaint
    assert errors == [
        "Failed to load resource: the server responded with a status of 400 (Bad Request)"
    ]
