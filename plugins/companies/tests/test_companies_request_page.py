"""A link request's page as the deciding staff member sees it (issue 16, point 7): who
asks (e-mail, phone), accepting without a "reason", landing on the organization."""

from __future__ import annotations

import re
import uuid

import pytest
from sqlalchemy import select

from kabinet.host import Host
from kabinet.testing import Portal
from kabinet_companies.models import link_request
from kabinet_companies.services import CompaniesService
from kabinet_companies.validation import make_inn

pytestmark = pytest.mark.smoke


async def test_the_decider_sees_who_asks_and_accepting_a_new_company_lands_on_it(
    host: Host, svc: CompaniesService, web: Portal
) -> None:
    inn = make_inn(uuid.uuid4().int % 10**8 + 10**8)
    account = await host.services["identity"].create_account(
        full_name="Асель Заявитель",
        email=f"asker-{uuid.uuid4().hex[:8]}@example.test",
        phone="+7916" + str(uuid.uuid4().int % 10**7).zfill(7),
    )
    asker, email, phone = int(account.id), account.email, account.phone
    made = await svc.requests.create(
        asker, inn=inn, company_name="ООО Новая Компания", new_company=True
    )
    admin = await web.signed_in(await web.person("admin"))
    page = await admin.get(f"/companies/requests/{made.id}")
    assert page.status_code == 200
    assert f'href="mailto:{email}"' in page.text
    assert f'href="tel:{phone}"' in page.text
    accept_form = re.search(r'<form[^>]*id="accept-form".*?</form>', page.text, re.S)
    assert accept_form is not None
    assert "Причина" not in accept_form.group(0)
    assert 'name="reason"' not in accept_form.group(0)

    accepted = await admin.post(
        f"/companies/requests/{made.id}/decide",
        data={"decision": "accept", "organization_id": "", "role": "client"},
    )
    assert accepted.status_code in (302, 303)
    async with host.db.reader() as s:
        org = (
            await s.execute(
                select(link_request.c.organization_id).where(link_request.c.id == made.id)
            )
        ).scalar_one()
    assert org is not None
    assert accepted.headers["location"] == f"/companies/organizations/{org}"
    landed = await admin.get(accepted.headers["location"])
    assert landed.status_code == 200
    assert "ООО Новая Компания" in landed.text
    after = await admin.get(f"/companies/requests/{made.id}")
    assert after.status_code == 200
    assert "Причина" not in after.text  # an accepted request has no reason to show


async def test_staff_do_not_get_the_client_welcome_on_the_home_page(
    host: Host, svc: CompaniesService, web: Portal
) -> None:
    org = await svc.create_organization("ООО Домашняя")
    client = await host.services["identity"].create_account(
        full_name="Клиент Домашний", email=f"home-{uuid.uuid4().hex[:8]}@example.test"
    )
    await host.services["roles"].grant(int(client.id), "client", org.id)
    manager = (await web.person("manager")).id
    seen = await (await web.signed_in(int(client.id))).get("/")
    assert "Это личный кабинет клиента вашей транспортной компании" in seen.text
    for staff_member in (manager, (await web.person("admin")).id):
        home = await (await web.signed_in(staff_member)).get("/")
        assert home.status_code == 200
        assert "личный кабинет клиента" not in home.text
        assert "Запросите привязку к ней" not in home.text
        assert "Это рабочее место сотрудника транспортной компании" in home.text


async def test_clients_get_no_staff_filters_on_the_organizations_page(
    host: Host, svc: CompaniesService, web: Portal
) -> None:
    org = await svc.create_organization("ООО Фильтры")
    client = await host.services["identity"].create_account(
        full_name="Клиент Фильтров", email=f"flt-{uuid.uuid4().hex[:8]}@example.test"
    )
    await host.services["roles"].grant(int(client.id), "client", org.id)
    mine = await (await web.signed_in(int(client.id))).get("/companies/organizations")
    assert mine.status_code == 200
    assert "ООО Фильтры" in mine.text
    assert 'name="manager"' not in mine.text
    assert 'name="q"' in mine.text
    admin = (await web.person("admin")).id
    theirs = await (await web.signed_in(admin)).get("/companies/organizations")
    assert 'name="manager"' in theirs.text
