"""The roles page over HTTP, and a grant given in one web process seen by another."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from kabinet.clock import FrozenClock
from kabinet.host import Host
from kabinet.roles.access import RolesAccess
from kabinet.routematrix import RouteMatrix
from kabinet.web import build_app

pytestmark = pytest.mark.smoke


class Web:
    """One web process: a host, its app and a client talking to it in this event loop."""

    def __init__(self, host: Host, client: httpx.AsyncClient, matrix: RouteMatrix) -> None:
        self.host, self.client, self.matrix = host, client, matrix

    async def get(self, path: str, session: str) -> httpx.Response:
        self.client.cookies.clear()
        return await self.client.get(path, headers={"Cookie": session})

    async def post(self, path: str, session: str, form: dict[str, str]) -> httpx.Response:
        token = await self.matrix.csrf(session)
        self.client.cookies.clear()
        headers = {"Cookie": f"{session}; kabinet_csrf={token}", "X-CSRF-Token": token}
        return await self.client.post(path, data=form, headers=headers)


@pytest.fixture
async def webs(
    database_url: str, tmp_path: Path, clock: FrozenClock
) -> AsyncIterator[tuple[Web, Web]]:
    settings = tmp_path / "settings.toml"
    settings.write_text('[host]\nvar_dir = "var"\nsecret_key = "pages-secret"\n')
    env = {"KABINET__HOST__DATABASE_URL": database_url}
    started: list[tuple[Host, httpx.AsyncClient]] = []
    made = []
    for _ in range(2):
        host = await Host.create(settings, env=env, clock=clock)
        app = await build_app(host)
        await host.startup()
        client = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://127.0.0.1:8000"
        )
        started.append((host, client))
        made.append(Web(host, client, RouteMatrix(host, app, client)))
    yield made[0], made[1]
    for host, client in started:
        await client.aclose()
        await host.shutdown()


async def _person(web: Web) -> tuple[int, str]:
    person = await web.matrix._person("page")
    return person, await web.matrix._session(person)


async def test_a_grant_given_on_one_web_process_is_honoured_by_another(
    webs: tuple[Web, Web], clock: FrozenClock
) -> None:
    web1, web2 = webs
    admin = await web1.matrix.holder("roles.manage", None)
    person, session = await _person(web1)
    assert (await web2.get("/roles/", session)).status_code == 403
    given = await web1.post(f"/roles/people/{person}/grants", admin, {"role": "admin"})
    assert given.status_code == 303
    page = await web1.get(f"/roles/people/{person}", admin)
    assert "Администратор" in page.text or "Administrator" in page.text
    assert isinstance(web2.host.access, RolesAccess)
    clock.advance(web2.host.access.recheck_seconds)
    assert (await web2.get("/roles/", session)).status_code == 200


async def test_the_roles_page_creates_a_role_and_refuses_bad_input_naming_the_field(
    webs: tuple[Web, Web],
) -> None:
    web, _ = webs
    admin = await web.matrix.holder("roles.manage", None)
    index = await web.get("/roles/", admin)
    assert index.status_code == 200
    # the matrix names permissions by their label, the code only as the row's tooltip
    assert 'title="roles.manage"' in index.text
    bad = await web.post("/roles/", admin, {"code": "Плохой", "name_ru": "x", "name_en": "x"})
    assert bad.status_code == 400
    assert re.search(r'id="f-code"[^>]*aria-invalid="true"', bad.text)
    made = await web.post(
        "/roles/", admin, {"code": "dispatcher", "name_ru": "Диспетчер", "name_en": "Dispatcher"}
    )
    assert made.status_code == 303
    assert "dispatcher" in (await web.get("/roles/", admin)).text
    taken = await web.post("/roles/", admin, {"code": "dispatcher", "name_ru": "Д", "name_en": "D"})
    assert taken.status_code == 409
