"""The page shell's header on a phone (390x844) and at 1280x800, in Debian's chromium, on the
demo (every app): a client of two companies (anna) and the administrator (every staff
section).

On a phone the header is one row: the brand, the person's company (the switch, one tap
away, never hidden in the menu) and a "Menu" disclosure: the page never scrolls sideways,
every section (the administration's too) is reachable from the menu and leads to its page,
marked there as the current one; signing out works from the menu; Escape closes it; it
works without JavaScript. At 1280 px the header is two rows that
never wrap (the staff's sections grouped by app, the administration one menu grouped by
app) and nothing overflows. Screenshots of each go to the test's folder.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import expect

from kabinet.shell.header import BAR_ROOM, header_nav
from kabinet.testing import chromium

PASSWORD = "kabinet-demo"
ANNA = "anna@demo.test"  # a client of two companies
ADMIN = "admin@demo.kabinet.example"  # every staff section
PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1280, "height": 800}


@pytest.fixture(scope="module")
def demo(demo_portal: Any) -> str:
    """The session's ``kabinet demo`` (tests/conftest.py), shared with the journeys."""
    return str(demo_portal.url)


def _page(browser: Any, size: dict[str, int], *, script: bool = True) -> Any:
    phone = size["width"] < 500
    context = browser.new_context(
        viewport=size,
        locale="ru-RU",
        is_mobile=phone,
        has_touch=phone,
        java_script_enabled=script,
    )
    context.set_default_timeout(10_000)
    page = context.new_page()
    page.errors = []
    page.on("console", lambda m: page.errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: page.errors.append(str(e)))
    return page


def _sign_in(page: Any, url: str, login: str) -> None:
    page.goto(url + "/login")
    page.fill("input[name=login]", login)
    page.fill("input[name=password]", PASSWORD)
    with page.expect_navigation():
        page.click("form[action='/login'] button[type=submit]")
    page.wait_for_load_state()


def _no_sideways_scroll(page: Any) -> None:
    width, client = page.evaluate(
        "[document.documentElement.scrollWidth, document.documentElement.clientWidth]"
    )
    assert width <= client, f"{page.url}: {width} px wide in {client} px"


def _at(url: str, href: str) -> re.Pattern[str]:
    return re.compile(re.escape(url + href.rstrip("/")) + r"/?(\?.*)?$")


def _menu_links(page: Any) -> list[tuple[str, str]]:
    """(href, label) of every section in the header's navigation (its menus' too)."""
    pairs = page.locator(".mainnav a").evaluate_all(
        "links => links.map(a => [a.getAttribute('href'), a.textContent.trim()])"
    )
    return [(str(h), str(t)) for h, t in pairs]


def _open_phone_menu(page: Any) -> None:
    toggle = page.locator("details.sitemenu > summary")
    assert toggle.is_visible()
    if page.locator("details.sitemenu[open]").count() == 0:
        toggle.click()
    assert page.locator("details.sitemenu[open]").count() == 1


def _reach(page: Any, href: str) -> Any:
    """The link to ``href`` in the header as a person gets to it: on a phone the menu
    opened, then the app's (or the administration's) menu if it is in one."""
    if page.locator("details.sitemenu > summary").is_visible():
        _open_phone_menu(page)
    link = page.locator(f".mainnav a[href='{href}']")
    assert link.count() == 1, href
    if not link.is_visible():
        page.locator(f".mainnav details.navmenu:has(a[href='{href}']) > summary").click()
    assert link.is_visible(), href
    box = link.bounding_box()
    width = page.viewport_size["width"]
    assert box is not None
    assert box["x"] >= 0
    assert box["x"] + box["width"] <= width, (href, box)
    assert box["height"] >= 36  # a finger's tap target, a comfortable click
    return link


def _every_section_navigates(page: Any, url: str, shots: Path, name: str) -> list[str]:
    links = _menu_links(page)
    assert links
    for number, (href, label) in enumerate(links):
        link = _reach(page, href)
        with page.expect_navigation():
            link.click()
        page.wait_for_url(_at(url, href))
        assert page.locator("main").count() == 1
        _no_sideways_scroll(page)
        current = page.locator(f".mainnav a[href='{href}']")
        assert current.get_attribute("aria-current") == "page", (href, label)
        group = page.locator(".mainnav details.navmenu:has(a[aria-current=page]) > summary")
        if group.count():  # the app's menu (or the administration) says it holds the page
            assert group.get_attribute("aria-current") == "true"
        if number == 0:
            page.screenshot(path=str(shots / f"{name}.png"))
    return [h for h, _ in links]


