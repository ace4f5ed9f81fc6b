"""Demo data: organizations with counterparties, contacts (one in two organizations),
requests pending, accepted and rejected with their history, and two managers each
assigned to some organizations. Idempotent: a second run finds it all and adds nothing."""

from __future__ import annotations

from typing import TYPE_CHECKING

from sqlalchemy import select

from kabinet.access import Principal
from kabinet.identity.demo import DEMO_PASSWORD
from kabinet.identity.services import identity_service
from kabinet_companies.models import organization
from kabinet_companies.services import SYSTEM, companies
from kabinet_companies.sinks import CounterpartyRecord, apply_counterparties
from kabinet_companies.validation import make_inn

if TYPE_CHECKING:
    from kabinet.host import Host

ORGS = [
    ("ООО «Ромашка»", ["ООО «Ромашка»", "ООО «Ромашка-Логистик»"]),
    ("АО «СеверСталь-Трейд»", ["АО «СеверСталь-Трейд»"]),
    ("ИП Кузнецов А. В.", ["ИП Кузнецов Андрей Викторович"]),
    ("ООО «ВолгаАгро»", ["ООО «ВолгаАгро»"]),
]
PASSWORD = DEMO_PASSWORD  # one password for every demo account, printed by `kabinet demo`


async def _account(host: Host, name: str, email: str, phone: str) -> int:
    identity = identity_service(host)
    found = await identity.find_by_email(email)
    if found is not None:
        return found.id
    account = await identity.create_account(
        full_name=name, email=email, phone=phone, password=PASSWORD,
        email_confirmed=True, phone_confirmed=True,
    )  # fmt: skip
    return account.id


async def load(host: Host) -> None:
    svc = companies(host)
    async with host.db.reader() as s:
        if await s.scalar(select(organization.c.id).limit(1)) is not None:
            return
    records = []
    seed = 7_707_000
    for org_no, (_, cps) in enumerate(ORGS):
        for cp_no, cp in enumerate(cps):
            seed += 1
            records.append(
                CounterpartyRecord(
                    external_id=f"demo-{org_no}-{cp_no}", name=cp, inn=make_inn(seed),
                    kpp=f"77{org_no:02d}01001" if "ИП" not in cp else None,
                    address="Москва", full_name=cp,
                )
            )  # fmt: skip
    records.append(
        CounterpartyRecord(
            external_id="demo-new", name="ООО «Новый клиент»", inn=make_inn(seed + 1)
        )
    )
    async with host.db.session() as s:
        await apply_counterparties(host, s, records)
    org_ids = []
    page = await svc.counterparties(_system(), unassigned=True, limit=100)
    by_ext = {c.external_id: c for c in page.items}
    for org_no, (name, cps) in enumerate(ORGS):
        first = by_ext[f"demo-{org_no}-0"]
        org = await svc.organization_from_counterparty(_system(), first.id)
        org_ids.append(org.id)
        for cp_no in range(1, len(cps)):
            await svc.move_counterparty(_system(), by_ext[f"demo-{org_no}-{cp_no}"].id, org.id)
        del name
    roles = svc.roles
    m1 = await _account(host, "Ольга Менеджерова", "manager1@demo.test", "+79160000101")
    m2 = await _account(host, "Павел Менеджеров", "manager2@demo.test", "+79160000102")
    for person in (m1, m2):
        if not any(g.role.code == "manager" for g in await roles.grants_of(person)):
            await roles.grant(person, "manager")
    for org_id in org_ids[:2]:
        await svc.assign_manager(None, org_id, m1)
    for org_id in org_ids[2:]:
        await svc.assign_manager(None, org_id, m2)
    anna = await _account(host, "Анна Клиентова", "anna@demo.test", "+79160000201")
    boris = await _account(host, "Борис Заявкин", "boris@demo.test", "+79160000202")
    vera = await _account(host, "Вера Отказова", "vera@demo.test", "+79160000203")
    gleb = await _account(host, "Глеб Новиков", "gleb@demo.test", "+79160000204")
    for person in (anna, boris, vera, gleb):
        await roles.grant(person, "user")
        await svc.registration.agree(person)
    requests = svc.requests
    admin = _system()
    first = await svc.organization(org_ids[0])
    second = await svc.organization(org_ids[1])
    for org in (first, second):  # Anna works for two companies
        made = await requests.create(anna, inn=org.inn or "", comment="Бухгалтерия")
        await requests.review(admin, made.id)
        await requests.accept(admin, made.id, comment="Подтверждено звонком")
    made = await requests.create(vera, inn=first.inn or "", comment="Логист")
    await requests.reject(admin, made.id, reason="Компания не подтвердила сотрудника")
    await requests.create(boris, inn=second.inn or "", comment="Отдел снабжения")
    await requests.create(
        gleb, inn=make_inn(seed + 50), company_name="ООО «Гамма»", new_company=True,
        comment="Новый клиент, договор в работе",
    )  # fmt: skip
    print(
        f"companies: {len(org_ids)} organizations; managers manager1@demo.test, "
        f"manager2@demo.test; clients anna@demo.test (two companies), boris@, vera@, gleb@; "
        f"password {PASSWORD}"
    )


def _system() -> Principal:
    """The demo acts as the portal itself, holding every permission."""
    return SYSTEM
