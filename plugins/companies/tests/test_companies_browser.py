"""The whole path in Debian's chromium against a real ``kabinet demo`` server.

A new person registers, confirms e-mail and phone with the codes that arrived in the
messages folder, asks to join a company by ИНН, a manager accepts, and the person sees
that company's pages; a second person is rejected (and told why), then accepted into
another company, and sees nothing of the first.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from kabinet.testing import chromium, disabled_env, kabinet_server
from kabinet_companies.validation import make_inn

pytestmark = [pytest.mark.browser, pytest.mark.slow]

FIRST_ORG_INN = make_inn(7_707_001)  # the demo's ООО «Ромашка» (demo.py seeds)
SECOND_ORG_INN = make_inn(7_707_003)  # the demo's АО «СеверСталь-Трейд»


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    folder = tmp_path_factory.mktemp("companies-demo")
    var = folder / "var"
    (folder / "settings.toml").write_text(f'[host]\nvar_dir = "{var}"\n')
    env = {**os.environ, "KABINET_DEMO_DIR": str(var), **disabled_env(["companies"])}
    with kabinet_server(folder, "--settings", "settings.toml", "demo", env=env, timeout=90) as url:
        yield url, var / "messages"


def code_for(messages: Path, to: str) -> str:
    """The latest code sent to ``to`` (the embedded delivery writes one JSON per message)."""
    found = [
        json.loads(p.read_text())
        for p in sorted(messages.glob("*identity.code.json"))
        if json.loads(p.read_text())["to"] == to
    ]
    assert found, f"no code was sent to {to}"
    return str(found[-1]["context"]["code"])


def register(page: Any, url: str, messages: Path, name: str, email: str, phone: str) -> None:
    page.goto(url + "/companies/register")
    page.fill("#f-full_name", name)
    page.fill("#f-email", email)
    page.fill("#f-phone", phone)
    page.fill("#f-password", "a-long-password-1")
    page.fill("#f-password2", "a-long-password-1")
    page.check("input[name=consent]")
    page.click("button[type=submit].button")
    page.wait_for_url("**/companies/register/confirm")
    page.goto(url + "/companies/my")  # the gate sends an unconfirmed person back
    assert page.url.endswith("/companies/register/confirm")
    page.fill("#f-email_code", code_for(messages, email))
    page.click("form[data-purpose=confirm_email] button[value=check]")
    page.fill("#f-phone_code", code_for(messages, "+7" + phone[-10:]))
    page.click("form[data-purpose=confirm_phone] button[value=check]")
    page.wait_for_url("**/companies/my")


def ask(page: Any, url: str, inn: str) -> None:
    page.goto(url + "/companies/my")
    page.fill("#f-inn", inn)
    page.click("form[action='/companies/my/requests'] button")
    page.wait_for_url("**/companies/my")


def login(page: Any, url: str, email: str, password: str) -> None:
    page.goto(url + "/login")
    page.fill("input[name=login]", email)
    page.fill("input[name=password]", password)
    page.click("form[action='/login'] button[type=submit]")
    page.wait_for_load_state()


def decide(page: Any, url: str, person: str, *, accept: bool, reason: str = "") -> None:
    page.goto(url + "/companies/requests")
    page.click(f"#requests-table tr:has-text('{person}') a")
    if accept:
        page.click("#accept-form button[value=accept]")
    else:
        page.fill("#reject-form input[name=reason]", reason)
        page.click("#reject-form button[value=reject]")
    page.wait_for_load_state()


def test_register_ask_accept_reject_and_see_only_ones_company(demo: tuple[str, Path]) -> None:
    url, messages = demo
    with chromium() as browser:
        phone = {"viewport": {"width": 360, "height": 740}, "locale": "ru-RU"}
        first = browser.new_context(**phone).new_page()
        second = browser.new_context(**phone).new_page()
        manager = browser.new_context(locale="ru-RU").new_page()

        register(first, url, messages, "Мария Первая", "maria@example.test", "9161230001")
        ask(first, url, FIRST_ORG_INN)
        assert "новый" in first.locator("#my-requests").inner_text()
        assert first.goto(url + "/companies/organizations/1").status == 403

        login(manager, url, "manager1@demo.test", "kabinet-demo")
        decide(manager, url, "Мария Первая", accept=True)
        # accepting lands on the organization the person joined
        assert manager.url.endswith("/companies/organizations/1")
        assert manager.locator("#org-name").inner_text() == "ООО «Ромашка»"

        first.goto(url + "/companies/organizations/1")
        assert first.locator("#org-name").inner_text() == "ООО «Ромашка»"
        first.click("details.sitemenu > summary")  # on a phone the company is in the menu
        assert "ООО «Ромашка»" in first.locator(".co-switch").inner_text()
        assert first.evaluate("document.documentElement.scrollWidth") <= 360

        register(second, url, messages, "Семён Второй", "semen@example.test", "9161230002")
        ask(second, url, SECOND_ORG_INN)
        decide(manager, url, "Семён Второй", accept=False, reason="Не подтвердили")
        second.goto(url + "/companies/my")
        mine = second.locator("#my-requests").inner_text()
        assert "отклонён" in mine
        assert "Не подтвердили" in mine
        assert second.goto(url + "/companies/organizations/2").status == 403

        ask(second, url, SECOND_ORG_INN)  # asks again, and is taken this time
        decide(manager, url, "Семён Второй", accept=True)
        second.goto(url + "/companies/organizations")
        listed = second.locator("#co-results").inner_text()
        assert "СеверСталь" in listed
        assert "Ромашка" not in listed
        assert second.goto(url + "/companies/organizations/1").status == 404
        api = second.request.get(url + "/api/companies/organizations/1")
        assert api.status == 404


def test_the_sender_withdraws_an_open_request_on_a_phone(demo: tuple[str, Path]) -> None:
    """Issue 16, point 11: Boris (the demo's open request) takes it back from My companies,
    after confirming, and sees it withdrawn with no button left."""
    url, _messages = demo
    with chromium() as browser:
        context = browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True)
        page = context.new_page()
        page.goto(url + "/login?next=/companies/my")
        page.fill("input[name=login]", "boris@demo.test")
        page.fill("input[name=password]", "kabinet-demo")
        page.click("form.id-form button[type=submit]")
        page.wait_for_url(url + "/companies/my")
        row = page.locator("#my-requests tbody tr").first
        assert row.get_by_role("button", name="Отозвать").is_visible()
        page.once("dialog", lambda dialog: dialog.accept())
        row.get_by_role("button", name="Отозвать").click()
        page.wait_for_url(url + "/companies/my")
        page.wait_for_selector("text=Запрос отозван.")
        assert "отозван" in page.locator("#my-requests tbody tr").first.inner_text()
        assert page.get_by_role("button", name="Отозвать").count() == 0


def test_the_admin_grants_a_right_by_typing_an_organizations_name(
    demo: tuple[str, Path],
) -> None:
    """Issue 16, point 7: on a person's page the admin gives Vera (the demo's rejected
    applicant) the client role in ООО «ВолгаАгро» by typing part of its name in the
    picker, on a 390 px phone, and the grant reads the company's name."""
    url, _messages = demo
    with chromium() as browser:
        context = browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True)
        page = context.new_page()
        errors: list[str] = []
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        login(page, url, "admin@demo.kabinet.example", "kabinet-demo")
        page.goto(url + "/roles/people?q=vera@demo.test")
        assert "/roles/people/" in page.url
        page.select_option("#f-role", "client")
        box = page.locator("#pk-organization-q")
        assert box.is_visible()  # the script replaced the number field with the search
        assert page.locator("input[name=organization][inputmode=numeric]").count() == 0
        box.click()
        box.type("волга", delay=30)
        option = page.locator(".picker-option", has_text="ООО «ВолгаАгро»")
        option.wait_for()
        assert page.locator(".picker-option").count() == 1  # only the matching one
        box.press("ArrowDown")  # the keyboard reaches the match, Enter picks it
        assert option.evaluate("el => el === document.activeElement")
        page.keyboard.press("Enter")
        assert box.input_value() == "ООО «ВолгаАгро»"
        chosen = page.locator("input[type=hidden][name=organization]").input_value()
        assert chosen.isdigit()
        assert page.evaluate("document.documentElement.scrollWidth") <= 390
        page.click("form.roles-form button[type=submit]")
        page.wait_for_selector("text=Роль назначена.")
        grants = page.locator("#grants").inner_text()
        assert "ООО «ВолгаАгро»" in grants
        assert errors == []
