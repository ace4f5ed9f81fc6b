"""Sessions and redirects, seen from a browser: the CSRF token belongs to its session,
signing in again ends the former session, and ``next=`` never leads off the site."""

from __future__ import annotations

from urllib.parse import urljoin, urlsplit

import httpx
import pytest
from identity_support import PASSWORD, unique_email
from served_support import BASE, csrf, sign_in

from kabinet.host import Host
from kabinet.identity.services import identity_service
from kabinet.pages import CSRF_COOKIE, CSRF_HEADER, safe_next
from kabinet.testing import Portal, PortalFactory

pytestmark = pytest.mark.smoke
HOST = urlsplit(BASE).hostname or ""  # a cookie set for it replaces the one the portal set

NASTY = [
    "//evil.example",
    "/\\evil.example",
    "\\\\evil.example",
    "https://evil.example",
    "http:evil.example",
    "/%5Cevil.example",
    "/%5cevil.example",
    "/%2F/evil.example",
    "/%252F/evil.example",
    "\t//evil.example",
    "/\t/evil.example",
    "/\n/evil.example",
    " //evil.example",
    "javascript:alert(1)",
    "JavaScript:alert(1)",
    "data:text/html,<script>alert(1)</script>",
    "evil.example",
    "",
]


def same_site(location: str) -> bool:
    """Whether a browser following ``Location`` stays on the portal.

    Browsers drop tabs and newlines anywhere in a URL, strip leading spaces and control
    characters, and read a backslash as a slash in http(s) URLs: so does this check.
    """
    cleaned = "".join(c for c in location if c not in "\t\n\r").lstrip("\x00 \x1f")
    cleaned = cleaned.replace("\\", "/")
    target = urlsplit(urljoin(BASE + "/somewhere/page", cleaned))
    return target.scheme == "http" and target.netloc == urlsplit(BASE).netloc


def test_the_check_itself_sees_what_browsers_do() -> None:
    assert same_site("/companies/organizations?x=1")
    assert not same_site("/\\evil.example")
    assert not same_site("\t//evil.example")
    assert not same_site("https://evil.example/")


@pytest.mark.parametrize("target", NASTY)
def test_safe_next_keeps_only_paths_of_this_site(target: str) -> None:
    assert safe_next(target) == "/"
    assert safe_next(target, "/companies/") == "/companies/"


@pytest.mark.parametrize(
    "target", ["/", "/identity/profile", "/shipments/orders?after=abc&q=%D0%90", "/a/b#c"]
)
def test_safe_next_lets_paths_of_this_site_through(target: str) -> None:
    assert safe_next(target) == target


@pytest.fixture
async def portal(make_portal: PortalFactory) -> Portal:
    """One web process with every installed app, its jobs running as in production."""
    return await make_portal(background=True)


@pytest.fixture
def web(portal: Portal) -> tuple[Host, httpx.AsyncClient]:
    """The host and a browser at the portal, reading the redirects it is sent."""
    return portal.host, portal.browser(follow_redirects=False)


async def _person(host: Host) -> str:
    account = await identity_service(host).create_account(
        full_name="Сессия Браузерная", email=unique_email("session"), password=PASSWORD
    )
    assert account.email is not None
    return account.email


async def test_a_csrf_token_from_another_browser_is_refused(
    portal: Portal,
) -> None:
    host = portal.host
    async with (
        portal.browser(follow_redirects=False) as attacker,
        portal.browser(follow_redirects=False) as victim,
    ):
        assert (await sign_in(attacker, await _person(host))).status_code == 303
        assert (await sign_in(victim, await _person(host))).status_code == 303
        stolen = await csrf(attacker, "/identity/profile")
        assert attacker.cookies.get(CSRF_COOKIE) == stolen
        own = await csrf(victim, "/identity/profile")
        form = {"lang": "en", "next": "/identity/profile"}
        victim.cookies.set(CSRF_COOKIE, stolen, domain=HOST)  # planted, with the matching token
        forged = await victim.post("/shell/language", data={**form, "csrf_token": stolen})
        assert forged.status_code == 403
        by_header = await victim.post("/shell/language", data=form, headers={CSRF_HEADER: stolen})
        assert by_header.status_code == 403
        victim.cookies.set(CSRF_COOKIE, own, domain=HOST)
        fine = await victim.post("/shell/language", data={**form, "csrf_token": own})
        assert fine.status_code == 303