@pytest.mark.browser
@pytest.mark.slow
def test_a_client_on_a_phone(demo: str, tmp_path: Path) -> None:
    with chromium() as browser:
        page = _page(browser, PHONE)
        _sign_in(page, demo, ANNA)
        _no_sideways_scroll(page)
        toggle = page.locator("details.sitemenu > summary")
        assert toggle.inner_text().strip() == "Меню"
        expect(toggle).to_have_attribute("aria-expanded", "false")
        assert not page.locator(".mainnav").is_visible()  # the sections wait in the menu
        header = page.locator("header.topbar").bounding_box()
        assert header is not None
        assert header["height"] <= 64  # one row
        page.screenshot(path=str(tmp_path / "client-390.png"))

        # keyboard: the menu button is reached by Tab, shows its focus, opens with Enter
        for _ in range(5):
            page.keyboard.press("Tab")
            if page.evaluate("document.activeElement.matches('details.sitemenu > summary')"):
                break
        else:
            pytest.fail("Tab never reaches the menu button")
        outline = page.evaluate("getComputedStyle(document.activeElement).outlineStyle")
        assert outline not in ("", "none")
        page.keyboard.press("Enter")
        expect(toggle).to_have_attribute("aria-expanded", "true")
        assert page.locator(".mainnav").is_visible()
        _no_sideways_scroll(page)
        page.screenshot(path=str(tmp_path / "client-390-menu.png"))
        page.keyboard.press("Escape")
        expect(toggle).to_have_attribute("aria-expanded", "false")
        assert not page.locator(".mainnav").is_visible()
        assert page.evaluate("document.activeElement.matches('details.sitemenu > summary')")

        hrefs = _every_section_navigates(page, demo, tmp_path, "client-390-section")
        assert "/shipments/" in hrefs
        assert "/shipments/invoices" in hrefs

        # the company switch, in the header (the menu closed): the page loads again, in
        # that company (test_a_client_of_two_companies_switches_on_a_phone: its orders)
        page.goto(demo + "/shipments/contracts")
        select = page.locator("#co-current")
        assert select.is_visible()
        values = select.locator("option").evaluate_all("os => os.map(o => o.value)")
        assert values[0] == "all"
        assert len(values) == 3
        with page.expect_navigation():
            select.select_option(values[1])
        assert page.url == demo + "/shipments/contracts"
        assert page.locator("#co-current").evaluate("s => s.value") == values[1]
        with page.expect_navigation():
            page.locator("#co-current").select_option("all")
        assert page.locator("#co-current").evaluate("s => s.value") == "all"

        # the language and the person's pages are in the menu too
        _open_phone_menu(page)
        assert page.locator(".sitemenu .usermenu-name").inner_text() == "Анна Клиентова"
        assert page.locator(".sitemenu a[href='/identity/profile']").is_visible()
        assert page.locator("form.lang-switch button[value=en]").is_visible()

        # signing out from the menu (a POST with the CSRF token)
        signout = page.get_by_role("button", name="Выйти")
        assert signout.is_visible()
        assert page.locator("form.signout input[name=csrf_token]").get_attribute("value")
        with page.expect_navigation():
            signout.click()
        page.wait_for_load_state()
        assert page.locator("details.sitemenu").count() == 0
        page.goto(demo + "/shipments/")
        assert "/login" in page.url  # signed out indeed
        assert page.errors == []


def _registry(page: Any) -> dict[str, str]:
    """The registry's rows on the page: order number -> its organization ("" when the
    registry has no organization column, as when the person works in one company)."""
    rows = page.locator("#orders tbody tr").evaluate_all(
        """rows => rows.map(r => [
            r.querySelector('td[data-label] a').textContent.trim(),
            (r.querySelector('td.sh-c-org') || {textContent: ''}).textContent.trim()])"""
    )
    return {str(number): str(org) for number, org in rows}


