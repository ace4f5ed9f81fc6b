"""The companies app's rules through its services, without HTTP."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
from pathlib import Path

import pytest
from companies_support import who
from sqlalchemy import func, select

from kabinet.clock import FrozenClock
from kabinet.forms import FormErrors
from kabinet.host import Host
from kabinet.roles.models import grant
from kabinet.testing import Portal, PortalFactory
from kabinet_companies.plugin import CompaniesSettings
from kabinet_companies.services import COMPANIES, SYSTEM, CompaniesService, companies
from kabinet_companies.sinks import CounterpartyRecord, apply_counterparties
from kabinet_companies.validation import (
    CompanyError,
    Conflict,
    clean_inn,
    clean_kpp,
    inn_valid,
    make_inn,
)

pytestmark = pytest.mark.smoke


async def org_with_counterparty(svc: CompaniesService, name: str) -> tuple[int, int, str]:
    inn = make_inn(abs(hash(name)) % 10**8 + 10**8)
    cp = await svc.create_counterparty(SYSTEM, name=name, inn=inn, kpp="770101001")
    org = await svc.organization_from_counterparty(SYSTEM, cp.id)
    return org.id, cp.id, inn


async def test_the_service_is_published_under_its_key(make_portal: PortalFactory) -> None:
    host = (await make_portal(settings={"companies": {"invitation_days": 3}}, web=False)).host
    found = host.services.of(COMPANIES)  # published at start-up, by the key's name
    assert isinstance(found, CompaniesService)
    assert host.services["companies"] is found  # code not moved yet reads it by name
    assert companies(host) is found  # made once: CLI, jobs and pages share it
    settings = host.plugin_settings("companies", CompaniesSettings)
    assert (settings.invitation_days, settings.organization_per_counterparty) == (3, False)
    assert found.registration.invitation_ttl == dt.timedelta(days=3)


def test_inn_check_digits_and_kpp_format() -> None:
    assert inn_valid("7707083893")  # Сбербанк
    assert inn_valid("500100732259")  # a 12-digit ИНН of a person
    assert not inn_valid("7707083894")
    assert not inn_valid("500100732258")
    assert make_inn(123, 12)
    assert inn_valid(make_inn(123, 12))
    with pytest.raises(CompanyError) as bad:
        clean_inn("77070838")
    assert bad.value.field == "inn"
    with pytest.raises(CompanyError, match="check digits"):
        clean_inn("7707083894")
    assert clean_kpp(" 7701ab001 ") == "7701AB001"
    with pytest.raises(CompanyError) as wrong:
        clean_kpp("77-01", field="kpp")
    assert wrong.value.field == "kpp"


async def test_a_wrong_inn_is_refused_naming_the_field(svc: CompaniesService) -> None:
    with pytest.raises(CompanyError) as refused:
        await svc.create_organization("ООО Тест", inn="1234567890")
    assert refused.value.field == "inn"


async def test_accepting_a_request_by_inn_gives_access_at_once(
    portal: Portal, host: Host, svc: CompaniesService
) -> None:
    org_id, _, inn = await org_with_counterparty(svc, "ООО Альфа")
    asker = (await portal.person(name="Asker")).id
    manager = (await portal.person("admin")).principal
    made = await svc.requests.create(asker, inn=inn, comment="бухгалтер")
    assert (made.organization_id, made.status) == (org_id, "new")
    assert org_id not in await host.access.organizations(who(asker), "companies.organizations.view")
    done = await svc.requests.accept(manager, made.id)
    assert (done.status, done.role) == ("accepted", "client")
    assert [h.action for h in done.history] == ["created", "accepted"]
    assert org_id in await host.access.organizations(who(asker), "companies.organizations.view")
    mine = await svc.memberships([asker])
    assert [(m.organization_id, m.roles) for m in mine[asker]] == [(org_id, ["client"])]
    with pytest.raises(Conflict):
        await svc.requests.reject(manager, made.id, reason="late")


async def test_a_decision_and_its_grant_commit_together(
    portal: Portal, host: Host, svc: CompaniesService, monkeypatch: pytest.MonkeyPatch
) -> None:
    org_id, _, inn = await org_with_counterparty(svc, "ООО Атом")
    asker = (await portal.person(name="Atomic")).id
    manager = (await portal.person("admin")).principal
    made = await svc.requests.create(asker, inn=inn)

    async def crash(*_: object) -> None:
        raise RuntimeError("the process died while granting")

    # a failure while granting undoes the decision and the membership with it
    with monkeypatch.context() as patched:
        patched.setattr(svc.roles, "_grant_event", crash)
        with pytest.raises(RuntimeError):
            await svc.requests.accept(manager, made.id)
    assert (await svc.requests.get(manager, made.id)).status == "new"
    assert (await svc.memberships([asker])).get(asker, []) == []
    async with host.db.reader() as s:
        held = await s.scalar(select(func.count()).where(grant.c.person_id == asker))
    assert held == 0
    # decided again, it holds
    done = await svc.requests.accept(manager, made.id)
    assert done.status == "accepted"
    mine = await svc.memberships([asker])
    assert [(m.organization_id, m.roles) for m in mine[asker]] == [(org_id, ["client"])]


async def test_two_managers_deciding_at_once_one_wins_and_no_double_grant(
    portal: Portal, host: Host, svc: CompaniesService
) -> None:
    org_id, _, inn = await org_with_counterparty(svc, "ООО Бета")
    asker = (await portal.person(name="Twice")).id
    first, second = (
        (await portal.person("admin")).principal,
        (await portal.person("admin")).principal,
    )
    made = await svc.requests.create(asker, inn=inn)
    results = await asyncio.gather(
        svc.requests.accept(first, made.id),
        svc.requests.reject(second, made.id, reason="нет"),
        return_exceptions=True,
    )
    won = [r for r in results if not isinstance(r, BaseException)]
    lost = [r for r in results if isinstance(r, BaseException)]
    assert len(won) == 1
    assert len(lost) == 1
    assert isinstance(lost[0], Conflict)
    assert lost[0].field == "status"
    final = await svc.requests.get(first, made.id)
    assert final.status == won[0].status
    async with host.db.reader() as s:
        grants = await s.scalar(
            select(func.count()).where(
                grant.c.person_id == asker, grant.c.organization_id == org_id
            )
        )
    assert grants == (1 if final.status == "accepted" else 0)


async def test_rejecting_needs_a_reason_and_tells_it(
    portal: Portal, host: Host, svc: CompaniesService
) -> None:
    _, _, inn = await org_with_counterparty(svc, "ООО Гамма")
    asker = (await portal.person(name="Rejected")).id
    manager = (await portal.person("admin")).principal
    made = await svc.requests.create(asker, inn=inn)
    with pytest.raises(CompanyError) as no_reason:
        await svc.requests.reject(manager, made.id, reason=" ")
    assert no_reason.value.field == "reason"
    done = await svc.requests.reject(manager, made.id, reason="Не сотрудник")
    mine = await svc.requests.mine(asker)
    assert [(r.status, r.reason) for r in mine] == [("rejected", "Не сотрудник")]
    assert done.history[-1].comment == "Не сотрудник"


async def test_a_request_for_an_unknown_company_creates_it_on_accept(
    portal: Portal, host: Host, svc: CompaniesService
) -> None:
    asker = (await portal.person(name="New")).id
    manager = (await portal.person("admin")).principal
    made = await svc.requests.create(
        asker, inn=make_inn(424242), company_name="ООО Новая", new_company=True
    )
    assert made.organization_id is None
    done = await svc.requests.accept(manager, made.id)
    assert done.organization_name == "ООО Новая"
    assert done.organization_id in await host.access.organizations(
        who(asker), "companies.organizations.view"
    )


async def test_a_manager_sees_only_assigned_organizations(
    portal: Portal, host: Host, svc: CompaniesService
) -> None:
    mine, _, _ = await org_with_counterparty(svc, "ООО Своя")
    other, _, _ = await org_with_counterparty(svc, "ООО Чужая")
    manager = (await portal.person("manager")).principal
    await svc.assign_manager(SYSTEM, mine, manager.person_id or 0)
    seen = await svc.organizations(manager, limit=500)
    assert mine in [o.id for o in seen.items]
    assert other not in [o.id for o in seen.items]
    assert await svc.managed_by(manager.person_id or 0) == {mine}
    by_manager = await svc.organizations(SYSTEM, manager_id=manager.person_id, limit=500)
    assert [o.id for o in by_manager.items] == [mine]


async def test_a_client_with_the_permission_sees_own_contacts_only(
    portal: Portal, host: Host, svc: CompaniesService
) -> None:
    roles = host.services["roles"]
    await roles.create_role(
        code="lead_contact", name_ru="Главный", name_en="Lead",
        permissions=["companies.contacts.view", "companies.organizations.view"],
    )  # fmt: skip
    own, _, _ = await org_with_counterparty(svc, "ООО Наша")
    alien, _, _ = await org_with_counterparty(svc, "ООО Соседи")
    lead = (await portal.person(name="Lead")).id
    colleague = (await portal.person(name="Colleague")).id
    stranger = (await portal.person(name="Stranger")).id
    await svc.set_roles(SYSTEM, lead, own, ["lead_contact"])
    await svc.set_roles(SYSTEM, colleague, own, ["client"])
    await svc.set_roles(SYSTEM, stranger, alien, ["client"])
    seen = await svc.contacts(who(lead), limit=500)
    assert {c.person_id for c in seen.items} == {lead, colleague}
    with pytest.raises(CompanyError):
        await svc.contact(who(lead), stranger)
    plain = await svc.contacts(who(colleague), limit=500)
    assert plain.items == []


async def test_roles_are_given_changed_and_revoked_as_host_grants(
    portal: Portal, host: Host, svc: CompaniesService
) -> None:
    org_id, _, _ = await org_with_counterparty(svc, "ООО Права")
    contact = (await portal.person(name="Rights")).id
    manager = (await portal.person("admin")).principal
    given = await svc.set_roles(manager, contact, org_id, ["client"])
    assert given.roles == ["client"]
    emptied = await svc.set_roles(manager, contact, org_id, [])
    assert emptied.roles == []
    assert org_id not in await host.access.organizations(
        who(contact), "companies.organizations.view"
    )
    events, _ = await host.services["identity"].security_events(person_id=contact)
    assert {"roles.grant.given", "roles.grant.revoked"} <= {e.action for e in events}
    with pytest.raises(CompanyError) as staff_role:
        await svc.set_roles(manager, contact, org_id, ["admin"])
    assert staff_role.value.field == "roles"


async def test_the_counterparty_sink_is_bulk_and_idempotent(host: Host) -> None:
    records = [
        CounterpartyRecord(external_id="s-1", name="ООО Один", inn=make_inn(901)),
        CounterpartyRecord(external_id="s-2", name="ООО Два", inn=make_inn(902), kpp="770201001"),
        CounterpartyRecord(external_id="s-bad", name="ООО Плохой", inn="1234567890"),
    ]
    async with host.db.session() as s:
        first = await apply_counterparties(host, s, records)
    assert (first.created, first.unchanged) == (2, 0)
    assert list(first.rejected) == ["s-bad"]
    assert "inn" in first.rejected["s-bad"]
    async with host.db.session() as s:
        again = await apply_counterparties(host, s, records[:2])
    assert (again.created, again.updated, again.unchanged) == (0, 0, 2)
    changed = [
        CounterpartyRecord(external_id="s-1", name="ООО Один (новое имя)", inn=make_inn(901)),
        CounterpartyRecord(external_id="s-2", name="x", inn=make_inn(902), deleted=True),
    ]
    async with host.db.session() as s:
        third = await apply_counterparties(host, s, changed)
    assert (third.updated, third.hidden) == (1, 1)
    svc: CompaniesService = host.services["companies"]
    listed = await svc.counterparties(SYSTEM, unassigned=True, limit=500)
    names = {c.external_id: c.name for c in listed.items}
    assert names.get("s-1") == "ООО Один (новое имя)"
    assert "s-2" not in names


async def test_one_organization_per_new_counterparty_when_set(make_portal: PortalFactory) -> None:
    settings = {"companies": {"organization_per_counterparty": True}}
    host = (await make_portal(settings=settings, web=False)).host
    async with host.db.session() as s:
        await apply_counterparties(
            host, s, [CounterpartyRecord(external_id="auto-1", name="ООО Авто", inn=make_inn(77))]
        )
    svc: CompaniesService = host.services["companies"]
    found = await svc.organizations(SYSTEM, q="авто", limit=10)
    assert [o.name for o in found.items] == ["ООО Авто"]


def _codes(host: Host) -> dict[str, str]:
    folder = Path(host.settings.var_dir) / "messages"
    found = {}
    for path in sorted(folder.glob("*identity.code.json")):
        data = json.loads(path.read_text())
        found[data["to"]] = data["context"]["code"]
    return found


async def test_registration_gate_until_both_codes_then_role_user(
    host: Host, svc: CompaniesService, clock: FrozenClock
) -> None:
    reg = svc.registration
    with pytest.raises(FormErrors) as errors:
        await reg.register(
            full_name="", email="nope", phone="12", password="short", password2="other",
            agreed=False,
        )  # fmt: skip
    assert {e.field for e in errors.value.errors} == {
        "full_name", "email", "phone", "password", "password2", "consent",
    }  # fmt: skip
    account = await reg.register(
        full_name="Ирина Новая", email="irina@example.test", phone="+79161112233",
        password="long-enough-1", password2="long-enough-1", agreed=True,
    )  # fmt: skip
    assert await reg.gate(account.id, account.version) == "confirm"
    codes = _codes(host)
    identity = reg.identity
    await identity.check_code(account.id, "confirm_email", codes["irina@example.test"])
    assert not await reg.confirmed(account.id)
    await identity.check_code(account.id, "confirm_phone", codes["+79161112233"])
    assert await reg.confirmed(account.id)
    fresh = await identity.get_account(account.id)
    assert fresh is not None
    assert await reg.gate(account.id, fresh.version) is None
    grants = await host.services["roles"].grants_of(account.id)
    assert [(g.role.code, g.organization_id) for g in grants] == [("user", None)]
    agreed = await reg.agreements(account.id)
    assert len(agreed) == 1
    await reg.publish_consent("Новый текст", "New text", None)
    assert await reg.gate(account.id, fresh.version) == "consent"
    await reg.agree(account.id)
    assert await reg.gate(account.id, fresh.version) is None


async def test_invitations_expire_are_revoked_and_resent(
    host: Host, svc: CompaniesService, clock: FrozenClock
) -> None:
    org_id, _, _ = await org_with_counterparty(svc, "ООО Приглашающая")
    reg = svc.registration
    sent = await reg.invite(
        organization_id=org_id, email="guest@example.test", full_name="Гость", actor_id=None
    )
    assert sent.status == "pending"
    clock.advance(days=8)
    assert (await reg.invitation(sent.id)).status == "expired"
    again = await reg.resend(sent.id)
    assert (again.status, again.sent_count) == ("pending", 2)
    revoked = await reg.revoke(sent.id)
    assert revoked.status == "revoked"
    folder = Path(host.settings.var_dir) / "messages"
    letters = [json.loads(p.read_text()) for p in folder.glob("*companies.invitation.json")]
    links = [m["context"]["link"] for m in letters if m["to"] == "guest@example.test"]
    assert len(links) == 2
    assert await reg.by_token(links[-1].split("token=")[1]) is None  # revoked


async def test_an_invited_person_sets_a_password_and_is_in_after_the_phone_code(
    host: Host, svc: CompaniesService
) -> None:
    org_id, _, _ = await org_with_counterparty(svc, "ООО Зовущая")
    reg = svc.registration
    await reg.invite(
        organization_id=org_id, email="invitee@example.test", full_name="Инна Приглашённая",
        actor_id=None,
    )  # fmt: skip
    folder = Path(host.settings.var_dir) / "messages"
    letters = [json.loads(p.read_text()) for p in folder.glob("*companies.invitation.json")]
    link = next(m["context"]["link"] for m in letters if m["to"] == "invitee@example.test")
    token = link.split("token=")[1]
    with pytest.raises(FormErrors) as refused:
        await reg.accept_invitation(token, phone="1", password="x", password2="y", agreed=True)
    assert {e.field for e in refused.value.errors} == {"phone", "password", "password2"}
    account = await reg.accept_invitation(
        token, phone="+79165550001", password="long-enough-2", password2="long-enough-2",
        agreed=True,
    )  # fmt: skip
    assert account.email_confirmed
    assert await reg.gate(account.id, account.version) == "confirm"
    await reg.identity.check_code(account.id, "confirm_phone", _codes(host)["+79165550001"])
    assert await reg.confirmed(account.id)
    assert org_id in await host.access.organizations(
        who(account.id), "companies.organizations.view"
    )
    assert (await reg.invitations(organization_id=org_id))[0].status == "accepted"
    assert await reg.by_token(token) is None


async def test_an_organization_made_with_a_fixed_id_does_not_block_the_next_one(
    svc: CompaniesService,
) -> None:
    # Route samples and demo data make organizations with fixed ids; on PostgreSQL the
    # sequence must move past them, or the next organization collides with one of them.
    fixed = (await svc.create_organization("Before")).id + 2
    await svc.ensure_organization(fixed, "Fixed")
    made = [await svc.create_organization(f"After {i}") for i in range(3)]
    assert all(m.id > fixed for m in made)
    assert (await svc.organization(fixed)).name == "Fixed"
