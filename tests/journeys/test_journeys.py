"""One journey per persona of the README, in Debian's chromium against the whole demo
(issue 16, point 10), on a wide screen in Russian, on a 390 px phone and in English:

- a visitor registers, confirms the codes that reached their mailbox and phone (the demo's
  messages folder), and asks to join ООО «Ромашка»;
- the manager sees the request with the applicant's address and accepts it;
- the new client opens the registry (their company's orders only), filters it, opens an
  order's card, downloads its document, asks to cancel and sees the request pending;
- the client of two companies switches company in the header and sees that company's
  orders, contracts and debt, and "all my companies" again;
- the admin creates a role and edits a notification template.

Every journey fails on a 5xx answer, a console or script error, a raw code or key on a page
(pagetext.raw_codes) and, on the phone, a page wider than the screen: see journey_people.
The portal is built once for the session (``demo_portal``); the variants run in it one
after the other, each with people and orders of its own. Marked ``browser`` and ``slow``,
not ``smoke``: the demo keeps its own SQLite database whatever ``KABINET_TEST_DB`` says, so
the PostgreSQL pass runs them once and the SQLite pass would only repeat them.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from journey_people import VARIANTS, Person, Variant, message_to

pytestmark = [pytest.mark.browser, pytest.mark.slow]

FIRST = "ООО «Ромашка»"  # the demo's organization 1 (ИНН 0077070018)
FIRST_INN = "0077070018"
SECOND = "АО «СеверСталь-Трейд»"  # anna's other company
NEW_PASSWORD = "a-long-password-1"

TEXTS = {
    "ru": {
        "request_new": "новый",
        "registry": "Заявки",
        "in_progress": "В работе",
        "pending": "На рассмотрении",
        "all_mine": "Все мои компании",
        "role_created": "Роль создана.",
        "template_saved": "Шаблон сохранён.",
        "never": "не менялось",
    },
    "en": {
        "request_new": "new",
        "registry": "Orders",
        "in_progress": "In progress",
        "pending": "Pending",
        "all_mine": "All my companies",
        "role_created": "The role was created.",
        "template_saved": "The template was saved.",
        "never": "never changed",
    },
}

# The notification each variant's admin edits (its title in Russian and English): one of
# its own, so each finds it never changed.
EVENTS = [
    ("shipments.order.delivered", {"ru": "Груз доставлен", "en": "Order delivered"}),
    (
        "shipments.order.status_changed",
        {"ru": "Статус заявки изменён", "en": "Order status changed"},
    ),
    (
        "shipments.request.answered",
        {"ru": "Ответ на запрос по заявке", "en": "Answer to your request"},
    ),
]

# What the visitor of each variant leaves for the manager and the new client that follow.
NEWCOMERS: dict[str, dict[str, str]] = {}


def number(text: str) -> int:
    return int(re.sub(r"\D", "", text) or "0")


def newcomer(variant: Variant) -> dict[str, str]:
    i = VARIANTS.index(variant)
    name = {"ru": "Вера Путникова", "en": "Vera Walker"}[variant.lang]
    return {
        "name": f"{name} {i + 1}",
        "email": f"journey-{variant.name}@example.test",
        "phone": f"916555{i:04d}",
    }


def registry_count(page: Any) -> int:
    """The registry's count of all its orders (filled in by htmx after the page)."""
    page.wait_for_function(
        "() => { const c = document.querySelector('#sh-count-all');"
        " return c && /\\d/.test(c.textContent); }"
    )
    return number(page.locator("#sh-count-all").inner_text())


def organizations(page: Any) -> set[str]:
    """The organizations of the registry's rows, as shown in each row."""
    return {t.strip() for t in page.locator("#orders tbody td.sh-c-org").all_inner_texts()}


def open_filters(page: Any) -> None:
    """On a phone the filters are folded under their summary: open them, as a person does."""
    if not page.locator("#filters").evaluate("d => d.open"):
        page.click("#filters > summary")


