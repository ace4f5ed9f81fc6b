"""Who may open and decide a link request: the right in the organization the person would
join, resolved at the moment of asking (issue 14, point 2).

A request by ИНН of an unassigned counterparty is stored without an organization; when
the counterparty is later put into an organization, the request leads there, and only
those who manage contacts there (or everywhere) may see and decide it. A request that
leads nowhere yet (accepting it creates an organization) is for global holders only.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

import pytest
from companies_support import who
from sqlalchemy import func, select

from kabinet.access import Principal
from kabinet.host import Host
from kabinet.roles.models import grant
from kabinet.testing import Portal
from kabinet_companies.models import link_request, membership
from kabinet_companies.services import SYSTEM, CompaniesService
from kabinet_companies.validation import CompanyError, make_inn

pytestmark = pytest.mark.smoke

VIEW = "companies.organizations.view"


@dataclass
class Scene:
    target: int
    """The organization the counterparty was put into after the request was made."""
    mine: tuple[int, int]
    """The two organizations the manager of other organizations is assigned to."""
    cp_id: int
    asker: int
    request_id: int
    other_manager: Principal
    target_manager: Principal


def _inn() -> str:
    return make_inn(uuid.uuid4().int % 10**8 + 10**8)


async def _manager_of(portal: Portal, svc: CompaniesService, *orgs: int) -> Principal:
    found = (await portal.person("manager")).principal
    for org in orgs:
        await svc.assign_manager(SYSTEM, org, found.person_id or 0)
    return found


async def scene(portal: Portal, svc: CompaniesService) -> Scene:
    """The attack of the review: ask by the ИНН of an unassigned counterparty, then the
    counterparty goes into organization "2"; a manager of "3" and "4" tries it."""
    target = await svc.create_organization("ООО Цель")
    three = await svc.create_organization("ООО Третья")
    four = await svc.create_organization("ООО Четвёртая")
    inn = _inn()
    cp = await svc.create_counterparty(SYSTEM, name="ООО Груз-Цель", inn=inn, kpp="770101001")
    asker = (await portal.person(name="Joiner")).id
    made = await svc.requests.create(asker, inn=inn)
    assert (made.counterparty_id, made.organization_id) == (cp.id, None)
    await svc.move_counterparty(SYSTEM, cp.id, target.id)
    return Scene(
        target=target.id,
        mine=(three.id, four.id),
        cp_id=cp.id,
        asker=asker,
        request_id=made.id,
        other_manager=await _manager_of(portal, svc, three.id, four.id),
        target_manager=await _manager_of(portal, svc, target.id),
    )


async def _untouched(host: Host, sc: Scene) -> None:
    """Nothing of the request, memberships or grants changed."""
    async with host.db.reader() as s:
        row = (
            await s.execute(select(link_request).where(link_request.c.id == sc.request_id))
        ).one()
        members = await s.scalar(select(func.count()).where(membership.c.person_id == sc.asker))
        grants = await s.scalar(select(func.count()).where(grant.c.person_id == sc.asker))
    assert (row.status, row.organization_id, row.decided_by, row.role) == (
        "new",
        None,
        None,
        None,
    )
    assert (members, grants) == (0, 0)
    assert sc.target not in await host.access.organizations(who(sc.asker), VIEW)


async def test_a_manager_of_other_organizations_can_neither_see_nor_decide(
    portal: Portal, host: Host, svc: CompaniesService
) -> None:
    sc = await scene(portal, svc)
    requests = svc.requests
    outsider = sc.other_manager
    with pytest.raises(CompanyError) as hidden:
        await requests.get(outsider, sc.request_id)
    assert (hidden.value.status, hidden.value.field) == (404, "request")
    listed, _ = await requests.list(outsider, status="open", limit=500)
    assert sc.request_id not in [r.id for r in listed]
    for organization in (*sc.mine, sc.target):
        mine, _ = await requests.list(outsider, organization_id=organization, limit=500)
        assert sc.request_id not in [r.id for r in mine]
    attempts = [
        requests.accept(outsider, sc.request_id),
        requests.accept(outsider, sc.request_id, organization_id=sc.target),
        requests.reject(outsider, sc.request_id, reason="нет"),
        requests.review(outsider, sc.request_id),
    ]
    for attempt in attempts:
        with pytest.raises(CompanyError) as refused:
            await attempt
        assert refused.value.status == 404
    await _untouched(host, sc)


async def test_the_manager_of_the_target_sees_where_it_leads_and_decides(
    portal: Portal, host: Host, svc: CompaniesService
) -> None:
    sc = await scene(portal, svc)
    seen = await svc.requests.get(sc.target_manager, sc.request_id)
    # where the request leads now, and that this is not what it named when made
    assert (seen.organization_id, seen.organization_name) == (sc.target, "ООО Цель")
    assert (seen.asked_organization_id, seen.target_changed) == (None, True)
    on_card, _ = await svc.requests.list(sc.target_manager, organization_id=sc.target)
    assert [r.id for r in on_card] == [sc.request_id]
    done = await svc.requests.accept(sc.target_manager, sc.request_id)
    assert (done.status, done.organization_id, done.target_changed) == (
        "accepted",
        sc.target,
        False,
    )
    assert sc.target in await host.access.organizations(who(sc.asker), VIEW)


async def test_the_right_is_checked_where_the_request_leads_at_the_decision(
    portal: Portal, host: Host, svc: CompaniesService
) -> None:
    """Made for organization A, the counterparty then moves to B: A's manager loses the
    request, B's gains it; an admin's decision follows the counterparty."""
    first = await svc.create_organization("ООО Было")
    second = await svc.create_organization("ООО Стало")
    inn = _inn()
    cp = await svc.create_counterparty(
        SYSTEM, name="ООО Кочевник", inn=inn, organization_id=first.id
    )
    asker = (await portal.person(name="Mover")).id
    made = await svc.requests.create(asker, inn=inn)
    assert made.organization_id == first.id
    of_first = await _manager_of(portal, svc, first.id)
    of_second = await _manager_of(portal, svc, second.id)
    assert (await svc.requests.get(of_first, made.id)).target_changed is False
    with pytest.raises(CompanyError):
        await svc.requests.get(of_second, made.id)
    await svc.move_counterparty(SYSTEM, cp.id, second.id)
    with pytest.raises(CompanyError) as gone:
        await svc.requests.accept(of_first, made.id)
    assert gone.value.status == 404
    seen = await svc.requests.get(of_second, made.id)
    assert (seen.organization_id, seen.asked_organization_id, seen.target_changed) == (
        second.id,
        first.id,
        True,
    )
    assert seen.asked_organization_name == "ООО Было"
    admin = (await portal.person("admin")).principal
    done = await svc.requests.accept(admin, made.id)
    assert done.organization_id == second.id
    mine = await svc.memberships([asker])
    assert [m.organization_id for m in mine[asker]] == [second.id]


async def test_a_request_leading_nowhere_yet_is_for_global_holders_only(
    portal: Portal, host: Host, svc: CompaniesService
) -> None:
    """No organization yet: accepting makes one, so only those holding the right in every
    organization (admins) see and decide it; a manager does not, even of all others."""
    some = await svc.create_organization("ООО Любая")
    inn = _inn()
    cp = await svc.create_counterparty(SYSTEM, name="ООО Ничья", inn=inn)
    asker = (await portal.person(name="Nowhere")).id
    made = await svc.requests.create(asker, inn=inn)
    fresh = await svc.requests.create(
        asker, inn=_inn(), company_name="ООО Совсем Новая", new_company=True
    )
    manager = await _manager_of(portal, svc, some.id)
    for request_id in (made.id, fresh.id):
        with pytest.raises(CompanyError):
            await svc.requests.get(manager, request_id)
        with pytest.raises(CompanyError):
            await svc.requests.accept(manager, request_id, organization_id=some.id)
    listed, _ = await svc.requests.list(manager, limit=500)
    assert {made.id, fresh.id}.isdisjoint(r.id for r in listed)
    admin = (await portal.person("admin")).principal
    assert (await svc.requests.get(admin, made.id)).organization_id is None
    done = await svc.requests.accept(admin, made.id)
    assert done.organization_name == "ООО Ничья"
    assert (await svc.counterparty(SYSTEM, cp.id)).organization_id == done.organization_id


async def test_over_http_a_manager_of_other_organizations_gets_404_and_changes_nothing(
    web: Portal, svc: CompaniesService
) -> None:
    sc = await scene(web, svc)
    outsider = await web.signed_in(sc.other_manager.person_id or 0)
    api = f"/api/companies/link-requests/{sc.request_id}"
    for method, path, body in (
        ("GET", api, None),
        ("POST", f"{api}/accept", {}),
        ("POST", f"{api}/accept", {"organization_id": sc.target}),
        ("POST", f"{api}/reject", {"reason": "нет"}),
    ):
        answer = await outsider.request(method, path, json=body)
        assert answer.status_code == 404, (method, path, answer.text)
        assert answer.headers["content-type"].startswith("application/problem+json")
        assert "request" in answer.json()["detail"]
    listed = await outsider.get("/api/companies/link-requests?status=open&limit=500")
    assert listed.status_code == 200
    assert sc.request_id not in [r["id"] for r in listed.json()["items"]]
    page = f"/companies/requests/{sc.request_id}"
    assert (await outsider.get(page)).status_code == 404
    for decision in ("accept", "reject", "review"):
        decided = await outsider.post(
            f"{page}/decide", data={"decision": decision, "reason": "нет"}
        )
        assert decided.status_code == 404, decision
    table = await outsider.get("/companies/requests?status=open")
    assert f'data-request="{sc.request_id}"' not in table.text
    await _untouched(web.host, sc)


async def test_over_http_staff_see_where_a_request_leads_and_that_it_changed(
    web: Portal, svc: CompaniesService
) -> None:
    sc = await scene(web, svc)
    session = await web.signed_in(sc.target_manager.person_id or 0)
    api = await session.get(f"/api/companies/link-requests/{sc.request_id}")
    assert api.status_code == 200
    body = api.json()
    assert (body["organization_id"], body["organization_name"]) == (sc.target, "ООО Цель")
    assert (body["asked_organization_id"], body["target_changed"]) == (None, True)
    says = {
        "ru": "Запрос отправлен для другой организации",
        "en": "The request was made for another organization",
    }
    for lang, words in says.items():
        reader = await web.signed_in(sc.target_manager.person_id or 0, language=lang)
        card = await reader.get(f"/companies/requests/{sc.request_id}")
        assert card.status_code == 200
        assert 'id="target-changed"' in card.text
        assert words in card.text
        assert "ООО Цель" in card.text
        table = await reader.get("/companies/requests?status=open")
        row = table.text.split(f'data-request="{sc.request_id}"', 1)[1].split("</tr>", 1)[0]
        assert "ООО Цель" in row
        assert "target-changed" in row
    accepted = await session.post(f"/api/companies/link-requests/{sc.request_id}/accept", json={})
    assert accepted.status_code == 201
    assert accepted.json()["organization_id"] == sc.target
    assert sc.target in await web.host.access.organizations(who(sc.asker), VIEW)
