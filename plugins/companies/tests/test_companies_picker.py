"""The picker's searches (issue 16, point 7): staff pick organizations, people and
counterparties by name instead of typing their numbers; each search finds only what the
asker may see, and a malformed query is a 400 problem naming the field, never a 500."""

from __future__ import annotations

import uuid

import httpx
import pytest

from kabinet.host import Host
from kabinet.testing import Portal
from kabinet_companies.services import SYSTEM, CompaniesService
from kabinet_companies.validation import make_inn

pytestmark = pytest.mark.smoke


class Two:
    """Two client companies whose names share a word, each with a contact and a
    counterparty; a client of the first, a manager assigned to the first."""

    word: str
    mine: int
    theirs: int
    client: int
    manager: int
    my_contact: int
    their_contact: int


async def _two(portal: Portal, svc: CompaniesService) -> Two:
    host = portal.host
    two = Two()
    two.word = "Пикер" + uuid.uuid4().hex[:6]
    two.mine = (await svc.create_organization(f"{two.word} Альфа")).id
    two.theirs = (await svc.create_organization(f"{two.word} Бета")).id
    two.client = (await portal.person(name="Клиент")).id
    await host.services["roles"].grant(two.client, "client", two.mine)
    two.manager = (await portal.person("manager")).id
    await svc.assign_manager(None, two.mine, two.manager)
    two.my_contact = (await portal.person(name=f"{two.word} Свой")).id
    two.their_contact = (await portal.person(name=f"{two.word} Чужой")).id
    async with host.db.session() as s:
        await svc.add_member(s, two.my_contact, two.mine)
        await svc.add_member(s, two.their_contact, two.theirs)
    for org, name in ((two.mine, "Альфа"), (two.theirs, "Бета")):
        await svc.create_counterparty(
            SYSTEM,
            name=f"{two.word} КА {name}",
            inn=make_inn(uuid.uuid4().int % 10**8 + 10**8),
            organization_id=org,
        )
    return two


async def _get(
    web: Portal,
    path: str,
    session: httpx.AsyncClient | None,
    params: dict[str, str],
    headers: dict[str, str] | None = None,
) -> httpx.Response:
    """A GET as ``session`` (a signed-in client; ``None``: anonymous)."""
    return await (session or web.client).get(path, params=params, headers=headers or {})


async def _pick(
    web: Portal, kind: str, session: httpx.AsyncClient, q: str, *, html: bool = False
) -> list[str]:
    headers = {"HX-Request": "true"} if html else {}
    found = await _get(web, f"/api/companies/pick/{kind}", session, {"q": q}, headers)
    assert found.status_code == 200, found.text
    if html:
        assert found.headers["content-type"].startswith("text/html")
        return [found.text]
    return [item["label"] for item in found.json()]


async def test_each_person_finds_only_the_organizations_they_may_see(
    host: Host, svc: CompaniesService, web: Portal
) -> None:
    two = await _two(web, svc)
    admin = await web.signed_in(await web.person("admin"))
    client = await web.signed_in(two.client)
    manager = await web.signed_in(two.manager)

    assert await _pick(web, "organizations", admin, two.word.lower()) == [
        f"{two.word} Альфа",
        f"{two.word} Бета",
    ]
    # A client and a manager of the first company never learn the other one's name.
    for session in (client, manager):
        assert await _pick(web, "organizations", session, two.word) == [f"{two.word} Альфа"]
        (fragment,) = await _pick(web, "organizations", session, two.word, html=True)
        assert f"{two.word} Альфа" in fragment
        assert "Бета" not in fragment
        assert f'data-pick="{two.mine}"' in fragment
        assert await _pick(web, "organizations", session, "Бета") == []
        assert await _pick(web, "counterparties", session, two.word) == [f"{two.word} КА Альфа"]
    # What the page's script shows when nothing matches, in the person's language.
    (none,) = await _pick(web, "organizations", client, "Бета", html=True)
    assert "Ничего не найдено" in none


async def test_people_are_found_within_the_organizations_whose_contacts_one_sees(
    host: Host, svc: CompaniesService, web: Portal
) -> None:
    two = await _two(web, svc)
    manager = await web.signed_in(two.manager)
    found = await _get(web, "/api/companies/pick/people", manager, {"q": two.word.lower()})
    assert found.status_code == 200
    assert [item["id"] for item in found.json()] == [two.my_contact]
    assert found.json()[0]["detail"].endswith("@example.test")  # tells namesakes apart
    # A client sees no contacts list, so no people either.
    client = await web.signed_in(two.client)
    refused = await _get(web, "/api/companies/pick/people", client, {"q": "a"})
    assert refused.status_code == 403
    assert refused.headers["content-type"].startswith("application/problem+json")


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ({"q": "x" * 101}, "q"),
        ({"q": "Аль\x00фа"}, "q"),
        ({"q": "a\nb"}, "q"),
        ({"limit": "0"}, "limit"),
        ({"limit": "abc"}, "limit"),
        ({"limit": "99999999999999999999"}, "limit"),
    ],
)
async def test_a_malformed_search_is_a_problem_naming_the_field(
    host: Host, svc: CompaniesService, web: Portal, query: dict[str, str], field: str
) -> None:
    admin = await web.signed_in(await web.person("admin"))
    for kind in ("organizations", "people", "counterparties"):
        for headers in ({}, {"HX-Request": "true"}):
            answer = await _get(web, f"/api/companies/pick/{kind}", admin, query, headers)
            assert answer.status_code == 400, (kind, query, answer.text)
            assert answer.headers["content-type"].startswith("application/problem+json")
            assert field in {e["field"] for e in answer.json()["errors"]}