def test_a_visitor_registers_confirms_both_codes_and_asks_to_join(
    person: Callable[[], Person], variant: Variant, demo_portal: Any
) -> None:
    t = TEXTS[variant.lang]
    me = newcomer(variant)
    visitor = person()
    visitor.goto("/")
    visitor.page.locator("a[href='/companies/register']").first.click()
    visitor.page.wait_for_url("**/companies/register")
    visitor.look()
    visitor.page.fill("#f-full_name", me["name"])
    visitor.page.fill("#f-email", me["email"])
    visitor.page.fill("#f-phone", me["phone"])
    visitor.page.fill("#f-password", NEW_PASSWORD)
    visitor.page.fill("#f-password2", NEW_PASSWORD)
    visitor.page.check("input[name=consent]")
    visitor.page.click("main form button[type=submit].button")
    visitor.page.wait_for_url("**/companies/register/confirm")
    visitor.look()

    messages: Path = demo_portal.messages  # their mailbox and their phone
    email_code = message_to(messages, me["email"], "identity.code")["context"]["code"]
    sms_code = message_to(messages, "+7" + me["phone"], "identity.code")["context"]["code"]
    visitor.page.fill("#f-email_code", str(email_code))
    with visitor.page.expect_navigation():
        visitor.page.click("form[data-purpose=confirm_email] button[value=check]")
    visitor.look()
    visitor.page.fill("#f-phone_code", str(sms_code))
    visitor.page.click("form[data-purpose=confirm_phone] button[value=check]")
    visitor.page.wait_for_url("**/companies/my")
    visitor.look()

    visitor.page.fill("#f-inn", FIRST_INN)
    visitor.page.click("form[action='/companies/my/requests'] button")
    visitor.page.wait_for_url("**/companies/my")
    visitor.look()
    mine = visitor.text("#my-requests")
    assert FIRST in mine
    assert t["request_new"] in mine
    NEWCOMERS[variant.name] = me


def test_the_manager_sees_the_request_and_accepts_it(
    person: Callable[[], Person], variant: Variant
) -> None:
    assert variant.name in NEWCOMERS, "needs the visitor's journey of this variant first"
    me = NEWCOMERS[variant.name]
    manager = person()
    manager.sign_in("manager1@demo.test")
    manager.goto("/companies/requests")
    with manager.page.expect_navigation():
        manager.page.click(f"#requests-table tr:has-text('{me['name']}') a")
    manager.look()
    request = manager.text("main")
    assert me["email"] in request  # who is asking, and how to reach them
    assert me["phone"][-4:] in re.sub(r"\D", "", request)
    assert FIRST in request
    manager.page.click("#accept-form button[value=accept]")
    manager.page.wait_for_url("**/companies/organizations/1")
    manager.look()
    assert manager.text("#org-name") == FIRST
    assert me["name"] in manager.text("main")  # among the company's people now


def test_the_new_client_filters_opens_downloads_and_asks_to_cancel(
    person: Callable[[], Person], variant: Variant
) -> None:
    assert variant.name in NEWCOMERS, "needs the visitor's and the manager's journeys first"
    t = TEXTS[variant.lang]
    me = NEWCOMERS[variant.name]
    client = person()
    client.sign_in(me["email"], NEW_PASSWORD)
    page = client.page
    if variant.phone:  # the sections are in the header's menu
        page.click("details.sitemenu > summary")
    page.locator(".mainnav a[href='/shipments/']").first.click()
    page.wait_for_url("**/shipments/")
    client.look()
    assert client.text("main h1") == t["registry"]
    everything = registry_count(page)
    assert everything > 0
    assert organizations(page) <= {FIRST}  # their company's orders, no other's

    open_filters(page)
    page.select_option(".sh-filters select[name=status]", "in_progress")
    page.click(".sh-filters button[type=submit]")
    page.wait_for_url("**status=in_progress**")
    client.look()
    statuses = page.locator("#orders tbody td.sh-c-status").evaluate_all(
        "cells => cells.map(c => c.querySelector('.sh-status').textContent.trim())"
    )  # each row's status (a late order's flag beside it)
    assert statuses
    assert set(statuses) == {t["in_progress"]}
    assert len(statuses) < everything

    # an order of theirs in progress with a document, that nobody asked to cancel yet
    links = page.locator("#orders tbody td.sh-c-number a")
    hrefs = [str(links.nth(i).get_attribute("href")) for i in range(links.count())]
    for href in hrefs:
        client.goto(href)
        if page.locator("#documents a[download]").count() and page.locator("#cancel-form").count():
            break
    else:
        pytest.fail("no order in progress with a document and no request yet")
    with page.expect_download() as download:
        page.locator("#documents a[download]").first.click()
    saved = download.value.path()
    assert saved is not None
    assert Path(saved).read_bytes().startswith(b"%PDF")

    page.fill("#cancel-form textarea[name=comment]", f"Journey {variant.name}")
    with page.expect_navigation():
        page.click("#cancel-form button[type=submit]")
    client.look()
    pending = page.locator("#requests li[data-kind=cancel]")
    assert pending.get_attribute("data-status") == "pending"
    assert t["pending"] in pending.inner_text()
    assert f"Journey {variant.name}" in pending.inner_text()
    assert page.locator("#cancel-form").count() == 0


def test_a_visitor_who_registered_in_english_signs_in_to_english(
    person: Callable[[], Person], variant: Variant
) -> None:
    if variant.lang != "en":
        pytest.skip("the English newcomer's")
    assert variant.name in NEWCOMERS, "needs the visitor's journey of this variant first"
    me = NEWCOMERS[variant.name]
    newcomer = person()
    page = newcomer.page
    page.goto(newcomer.url + "/login")  # no switch in the header this time
    page.fill("input[name=login]", me["email"])
    page.fill("input[name=password]", NEW_PASSWORD)
    page.click("form[action='/login'] button[type=submit]")
    page.wait_for_url(lambda u: "/login" not in u)
    assert page.locator("html").get_attribute("lang") == "en"