def _switch_in_header(page: Any, value: str) -> str:
    """Choose the company in the phone's header, the menu closed, as a finger does: the
    select is there, in the first row, big enough to tap. Returns its name."""
    assert page.locator("details.sitemenu[open]").count() == 0
    select = page.locator("header.topbar #co-current")
    assert select.is_visible()
    box = select.bounding_box()
    header = page.locator("header.topbar").bounding_box()
    assert box is not None
    assert header is not None
    assert box["x"] >= 0
    assert box["x"] + box["width"] <= PHONE["width"]
    assert box["y"] + box["height"] <= header["y"] + header["height"]
    assert box["height"] >= 36
    assert box["width"] >= 150  # room for a company's name, not a sliver
    with page.expect_navigation():
        select.select_option(value)
    page.wait_for_load_state()
    chosen = page.locator("header.topbar #co-current")
    assert chosen.is_visible()
    assert chosen.evaluate("s => s.value") == value
    return str(chosen.evaluate("s => s.selectedOptions[0].text")).strip()


@pytest.mark.browser
def test_a_client_of_two_companies_switches_on_a_phone(demo: str, tmp_path: Path) -> None:
    """The header of a phone shows the company the person works in and switches it with
    one tap; the registry then holds the other company's orders, none of the first's."""
    with chromium() as browser:
        page = _page(browser, PHONE)
        _sign_in(page, demo, ANNA)
        page.goto(demo + "/shipments/")
        _no_sideways_scroll(page)
        header = page.locator("header.topbar").bounding_box()
        assert header is not None
        assert header["height"] <= 64  # still one row
        select = page.locator("header.topbar #co-current")
        assert select.evaluate("s => s.selectedOptions[0].text").strip() == "Все мои компании"
        names = dict(
            select.locator("option").evaluate_all("os => os.map(o => [o.value, o.text.trim()])")
        )
        first, *companies = names
        assert first == "all"
        assert len(companies) == 2
        everything = _registry(page)  # the first page of both companies' orders, with whose
        assert set(everything.values()) == {names[c] for c in companies}

        seen: dict[str, set[str]] = {}
        for value in companies:
            assert _switch_in_header(page, value) == names[value]
            assert page.url.startswith(demo + "/shipments")
            _no_sideways_scroll(page)
            page.screenshot(path=str(tmp_path / f"client-390-company-{value}.png"))
            orders = _registry(page)
            assert orders
            known = {n: everything[n] for n in orders if n in everything}
            assert known  # the company's orders were on the first page of all of them
            assert set(known.values()) == {names[value]}, (value, known)
            seen[value] = set(orders)
        assert not seen[companies[0]] & seen[companies[1]]
        assert _switch_in_header(page, "all") == "Все мои компании"
        assert _registry(page) == everything
        assert page.errors == []


@pytest.mark.browser
@pytest.mark.slow
def test_the_staff_on_a_phone(demo: str, tmp_path: Path) -> None:
    with chromium() as browser:
        page = _page(browser, PHONE)
        _sign_in(page, demo, ADMIN)
        _no_sideways_scroll(page)
        page.screenshot(path=str(tmp_path / "staff-390.png"))
        _open_phone_menu(page)
        admin = page.locator("details.adminmenu > summary")
        assert admin.is_visible()
        assert "Администрирование" in admin.inner_text()
        expect(admin).to_have_attribute("aria-expanded", "false")
        admin.click()
        expect(admin).to_have_attribute("aria-expanded", "true")
        assert page.locator(".adminmenu a[href='/identity/accounts']").is_visible()
        _no_sideways_scroll(page)
        page.screenshot(path=str(tmp_path / "staff-390-menu.png"), full_page=True)
        # Escape closes the inner menu first, then the menu
        page.keyboard.press("Escape")
        expect(admin).to_have_attribute("aria-expanded", "false")
        assert page.locator("details.sitemenu[open]").count() == 1
        page.keyboard.press("Escape")
        assert page.locator("details.sitemenu[open]").count() == 0

        hrefs = _every_section_navigates(page, demo, tmp_path, "staff-390-section")
        for expected in ("/shipments/", "/companies/requests", "/identity/accounts"):
            assert expected in hrefs
        assert len(hrefs) >= 20
        assert page.errors == []


