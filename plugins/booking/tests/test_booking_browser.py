"""Placing an order in Debian's chromium against ``kabinet demo``, in Russian, at 1280 and
390 px: a client (the demo's dmitry@demo.test) opens the form, sends it once with a
missing place (the error beside its field), fills it in, sends it, sees the request's card
and then the request in "My requests", with the count on the home page. At 390 px the form
and the list fit the width (no horizontal scroll). Screenshots go to
``$KABINET_BOOKING_SHOTS`` when set."""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from kabinet.testing import chromium, kabinet_server

pytestmark = [pytest.mark.browser, pytest.mark.slow]

CLIENT = "dmitry@demo.test"
PASSWORD = "kabinet-demo"


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    folder = tmp_path_factory.mktemp("booking-demo")
    var = folder / "var"
    (folder / "settings.toml").write_text(f'[host]\nvar_dir = "{var}"\n')
    env = {k: v for k, v in os.environ.items() if not k.startswith("KABINET__")}
    env["KABINET_DEMO_DIR"] = str(var)
    with kabinet_server(folder, "--settings", "settings.toml", "demo", env=env, timeout=180) as url:
        yield url


def shot(page: Any, name: str) -> None:
    folder = os.environ.get("KABINET_BOOKING_SHOTS")
    if folder:
        Path(folder).mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(Path(folder) / f"{name}.png"), full_page=True)


def fits(page: Any) -> bool:
    return bool(page.evaluate("document.documentElement.scrollWidth <= window.innerWidth"))


@pytest.mark.parametrize("width", [1280, 390])
def test_a_client_places_an_order_and_sees_it_in_my_requests(demo: str, width: int) -> None:
    cargo = f"Станки {width}"
    with chromium() as browser:
        context = browser.new_context(
            viewport={"width": width, "height": 900}, locale="ru-RU", is_mobile=width < 500
        )
        page = context.new_page()
        errors: list[str] = []
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        page.goto(demo + "/login")
        page.fill("input[name=login]", CLIENT)
        page.fill("input[name=password]", PASSWORD)
        page.click("form[action='/login'] button[type=submit]")
        page.wait_for_load_state()

        page.goto(demo + "/booking/new")
        assert page.locator("h1").inner_text() == "Новая заявка"
        contracts = page.locator("#f-contract_id option").evaluate_all(
            "options => options.map(o => o.value).filter(v => v)"
        )
        assert contracts, "the client may order under a contract"
        page.select_option("#f-contract_id", contracts[0])
        page.fill("#f-destination", "Казань, ул. Портовая, 12")
        loading = dt.date.today() + dt.timedelta(days=5)
        page.fill("#f-loading_date", loading.isoformat())
        page.fill("#f-cargo_name", cargo)
        page.fill("#f-cargo_weight", "1500")
        assert fits(page)
        page.click("button[name=action][value=send]")  # the browser asks for the place
        assert page.evaluate("document.querySelector('#f-origin').validity.valueMissing")
        assert page.url.endswith("/booking/new")
        page.fill("#f-origin", "Москва, ул. Складская, 5")
        page.fill("#f-loading_from", "12:00")
        page.fill("#f-loading_to", "09:00")
        page.click("button[name=action][value=send]")  # a rule only the server knows
        page.wait_for_load_state()
        assert page.locator("#e-loading_to").inner_text() == (
            "Окно должно заканчиваться позже, чем начинается."
        )
        assert page.locator("#f-cargo_name").input_value() == cargo  # kept as typed
        assert fits(page)
        shot(page, f"form-error-{width}")
        assert [e for e in errors if "status of 400" not in e] == []  # the refusal is a 400
        errors.clear()

        page.fill("#f-loading_to", "15:00")
        page.click("button[name=action][value=send]")
        page.wait_for_url("**/booking/*")
        assert "Отправлена" in page.locator("h1").inner_text()
        assert cargo in page.locator(".booking-fields").inner_text()
        shot(page, f"card-{width}")

        page.goto(demo + "/booking/")
        assert page.locator("h1").inner_text() == "Мои заявки"
        mine = page.locator(".booking-requests li", has_text=cargo)
        assert mine.count() == 1
        assert "Отправлена" in mine.inner_text()
        assert fits(page)
        shot(page, f"my-requests-{width}")
        page.locator("nav.booking-states a[href='/booking/?state=sent']").click()
        page.wait_for_load_state()
        assert page.locator(".booking-requests li", has_text=cargo).count() == 1
        page.goto(demo + "/")
        assert "Новые заявки" in page.locator(".booking-home").inner_text()
        assert errors == []
