"""Signing in through Keycloak: the authorization-code flow with PKCE, against the fake."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from fake_keycloak import FakeKeycloak
from jwcrypto import jwk
from keycloak.pkce_utils import generate_code_verifier
from keycloak_support import keycloak_env
from sqlalchemy import func, select, update

from kabinet.clock import FrozenClock
from kabinet.host import Host
from kabinet.identity.models import Account
from kabinet.keycloak.models import login as login_table
from kabinet.keycloak.models import session as kc_session
from kabinet.pages import CSRF_COOKIE, CSRF_HEADER
from kabinet.web import build_app

pytestmark = pytest.mark.smoke

Client = httpx.AsyncClient


@pytest.fixture
async def host(fresh_url: str, fake: FakeKeycloak, clock: FrozenClock) -> Host:
    """A host configured for ``fake``; the ``client`` fixture starts and stops it."""
    return await Host.create(
        None, env={"KABINET__HOST__DATABASE_URL": fresh_url, **keycloak_env(fake)}, clock=clock
    )


@pytest.fixture
async def client(host: Host) -> AsyncIterator[Client]:
    """The app in this test's event loop (Litestar's test client runs it in another one,
    whose database connections the test could not share)."""
    app = await build_app(host)
    transport = httpx.ASGITransport(app=app)
    host.services["host.process"] = "test"  # no background relay or job runner
    await host.startup()  # the app's on_startup
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver.local") as c:
            yield c
    finally:
        await host.shutdown()


@pytest.fixture
def ivan(fake: FakeKeycloak) -> Any:
    user = fake.add_user(
        "ivan", email="Ivan.Petrov@example.com", first_name="Ivan", last_name="Petrov"
    )
    fake.auto_login = "ivan"
    return user


def query(url: str) -> dict[str, str]:
    return {k: v[-1] for k, v in parse_qs(urlsplit(url).query).items()}


async def to_keycloak(client: Client, next_path: str = "/") -> str:
    """Ask the portal to sign in; returns the Keycloak URL it sends the browser to."""
    r = await client.get("/keycloak/login", params={"next": next_path})
    assert r.status_code == 302, r.text
    return r.headers["location"]


async def at_keycloak(url: str) -> str:
    """The browser at Keycloak (auto-login): returns the callback URL Keycloak sends it to."""
    async with httpx.AsyncClient() as browser:
        r = await browser.get(url)
    assert r.status_code == 302, r.text
    return r.headers["location"]


async def back_at_portal(client: Client, callback: str) -> httpx.Response:
    parts = urlsplit(callback)
    assert parts.path == "/keycloak/callback"
    return await client.get(f"{parts.path}?{parts.query}")


async def sign_in(client: Client, next_path: str = "/") -> httpx.Response:
    return await back_at_portal(client, await at_keycloak(await to_keycloak(client, next_path)))


async def account_of(host: Host, subject: str) -> Account | None:
    async with host.db.session() as s:
        return (await s.scalars(select(Account).where(Account.external_subject == subject))).first()


async def test_first_login_creates_the_account_and_the_next_updates_it(
    host: Host, client: Client, fake: FakeKeycloak, ivan: Any
) -> None:
    url = await to_keycloak(client, "/shipments/orders")
    params = query(url)
    assert url.startswith(f"{fake.issuer()}/protocol/openid-connect/auth?")
    assert params["client_id"] == "kabinet"
    assert params["redirect_uri"] == "http://127.0.0.1:8000/keycloak/callback"
    assert params["response_type"] == "code"
    assert params["code_challenge_method"] == "S256"
    assert set(params["scope"].split()) == {"openid", "email", "profile"}
    assert len(params["state"]) >= 32
    assert len(params["nonce"]) >= 32
    assert len(params["code_challenge"]) == 43

    r = await back_at_portal(client, await at_keycloak(url))
    assert r.status_code == 302, r.text
    assert r.headers["location"] == "/shipments/orders"
    token = client.cookies.get("kabinet_session")
    assert token
    account = await account_of(host, ivan.id)
    assert account is not None
    assert (account.full_name, account.email) == ("Ivan Petrov", "ivan.petrov@example.com")
    assert account.email_confirmed
    assert account.status == "active"
    principal = await host.services["identity"].resolve_session(token)
    assert principal is not None
    assert principal.person_id == account.id

    # Keycloak is where the name changes; the next sign-in brings it over.
    ivan.last_name = "Sidorov"
    client.cookies.clear()
    r = await sign_in(client)
    assert r.status_code == 302
    again = await account_of(host, ivan.id)
    assert again is not None
    assert again.id == account.id
    assert again.full_name == "Ivan Sidorov"
    async with host.db.session() as s:
        same_email = await s.scalar(
            select(func.count()).where(Account.email == "ivan.petrov@example.com")
        )
    assert same_email == 1


async def test_login_links_an_existing_portal_account_by_verified_email(
    host: Host, client: Client, ivan: Any
) -> None:
    made = await host.services["identity"].create_account(
        full_name="Иван Петров", email="ivan.petrov@example.com", email_confirmed=True
    )
    assert (await sign_in(client)).status_code == 302
    linked = await account_of(host, ivan.id)
    assert linked is not None
    assert linked.id == made.id


async def test_wrong_state_is_refused(host: Host, client: Client, ivan: Any) -> None:
    callback = await at_keycloak(await to_keycloak(client))
    forged = callback.replace(f"state={query(callback)['state']}", "state=forged")
    r = await back_at_portal(client, forged)
    assert r.status_code == 400
    assert "does not belong to this sign-in" in r.text or "не относится к этому входу" in r.text
    assert "kabinet_session" not in client.cookies
    assert await account_of(host, ivan.id) is None
    # The sign-in is spent: the genuine answer cannot be replayed after a forged one.
    r = await back_at_portal(client, callback)
    assert r.status_code == 400
    assert await account_of(host, ivan.id) is None


async def test_callback_without_the_browsers_login_cookie_is_refused(
    host: Host, client: Client, ivan: Any
) -> None:
    callback = await at_keycloak(await to_keycloak(client))
    client.cookies.clear()
    r = await back_at_portal(client, callback)
    assert r.status_code == 400
    assert 'data-reason="no_login"' in r.text
    assert await account_of(host, ivan.id) is None


async def test_wrong_code_verifier_fails_at_keycloak(
    host: Host, client: Client, fake: FakeKeycloak, ivan: Any
) -> None:
    callback = await at_keycloak(await to_keycloak(client))
    async with host.db.session() as s:
        await s.execute(update(login_table).values(code_verifier=generate_code_verifier()))
    r = await back_at_portal(client, callback)
    assert r.status_code == 400
    assert 'data-reason="token"' in r.text
    assert ("POST", f"/realms/{fake.realm}/protocol/openid-connect/token") in fake.requests
    assert await account_of(host, ivan.id) is None


async def test_wrong_nonce_is_refused(host: Host, client: Client, ivan: Any) -> None:
    callback = await at_keycloak(await to_keycloak(client))
    async with host.db.session() as s:
        await s.execute(update(login_table).values(nonce="another-sign-in"))
    r = await back_at_portal(client, callback)
    assert r.status_code == 400
    assert 'data-reason="nonce"' in r.text
    assert await account_of(host, ivan.id) is None


async def test_id_token_signed_by_another_key_is_refused(
    host: Host, client: Client, fake: FakeKeycloak, ivan: Any
) -> None:
    callback = await at_keycloak(await to_keycloak(client))
    # Same key id as the realm's published key, but another private key: a forgery.
    fake.signing_key = jwk.JWK.generate(kty="RSA", size=2048, kid=fake.key.get("kid"))
    r = await back_at_portal(client, callback)
    assert r.status_code == 400
    assert 'data-reason="id_token"' in r.text
    assert await account_of(host, ivan.id) is None


async def test_disabled_account_cannot_sign_in(host: Host, client: Client, ivan: Any) -> None:
    assert (await sign_in(client)).status_code == 302
    account = await account_of(host, ivan.id)
    assert account is not None
    await host.services["identity"].disable(account.id)
    client.cookies.clear()
    r = await sign_in(client)
    assert r.status_code == 403
    assert 'data-reason="disabled"' in r.text
    assert "kabinet_session" not in client.cookies


async def test_logout_ends_the_portal_and_the_keycloak_session(
    host: Host, client: Client, fake: FakeKeycloak, ivan: Any
) -> None:
    assert (await sign_in(client)).status_code == 302
    token = client.cookies.get("kabinet_session")
    assert token
    [kc] = fake.active_sessions(ivan.id)
    async with host.db.session() as s:
        stored = (await s.execute(select(kc_session.c.refresh_token, kc_session.c.id_token))).one()
    # Keycloak's tokens never rest in clear: no JWT header, no claims readable.
    assert all(value and not value.startswith("eyJ") and "." not in value for value in stored)

    await client.get("/")  # a page issues the CSRF cookie
    r = await client.post(
        "/keycloak/logout", headers={CSRF_HEADER: client.cookies.get(CSRF_COOKIE) or ""}
    )
    assert r.status_code == 303
    assert fake.active_sessions(ivan.id) == []
    assert {"kind": "refresh_token", "session": kc.id} in fake.logouts
    assert await host.services["identity"].resolve_session(token) is None
    async with host.db.session() as s:
        assert await s.scalar(select(func.count()).select_from(kc_session)) == 0
    assert "kabinet_session" not in client.cookies


async def test_login_page_when_keycloak_is_down(
    host: Host, client: Client, fake: FakeKeycloak
) -> None:
    fake.fail("GET", r"/\.well-known/openid-configuration$", status=503, times=None)
    r = await client.get("/keycloak/login")
    assert r.status_code == 503
    assert 'data-reason="unavailable"' in r.text


async def test_identity_login_sends_people_to_keycloak(client: Client) -> None:
    r = await client.get("/login", params={"next": "/shipments/orders"})
    assert r.status_code in {302, 303}
    assert r.headers["location"] == "/keycloak/login?next=/shipments/orders"
    r = await client.get("/login", params={"next": "https://evil.example/"})
    assert r.headers["location"] == "/keycloak/login?next=/"


async def test_identity_logout_ends_the_keycloak_session_too(
    host: Host, client: Client, fake: FakeKeycloak, ivan: Any
) -> None:
    assert (await sign_in(client)).status_code == 302
    token = client.cookies.get("kabinet_session")
    assert token
    assert fake.active_sessions(ivan.id)
    await client.get("/")
    r = await client.post("/logout", headers={CSRF_HEADER: client.cookies.get(CSRF_COOKIE) or ""})
    assert r.status_code == 303
    assert fake.active_sessions(ivan.id) == []
    assert await host.services["identity"].resolve_session(token) is None


async def test_without_server_url_keycloak_is_off(fresh_url: str, clock: FrozenClock) -> None:
    host = await Host.create(None, env={"KABINET__HOST__DATABASE_URL": fresh_url}, clock=clock)
    host.services["host.process"] = "test"
    app = await build_app(host)
    await host.startup()
    try:
        assert "keycloak" not in host.services
        assert not any(name.startswith("keycloak.") for name in host.subscriptions)
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver.local") as c:
            r = await c.get("/keycloak/login")
            assert r.status_code == 404
            assert 'data-reason="not_configured"' in r.text
            r = await c.get("/login")
            assert r.status_code == 200  # identity's own form
    finally:
        await host.shutdown()


async def test_forms_may_lead_to_keycloak(host: Host, client: Client, fake: FakeKeycloak) -> None:
    """A form posted to /login or /logout is redirected to Keycloak: CSP must allow it."""
    response = await client.get("/health")
    csp = response.headers["content-security-policy"]
    parts = urlsplit(fake.url)
    origin = f"{parts.scheme}://{parts.netloc}"
    assert f"form-action 'self' {origin};" in csp