@pytest.mark.browser
@pytest.mark.slow
def test_the_staff_at_1280_and_1024(demo: str, tmp_path: Path) -> None:
    with chromium() as browser:
        page = _page(browser, DESKTOP)
        _sign_in(page, demo, ADMIN)
        page.goto(demo + "/shipments/")
        assert not page.locator("details.sitemenu > summary").is_visible()  # no "Menu"
        for width in (1280, 1024):
            page.set_viewport_size({"width": width, "height": 800})
            _no_sideways_scroll(page)
            bar = page.locator(".mainnav-inner")
            tops = bar.locator(":scope > ul > li, :scope > details").evaluate_all(
                "items => items.map(i => Math.round(i.getBoundingClientRect().top))"
            )
            assert len(tops) >= 4
            assert len(set(tops)) == 1, (width, tops)  # the bar is one row
            assert bar.evaluate("b => b.scrollWidth <= b.clientWidth")
            row = page.locator(".brand, .topbar-tools").evaluate_all(
                "items => items.map(i => i.getBoundingClientRect()).map(r => r.top + r.height / 2)"
            )
            assert max(row) - min(row) < 4, (width, row)  # the brand and the tools: one row
            header = page.locator("header.topbar").bounding_box()
            assert header is not None
            assert header["height"] <= 110, (width, header)  # two rows, no more
        page.set_viewport_size(DESKTOP)
        page.screenshot(path=str(tmp_path / "staff-1280.png"))

        # the administration: one menu, its sections under their app's name
        admin = page.locator("details.adminmenu")
        assert page.locator(".adminmenu-heading").count() >= 3
        accounts = admin.locator("a[href='/identity/accounts']")
        assert not accounts.is_visible()
        admin.locator("summary").click()
        expect(admin.locator("summary")).to_have_attribute("aria-expanded", "true")
        page.screenshot(path=str(tmp_path / "staff-1280-admin.png"))
        links = admin.locator("a")
        assert links.count() >= 10
        for i in range(links.count()):
            box = links.nth(i).bounding_box()
            assert box is not None
            assert links.nth(i).is_visible()
            assert box["x"] >= 0
            assert box["x"] + box["width"] <= 1280
            assert box["y"] + box["height"] <= 800
        page.keyboard.press("Escape")
        assert not accounts.is_visible()
        admin.locator("summary").click()
        page.locator("main h1").click(position={"x": 5, "y": 5})  # elsewhere
        assert not accounts.is_visible()
        hrefs = _every_section_navigates(page, demo, tmp_path, "staff-1280-section")
        assert "/identity/accounts" in hrefs
        assert "/companies/organizations" in hrefs
        page.goto(demo + "/identity/accounts")
        assert admin.locator("summary").get_attribute("aria-current") == "true"

        # the person's menu: their pages and signing out
        user = page.locator("details.usermenu > summary")
        assert user.inner_text().strip() == "Андрей Админов"
        user.click()
        assert page.locator(".usermenu a[href='/identity/profile']").is_visible()
        page.screenshot(path=str(tmp_path / "staff-1280-user.png"))
        with page.expect_navigation():
            page.get_by_role("button", name="Выйти").click()
        assert page.locator("details.usermenu").count() == 0
        assert page.errors == []


@pytest.mark.browser
@pytest.mark.slow
def test_a_client_at_1280(demo: str, tmp_path: Path) -> None:
    with chromium() as browser:
        page = _page(browser, DESKTOP)
        _sign_in(page, demo, ANNA)
        page.goto(demo + "/shipments/invoices")
        _no_sideways_scroll(page)
        # few sections: each its own link in one row, the company beside the brand
        items = page.locator(".mainnav-inner > ul > li")
        assert page.locator(".mainnav details").count() == 0
        tops = items.evaluate_all("ls => ls.map(l => Math.round(l.getBoundingClientRect().top))")
        assert len(tops) >= 5
        assert len(set(tops)) == 1
        current = page.locator(".mainnav a[aria-current=page]")
        assert current.inner_text() == "Счета"
        select = page.locator("#co-current")
        assert select.is_visible()
        brand = page.locator(".brand").bounding_box()
        box = select.bounding_box()
        assert brand is not None
        assert box is not None
        assert abs((box["y"] + box["height"] / 2) - (brand["y"] + brand["height"] / 2)) < 8
        page.screenshot(path=str(tmp_path / "client-1280.png"))
        with page.expect_navigation():
            select.select_option(select.locator("option").nth(1).get_attribute("value"))
        assert page.url == demo + "/shipments/invoices"
        with page.expect_navigation():
            page.locator("#co-current").select_option("all")
        assert page.errors == []


