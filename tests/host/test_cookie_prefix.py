"""The session and CSRF cookies are named ``__Host-…`` when the portal is served over
https (``[host] base_url``): a browser keeps such a cookie only when it is ``Secure``,
``Path=/`` and without ``Domain``, so a sibling subdomain cannot toss one in. Over plain
http (local development, the demo) their names stay ``kabinet_session``/``kabinet_csrf``.
"""

from __future__ import annotations

import re

import httpx
import pytest

from kabinet.testing import Portal, PortalFactory

pytestmark = pytest.mark.smoke

HTTPS = "https://portal.example"
PASSWORD = "correct horse battery"
TOKEN = re.compile(r'name="csrf_token" value="([^"]+)"')


@pytest.fixture
async def https_portal(make_portal: PortalFactory) -> Portal:
    return await make_portal(plugins=[], settings={"host": {"base_url": HTTPS}})


@pytest.fixture
async def http_portal(make_portal: PortalFactory) -> Portal:
    return await make_portal(plugins=[])


def browser(portal: Portal, base_url: str) -> httpx.AsyncClient:
    """A browser at the portal, speaking to it at ``base_url`` (cookies are kept as a
    browser keeps them: a Secure one goes back over https only)."""
    client = portal.browser(follow_redirects=False)
    client.base_url = httpx.URL(base_url)
    return client


def set_cookies(answer: httpx.Response) -> dict[str, list[str]]:
    """Each Set-Cookie of an answer by cookie name: its attributes, lower-cased."""
    found = {}
    for line in answer.headers.get_list("set-cookie"):
        name, _, rest = line.partition("=")
        found[name] = [part.strip().lower() for part in rest.split(";")[1:]]
    return found


def assert_host_cookie(attributes: list[str]) -> None:
    """What a browser demands of a ``__Host-`` cookie."""
    assert "secure" in attributes, attributes
    assert "path=/" in attributes, attributes
    assert not [a for a in attributes if a.startswith("domain")], attributes


async def token_of(client: httpx.AsyncClient, path: str) -> tuple[str, httpx.Response]:
    page = await client.get(path)
    assert page.status_code == 200, page.text[:300]
    found = TOKEN.search(page.text)
    assert found, page.text[:300]
    return found[1], page


async def sign_in(portal: Portal, client: httpx.AsyncClient) -> httpx.Response:
    person = await portal.person(password=PASSWORD)
    token, _page = await token_of(client, "/login")
    form = {"login": person.email, "password": PASSWORD, "next": "/", "csrf_token": token}
    return await client.post("/login", data=form)


async def test_over_https_the_session_and_csrf_cookies_are_host_cookies(
    https_portal: Portal,
) -> None:
    client = browser(https_portal, HTTPS)
    _token, page = await token_of(client, "/login")
    cookies = set_cookies(page)
    assert "kabinet_csrf" not in cookies
    assert_host_cookie(cookies["__Host-kabinet_csrf"])
    assert "httponly" in cookies["__Host-kabinet_csrf"]

    signed = await sign_in(https_portal, client)
    assert signed.status_code == 303, signed.text[:300]
    cookies = set_cookies(signed)
    assert "kabinet_session" not in cookies
    assert_host_cookie(cookies["__Host-kabinet_session"])
    assert "httponly" in cookies["__Host-kabinet_session"]
    # the portal reads the session back by that name: the profile opens
    profile = await client.get("/identity/profile")
    assert profile.status_code == 200, profile.headers.get("location")

    # signing out removes the __Host- cookie, with what a browser needs to accept that
    token, _page = await token_of(client, "/identity/profile")
    out = await client.post("/logout", data={"csrf_token": token})
    assert out.status_code in (302, 303)
    gone = set_cookies(out)["__Host-kabinet_session"]
    assert_host_cookie(gone)
    assert "max-age=0" in gone or any(a.startswith("expires=") for a in gone), gone
    assert "__Host-kabinet_session" not in client.cookies
    again = await client.get("/identity/profile")
    assert again.status_code == 303  # to the sign-in page


