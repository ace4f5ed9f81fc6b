"""The identity's pages over HTTP: sign-in, the cookie, sign-out, reset, profile, staff."""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import pytest
from identity_support import PASSWORD, csrf, messages, sign_in, unique_email

from kabinet.clock import FrozenClock
from kabinet.host import Host
from kabinet.identity.models import Account
from kabinet.identity.services import IdentityService, identity_service
from kabinet.testing import Portal, PortalFactory

pytestmark = pytest.mark.smoke
MakeAccount = Callable[..., Awaitable[Account]]


@pytest.fixture
async def portal(make_portal: PortalFactory) -> Portal:
    """The host's built-ins only: these tests are about identity, not about the apps."""
    return await make_portal(plugins=[])


@pytest.fixture
def web(portal: Portal) -> tuple[Host, httpx.AsyncClient]:
    """The host and a browser at the portal (it signs in through the forms under test)."""
    return portal.host, portal.browser()


@pytest.fixture
def client(web: tuple[Host, httpx.AsyncClient]) -> httpx.AsyncClient:
    return web[1]


@pytest.fixture
def service(web: tuple[Host, httpx.AsyncClient]) -> IdentityService:
    return identity_service(web[0])


async def account(service: IdentityService, **kw: Any) -> Account:
    kw.setdefault("full_name", "Пётр Веб")
    kw.setdefault("email", unique_email("web"))
    kw.setdefault("password", PASSWORD)
    return await service.create_account(**kw)


async def test_sign_in_sets_a_safe_cookie_and_opens_the_profile(
    client: httpx.AsyncClient, service: IdentityService
) -> None:
    person = await account(service)
    assert person.email is not None
    anonymous = await client.get("/identity/profile", follow_redirects=False)
    assert anonymous.status_code == 303
    assert anonymous.headers["location"].startswith("/login?next=")
    answer = await sign_in(client, person.email)
    assert answer.status_code == 303
    assert answer.headers["location"] == "/identity/profile"
    cookie = next(
        c for c in answer.headers.get_list("set-cookie") if c.startswith("kabinet_session=")
    )
    assert "HttpOnly" in cookie
    assert "samesite=lax" in cookie.lower()
    assert "Secure" not in cookie
    profile = await client.get("/identity/profile")
    assert profile.status_code == 200
    assert person.full_name in profile.text
    assert "csrf_token" in profile.text


async def test_secure_cookie_on_https(make_portal: PortalFactory) -> None:
    https = "https://portal.example"
    portal = await make_portal(plugins=[], settings={"host": {"base_url": https}})
    client = portal.browser()
    client.base_url = httpx.URL(https)
    person = await account(identity_service(portal.host))
    assert person.email is not None
    answer = await sign_in(client, person.email)
    cookie = next(
        c
        for c in answer.headers.get_list("set-cookie")
        if c.startswith("__Host-kabinet_session=")  # test_cookie_prefix.py
    )
    assert "Secure" in cookie


async def test_wrong_password_and_unknown_login_look_the_same(
    client: httpx.AsyncClient, service: IdentityService
) -> None:
    person = await account(service)
    assert person.email is not None
    wrong = await sign_in(client, person.email, "not the password")
    unknown = await sign_in(client, unique_email(), "not the password")
    assert wrong.status_code == unknown.status_code == 400
    strip = re.compile(r'value="[^"]*"')
    assert strip.sub("", wrong.text) == strip.sub("", unknown.text)
    assert "kabinet_session" not in wrong.headers.get("set-cookie", "")


async def test_lockout_message_says_when(
    client: httpx.AsyncClient, service: IdentityService
) -> None:
    login = unique_email()
    for _ in range(service.settings.login_failures_per_account):
        await sign_in(client, login, "bad one here")
    locked = await sign_in(client, login, "bad one here")
    assert locked.status_code == 429
    assert "Try again after" in locked.text or "Повторите попытку после" in locked.text


async def test_login_form_without_csrf_is_refused(
    client: httpx.AsyncClient, service: IdentityService
) -> None:
    person = await account(service)
    await client.get("/login")
    answer = await client.post("/login", data={"login": person.email, "password": PASSWORD})
    assert answer.status_code == 403


async def test_sign_out_ends_the_session(
    client: httpx.AsyncClient, service: IdentityService
) -> None:
    person = await account(service)
    assert person.email is not None
    await sign_in(client, person.email)
    token = await csrf(client, "/identity/profile")
    out = await client.post("/logout", data={"csrf_token": token}, follow_redirects=False)
    assert out.status_code == 303
    assert (await client.get("/identity/profile", follow_redirects=False)).status_code == 303
    assert await service.sessions_of(person.id) == []