@pytest.mark.browser
@pytest.mark.slow
def test_the_menu_without_javascript(demo: str) -> None:
    with chromium() as browser:
        for size in (PHONE, DESKTOP):
            page = _page(browser, size, script=False)
            _sign_in(page, demo, ADMIN)
            link = _reach(page, "/identity/audit")
            with page.expect_navigation():
                link.click()
            page.wait_for_url(_at(demo, "/identity/audit"))
            if size is PHONE:
                _open_phone_menu(page)
            else:
                page.locator("details.usermenu > summary").click()
            with page.expect_navigation():
                page.get_by_role("button", name="Выйти").click()
            assert page.locator("details.sitemenu").count() == 0
            page.context.close()


@pytest.mark.browser
def test_the_company_switch_on_a_phone_without_javascript(demo: str) -> None:
    """Without JavaScript the switch is its select and a "Switch" button, whole, in the
    header's row; it works."""
    with chromium() as browser:
        page = _page(browser, {"width": 360, "height": 800}, script=False)
        _sign_in(page, demo, ANNA)
        page.goto(demo + "/shipments/contracts")
        _no_sideways_scroll(page)
        button = page.locator("header.topbar form.co-switch button[type=submit]")
        assert button.is_visible()
        assert button.inner_text().strip() == "Перейти"
        lines = button.evaluate(
            """b => { const r = document.createRange(); r.selectNodeContents(b);
                      return new Set([...r.getClientRects()].map(x => Math.round(x.top))).size; }"""
        )
        assert lines == 1  # "Перейти", not "Перей / ти"
        box = button.bounding_box()
        assert box is not None
        assert box["x"] + box["width"] <= 360
        value = page.locator("#co-current option").nth(1).get_attribute("value")
        page.select_option("#co-current", value)
        with page.expect_navigation():
            button.click()
        assert page.url == demo + "/shipments/contracts"
        assert page.locator("#co-current").evaluate("s => s.value") == value
        page.select_option("#co-current", "all")
        with page.expect_navigation():
            page.locator("header.topbar form.co-switch button[type=submit]").click()
        assert page.locator("#co-current").evaluate("s => s.value") == "all"


def _item(path: str, label: str, group: str, section: str = "main", active: bool = False) -> Any:
    return {"path": path, "label": label, "group": group, "section": section, "active": active}


def test_the_bar_groups_sections_by_app_once_they_would_not_fit() -> None:
    few = [_item("/a/", "Заявки", "Перевозки"), _item("/a/i", "Счета", "Перевозки")]
    flat = header_nav(few, "Администрирование")
    assert not flat.grouped
    assert [g.single["path"] for g in flat.bar if g.single] == ["/a/", "/a/i"]

    many = [
        _item(f"/app{n}/{k}", f"Раздел номер {n}.{k}", f"Приложение {n}", active=(n, k) == (2, 1))
        for n in range(1, 5)
        for k in range(1, 4)
    ] + [_item("/solo/", "Один", "Одиночка")]
    admin = [
        _item(f"/adm{n}", f"Настройка {n}", f"Приложение {n % 3}", "admin", active=n == 11)
        for n in range(12)  # a twelfth admin section: still one menu
    ]
    personal = [_item("/me", "Мой профиль", "Платформа", "personal")]
    nav = header_nav(many + admin + personal, "Администрирование")
    assert nav.grouped
    assert sum(len(str(i["label"])) + 3 for i in many) > BAR_ROOM
    assert [g.label for g in nav.bar] == [f"Приложение {n}" for n in range(1, 5)] + ["Одиночка"]
    assert [g.active for g in nav.bar] == [False, True, False, False, False]
    assert nav.bar[0].single is None
    assert [i["path"] for i in nav.bar[0].items] == ["/app1/1", "/app1/2", "/app1/3"]
    assert nav.bar[-1].single is not None
    assert nav.bar[-1].single["path"] == "/solo/"
    assert [g.label for g in nav.admin] == ["Приложение 0", "Приложение 1", "Приложение 2"]
    assert sum(len(g.items) for g in nav.admin) == 12
    assert nav.admin_active
    assert [i["path"] for i in nav.personal] == ["/me"]