async def test_a_token_from_before_sign_in_does_not_serve_the_session(
    portal: Portal,
) -> None:
    host = portal.host
    async with portal.browser(follow_redirects=False) as one:
        anonymous = await csrf(one)
        assert (await sign_in(one, await _person(host), token=anonymous)).status_code == 303
        one.cookies.set(CSRF_COOKIE, anonymous, domain=HOST)
        stale = await one.post(
            "/shell/language", data={"lang": "en", "next": "/", "csrf_token": anonymous}
        )
        assert stale.status_code == 403
        fresh = await csrf(one, "/identity/profile")  # the next page hands out a new one
        assert fresh != anonymous
        again = await one.post(
            "/shell/language", data={"lang": "en", "next": "/", "csrf_token": fresh}
        )
        assert again.status_code == 303


async def test_signing_in_as_someone_else_ends_the_previous_session(
    portal: Portal,
) -> None:
    host = portal.host
    first, second = await _person(host), await _person(host)
    async with (
        portal.browser(follow_redirects=False) as shared,
        portal.browser(follow_redirects=False) as thief,
    ):
        assert (await sign_in(shared, first)).status_code == 303
        old = shared.cookies.get("kabinet_session")
        assert old
        thief.cookies.set("kabinet_session", old)
        assert (await thief.get("/identity/profile")).status_code == 200
        token = await csrf(shared, "/login")
        assert (await sign_in(shared, second, token=token)).status_code == 303
        new = shared.cookies.get("kabinet_session")
        assert new
        assert new != old
        gone = await thief.get("/identity/profile")
        assert gone.status_code == 303
        assert gone.headers["location"].startswith("/login?next=")
        assert (await shared.get("/identity/profile")).status_code == 200


async def test_signing_in_again_as_the_same_person_ends_the_previous_session(
    portal: Portal,
) -> None:
    host = portal.host
    person = await _person(host)
    async with (
        portal.browser(follow_redirects=False) as one,
        portal.browser(follow_redirects=False) as copy,
    ):
        assert (await sign_in(one, person)).status_code == 303
        old = one.cookies.get("kabinet_session")
        assert old
        copy.cookies.set("kabinet_session", old)
        assert (await sign_in(one, person, token=await csrf(one))).status_code == 303
        assert (await copy.get("/identity/profile")).status_code == 303


async def _where(client: httpx.AsyncClient, path: str, form: dict[str, str]) -> str:
    """Where the answer sends the browser (httpx itself refuses some Locations)."""
    try:
        answer = await client.post(path, data=form)
    except httpx.RemoteProtocolError as exc:
        return f"refused by httpx: {exc}"
    location = answer.headers.get("location", "")
    if answer.status_code not in (302, 303) or not same_site(location):
        return f"{answer.status_code} -> {location!r}"
    return ""


async def test_no_next_redirect_leaves_the_site(
    portal: Portal,
) -> None:
    """Every route that follows ``next=`` (sign-in, language, the current company)."""
    host = portal.host
    person = await _person(host)
    wrong: list[str] = []
    async with (
        portal.browser(follow_redirects=False) as anonymous,
        portal.browser(follow_redirects=False) as signed,
    ):
        assert (await sign_in(signed, person)).status_code == 303
        for target in NASTY:
            token = await csrf(anonymous)
            sign = {"login": person, "password": PASSWORD, "next": target, "csrf_token": token}
            answers = {
                "POST /shell/language": await _where(
                    anonymous,
                    "/shell/language",
                    {"lang": "ru", "next": target, "csrf_token": token},
                ),
                "POST /login": await _where(anonymous, "/login", sign),  # signs in
            }
            token = await csrf(signed, "/identity/profile")
            answers["POST /companies/current"] = await _where(
                signed,
                "/companies/current",
                {"organization": "1", "next": target, "csrf_token": token},
            )
            wrong += [f"{route} next={target!r}: {got}" for route, got in answers.items() if got]
            anonymous.cookies.delete("kabinet_session")
    assert wrong == []
