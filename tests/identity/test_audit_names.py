"""The security log names the organization an event concerns (issue 16, point 8: no
organization shown as its number) and counts its events with their plural form."""

from __future__ import annotations

import html
import re
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from kabinet.host import Host
from kabinet.routematrix import RouteMatrix
from kabinet.testing import drop_database, migrated_database
from kabinet.web import build_app

pytestmark = pytest.mark.smoke


@pytest.fixture(scope="module")
async def own_database_url(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[str]:
    url = await migrated_database(tmp_path_factory.mktemp("audit-names"))
    yield url
    await drop_database(url)


@pytest.fixture
async def portal(
    own_database_url: str, tmp_path: Path
) -> AsyncIterator[tuple[Host, httpx.AsyncClient, RouteMatrix]]:
    settings = tmp_path / "settings.toml"
    settings.write_text('[host]\nvar_dir = "var"\nsecret_key = "audit-names-secret"\n')
    host = await Host.create(settings, env={"KABINET__HOST__DATABASE_URL": own_database_url})
    app = await build_app(host)
    await host.startup()
    try:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1:8000") as c:
            yield host, c, RouteMatrix(host, app, c)
    finally:
        await host.shutdown()


@pytest.mark.parametrize(("lang", "counted"), [("ru", "событи"), ("en", "event")])
async def test_the_security_log_names_the_organization_of_an_event(
    portal: tuple[Host, httpx.AsyncClient, RouteMatrix], lang: str, counted: str
) -> None:
    from kabinet_companies.services import companies

    host, client, matrix = portal
    org = await companies(host).create_organization("ООО Журнал Безопасности")
    client_person = await matrix.person("audited")
    await host.services["roles"].grant(client_person, "client", org.id)  # logged with org
    admin = await matrix.person("auditor")
    await host.services["roles"].grant(admin, "admin", None)
    cookie = await matrix.session(admin)
    page = await client.get("/identity/audit", headers={"Cookie": f"{cookie}; kabinet_lang={lang}"})
    assert page.status_code == 200
    cells = [
        " ".join(html.unescape(re.sub(r"<[^>]+>", " ", c)).split())
        for c in re.findall(r'<td data-label="[^"]*">(.*?)</td>', page.text, re.S)
    ]
    assert "ООО Журнал Безопасности" in cells
    assert str(org.id) not in cells  # not its number
    found = re.search(r'<p class="muted" id="found">(.*?)</p>', page.text)
    assert found is not None
    assert re.fullmatch(rf"\d+ {counted}\w*", found.group(1))


async def test_the_security_logs_days_are_the_readers_own(
    portal: tuple[Host, httpx.AsyncClient, RouteMatrix],
) -> None:
    """An event at 20:00 UTC on 6 December happened on 7 December for a reader in
    Vladivostok: the day filter takes their days, not UTC's."""
    import datetime as dt

    from sqlalchemy import insert, update

    from kabinet.identity.models import Account, SecurityEvent

    host, client, matrix = portal
    admin = await matrix.person("auditor-east")
    await host.services["roles"].grant(admin, "admin", None)
    async with host.db.session() as s:
        a = Account.__table__
        await s.execute(update(a).where(a.c.id == admin).values(timezone="Asia/Vladivostok"))
        await s.execute(
            insert(SecurityEvent.__table__).values(
                at=dt.datetime(2026, 12, 6, 20, 0, tzinfo=dt.UTC),
                actor_id=None,
                action="test.eastern_day",
                address="",
                details={},
            )
        )
    cookie = await matrix.session(admin)

    async def shown(since: str, until: str) -> bool:
        page = await client.get(
            f"/identity/audit?action=test.eastern&since={since}&until={until}",
            headers={"Cookie": cookie},
        )
        assert page.status_code == 200
        return "test.eastern_day" in page.text

    assert await shown("2026-12-07", "2026-12-07")
    assert not await shown("2026-12-06", "2026-12-06")


@pytest.mark.parametrize(("lang", "said"), [("ru", "Выдана роль"), ("en", "Role granted")])
async def test_the_security_log_says_what_happened_in_words(
    portal: tuple[Host, httpx.AsyncClient, RouteMatrix], lang: str, said: str
) -> None:
    """Each line says what happened in the reader's language (the code only as its
    tooltip); a code without a label stays a code."""
    host, client, matrix = portal
    person = await matrix.person("granted")
    await host.services["roles"].grant(person, "manager", None)
    admin = await matrix.person("auditor-words")
    await host.services["roles"].grant(admin, "admin", None)
    cookie = await matrix.session(admin)
    page = await client.get(
        "/identity/audit?action=roles.grant", headers={"Cookie": f"{cookie}; kabinet_lang={lang}"}
    )
    assert page.status_code == 200
    assert re.search(rf'<td data-label="[^"]*" title="roles\.grant\.given">{said}</td>', page.text)
    assert "<code>roles.grant.given</code>" not in page.text