async def test_a_search_asks_for_a_signed_in_person(web: Portal) -> None:
    for kind in ("organizations", "people", "counterparties"):
        answer = await web.client.get(f"/api/companies/pick/{kind}", params={"q": "a"})
        assert answer.status_code == 401


async def test_a_persons_grants_name_organizations_and_the_form_picks_one_by_name(
    host: Host, svc: CompaniesService, web: Portal
) -> None:
    two = await _two(web, svc)
    admin = await web.signed_in(await web.person("admin"))
    page = await _get(web, f"/roles/people/{two.client}", admin, {})
    assert page.status_code == 200
    # The grant reads the company's name, not its number.
    assert f"{two.word} Альфа" in page.text
    assert f">{two.mine}<" not in page.text
    # The form's organization is a picker searching the companies app.
    assert 'data-source="/api/companies/pick/organizations"' in page.text
    assert 'placeholder="Начните вводить название"' in page.text
    given = await admin.post(
        f"/roles/people/{two.client}/grants",
        data={"role": "client", "organization": str(two.theirs)},
    )
    assert given.status_code == 303
    grants = await host.services["roles"].grants_of(two.client)
    assert {g.organization_id for g in grants} == {two.mine, two.theirs}
    # A refusal keeps the chosen organization, by name, in the picker.
    refused = await admin.post(
        f"/roles/people/{two.client}/grants",
        data={"role": "no-such-role", "organization": str(two.theirs)},
    )
    assert refused.status_code >= 400
    assert f'value="{two.word} Бета"' in refused.text
    # ... and an empty one (globally) stays empty, never a stray word.
    refused = await admin.post(
        f"/roles/people/{two.client}/grants",
        data={"role": "no-such-role", "organization": ""},
    )
    assert refused.status_code >= 400
    assert 'name="organization" value="" data-picker-value' in refused.text


async def test_staff_filter_and_move_by_an_organizations_name(
    host: Host, svc: CompaniesService, web: Portal
) -> None:
    two = await _two(web, svc)
    admin = await web.signed_in(await web.person("admin"))
    for path in ("/companies/contacts", "/companies/requests"):
        page = await _get(web, path, admin, {"organization": str(two.mine)})
        assert page.status_code == 200
        assert 'data-source="/api/companies/pick/organizations"' in page.text
        # The filter shows its organization by name, and no number field is typed into.
        assert f'value="{two.word} Альфа"' in page.text
        assert 'name="organization" value="' + str(two.mine) in page.text
    # A manager's filter never names an organization not theirs, even when asked by number.
    manager = await web.signed_in(two.manager)
    other = await _get(web, "/companies/contacts", manager, {"organization": str(two.theirs)})
    assert "Бета" not in other.text
    # Unassigned counterparties are attached to an organization picked by name.
    unassigned = await svc.create_counterparty(
        SYSTEM, name=f"{two.word} Ничей", inn=make_inn(uuid.uuid4().int % 10**8 + 10**8)
    )
    listed = await _get(web, "/companies/counterparties", admin, {"q": two.word})
    assert f'id="pk-move-{unassigned.id}-q"' in listed.text
    moved = await admin.post(
        f"/companies/counterparties/{unassigned.id}/move",
        data={"organization_id": str(two.theirs)},
    )
    assert moved.status_code == 303
    assert (await svc.counterparty(SYSTEM, unassigned.id)).organization_id == two.theirs


async def test_the_staff_home_says_what_waits_and_the_clients_home_does_not(
    host: Host, svc: CompaniesService, web: Portal
) -> None:
    two = await _two(web, svc)
    asker = (await web.person(name="Заявитель")).id
    inn = make_inn(uuid.uuid4().int % 10**8 + 10**8)
    await svc.requests.create(asker, inn=inn, company_name="ООО Ждущая", new_company=True)
    admin_id = (await web.person("admin")).id
    _items, waiting = await svc.requests.list((await web.person("admin")).principal, status="open")
    home = await _get(web, "/", await web.signed_in(admin_id), {})
    assert home.status_code == 200
    assert "Ждёт вашего решения" in home.text
    assert 'href="/companies/requests?status=open"' in home.text
    assert f'data-count="requests">{waiting}<' in home.text
    assert 'data-count="counterparties">' in home.text
    client_home = await _get(web, "/", await web.signed_in(two.client), {})
    assert "Ждёт вашего решения" not in client_home.text
    assert 'data-count="requests"' not in client_home.text


async def test_an_api_token_limited_to_one_company_finds_only_that_one(
    host: Host, svc: CompaniesService, web: Portal
) -> None:
    from kabinet.access import Principal

    two = await _two(web, svc)
    both = (await web.person(name="Два")).id
    for org in (two.mine, two.theirs):
        await host.services["roles"].grant(both, "client", org)
    made = await host.services["identity"].create_token(
        Principal(person_id=both, kind="person"),
        "ERP",
        ["companies.organizations.view"],
        [two.theirs],
    )
    web.client.cookies.clear()
    found = await web.client.get(
        "/api/companies/pick/organizations",
        params={"q": two.word},
        headers={"Authorization": f"Bearer {made.token}"},
    )
    assert found.status_code == 200
    assert [item["id"] for item in found.json()] == [two.theirs]
