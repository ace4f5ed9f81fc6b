"""The quarantine is scoped like every staff page: a record belongs to the organization of
the counterparty its 1C object names, a manager sees only those of the organizations
assigned to them (by list, filter, count, id, on the page and in the API), and a record
tied to no organization only holders of ``integration.runs.manage`` (admins) see.

Asked over HTTP as an attacker would: a manager of organization A asks for B's records."""

from __future__ import annotations

import itertools
import uuid

import httpx
import msgspec
import pytest
import scope_people as people
from scope_people import get
from sqlalchemy import select

from kabinet.access import Principal
from kabinet.host import Host
from kabinet.identity.services import IDENTITY
from kabinet.roles.services import ROLES
from kabinet_companies.services import COMPANIES, COUNTERPARTY_ROWS, SYSTEM, make_inn
from kabinet_integration import models as m
from kabinet_integration.mapping import Names, counterparty_of
from kabinet_integration.settings import Source

pytestmark = pytest.mark.smoke

_orgs = itertools.count(781_001)


async def _record(host: Host, entity: str, counterparty: str | None, tag: str) -> int:
    now = host.clock.now()
    ref = str(uuid.uuid4())
    async with host.db.session() as s:
        found = await s.scalar(
            m.quarantine.insert()
            .values(
                source="onec",
                entity=entity,
                ref=ref,
                payload={"Ref_Key": ref, "Метка": tag},
                reason=f"refused {tag}",
                state="open",
                attempts=1,
                counterparty=counterparty,
                created_at=now,
                updated_at=now,
            )
            .returning(m.quarantine.c.id)
        )
    return int(found or 0)


def _ids(answer: httpx.Response) -> set[int]:
    assert answer.status_code == 200, answer.text
    return {int(i["id"]) for i in answer.json()["items"]}


async def test_a_manager_sees_only_the_quarantine_of_their_organizations(
    host: Host, web: httpx.AsyncClient
) -> None:
    org_a, cp_a = await people.org_with_counterparty(host)
    org_b, cp_b = await people.org_with_counterparty(host)
    companies = host.services.of(COMPANIES)
    unlinked = f"cp-{uuid.uuid4()}"  # known to the portal, linked to no organization
    await companies.create_counterparty(
        SYSTEM, name="Без компании", inn=make_inn(next(_orgs)), external_id=unlinked
    )
    mine = await _record(host, "order", cp_a, "tag-a")
    theirs = await _record(host, "order", cp_b, "tag-b")
    their_cp = await _record(host, "counterparty", cp_b, "tag-b-cp")
    untied = {
        await _record(host, "order", None, "tag-none"),  # names no counterparty
        await _record(host, "order", f"cp-{uuid.uuid4()}", "tag-unknown"),  # unknown one
        await _record(host, "contract", unlinked, "tag-unlinked"),
    }
    tied = {mine, theirs, their_cp}

    manager_a = await people.manager_of(host, org_a)
    listed = await get(web, "/api/integration/quarantine?payload=true&state=", manager_a)
    assert _ids(listed) == {mine}
    assert "tag-b" not in listed.text
    assert "tag-none" not in listed.text
    for query in ("entity=order", "entity=counterparty", "entity=contract", "source=onec"):
        found = _ids(await get(web, f"/api/integration/quarantine?{query}", manager_a))
        assert found <= {mine}, query
    for other in (theirs, their_cp, *untied):
        one = await get(web, f"/api/integration/quarantine/{other}", manager_a)
        assert one.status_code == 404, one.text
        assert "tag-" not in one.text
    one = await get(web, f"/api/integration/quarantine/{mine}", manager_a)
    assert one.status_code == 200
    assert one.json()["payload"]["Метка"] == "tag-a"

    # The page: the list and its count (the pager) hold A's record only.
    page = await get(web, "/integration/quarantine?show=", manager_a)
    assert page.status_code == 200
    assert "refused tag-a" in page.text
    assert "tag-b" not in page.text
    assert "tag-none" not in page.text
    assert "tag-unknown" not in page.text
    assert "tag-unlinked" not in page.text

    # B's manager: B's two, not A's.
    manager_b = await people.manager_of(host, org_b)
    assert _ids(await get(web, "/api/integration/quarantine", manager_b)) == {theirs, their_cp}

    # A global holder of the view right alone: every tied record, none of the untied ones.
    viewer = await people.global_holder(
        host, await people.role(host, "quarantine_viewer", ["integration.runs.view"])
    )
    assert _ids(await get(web, "/api/integration/quarantine", viewer)) == tied
    for other in untied:
        assert (await get(web, f"/api/integration/quarantine/{other}", viewer)).status_code == 404

    # An admin (integration.runs.manage): all of them, on the page too.
    admin = await people.global_holder(host, "admin")
    assert _ids(await get(web, "/api/integration/quarantine", admin)) == tied | untied
    for item in tied | untied:
        assert (await get(web, f"/api/integration/quarantine/{item}", admin)).status_code == 200
    page = await get(web, "/integration/quarantine", admin)
    assert all(f"refused {t}" in page.text for t in ("tag-a", "tag-b", "tag-none", "tag-unlinked"))

    # Moving B's counterparty to A moves its records along (read at every request).
    await companies.move_counterparty(SYSTEM, await _cp_id(host, cp_b), org_a)
    assert _ids(await get(web, "/api/integration/quarantine", manager_a)) == tied
    assert _ids(await get(web, "/api/integration/quarantine", manager_b)) == set()


