"""The harness plugin authors test with (``-p kabinet.testing``): the portal, people with
roles in organizations, signed-in and API-token clients, settings per test, the database
server it is told to use."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import uuid

import msgspec
import pytest

from kabinet.identity.services import IDENTITY
from kabinet.plugins import entry_point_candidates
from kabinet.testing import PluginFactory, Portal, PortalFactory, disabled_env

pytestmark = pytest.mark.smoke

THINGS = """
from pathlib import Path
from typing import Any

from litestar import Request, Router, get, post
from kabinet.access import permission
from kabinet.pages import page, principal_of, shell_of

VIEW = permission("hx.things.view")


@get("/", access=VIEW)
async def index(request: Request[Any, Any, Any]) -> Any:
    return await page(request, "hx/index.html")


@post("/echo", access=VIEW)
async def echo(request: Request[Any, Any, Any]) -> dict[str, str]:
    form = await request.form()
    return {"said": str(form.get("text"))}


@get("/organizations", access=VIEW)
async def organizations(request: Request[Any, Any, Any]) -> list[int]:
    host = shell_of(request).host
    return sorted(await host.access.organizations(principal_of(request.scope), "hx.things.view"))


@hookimpl
def permissions():
    return [Permission(code="hx.things.view", label={"ru": "Вещи", "en": "Things"})]


@hookimpl
def routers(host):
    return [
        Router(path="/hx", route_handlers=[index, echo]),
        Router(path="/api/hx", route_handlers=[organizations]),
    ]


@hookimpl
def template_dir():
    return Path(__file__).parent / "templates"
