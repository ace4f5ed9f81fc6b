"""Staff pick organizations by name on the other apps' forms too (issue 16, point 7): the
documents' organization and a dictionary's publication use the host's picker, which finds
the companies app's search; what was chosen reads by name, and the forms take the ids the
picker posts (several for a publication) as well as the numbers typed without a script."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from kabinet.host import Host
from kabinet.pages import CSRF_COOKIE, CSRF_HEADER
from kabinet.roles.services import ROLES
from kabinet.routematrix import RouteMatrix
from kabinet.web import build_app
from kabinet_dictionaries.services import DICTIONARIES

pytestmark = pytest.mark.smoke

PDF = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"


class Portal:
    def __init__(self, host: Host, client: httpx.AsyncClient, matrix: RouteMatrix) -> None:
        self.host, self.client, self.matrix = host, client, matrix

    async def admin(self) -> str:
        person = await self.matrix.person("admin")
        await self.host.services.of(ROLES).grant(person, "admin")
        return await self.matrix.session(person)

    async def call(self, method: str, path: str, session: str, **kwargs: Any) -> httpx.Response:
        self.client.cookies.clear()
        cookies, headers = [session], {}
        if method != "GET":
            csrf = await self.matrix.csrf(session)
            cookies.append(f"{CSRF_COOKIE}={csrf}")
            headers[CSRF_HEADER] = csrf
        headers["Cookie"] = "; ".join(cookies)
        return await self.client.request(
            method,
            path,
            headers=headers,
            follow_redirects=False,
            **kwargs,
        )


@pytest.fixture
async def portal(database_url: str, tmp_path: Path) -> AsyncIterator[Portal]:
    settings = tmp_path / "settings.toml"
    settings.write_text('[host]\nvar_dir = "var"\nsecret_key = "pickers-secret"\n')
    host = await Host.create(settings, env={"KABINET__HOST__DATABASE_URL": database_url})
    app = await build_app(host)
    await host.startup()
    try:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1:8000") as c:
            yield Portal(host, c, RouteMatrix(host, app, c))
    finally:
        await host.shutdown()


async def _orgs(host: Host, *names: str) -> list[int]:
    from kabinet_companies.services import companies

    return [(await companies(host).create_organization(name)).id for name in names]


async def test_a_dictionary_is_published_to_organizations_picked_by_name(
    portal: Portal,
) -> None:
    from kabinet_dictionaries.kinds import FieldDef

    word = "Публикация" + uuid.uuid4().hex[:6]
    first, second = await _orgs(portal.host, f"{word} Север", f"{word} Юг")
    svc = portal.host.services.of(DICTIONARIES)
    code = f"pick_{uuid.uuid4().hex[:10]}"
    field = FieldDef(code="name", name_ru="Название", name_en="Name", kind="text")
    await svc.create_type(code=code, name_ru="Тарифы", name_en="Rates", fields=[field])
    admin = await portal.admin()

    saved = await portal.call(
        "POST",
        f"/dictionaries/{code}/publication",
        admin,
        data={"publish": "some", "organizations": [str(first), str(second)]},
    )
    assert saved.status_code == 303
    assert sorted((await svc.get_type(code)).organizations) == sorted([first, second])
    page = await portal.call("GET", f"/dictionaries/{code}/structure", admin)
    assert 'data-source="/api/companies/pick/organizations"' in page.text
    # The chosen organizations are chips with their names (and their ids for the form).
    assert f"<span>{word} Север</span>" in page.text
    assert f'name="organizations" value="{second}"' in page.text
    assert "Номера организаций через пробел" not in page.text
    # Without a script the old number field posts one value: still understood.
    typed = await portal.call(
        "POST",
        f"/dictionaries/{code}/publication",
        admin,
        data={"publish": "some", "organizations": f"{second}"},
    )
    assert typed.status_code == 303
    assert (await svc.get_type(code)).organizations == [second]
    wrong = await portal.call(
        "POST",
        f"/dictionaries/{code}/publication",
        admin,
        data={"publish": "some", "organizations": ["x1"]},
    )
    assert wrong.status_code == 400


async def test_a_documents_organization_is_picked_and_read_by_name(portal: Portal) -> None:
    word = "Документ" + uuid.uuid4().hex[:6]
    (org,) = await _orgs(portal.host, f"{word} Восток")
    admin = await portal.admin()
    uploaded = await portal.call(
        "POST",
        "/dictionaries/documents/",
        admin,
        data={"title": f"{word} договор", "organization_id": str(org)},
        files={"file": ("doc.pdf", PDF, "application/pdf")},
    )
    assert uploaded.status_code == 303, uploaded.text
    listed = await portal.call("GET", "/dictionaries/documents/", admin)
    assert f"· {word} Восток" in listed.text  # not "· 12"
    assert 'id="pk-organization_id-q"' in listed.text
    card = await portal.call("GET", uploaded.headers["location"], admin)
    assert f'value="{word} Восток"' in card.text  # the edit form shows the name
    assert f'name="organization_id" value="{org}"' in card.text


async def test_the_undelivered_list_is_filtered_by_an_organization_picked_by_name(
    portal: Portal,
) -> None:
    word = "Недоставлено" + uuid.uuid4().hex[:6]
    [org] = await _orgs(portal.host, f"{word} ООО")
    session = await portal.admin()
    page = await portal.call("GET", f"/notifications/failed?organization={org}", session)
    assert page.status_code == 200
    # The filter shows the company by name in the picker, searching the companies app.
    assert 'data-source="/api/companies/pick/organizations"' in page.text
    assert f'value="{word} ООО"' in page.text
    assert f'name="organization" value="{org}"' in page.text