async def _cp_id(host: Host, external_id: str) -> int:
    async with host.db.reader() as s:
        found = await s.scalar(
            select(COUNTERPARTY_ROWS.c.id).where(COUNTERPARTY_ROWS.c.external_id == external_id)
        )
    assert found is not None
    return int(found)


async def test_a_manager_cannot_act_on_another_organizations_record(
    host: Host, web: httpx.AsyncClient
) -> None:
    """Acting needs integration.runs.manage; a role holding it assigned to A's manager
    still reaches only A's records (B's answers 404, as a record that does not exist)."""
    org_a, _cp_a = await people.org_with_counterparty(host)
    _org_b, cp_b = await people.org_with_counterparty(host)
    theirs = await _record(host, "order", cp_b, "tag-b")
    role = await people.role(
        host,
        "quarantine_manager",
        ["integration.runs.view", "integration.runs.manage"],
        assigned_only=True,
    )
    cookie = await people.manager_of(host, org_a, role)
    web.cookies.clear()
    page = await web.get("/integration/quarantine", headers={"Cookie": cookie})
    csrf = web.cookies.get("kabinet_csrf")
    assert csrf
    done = await web.post(
        f"/integration/quarantine/{theirs}/dismiss",
        data={"csrf_token": csrf},
        headers={"Cookie": f"{cookie}; kabinet_csrf={csrf}"},
    )
    assert done.status_code == 404, done.text  # as a record that does not exist
    assert page.status_code == 200
    async with host.db.reader() as s:
        state = await s.scalar(select(m.quarantine.c.state).where(m.quarantine.c.id == theirs))
    assert state == "open"


async def test_an_api_token_never_reads_the_quarantine(host: Host, web: httpx.AsyncClient) -> None:
    """Tokens carry only organization permissions: the staff-wide quarantine is 403 to
    any token, whoever made it, for the list and for a record of its own organization."""
    org, cp = await people.org_with_counterparty(host)
    item = await _record(host, "order", cp, "tag-token")
    role = await people.role(
        host, "quarantine_token_maker", ["identity.tokens.manage", "companies.organizations.view"]
    )
    person = await people.person(host)
    await host.services.of(ROLES).grant(person, role, org)
    made = await host.services.of(IDENTITY).create_token(
        Principal(person_id=person, kind="person"),
        "scope test",
        ["companies.organizations.view"],
        [org],
    )
    web.cookies.clear()
    for path in ("/api/integration/quarantine", f"/api/integration/quarantine/{item}"):
        answer = await web.get(path, headers={"Authorization": f"Bearer {made.token}"})
        assert answer.status_code == 403, answer.text
        assert "tag-token" not in answer.text


def test_the_counterparty_of_a_record_follows_the_sources_names() -> None:
    renamed = Names.of(_renamed())
    reference = Names.of(Source())
    assert counterparty_of(reference, "counterparty", "c-1", {"Ref_Key": "c-1"}) == "c-1"
    assert counterparty_of(reference, "contract", "k-1", {"Owner_Key": "c-2"}) == "c-2"
    assert counterparty_of(reference, "order", "o-1", {"Контрагент_Key": "c-3"}) == "c-3"
    assert counterparty_of(renamed, "order", "o-1", {"Контрагент_Key": "c-3"}) is None
    assert counterparty_of(renamed, "order", "o-1", {"Клиент_Key": "c-4"}) == "c-4"
    empty = "00000000-0000-0000-0000-000000000000"
    assert counterparty_of(reference, "order", "o-1", {"Контрагент_Key": empty}) is None
    assert counterparty_of(reference, "order", "o-1", {"Контрагент_Key": 7}) is None
    assert counterparty_of(reference, "order", "o-1", None) is None
    assert counterparty_of(reference, "answer", "a-1", {"Контрагент_Key": "c-5"}) is None


def _renamed() -> Source:
    return msgspec.convert({"fields": {"order": {"counterparty": "Клиент_Key"}}}, Source)
