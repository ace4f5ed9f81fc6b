"""The page shell: home page, languages, navigation by permission, panels, installed apps."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from litestar.testing import AsyncTestClient

from kabinet.access import Principal
from kabinet.testing import PluginFactory
from kabinet.web import build_app

pytestmark = pytest.mark.smoke

PLUGIN = """
from typing import Any
from litestar import Request, get, post
from litestar.response import Redirect
from kabinet.access import Principal, signed_in
from kabinet.pages import flash, page

@get("/sp/page", access=signed_in)
async def sp_page(request: Request) -> Any:
    flash(request, "Saved <b>", "success")
    from datetime import UTC, datetime
    when = datetime(2026, 3, 1, 21, 30, tzinfo=UTC)
    return await page(request, "sp/page.html", order_id=42, when=when)

class As:
    def __init__(self, app: Any) -> None:
        self.app = app
    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        for k, v in scope.get("headers", []):
            if k == b"x-test-person":
                scope["user"] = Principal(person_id=int(v), name="Анна", kind="person")
        await self.app(scope, receive, send)

async def order_panel(request, host, lang, order_id, **context):
    return f"<p>notes for order {order_id} in {lang}</p>"

@get(["/sp/sub", "/sp/sub/{rest:path}"], access=signed_in)
async def sp_sub(request: Request) -> Any:
    from datetime import UTC, datetime
    return await page(request, "sp/page.html", order_id=7, when=datetime(2026, 3, 1, tzinfo=UTC))

@post("/sp/save", access=signed_in)
async def sp_save(request: Request) -> Redirect:
    flash(request, "Заявка сохранена", "success")
    return Redirect("/sp/page")

@hookimpl
def routers(host):
    return [sp_page, sp_sub, sp_save]

@hookimpl
def middleware(host):
    return [As]

@hookimpl
def navigation(host):
    return [
        NavItem(path="/sp/", label={"ru": "Всё", "en": "All"}, order=1),
        NavItem(path="/sp/page", label={"ru": "Заявки", "en": "Orders"}),
        NavItem(path="/sp/sub/", label={"ru": "Документы", "en": "Documents"}),
        NavItem(path="/sp/secret", label={"ru": "Секрет", "en": "Secret"}, permission="sp.secret"),
        NavItem(path="/sp/setup", label={"ru": "Настройка", "en": "Setup"}, permission="sp.secret",
                section="admin"),
        NavItem(path="/sp/mine", label={"ru": "Моё", "en": "Mine"}, section="personal"),
    ]

@hookimpl
def panels(host):
    return [
        Panel(
            slot="sp.order",
            name="notes",
            render=order_panel,
            title={"ru": "Заметки", "en": "Notes"},
        ),
        Panel(slot="sp.order", name="hidden", render=lambda **kw: "HIDDEN", permission="sp.secret"),
    ]

@hookimpl
def permissions():
    return [Permission(code="sp.secret", label={"ru": "s", "en": "s"}, scope="global")]

@hookimpl
def locale_dir():
    from pathlib import Path
    return Path(__file__).parent / "locale"

@hookimpl
def template_dir():
    from pathlib import Path
    return Path(__file__).parent / "templates"
"""

PAGE = """\
{% extends "shell/base.html" %}
{% block content %}
<h1>{{ _("Home") }}</h1>
<p id="own">{{ _("Fuel prices") }}</p>
<p id="when">{{ when|datetime("short") }}</p>
<p id="sum">{{ 1500.5|money }}</p>
{{ render_panels("sp.order", order_id=order_id) }}
{% endblock %}
"""


RU_PO = "locale/ru/LC_MESSAGES/messages.po"
CATALOG = """\
msgid ""
msgstr ""
"Content-Type: text/plain; charset=utf-8\\n"
"Language: ru\\n"

msgid "Fuel prices"
msgstr "Цены на топливо"

