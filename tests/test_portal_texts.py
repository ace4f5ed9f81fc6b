"""What a person reads on the portal's main pages (issue 16, points 8 and 11), over HTTP
on the whole portal: the landing page says in a line what each app gives, and no page of
the main journeys shows an untranslated key or a raw code, in Russian and in English."""

from __future__ import annotations

import html as htmllib
import re
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from pagetext import raw_codes, visible

from kabinet.access import Principal
from kabinet.host import Host
from kabinet.identity.services import IDENTITY
from kabinet.roles.services import ROLES
from kabinet.routematrix import RouteMatrix
from kabinet.testing import drop_database, migrated_database
from kabinet.web import build_app

pytestmark = pytest.mark.smoke


@pytest.fixture(scope="module")
async def own_database_url(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[str]:
    """A database of this module's own: the pages scanned show only what these tests made,
    not the names, roles and times other tests left in the run's shared database."""
    url = await migrated_database(tmp_path_factory.mktemp("portal-texts"))
    yield url
    await drop_database(url)


@pytest.fixture
async def portal(
    own_database_url: str, tmp_path: Path
) -> AsyncIterator[tuple[Host, httpx.AsyncClient]]:
    database_url = own_database_url
    settings = tmp_path / "settings.toml"
    settings.write_text('[host]\nvar_dir = "var"\nsecret_key = "portal-texts-secret"\n')
    host = await Host.create(settings, env={"KABINET__HOST__DATABASE_URL": database_url})
    app = await build_app(host)
    await host.startup()
    try:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1:8000") as c:
            c.matrix = RouteMatrix(host, app, c)  # type: ignore[attr-defined]
            yield host, c
    finally:
        await host.shutdown()


@pytest.mark.parametrize("lang", ["ru", "en"])
async def test_the_landing_page_says_in_a_line_what_each_app_gives(
    portal: tuple[Host, httpx.AsyncClient], lang: str
) -> None:
    host, client = portal
    home = await client.get("/", headers={"Accept-Language": lang})
    assert home.status_code == 200
    cards = re.findall(r'<li class="card"><h3>(.*?)</h3>(.*?)</li>', home.text, re.S)
    cards = [(htmllib.unescape(title), rest) for title, rest in cards]
    titles = {title for title, _ in cards}
    apps = [p for p in host.plugins if not p.builtin]
    assert apps
    for plugin in apps:
        title = plugin.manifest.title[lang]
        assert title in titles, f"no card for {plugin.name}"
        (line,) = [visible(rest).strip() for t, rest in cards if t == title]
        assert line, f"the card of {plugin.name} has its title only"
        assert line == plugin.manifest.summary[lang]
        assert len(line) <= 100, f"one line: {line}"


@pytest.mark.parametrize(
    ("lang", "right"), [("ru", "Просмотр заявок"), ("en", "View orders")], ids=["ru", "en"]
)
async def test_hook_organization_names_api_tokens_show_rights_and_organizations(
    portal: tuple[Host, httpx.AsyncClient], lang: str, right: str
) -> None:
    """The profile's API tokens name each right in the person's language and each
    organization by its name: no permission codes, no organization numbers."""
    from kabinet_companies.services import companies

    host, client = portal
    matrix: RouteMatrix = client.matrix  # type: ignore[attr-defined]
    org = await companies(host).create_organization("ООО Токен Имя")
    person = await matrix.person("tokens")
    await host.services.of(ROLES).grant(person, "client", org.id)
    me = Principal(person_id=person, name="Токен", kind="person")
    await host.services.of(IDENTITY).create_token(me, "1С", ["shipments.orders.view"], [org.id])
    cookie = await matrix.session(person)
    profile = await client.get(
        "/identity/profile", headers={"Cookie": f"{cookie}; kabinet_lang={lang}"}
    )
    assert profile.status_code == 200
    tokens = re.search(r'<section class="id-card" id="tokens">(.*?)</section>', profile.text, re.S)
    assert tokens is not None
    text = " ".join(visible(tokens.group(1)).split())
    assert right in text
    assert "ООО Токен Имя" in text
    assert "shipments.orders.view" not in text
    assert not re.search(r"\b[a-z]+\.[a-z_]+\.[a-z_]+\b", text), text  # no permission code


MAIN_PAGES = {
    "admin": [
        "/", "/identity/profile", "/identity/accounts", "/roles/", "/companies/organizations",
        "/companies/requests", "/companies/contacts", "/dictionaries/", "/dictionaries/documents/",
        "/notifications/", "/notifications/channels", "/notifications/stats",
        "/integration/runs", "/shipments/", "/shipments/invoices", "/notifications/failed",
        "/host/jobs",
    ],
    "client": [
        "/", "/identity/profile", "/companies/my", "/shipments/", "/shipments/invoices",
        "/shipments/contracts", "/dictionaries/documents/",
    ],
}  # fmt: skip


# Raw codes still shown on staff pages, left to the apps that own them (issue 16, point 8,
# not finished): each is tolerated on its page only, any other fails. Remove an entry with
# its fix.
KNOWN_RAW: dict[str, re.Pattern[str]] = {}


@pytest.mark.parametrize("lang", ["ru", "en"])
@pytest.mark.parametrize("persona", sorted(MAIN_PAGES))
async def test_main_pages_show_no_raw_code_or_key(
    portal: tuple[Host, httpx.AsyncClient], persona: str, lang: str
) -> None:
    from kabinet_companies.services import companies
    from kabinet_shipments.samples import make_order

    host, client = portal
    matrix: RouteMatrix = client.matrix  # type: ignore[attr-defined]
    org = await companies(host).create_organization("ООО Журнал")
    await make_order(host, org.id)
    person = await matrix.person(persona)
    if persona == "admin":
        await host.services.of(ROLES).grant(person, "admin", None)
    else:
        await host.services.of(ROLES).grant(person, "client", org.id)
    cookie = await matrix.session(person)
    faults = {}
    for path in MAIN_PAGES[persona]:
        page = await client.get(path, headers={"Cookie": f"{cookie}; kabinet_lang={lang}"})
        assert page.status_code == 200, path
        known = KNOWN_RAW.get(path)
        found = [f for f in raw_codes(page.text) if not (known and known.fullmatch(f))]
        if found:
            faults[path] = sorted(set(found))
    assert faults == {}