def test_the_client_of_two_companies_switches_and_sees_the_others_orders_and_debt(
    person: Callable[[], Person], variant: Variant
) -> None:
    t = TEXTS[variant.lang]
    anna = person()
    anna.sign_in("anna@demo.test")
    page = anna.page

    def open_menu() -> None:
        if variant.phone and not page.locator("details.sitemenu[open]").count():
            page.click("details.sitemenu > summary")  # the company switch is in the menu

    open_menu()
    select = page.locator("#co-current")
    options = {
        str(o.get_attribute("value")): o.inner_text().strip()
        for o in select.locator("option").all()
    }
    assert options == {"all": t["all_mine"], "1": FIRST, "2": SECOND}
    assert select.evaluate("s => s.value") == "all"

    def switch(value: str) -> None:
        open_menu()
        with page.expect_navigation():
            page.select_option("#co-current", value)
        anna.look()
        assert page.locator("header.topbar").count() == 1
        assert page.locator("#co-current").evaluate("s => s.value") == value

    def home() -> tuple[int, int]:
        anna.goto("/")
        orders = number(anna.text("#shipments-home strong[data-count=all]"))
        return orders, number(anna.text("#home-overdue"))

    everything = home()
    seen: dict[str, tuple[int, int]] = {}
    numbers: dict[str, set[str]] = {}
    for value, name in (("2", SECOND), ("1", FIRST)):
        switch(value)
        seen[value] = home()
        anna.goto("/shipments/")
        assert registry_count(page) == seen[value][0]
        assert organizations(page) <= {name}  # (one company's registry has no such column)
        numbers[value] = set(page.locator("#orders tbody td.sh-c-number").all_inner_texts())
        anna.goto("/shipments/contracts")
        parties = {
            c.strip() for c in page.locator("#contracts tbody td:nth-child(3)").all_inner_texts()
        }
        assert parties
        assert (SECOND in parties) == (value == "2")
        assert all(p == SECOND for p in parties) == (value == "2")
    assert seen["1"] != seen["2"]
    assert numbers["1"]
    assert numbers["2"]
    assert not numbers["1"] & numbers["2"]  # the other company's orders, none of the first's
    assert seen["1"][0] + seen["2"][0] == everything[0]  # the orders of one, then the other
    assert seen["1"][1] + seen["2"][1] == everything[1]  # and their overdue debts

    switch("all")  # all my companies again (and for whoever comes next)
    assert home() == everything


def test_the_admin_creates_a_role_and_edits_a_template(
    person: Callable[[], Person], variant: Variant
) -> None:
    t = TEXTS[variant.lang]
    i = VARIANTS.index(variant) + 1
    admin = person()
    admin.sign_in("admin@demo.kabinet.example")
    page = admin.page

    admin.goto("/roles/")
    page.fill("#f-code", f"dispatcher_{i}")
    page.fill("#f-name_ru", f"Диспетчер {i}")
    page.fill("#f-name_en", f"Dispatcher {i}")
    page.click("#new button[type=submit]")
    page.wait_for_selector(".flash-success")
    admin.look()
    assert t["role_created"] in admin.text(".flash-success")
    name = {"ru": f"Диспетчер {i}", "en": f"Dispatcher {i}"}[variant.lang]
    assert page.locator("#roles tbody tr", has_text=name).count() == 1

    event, titles = EVENTS[i - 1]
    title = titles[variant.lang]
    admin.goto("/notifications/")
    row = page.locator("#notifications tbody tr", has_text=title)
    assert t["never"] in row.inner_text()
    row.get_by_role("link", name=title).click()
    page.wait_for_url(f"**/notifications/n/{event}")
    admin.look()
    page.click(f"#channels a[href$='/email/{variant.lang}']")  # the e-mail in their language
    page.wait_for_url(f"**/notifications/n/{event}/email/{variant.lang}")
    admin.look()
    assert "Андрей Админов" not in admin.text("#versions")  # only the default so far
    body = page.locator("#f-body")
    added = {"ru": "Спасибо, что выбрали нас.", "en": "Thank you for choosing us."}[variant.lang]
    body.fill(body.input_value() + "\n" + added + "\n")
    page.click("button[value=save]")
    page.wait_for_selector(".flash-success")
    admin.look()
    assert t["template_saved"] in admin.text(".flash-success")
    assert added in page.locator("#f-body").input_value()
    latest = page.locator("#versions tbody tr").first.inner_text()
    assert "Андрей Админов" in latest  # a version of its own, saying who made it
    assert latest.split()[0] == "1"

    admin.goto("/notifications/")
    row = page.locator("#notifications tbody tr", has_text=title)
    assert t["never"] not in row.inner_text()