async def test_over_http_the_names_stay_plain(http_portal: Portal) -> None:
    client = browser(http_portal, "http://127.0.0.1:8000")
    _token, page = await token_of(client, "/login")
    cookies = set_cookies(page)
    assert not [name for name in cookies if name.startswith("__Host-")], cookies
    assert "secure" not in cookies["kabinet_csrf"]
    assert "path=/" in cookies["kabinet_csrf"]
    signed = await sign_in(http_portal, client)
    assert signed.status_code == 303, signed.text[:300]
    cookies = set_cookies(signed)
    assert "secure" not in cookies["kabinet_session"]
    assert not [name for name in cookies if name.startswith("__Host-")], cookies
    assert (await client.get("/identity/profile")).status_code == 200


async def test_a_form_posts_with_the_host_cookie_and_its_token_and_not_without(
    https_portal: Portal,
) -> None:
    client = browser(https_portal, HTTPS)
    assert (await sign_in(https_portal, client)).status_code == 303
    token, _page = await token_of(client, "/identity/profile")
    form = {"lang": "en", "next": "/identity/profile", "csrf_token": token}
    cookie = client.cookies.get("__Host-kabinet_csrf")
    assert cookie == token

    # without the cookie the token alone is refused
    client.cookies.delete("__Host-kabinet_csrf")
    refused = await client.post("/shell/language", data=form)
    assert refused.status_code == 403
    # the cookie under the old name (what a sibling subdomain could set) is not read
    client.cookies.set("kabinet_csrf", token, domain="portal.example")
    tossed = await client.post("/shell/language", data=form)
    assert tossed.status_code == 403
    assert "kabinet_lang" not in set_cookies(tossed)
    client.cookies.delete("kabinet_csrf")

    # with the __Host- cookie and its token the form goes through
    client.cookies.set("__Host-kabinet_csrf", token, domain="portal.example")
    accepted = await client.post("/shell/language", data=form)
    assert accepted.status_code == 303, accepted.text[:300]
    assert accepted.headers["location"] == "/identity/profile"
    assert set_cookies(accepted)["kabinet_lang"]  # the language was switched


async def test_sign_in_refuses_a_csrf_cookie_tossed_under_the_plain_name(
    https_portal: Portal,
) -> None:
    """Before the prefix, a sibling subdomain could plant an anonymous token of its own
    (the portal hands one to anybody) and post the sign-in form with it: login CSRF."""
    attacker = browser(https_portal, HTTPS)
    planted, _page = await token_of(attacker, "/login")
    victim = browser(https_portal, HTTPS)
    victim.cookies.set("kabinet_csrf", planted, domain="portal.example")
    person = await https_portal.person(password=PASSWORD)
    form = {"login": person.email, "password": PASSWORD, "next": "/", "csrf_token": planted}
    forged = await victim.post("/login", data=form)
    assert forged.status_code == 403
    assert "__Host-kabinet_session" not in set_cookies(forged)
    # the same token in the cookie only the portal itself can set is accepted
    victim.cookies.set("__Host-kabinet_csrf", planted, domain="portal.example")
    assert (await victim.post("/login", data=form)).status_code == 303


async def test_the_harness_clients_use_the_portal_cookie_names(https_portal: Portal) -> None:
    """``Portal.signed_in`` carries the session and CSRF pair under the names the portal
    reads (the helpers take them from the portal, not from constants)."""
    person = await https_portal.person()
    client = await https_portal.signed_in(person)
    assert {"__Host-kabinet_session", "__Host-kabinet_csrf"} <= set(client.cookies.keys())
    profile = await client.get("/identity/profile")
    assert profile.status_code == 200
    form = {"lang": "en", "next": "/identity/profile"}
    switched = await client.post("/shell/language", data=form, follow_redirects=False)
    assert switched.status_code == 303, switched.text[:300]