"""
PAGE = """{% extends "shell/base.html" %}
{% block content %}<h1>Things of {{ principal.name }}</h1>{% endblock %}
"""


@pytest.fixture
async def things(plugin_factory: PluginFactory, make_portal: PortalFactory) -> Portal:
    """A portal of the built-ins and one plugin with a page, a form and an API route."""
    plugin_factory.add("hx", THINGS, files={"templates/hx/index.html": PAGE})
    return await make_portal(candidates=plugin_factory.candidates())


async def test_a_person_holds_the_permission_in_their_organization_only(things: Portal) -> None:
    mine, other = things.organization_id(), things.organization_id()
    person = await things.person(permissions=["hx.things.view"], organization=mine, name="Olga")
    nobody = await things.person(organization=mine)

    client = await things.signed_in(person)
    page = await client.get("/hx/")
    assert page.status_code == 200
    assert 'class="topbar"' in page.text
    assert "<h1>Things of Olga</h1>" in page.text
    assert (await client.get("/api/hx/organizations")).json() == [mine]
    assert not await things.host.access.can(person.principal, "hx.things.view", other)
    assert (await (await things.signed_in(nobody)).get("/hx/")).status_code == 403
    anonymous = await things.client.get("/hx/")
    assert anonymous.status_code == 303
    assert anonymous.headers["location"].startswith("/login?next=")


async def test_roles_are_granted_in_the_organization_given_or_globally(things: Portal) -> None:
    organization = things.organization_id()
    role = await things.role("hx.things.view")
    assert role == await things.role("hx.things.view")  # made once
    local = await things.person(role, organization=organization)
    everywhere = await things.person(role)

    assert await things.host.access.can(local.principal, "hx.things.view", organization)
    assert not await things.host.access.can(local.principal, "hx.things.view", organization + 1)
    assert await things.host.access.can(everywhere.principal, "hx.things.view", organization + 1)
    with pytest.raises(ValueError, match=r"no plugin of this portal declares hx\.thing\.view"):
        await things.person(permissions=["hx.thing.view"], organization=organization)


async def test_a_signed_in_client_posts_forms_with_its_csrf_pair(things: Portal) -> None:
    person = await things.person(permissions=["hx.things.view"], organization=7)
    client = await things.signed_in(person)

    posted = await client.post("/hx/echo", data={"text": "hello"})
    forged = await client.post("/hx/echo", data={"text": "x"}, headers={"x-csrf-token": "forged"})

    assert (posted.status_code, posted.json()) == (201, {"said": "hello"})
    assert forged.status_code == 403


async def test_an_api_client_acts_with_a_token_limited_to_its_organizations(
    things: Portal,
) -> None:
    one, two = things.organization_id(), things.organization_id()
    person = await things.person(permissions=["hx.things.view"], organization=one)
    await things.grant(person, await things.role("hx.things.view"), two)

    limited = await things.api_client(person, ["hx.things.view"], [two])
    answer = await limited.get("/api/hx/organizations")

    assert "cookie" not in {k.lower() for k in limited.headers}
    assert answer.status_code == 200
    assert answer.json() == [two]
    assert (await limited.get("/hx/")).status_code in (303, 401, 403)  # pages need a session


async def test_the_language_of_a_signed_in_client(things: Portal) -> None:
    person = await things.person(permissions=["hx.things.view"], organization=8)
    english = await (await things.signed_in(person, language="en")).get("/hx/")
    russian = await (await things.signed_in(person)).get("/hx/")

    assert '<html lang="en">' in english.text
    assert '<html lang="ru">' in russian.text


@pytest.mark.kabinet_settings(identity={"cookie_name": "k_harness", "idle_timeout": 600})
async def test_the_marker_sets_a_plugins_settings_section(portal: Portal) -> None:
    assert portal.settings("identity").cookie_name == "k_harness"
    client = await portal.signed_in(await portal.person())
    assert "k_harness" in client.cookies
    me = await client.get("/api/identity/me")
    assert me.status_code == 200


async def test_override_is_checked_like_the_settings_file(portal: Portal) -> None:
    assert portal.override("identity", idle_timeout=60).idle_timeout == 60
    assert portal.settings("identity").idle_timeout == 60
    with pytest.raises(msgspec.ValidationError, match="idle_timeout"):
        portal.override("identity", idle_timeout="soon")


async def test_the_clock_is_the_tests(portal: Portal, clock: object) -> None:
    assert portal.clock is clock
    before = portal.host.clock.now()
    portal.clock.advance(hours=1)
    assert (portal.host.clock.now() - before).total_seconds() == 3600


def test_the_database_server_comes_from_kabinet_test_pg() -> None:
    code = "from kabinet import testing; print(testing.pg_url('kt_x'))"
    env = {**os.environ, "KABINET_TEST_PG": "postgresql://ci:secret@db.internal:6543/"}
    done = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    )
    assert done.stdout.strip() == "postgresql+asyncpg://ci:secret@db.internal:6543/kt_x"


async def test_a_person_with_a_phone_and_a_portal_without_its_app(
    make_portal: PortalFactory,
) -> None:
    alone = await make_portal(web=False)
    phone = f"+7916{uuid.uuid4().int % 10**7:07d}"
    person = await alone.person(phone=phone, name="Ivan")

    account = await alone.host.services.of(IDENTITY).get_account(person.id)
    assert account is not None
    assert (account.full_name, account.phone, account.email) == ("Ivan", phone, person.email)
    assert alone.app is None
    with pytest.raises(RuntimeError, match="web=False"):
        await alone.signed_in(person)


def test_disabled_env_turns_off_every_installed_plugin_but_those_named() -> None:
    installed = {c.name for c in entry_point_candidates()}
    env = disabled_env(["notifications"])

    assert set(env) == {f"KABINET__{n.upper()}__ENABLED" for n in installed - {"notifications"}}
    assert set(env.values()) == {"false"}
    assert disabled_env(None) == {}


async def test_a_client_signed_in_through_the_login_form_posts_with_the_new_token(
    things: Portal,
) -> None:
    person = await things.person(
        permissions=["hx.things.view"], organization=9, password="correct horse battery"
    )
    browser = things.client
    signed = await browser.post(
        "/login", data={"login": person.email, "password": "correct horse battery", "next": "/"}
    )
    assert signed.status_code in (302, 303), signed.text
    page = await browser.get("/hx/")  # a page of the new session: a new CSRF cookie
    posted = await browser.post("/hx/echo", data={"text": "after"})

    assert "<h1>Things of " in page.text
    assert (posted.status_code, posted.json()) == (201, {"said": "after"})


async def test_an_account_the_harness_did_not_make_signs_in_by_its_id(things: Portal) -> None:
    account = await things.host.services.of(IDENTITY).create_account(
        full_name="Registered Elsewhere", email=f"r-{uuid.uuid4().hex[:8]}@example.test"
    )
    client = await things.signed_in(int(account.id))

    me = await client.get("/api/identity/me")
    assert me.status_code == 200
    assert me.json()["name"] == "Registered Elsewhere"


async def test_a_browser_brings_no_token_and_keeps_what_the_pages_set(things: Portal) -> None:
    browser = things.browser()
    refused = await browser.post("/login", data={"login": "x@example.test", "password": "x"})
    page = await browser.get("/login")
    token = re.search(r'name="csrf_token" value="([^"]+)"', page.text)

    assert refused.status_code == 403  # no CSRF token: the check is the portal's, not skipped
    assert not {k.lower() for k in browser.headers} & {"x-csrf-token", "authorization"}
    assert token is not None
    wrong = await browser.post(
        "/login",
        data={"login": "x@example.test", "password": "x", "csrf_token": token.group(1)},
    )
    assert wrong.status_code == 400  # past the check: a wrong password