async def test_password_reset_by_link(
    web: tuple[Host, httpx.AsyncClient], service: IdentityService, clock: FrozenClock
) -> None:
    host, client = web
    person = await account(service)
    assert person.email is not None
    token = await csrf(client, "/identity/reset")
    sent = await client.post(
        "/identity/reset", data={"login": person.email.upper(), "csrf_token": token}
    )
    assert sent.status_code == 200
    unknown = await client.post(
        "/identity/reset", data={"login": unique_email(), "csrf_token": token}
    )
    assert unknown.text.count("we have sent a link") == sent.text.count("we have sent a link")
    mail = [m for m in messages(host) if m["to"] == person.email][-1]
    link = mail["context"]["link"]
    assert link in mail["body"]
    path = link.split("://", 1)[1].split("/", 1)[1]
    form = await client.get("/" + path)
    assert form.status_code == 200
    assert 'name="token"' in form.text
    reset_token = re.search(r'name="token" value="([^"]+)"', form.text)
    assert reset_token
    differ = await client.post(
        "/identity/reset/confirm",
        data={
            "token": reset_token.group(1),
            "password": "brand new secret",
            "password2": "other",
            "csrf_token": token,
        },
    )
    assert differ.status_code == 400
    done = await client.post(
        "/identity/reset/confirm",
        data={
            "token": reset_token.group(1),
            "password": "brand new secret",
            "password2": "brand new secret",
            "csrf_token": token,
        },
        follow_redirects=False,
    )
    assert done.status_code == 303
    assert done.headers["location"] == "/login?reset=1"
    again = await client.get("/" + path)
    assert again.status_code == 400  # single use
    assert (await sign_in(client, person.email, "brand new secret")).status_code == 303


async def test_reset_link_expires(
    web: tuple[Host, httpx.AsyncClient], service: IdentityService, clock: FrozenClock
) -> None:
    host, client = web
    person = await account(service)
    assert person.email is not None
    await service.request_reset(person.email)
    link = [m for m in messages(host) if m["to"] == person.email][-1]["context"]["link"]
    token = link.split("token=", 1)[1]
    clock.advance(service.settings.reset_ttl + 1)
    assert await service.check_reset(token) is None
    answer = await client.get(f"/identity/reset/confirm?token={token}")
    assert answer.status_code == 400


async def test_profile_change_and_log_out_others(
    web: tuple[Host, httpx.AsyncClient], service: IdentityService
) -> None:
    _host, client = web
    person = await account(service)
    assert person.email is not None
    other = await service.login(person.email, PASSWORD)
    await sign_in(client, person.email)
    token = await csrf(client, "/identity/profile")
    bad = await client.post(
        "/identity/profile",
        data={
            "full_name": "Новое Имя",
            "email": person.email,
            "phone": "123",
            "language": "en",
            "timezone": "Europe/Moscow",
            "csrf_token": token,
        },
    )
    assert bad.status_code == 400
    assert 'aria-invalid="true"' in bad.text
    saved = await client.post(
        "/identity/profile",
        data={
            "full_name": "Новое Имя",
            "email": person.email,
            "phone": "",
            "language": "en",
            "timezone": "Asia/Omsk",
            "csrf_token": token,
        },
    )
    assert saved.status_code == 200
    assert "Новое Имя" in saved.text
    changed = await service.get_account(person.id)
    assert changed is not None
    assert changed.timezone == "Asia/Omsk"
    assert changed.language == "en"
    ended = await client.post("/identity/profile/logout-others", data={"csrf_token": token})
    assert ended.status_code == 200
    assert await service.resolve_session(other.token) is None
    assert (await client.get("/identity/profile")).status_code == 200


async def test_staff_pages_need_their_permissions(
    web: tuple[Host, httpx.AsyncClient], service: IdentityService
) -> None:
    host, client = web
    plain = await account(service)
    assert plain.email is not None
    await sign_in(client, plain.email)
    assert (await client.get("/identity/accounts")).status_code == 403
    assert (await client.get("/identity/audit")).status_code == 403
    person = await account(service)
    assert person.email is not None
    await host.services["roles"].grant(person.id, "admin")
    await sign_in(client, person.email)
    listing = await client.get("/identity/accounts", params={"q": person.email})
    assert listing.status_code == 200
    assert person.full_name in listing.text
    card = await client.get(f"/identity/accounts/{person.id}")
    assert card.status_code == 200
    audit = await client.get("/identity/audit", params={"person": person.email})
    assert audit.status_code == 200
    assert "login" in audit.text
    target = await account(service)
    token = await csrf(client, "/identity/accounts")
    off = await client.post(
        f"/identity/accounts/{target.id}/status", data={"status": "disabled", "csrf_token": token}
    )
    assert off.status_code == 200
    disabled = await service.get_account(target.id)
    assert disabled is not None
    assert disabled.status == "disabled"
    made = await client.post(
        "/identity/accounts",
        data={"full_name": "Создан Сотрудником", "email": unique_email(), "csrf_token": token},
    )
    assert made.status_code == 200
    assert "Создан Сотрудником" in made.text
    duplicate = await client.post(
        "/identity/accounts",
        data={"full_name": "Дубль", "email": person.email, "csrf_token": token},
    )
    assert duplicate.status_code == 400
    assert 'aria-invalid="true"' in duplicate.text