msgid "Home"
msgstr "Домой (не главная)"
"""


class Access:
    """Person 1 is an admin (every permission); others hold none."""

    async def can(self, principal: Principal, code: str, organization: int | None = None) -> bool:
        return principal.person_id == 1

    async def organizations(self, principal: Principal, code: str) -> Any:
        return frozenset({1}) if principal.person_id == 1 else frozenset()

    async def people(self, code: str, organization: int | None = None) -> set[int]:
        return set()


@pytest.fixture
async def client(
    plugin_factory: PluginFactory, database_url: str, tmp_path: Path
) -> AsyncIterator[AsyncTestClient[Any]]:
    from kabinet.host import Host

    plugin_factory.add("sp", PLUGIN, files={"templates/sp/page.html": PAGE, RU_PO: CATALOG})
    host = await Host.create(
        None,
        env={"KABINET__HOST__DATABASE_URL": database_url, "KABINET__HOST__VAR_DIR": str(tmp_path)},
        candidates=plugin_factory.candidates(),
    )
    try:
        async with AsyncTestClient(await build_app(host)) as c:
            host.access = Access()
            yield c
    finally:
        await host.db.dispose()


def token(html: str) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert found
    return found.group(1)


async def test_home_is_russian_by_default_and_says_what_the_portal_is(
    client: AsyncTestClient[Any],
) -> None:
    home = await client.get("/")
    assert home.status_code == 200
    assert '<html lang="ru">' in home.text
    assert "Ваши перевозки — в одном месте" in home.text
    assert "Войти" in home.text
    assert home.headers["content-language"] == "ru"


async def test_accept_language_english(client: AsyncTestClient[Any]) -> None:
    home = await client.get("/", headers={"Accept-Language": "en-GB,en;q=0.9"})
    assert '<html lang="en">' in home.text
    assert "Your freight, in one place" in home.text


async def test_language_switch_is_remembered(client: AsyncTestClient[Any]) -> None:
    home = await client.get("/")
    switched = await client.post(
        "/shell/language",
        data={"lang": "en", "next": "/sp/page", "csrf_token": token(home.text)},
        follow_redirects=False,
    )
    assert switched.status_code == 303
    assert switched.headers["location"] == "/sp/page"
    again = await client.get("/", headers={"Accept-Language": "ru"})
    assert "Your freight, in one place" in again.text
    unknown = await client.post(
        "/shell/language",
        data={"lang": "xx", "next": "https://evil.example/", "csrf_token": token(home.text)},
        follow_redirects=False,
    )
    assert unknown.headers["location"] == "/"
    assert "Your freight" in (await client.get("/")).text


async def test_language_switch_needs_the_csrf_token(client: AsyncTestClient[Any]) -> None:
    await client.get("/")
    refused = await client.post("/shell/language", data={"lang": "en"})
    assert refused.status_code == 403
    assert "Доступ запрещён" in refused.text


async def test_navigation_is_filtered_by_permission(client: AsyncTestClient[Any]) -> None:
    anonymous = await client.get("/")
    assert "/sp/page" not in anonymous.text
    person = await client.get("/", headers={"X-Test-Person": "2"})
    assert 'href="/sp/page"' in person.text
    assert "/sp/secret" not in person.text
    assert "/shell/plugins" not in person.text
    admin = await client.get("/", headers={"X-Test-Person": "1"})
    assert 'href="/sp/secret"' in admin.text
    assert 'href="/shell/plugins"' in admin.text


def _menu(html: str, name: str) -> str:
    """The links of the header menu ``name`` (``details.<name>``), or "" without it."""
    found = re.search(rf'<details class="navmenu {name}">(.*?)</details>', html, re.S)
    return found.group(1) if found else ""


def _bar(html: str) -> str:
    found = re.search(r'<div class="mainnav-inner">\s*<ul>(.*?)</ul>', html, re.S)
    return found.group(1) if found else ""


async def test_navigation_sections_bar_administration_and_personal_menus(
    client: AsyncTestClient[Any],
) -> None:
    person = (await client.get("/sp/page", headers={"X-Test-Person": "2"})).text
    assert person.startswith("<!doctype html>")
    assert 'href="/sp/page"' in _bar(person)
    assert 'href="/sp/mine"' in _menu(person, "usermenu")
    assert 'href="/sp/mine"' not in _bar(person)
    assert "/sp/setup" not in person  # no permission: no administration menu at all
    assert _menu(person, "adminmenu") == ""
    admin = (await client.get("/", headers={"X-Test-Person": "1"})).text
    menu = _menu(admin, "adminmenu")
    assert "Администрирование" in menu
    assert 'href="/sp/setup"' in menu
    assert 'href="/shell/plugins"' in menu
    assert "/sp/setup" not in _bar(admin)
    assert 'href="/sp/page"' in _bar(admin)
    # the home page lists the same, the staff tools under their own heading
    tools = re.search(r'<section class="home-admin">(.*?)</section>', admin, re.S)
    assert tools is not None
    assert 'href="/sp/setup"' in tools.group(1)
    assert 'href="/sp/page"' not in tools.group(1)
    home = (await client.get("/", headers={"X-Test-Person": "2"})).text
    assert 'class="home-admin"' not in home
    assert 'href="/sp/mine"' in home
    # the page one is on is marked in its menu, and the menu itself
    plugins = (await client.get("/shell/plugins", headers={"X-Test-Person": "1"})).text
    summary = re.search(r"<summary([^>]*)>(.*?)</summary>", _menu(plugins, "adminmenu"), re.S)
    assert summary is not None
    assert 'aria-current="true"' in summary.group(1)
    assert "Администрирование" in summary.group(2)
    assert 'href="/shell/plugins" aria-current="page">Приложения</a>' in _menu(plugins, "adminmenu")
    assert "aria-current" not in _menu(admin, "adminmenu")  # on the home page: none


@pytest.mark.parametrize("path", ["/sp/sub/", "/sp/sub", "/sp/sub/3"])
async def test_the_menu_marks_the_deepest_entry_of_the_page(
    client: AsyncTestClient[Any], path: str
) -> None:
    """On a page under "/sp/sub/" the bar marks "Documents", never "All" ("/sp/") too,
    whether the address ends with a slash or not (issue 16, point 11)."""
    html = (await client.get(path, headers={"X-Test-Person": "2"})).text
    current = re.findall(r'href="([^"]+)" aria-current="page"', _bar(html))
    assert current == ["/sp/sub/"]


async def test_plugin_page_with_panels_flash_and_formats(client: AsyncTestClient[Any]) -> None:
    response = await client.get("/sp/page", headers={"X-Test-Person": "2", "Accept-Language": "en"})
    assert response.status_code == 200
    text = response.text
    assert '<p id="when">3/2/26, 12:30\u202fAM</p>' in text  # 21:30 UTC is 00:30 in Moscow
    assert '<p id="sum">RUB1,500.50</p>' in text
    assert '<section class="panel" data-panel="notes"><h2>Notes</h2>' in text
    assert "<p>notes for order 42 in en</p>" in text
    assert "HIDDEN" not in text
    assert "Saved &lt;b&gt;" in text
    assert 'aria-current="page">Orders</a>' in text
    # /sp/ is a start of /sp/page too, but the longer match is the current one
    assert '<a href="/sp/">All</a>' in text
    assert text.count('aria-current="page"') == 1
    assert '<p id="own">Fuel prices</p>' in text
    ru = await client.get("/sp/page", headers={"X-Test-Person": "2"})
    assert '<p id="when">02.03.2026, 00:30</p>' in ru.text
    # the plugin's catalog (locale_dir) translates its texts; the host's keep theirs
    assert '<p id="own">Цены на топливо</p>' in ru.text
    assert "<h1>Главная</h1>" in ru.text
    assert "Заметки" in ru.text


async def test_flash_survives_the_redirect_after_a_form_post_and_shows_once(
    client: AsyncTestClient[Any],
) -> None:
    token = (await client.get("/sp/page", headers={"X-Test-Person": "2"})).cookies.get(
        "kabinet_csrf"
    )
    saved = await client.post(
        "/sp/save",
        data={"csrf_token": token},
        headers={"X-Test-Person": "2"},
        follow_redirects=False,
    )
    assert saved.status_code in (302, 303)
    assert "kabinet_flash=" in saved.headers["set-cookie"]
    shown = await client.get("/sp/page", headers={"X-Test-Person": "2"})
    assert "Заявка сохранена" in shown.text
    again = await client.get("/sp/page", headers={"X-Test-Person": "2"})
    assert "Заявка сохранена" not in again.text


async def test_installed_apps_page_needs_the_permission(client: AsyncTestClient[Any]) -> None:
    anonymous = await client.get("/shell/plugins", follow_redirects=False)
    assert anonymous.status_code == 303
    assert anonymous.headers["location"].startswith("/login?next=")
    refused = await client.get("/shell/plugins", headers={"X-Test-Person": "2"})
    assert refused.status_code == 403
    admin = await client.get("/shell/plugins", headers={"X-Test-Person": "1"})
    assert admin.status_code == 200
    rows = re.findall(r"<code>([a-z_]+)</code>", admin.text)
    assert {"host", "shell", "sp"} <= set(rows)
    assert "Установленные приложения" in admin.text


async def test_error_page_in_the_persons_language(client: AsyncTestClient[Any]) -> None:
    ru = await client.get("/no/such/page")
    assert ru.status_code == 404
    assert "Страница не найдена" in ru.text
    en = await client.get("/no/such/page", headers={"Accept-Language": "en"})
    assert "Page not found" in en.text


async def test_the_language_chosen_in_the_header_is_the_persons_from_then_on(portal: Any) -> None:
    # The switch sets the browser's cookie and, for a signed-in person, their account's
    # language: the next sign-in (which sets the cookie from the account) keeps it.
    identity = portal.host.services["identity"]
    person = await portal.person(language="ru")
    client = await portal.signed_in(person)
    switched = await client.post("/shell/language", data={"lang": "en", "next": "/"})
    assert switched.status_code == 303
    assert switched.cookies.get("kabinet_lang") == "en"
    assert (await identity.get_account(person.id)).language == "en"
    unknown = await client.post("/shell/language", data={"lang": "xx", "next": "/"})
    assert unknown.status_code == 303
    assert (await identity.get_account(person.id)).language == "en"
