"""The JSON API and pages over HTTP: problem details naming the field, company scoping,
a moved counterparty moving its visibility at once, the route matrix over the app."""

from __future__ import annotations

import uuid

import pytest

from kabinet.contrib import EntitySink
from kabinet.host import Host
from kabinet.testing import Portal
from kabinet_companies.services import SYSTEM, CompaniesService
from kabinet_companies.sinks import CounterpartyRecord
from kabinet_companies.validation import make_inn

pytestmark = pytest.mark.smoke


async def test_every_companies_route_keeps_its_access_rule(web: Portal) -> None:
    faults = await web.route_faults("/companies") + await web.route_faults("/api/companies")
    assert faults == [], "\n".join(faults)


async def test_a_wrong_inn_is_a_problem_naming_the_field(web: Portal) -> None:
    admin = await web.signed_in(await web.person("admin"))
    bad = await admin.post("/api/companies/organizations", json={"name": "X", "inn": "1234567891"})
    assert bad.status_code == 422  # fits the document; the check digit is the app's rule
    assert bad.headers["content-type"].startswith("application/problem+json")
    assert bad.json()["errors"][0]["field"] == "inn"
    kpp = await admin.post(
        "/api/companies/organizations",
        json={"name": "X", "inn": make_inn(5), "kpp": "12"},
    )
    assert kpp.json()["errors"][0]["field"] == "kpp"
    made = await admin.post(
        "/api/companies/organizations", json={"name": "ООО API", "inn": make_inn(6)}
    )
    assert made.status_code == 201
    assert made.json()["name"] == "ООО API"


async def test_moving_a_counterparty_moves_who_sees_it_at_once(
    web: Portal, svc: CompaniesService
) -> None:
    first = await svc.create_organization("ООО Первая")
    second = await svc.create_organization("ООО Вторая")
    cp = await svc.create_counterparty(
        SYSTEM, name="ООО Груз", inn=make_inn(31337), organization_id=first.id
    )
    alice, bob = (await web.person(name="Alice")).id, (await web.person(name="Bob")).id
    await svc.set_roles(SYSTEM, alice, first.id, ["client"])
    await svc.set_roles(SYSTEM, bob, second.id, ["client"])
    a, b = await web.signed_in(alice), await web.signed_in(bob)
    path = f"/api/companies/counterparties/{cp.id}"
    assert (await a.get(path)).status_code == 200
    assert (await b.get(path)).status_code == 404
    admin = await web.signed_in(await web.person("admin"))
    moved = await admin.put(f"{path}/organization", json={"organization_id": second.id})
    assert moved.json()["organization_id"] == second.id
    assert (await a.get(path)).status_code == 404
    assert (await b.get(path)).status_code == 200


async def test_a_decided_request_answers_409_to_the_second_manager(
    web: Portal, svc: CompaniesService
) -> None:
    org = await svc.create_organization("ООО Конфликт", inn=make_inn(4040))
    asker = (await web.person(name="Asker")).id
    made = await svc.requests.create(asker, inn=make_inn(4040), company_name="ООО Конфликт")
    one = await web.signed_in(await web.person("admin"))
    two = await web.signed_in(await web.person("admin"))
    first = await one.post(
        f"/api/companies/link-requests/{made.id}/accept",
        json={"organization_id": org.id},
    )
    assert first.status_code == 201
    second = await two.post(
        f"/api/companies/link-requests/{made.id}/reject", json={"reason": "нет"}
    )
    assert second.status_code == 409
    assert "already decided" in second.json()["detail"]
    listed = await one.get("/api/companies/link-requests?status=accepted")
    assert made.id in [r["id"] for r in listed.json()["items"]]


async def test_the_registration_form_keeps_what_was_typed(web: Portal) -> None:
    page = await web.client.post(
        "/companies/register",
        data={
            "full_name": "Пётр Формов",
            "email": "not-an-email",
            "phone": "+79160001122",
            "password": "x",
            "password2": "y",
        },
    )
    assert page.status_code == 400
    assert 'value="Пётр Формов"' in page.text
    assert 'value="+79160001122"' in page.text
    for field in ("email", "password", "password2", "consent"):
        assert f'id="e-{field}"' in page.text


async def test_a_visitor_who_registers_in_english_keeps_english(web: Portal) -> None:
    # The account takes the language the person registered in: their sign-ins, pages
    # and messages are English from the start, not the portal's default.
    email = f"en-{uuid.uuid4().hex[:8]}@example.test"
    done = await web.client.post(
        "/companies/register",
        headers={"Accept-Language": "en-GB,en;q=0.9"},
        data={
            "full_name": "Peter Newman",
            "email": email,
            "phone": f"+7916{uuid.uuid4().int % 10**7:07d}",
            "password": "a-long-password-1",
            "password2": "a-long-password-1",
            "consent": "yes",
        },
    )
    assert done.status_code == 303, done.text
    account = await web.host.services["identity"].find_by_email(email)
    assert account is not None
    assert account.language == "en"


async def test_hook_entity_sinks(host: Host) -> None:
    results = await host.plugins.acall("entity_sinks", host=host)
    sinks = {s.name: (p.name, s) for p, s in host.plugins.flat(results)}
    owner, sink = sinks["companies.counterparty"]
    assert owner == "companies"
    assert isinstance(sink, EntitySink)
    assert sink.struct is CounterpartyRecord
    record = sink.struct(external_id="hook-1", name="ООО Хук", inn=make_inn(99))
    async with host.db.session() as s:
        done = await sink.apply(host, s, [record])
    async with host.db.session() as s:
        again = await sink.apply(host, s, [record])
    assert (done.created, again.unchanged) == (1, 1)
