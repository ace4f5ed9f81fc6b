"""A signed-in person's error pages are in their own shell, over HTTP on the portal.

A 404 (an address no route matches, or an order of another company), a 403 and a 405
show the header every other page shows them: their sections, their name and signing
out, in their language. What a 404 says about a record does not depend on whether it
exists; the API and anonymous visitors are answered as before; reading who asks for an
address no route matches writes nothing (no "last seen").
"""

from __future__ import annotations

import re
from typing import Any

import pytest

from kabinet.identity.services import IDENTITY
from kabinet.testing import Portal
from kabinet.testkit import HOST
from kabinet_companies.services import companies
from kabinet_shipments.samples import make_order

pytestmark = pytest.mark.smoke

_NAV = re.compile(r'<nav class="mainnav".*?</nav>', re.S)
_ORG = re.compile(r'<div class="topbar-org">(.*?)</div>\s*<details class="sitemenu"', re.S)
_HREF = re.compile(r'href="([^"]+)"')


def sections(html: str) -> list[str]:
    """The addresses the header's navigation links to."""
    found = _NAV.search(html)
    return _HREF.findall(found.group(0)) if found else []


def company(html: str, path: str) -> str:
    """The header's company part (the switch), the address it returns to left out."""
    found = _ORG.search(html)
    return found.group(1).replace(f'value="{path}"', "").strip() if found else ""


def signed_in_header(html: str, name: str) -> bool:
    return 'class="usermenu-name">' + name + "<" in html and 'action="/logout"' in html


@pytest.fixture
async def client_person(portal: Portal) -> tuple[Any, int]:
    organization = portal.organization_id()
    person = await portal.person("client", organization=organization, name="Ирина Заблудова")
    service = companies(portal.host)
    await service.ensure_organization(organization)
    async with portal.host.db.session() as session:
        await service.add_member(session, person.id, organization)
    return person, organization


async def test_an_unknown_address_is_in_the_persons_shell(
    portal: Portal, client_person: tuple[Any, int]
) -> None:
    person, organization = client_person
    client = await portal.signed_in(person, language="en")
    home = await client.get("/")
    assert home.status_code == 200
    own = sections(home.text)
    assert "/shipments/" in own  # a client's sections: there is something to compare
    switch = company(home.text, "/")
    assert f"Organization {organization}" in switch

    lost = await client.get("/nope/not-here")
    assert lost.status_code == 404
    assert lost.headers["content-type"].startswith("text/html")
    assert lost.headers["content-language"] == "en"
    assert "Page not found" in lost.text
    assert signed_in_header(lost.text, person.name)
    assert sections(lost.text) == own
    assert company(lost.text, "/nope/not-here") == switch
    assert "/login?next=" not in lost.text  # not the anonymous header's "Sign in"

    # in Russian for a person reading Russian
    russian = await (await portal.signed_in(person, language="ru")).get("/nope/not-here")
    assert russian.status_code == 404
    assert "Страница не найдена" in russian.text
    assert signed_in_header(russian.text, person.name)


async def test_another_companys_order_looks_like_no_order(
    portal: Portal, client_person: tuple[Any, int]
) -> None:
    person, organization = client_person
    theirs = (await make_order(portal.host, portal.organization_id()))["order_id"]
    mine = (await make_order(portal.host, organization))["order_id"]
    client = await portal.signed_in(person, language="en")
    assert (await client.get(f"/shipments/orders/{mine}")).status_code == 200
    missing = theirs + 10_000_000

    other = await client.get(f"/shipments/orders/{theirs}")
    unknown = await client.get(f"/shipments/orders/{missing}")
    assert other.status_code == unknown.status_code == 404
    assert signed_in_header(other.text, person.name)
    assert "/shipments/" in sections(other.text)
    # the same page, but for the address it was asked at (the language form's "next")
    assert other.text.replace(f"/shipments/orders/{theirs}", "ADDRESS") == unknown.text.replace(
        f"/shipments/orders/{missing}", "ADDRESS"
    )
    assert dict(other.headers).keys() == dict(unknown.headers).keys()


async def test_a_refused_page_a_wrong_method_and_a_bad_request_are_in_the_persons_shell(
    portal: Portal, client_person: tuple[Any, int]
) -> None:
    person, _ = client_person
    client = await portal.signed_in(person, language="en")
    own = sections((await client.get("/")).text)

    refused = await client.get("/roles/")
    assert refused.status_code == 403
    assert "Access denied" in refused.text
    assert signed_in_header(refused.text, person.name)
    assert sections(refused.text) == own

    wrong = await client.request("PATCH", "/")
    assert wrong.status_code == 405
    assert "allow" in wrong.headers
    assert signed_in_header(wrong.text, person.name)
    assert sections(wrong.text) == own

    bad = await client.get("/shipments/?sort=no-such-column")
    assert bad.status_code == 400
    assert "Bad request" in bad.text
    assert signed_in_header(bad.text, person.name)
    assert sections(bad.text) == own


async def test_the_api_still_answers_problem_details(
    portal: Portal, client_person: tuple[Any, int]
) -> None:
    person, _ = client_person
    theirs = (await make_order(portal.host, portal.organization_id()))["order_id"]
    client = await portal.signed_in(person, language="en")
    for path in ("/api/nope", f"/api/shipments/orders/{theirs}"):
        answer = await client.get(path)
        assert answer.status_code == 404, path
        assert answer.headers["content-type"] == "application/problem+json", path
        assert answer.json()["status"] == 404


async def test_anonymous_visitors_keep_the_anonymous_page(portal: Portal) -> None:
    for client in (portal.client, portal.browser()):
        lost = await client.get("/nope/not-here", headers={"accept-language": "en"})
        assert lost.status_code == 404
        assert "Page not found" in lost.text
        assert 'href="/login?next=/nope/not-here"' in lost.text
        assert 'action="/logout"' not in lost.text
        assert sections(lost.text) == []


async def test_a_session_that_is_not_good_gets_the_anonymous_page(
    portal: Portal, client_person: tuple[Any, int]
) -> None:
    person, _ = client_person
    cookie = portal.host.services.of(IDENTITY).cookie_name
    forged = portal.browser()
    forged.cookies.set(cookie, "not-a-session", domain=HOST)
    timed_out = await portal.signed_in(person, language="en")
    portal.clock.advance(hours=30)  # past the idle and the absolute timeout
    for client in (forged, timed_out):
        lost = await client.get("/nope/not-here", headers={"accept-language": "en"})
        assert lost.status_code == 404
        assert 'action="/logout"' not in lost.text
        assert "/login?next=" in lost.text


async def test_reading_who_asks_for_an_unknown_address_writes_nothing(
    portal: Portal, client_person: tuple[Any, int]
) -> None:
    person, _ = client_person
    identity = portal.host.services.of(IDENTITY)
    client = await portal.signed_in(person, language="en")

    async def last_seen() -> Any:
        (record,) = await identity.sessions.of_account(person.id)
        return record.last_seen_at

    before = await last_seen()
    portal.clock.advance(minutes=10)  # a page now would note "last seen"
    lost = await client.get("/nope/not-here")
    assert lost.status_code == 404
    assert signed_in_header(lost.text, person.name)
    assert await last_seen() == before
    # a page the middleware serves does note it: the check above could fail
    assert (await client.get("/")).status_code == 200
    assert await last_seen() > before
