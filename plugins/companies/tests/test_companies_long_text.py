"""A text longer than its column is refused naming the field, on pages as on the API, and
nothing is saved or cut short: SQLite, the embedded default, would store 100,000
characters in a column of 200 (issue 14, point 8)."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from kabinet.host import Host
from kabinet.identity.models import Account
from kabinet.testing import Portal
from kabinet_companies.models import counterparty, organization
from kabinet_companies.services import CompaniesService
from kabinet_companies.validation import CompanyError, make_inn

pytestmark = pytest.mark.smoke

HUGE = "Я" * 100_000


async def _orgs_named(host: Host, name: str) -> int:
    async with host.db.session() as s:
        return int(await s.scalar(select(func.count()).where(organization.c.name == name)) or 0)


async def test_an_organization_name_longer_than_its_column_is_refused(
    host: Host, web: Portal, svc: CompaniesService
) -> None:
    admin = (await web.person("admin")).principal
    session = await web.signed_in(admin.person_id)

    made = await session.post("/companies/organizations", data={"name": HUGE})
    assert made.status_code == 303  # back to the list, with the reason as a flash message
    assert await _orgs_named(host, HUGE) == 0
    async with host.db.session() as s:
        longest = await s.scalar(select(func.max(func.length(organization.c.name))))
    assert (longest or 0) <= 300  # nothing was cut short and saved either

    api = await session.post("/api/companies/organizations", json={"name": HUGE})
    assert api.status_code == 400
    assert api.headers["content-type"].startswith("application/problem+json")
    assert [e["field"] for e in api.json()["errors"]] == ["name"]
    assert await _orgs_named(host, HUGE) == 0

    org = await svc.create_organization("Ромашка")
    saved = await session.post(f"/companies/organizations/{org.id}", data={"name": HUGE})
    assert saved.status_code == 400
    assert 'name="name"' in saved.text
    assert "Слишком длинное значение" in saved.text
    assert (await svc.organization(org.id)).name == "Ромашка"


async def test_a_counterparty_field_longer_than_its_column_is_refused(
    portal: Portal, host: Host, svc: CompaniesService
) -> None:
    admin = (await portal.person("admin")).principal
    for field in ("name", "full_name", "address", "phone", "email"):
        values = {"name": "ООО Тест", field: HUGE}
        with pytest.raises(CompanyError) as refused:
            await svc.create_counterparty(admin, inn=make_inn(7_000 + len(field)), **values)
        assert refused.value.field == field
    async with host.db.session() as s:
        assert not await s.scalar(select(func.count()).where(counterparty.c.name == "ООО Тест"))


async def test_registering_with_a_name_longer_than_its_column_is_refused(
    host: Host, web: Portal
) -> None:
    form = {
        "full_name": HUGE,
        "email": "long-name@example.test",
        "phone": "+7 900 123-45-67",
        "password": "a-long-enough-password",
        "password2": "a-long-enough-password",
        "consent": "yes",
    }
    answer = await web.client.post("/companies/register", data=form)
    assert answer.status_code == 400
    assert "Слишком длинное имя" in answer.text
    async with host.db.session() as s:
        assert not await s.scalar(
            select(func.count()).where(Account.email == "long-name@example.test")
        )
