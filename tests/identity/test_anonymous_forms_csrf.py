"""The forms anonymous visitors post (sign-in, password reset, registration, invitation)
need the CSRF token like every signed-in form: a cross-site page cannot sign its victim in
as the attacker (login CSRF), nor start a reset or a registration in their browser.

The public POST routes are read from the assembled portal (every plugin on), so a new
anonymous form is checked the moment it exists. The JSON API with a token stays free of
CSRF (a cross-site page cannot add an ``Authorization`` header)."""

from __future__ import annotations

import contextlib
import dataclasses
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from identity_support import CSRF_RE, PASSWORD

from kabinet.access import Principal, Public
from kabinet.host import Host
from kabinet.identity.services import IDENTITY
from kabinet.roles.services import ROLES, Conflict
from kabinet.routematrix import routes_of
from kabinet.web import KabinetApp, build_app

pytestmark = pytest.mark.smoke

EVIL = {"Origin": "https://evil.example", "Referer": "https://evil.example/trap.html"}
FORMS = {
    "/login",
    "/identity/reset",
    "/identity/reset/confirm",
    "/companies/register",
    "/companies/invitation",
}
"""Anonymous forms that must be among the public POST routes (the test takes them all)."""
CSRF_REFUSAL = "did not come from this site"


@dataclasses.dataclass
class Served:
    host: Host
    app: KabinetApp
    public_posts: list[str]
    """The paths of the public POST routes of pages (not the JSON API)."""


@pytest.fixture
async def portal(database_url: str, tmp_path: Path) -> AsyncIterator[Served]:
    settings = tmp_path / "settings.toml"
    settings.write_text('[host]\nvar_dir = "var"\nsecret_key = "csrf-anonymous-forms"\n')
    host = await Host.create(settings, env={"KABINET__HOST__DATABASE_URL": database_url})
    app = await build_app(host)
    await host.startup()
    public_posts = sorted(
        r.path
        for r in routes_of(app)
        if r.method == "POST" and isinstance(r.rule, Public) and not r.path.startswith("/api/")
    )
    try:
        yield Served(host, app, public_posts)
    finally:
        await host.shutdown()


def _browser(served: Served) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        transport=httpx.ASGITransport(app=served.app),
        base_url="http://127.0.0.1:8000",
        follow_redirects=False,
    )


async def _account(host: Host) -> str:
    email = f"csrf-{uuid.uuid4().hex[:12]}@example.test"
    await host.services.of(IDENTITY).create_account(
        full_name="Жертва Подделки", email=email, password=PASSWORD
    )
    return email


async def test_every_anonymous_form_refuses_a_cross_site_post(
    portal: Served,
) -> None:
    host, public_posts = portal.host, portal.public_posts
    assert set(public_posts) >= FORMS, public_posts
    email = await _account(host)
    form = {
        "login": email,
        "password": PASSWORD,
        "email": email,
        "full_name": "Злоумышленник",
        "token": "x",
        "new_password": "a new password 123",
        "next": "/",
    }
    for path in public_posts:
        # A cross-site form: the victim's browser has no cookie of ours yet, or has the
        # CSRF cookie from an earlier visit (sent along: the attacker cannot read it).
        async with _browser(portal) as fresh:
            refused = await fresh.post(path, data=form, headers=EVIL)
            assert refused.status_code == 403, (path, refused.status_code, refused.text[:300])
            assert "kabinet_session" not in refused.headers.get("set-cookie", "")
        async with _browser(portal) as visited:
            await visited.get("/login")
            assert visited.cookies.get("kabinet_csrf")
            refused = await visited.post(path, data=form, headers=EVIL)
            assert refused.status_code == 403, (path, refused.status_code)
            assert "kabinet_session" not in refused.headers.get("set-cookie", "")
            forged = await visited.post(path, data={**form, "csrf_token": "forged.token"})
            assert forged.status_code == 403, (path, forged.status_code)


async def test_a_forged_sign_in_leaves_the_victim_signed_out_and_the_real_form_works(
    portal: Served,
) -> None:
    host = portal.host
    attacker = await _account(host)
    async with _browser(portal) as victim:
        forged = await victim.post(
            "/login", data={"login": attacker, "password": PASSWORD}, headers=EVIL
        )
        assert forged.status_code == 403
        assert "text/html" in forged.headers["content-type"]  # a page's 403, in words
        profile = await victim.get("/identity/profile")
        assert profile.status_code == 303  # still signed out: sent to sign in
        assert profile.headers["location"].startswith("/login")

        page = await victim.get("/login")
        token = _token(page.text)
        signed = await victim.post(
            "/login", data={"login": attacker, "password": PASSWORD, "csrf_token": token}
        )
        assert signed.status_code == 303
        assert "kabinet_session" in signed.headers.get("set-cookie", "")
        assert (await victim.get("/identity/profile")).status_code == 200


async def test_the_reset_form_works_with_its_token(portal: Served) -> None:
    host = portal.host
    email = await _account(host)
    async with _browser(portal) as browser:
        token = _token((await browser.get("/identity/reset")).text)
        sent = await browser.post("/identity/reset", data={"login": email, "csrf_token": token})
        assert sent.status_code in (200, 303), sent.text[:300]


async def test_the_json_api_with_a_token_needs_no_csrf(portal: Served) -> None:
    host = portal.host
    email = await _account(host)
    account = await host.services.of(IDENTITY).find_by_login(email)
    assert account is not None
    org = 990_001 + uuid.uuid4().int % 1000
    role = "csrf_token_maker"
    permissions = ["identity.tokens.manage", "companies.organizations.view"]
    with contextlib.suppress(Conflict):  # made by an earlier run on this database
        await host.services.of(ROLES).create_role(
            code=role, name_ru=role, name_en=role, permissions=permissions
        )
    await host.services.of(ROLES).grant(account.id, role, org)
    made = await host.services.of(IDENTITY).create_token(
        Principal(person_id=account.id, kind="person"),
        "csrf test",
        ["companies.organizations.view"],
        [org],
    )
    bearer = {"Authorization": f"Bearer {made.token}"}
    async with _browser(portal) as program:
        me = await program.get("/api/identity/me", headers=bearer)
        assert me.status_code == 200
        assert me.json()["kind"] == "token"
        # An unsafe call with the token and no CSRF token: refused by its permission (the
        # token carries view only), never as a forged form.
        wrote = await program.post(
            "/api/companies/counterparties",
            json={"name": "Проба", "inn": "7707083893"},
            headers=bearer,
        )
        assert wrote.status_code == 403
        assert wrote.headers["content-type"].startswith("application/problem+json")
        assert CSRF_REFUSAL not in wrote.text
        assert "companies." in wrote.json()["detail"]


def _token(page: str) -> str:
    import re

    found = re.search(CSRF_RE, page)
    assert found, page[:500]
    return found.group(1)
