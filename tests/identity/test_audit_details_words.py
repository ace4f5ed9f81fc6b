"""The security log says what an event's details mean, in the reader's language: a role's
and a permission's names (not "role: client; grant: 11" or "added: ['booking…']"), no
number of a row a reader never sees; its action filter is a list of actions in words, and
choosing one shows that action alone."""

from __future__ import annotations

import html
import re
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from kabinet import i18n
from kabinet.host import Host
from kabinet.routematrix import RouteMatrix
from kabinet.testing import drop_database, migrated_database
from kabinet.web import build_app

pytestmark = pytest.mark.smoke


@pytest.fixture(scope="module")
async def own_database_url(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[str]:
    url = await migrated_database(tmp_path_factory.mktemp("audit-words"))
    yield url
    await drop_database(url)


@pytest.fixture
async def portal(
    own_database_url: str, tmp_path: Path
) -> AsyncIterator[tuple[Host, httpx.AsyncClient, RouteMatrix]]:
    settings = tmp_path / "settings.toml"
    settings.write_text('[host]\nvar_dir = "var"\nsecret_key = "audit-words-secret"\n')
    host = await Host.create(settings, env={"KABINET__HOST__DATABASE_URL": own_database_url})
    app = await build_app(host)
    await host.startup()
    try:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1:8000") as c:
            yield host, c, RouteMatrix(host, app, c)
    finally:
        await host.shutdown()


def _details(text: str) -> list[str]:
    return [
        " ".join(html.unescape(re.sub(r"<br>", " | ", c)).split())
        for c in re.findall(r'<td data-label="[^"]*" class="id-details">(.*?)</td>', text, re.S)
    ]


async def test_the_security_log_says_details_in_words(
    portal: tuple[Host, httpx.AsyncClient, RouteMatrix],
) -> None:
    host, client, matrix = portal
    roles = host.services["roles"]
    person = await matrix.person("audited")
    await roles.grant(person, "admin", None)  # "roles.grant.given": role and grant's id
    role = await roles.create_role(code="auditors", name_ru="Ревизоры", name_en="Auditors")
    await roles.set_permissions(role.id, {"identity.audit.view"})
    admin = await matrix.person("auditor")
    await roles.grant(admin, "admin", None)
    cookie = await matrix.session(admin)
    ru_permission = i18n.localized(host.permissions["identity.audit.view"][1].label, "ru")
    en_permission = i18n.localized(host.permissions["identity.audit.view"][1].label, "en")

    ru = await client.get("/identity/audit?action=roles.", headers={"Cookie": cookie})
    assert ru.status_code == 200
    details = _details(ru.text)
    assert "Роль: Администратор" in details  # the grant's number is not shown
    assert f"Роль: Ревизоры | Добавлены права: {ru_permission}" in details
    for cell in details:
        assert "grant" not in cell
        assert "[" not in cell
        assert "'" not in cell
    assert "login, password" not in ru.text
    granted = i18n.gettext_("ru", "Role granted")
    assert granted != "Role granted"
    assert f'<option value="roles.grant.given">{granted}</option>' in ru.text

    en = await client.get(
        "/identity/audit?action=roles.", headers={"Cookie": f"{cookie}; kabinet_lang=en"}
    )
    assert f"Role: Auditors | Permissions added: {en_permission}" in _details(en.text)
    assert '<option value="roles.grant.given">Role granted</option>' in en.text

    # choosing "Signed in" shows sign-ins, not the failed ones that begin with its code
    await host.services["identity"].record_security_event(
        None, "login.failed", subject_id=person, details={"reason": "wrong password"}
    )
    await host.services["identity"].record_security_event(person, "login", subject_id=person)
    signed_in = await client.get("/identity/audit?action=login", headers={"Cookie": cookie})
    assert 'value="login" selected' in signed_in.text
    assert "неверный пароль" not in signed_in.text
    failed = await client.get("/identity/audit?action=login.failed", headers={"Cookie": cookie})
    assert "Причина: неверный пароль" in _details(failed.text)


async def test_a_tokens_details_name_its_organizations(
    portal: tuple[Host, httpx.AsyncClient, RouteMatrix],
) -> None:
    from kabinet_companies.services import companies

    host, client, matrix = portal
    org = await companies(host).create_organization("ООО Токен и Ко")
    person = await matrix.person("token-owner")
    await host.services["identity"].record_security_event(
        person,
        "token.created",
        subject_id=person,
        details={
            "token_id": 7,
            "name": "1С",
            "permissions": ["identity.audit.view"],
            "organizations": [org.id],
        },
    )
    admin = await matrix.person("token-auditor")
    await host.services["roles"].grant(admin, "admin", None)
    cookie = await matrix.session(admin)
    page = await client.get("/identity/audit?action=token.created", headers={"Cookie": cookie})
    permission = i18n.localized(host.permissions["identity.audit.view"][1].label, "ru")
    assert (
        f"API-токен: № 7 | Название: 1С | Права: {permission} | Организации: ООО Токен и Ко"
        in _details(page.text)
    )
