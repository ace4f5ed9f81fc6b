"""Paths a person walks: registration in Keycloak mode, the invitation page over HTTP, the
header's organization switch, and contact copies following the account."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from companies_support import who

from kabinet.clock import FrozenClock
from kabinet.host import Host
from kabinet.identity.models import Account
from kabinet.testing import Portal, PortalFactory
from kabinet_companies.models import contact
from kabinet_companies.services import SYSTEM, CompaniesService, companies

sys.path.insert(0, str(Path(__file__).resolve().parents[3] / "tests" / "keycloak"))
from fake_keycloak import ADMIN_PASSWORD, CLIENT_SECRET, FakeKeycloak

pytestmark = pytest.mark.smoke


def _codes(host: Host) -> dict[str, str]:
    folder = Path(host.settings.var_dir) / "messages"
    found = {}
    for path in sorted(folder.glob("*identity.code.json")):
        data = json.loads(path.read_text())
        found[data["to"]] = data["context"]["code"]
    return found


def body(response: httpx.Response) -> str:
    """The page's own content (the header's switch names every organization of the person)."""
    return response.text.split("<main", 1)[1]


def _invitation_token(host: Host, email: str) -> str:
    folder = Path(host.settings.var_dir) / "messages"
    letters = [json.loads(p.read_text()) for p in folder.glob("*companies.invitation.json")]
    link = [m["context"]["link"] for m in letters if m["to"] == email][-1]
    return str(link.split("token=")[1])


@pytest.fixture
def fake() -> Iterator[FakeKeycloak]:
    server = FakeKeycloak().start()
    yield server
    server.stop()


async def test_registration_in_keycloak_mode_creates_the_keycloak_user(
    make_portal: PortalFactory, fake: FakeKeycloak
) -> None:
    keycloak = {
        "server_url": fake.url,
        "realm": fake.realm,
        "client_id": fake.client_id,
        "client_secret": CLIENT_SECRET,
        "admin_username": fake.admin_username,
        "admin_password": ADMIN_PASSWORD,
    }
    host = (await make_portal(settings={"keycloak": keycloak}, web=False)).host
    reg = companies(host).registration
    account = await reg.register(
        full_name="Кира Облачная", email="Kira.Cloud@example.test", phone="+79160001122",
        password="long-enough-3", password2="long-enough-3", agreed=True,
    )  # fmt: skip
    user = fake.user_by_name("kira.cloud@example.test")
    assert user is not None
    assert (user.email, user.first_name, user.last_name) == (
        "kira.cloud@example.test",
        "Кира",
        "Облачная",
    )
    assert user.password == "long-enough-3"
    assert user.attributes["kabinet_account"] == [str(account.id)]
    assert user.attributes["phoneNumber"] == ["+79160001122"]
    assert not user.email_verified  # the portal confirms the address by its own code
    async with host.db.session() as s:
        linked = await s.get(Account, account.id)
        assert linked is not None
        assert linked.external_subject == user.id


async def test_the_invitation_page_sets_a_password_and_the_phone_then_the_person_is_in(
    web: Portal, svc: CompaniesService
) -> None:
    host = web.host
    org = await svc.create_organization("ООО Приглашение по ссылке")
    reg = svc.registration
    await reg.invite(
        organization_id=org.id, email="page-invitee@example.test", full_name="Павел Ссылкин",
        actor_id=None,
    )  # fmt: skip
    token = _invitation_token(host, "page-invitee@example.test")
    shown = await web.client.get(f"/companies/invitation?token={token}")
    assert shown.status_code == 200
    assert "Павел Ссылкин" in shown.text
    assert "ООО Приглашение по ссылке" in shown.text
    refused = await web.client.post(
        "/companies/invitation",
        data={"token": token, "phone": "12", "password": "x", "password2": "y"},
    )
    assert refused.status_code == 400
    assert 'value="12"' in refused.text  # what was typed stays
    # each field's error, in Russian: this app's catalog and identity's
    assert "Пароли не совпадают." in refused.text
    assert "Нужно согласие на обработку персональных данных." in refused.text
    accepted = await web.client.post(
        "/companies/invitation",
        data={
            "token": token,
            "phone": "+7 916 555-00-77",
            "password": "long-enough-4",
            "password2": "long-enough-4",
            "consent": "yes",
        },
    )
    assert accepted.status_code == 303, accepted.text
    assert accepted.headers["location"] == "/companies/register/confirm"
    signed_in = web.client  # it keeps the session cookie the answer set
    confirm = await signed_in.get("/companies/register/confirm")
    assert confirm.status_code == 200
    code = _codes(host)["+79165550077"]
    done = await signed_in.post(
        "/companies/register/confirm",
        data={"purpose": "confirm_phone", "code": code},
    )
    assert done.status_code == 303, done.text
    account = await reg.identity.find_by_email("page-invitee@example.test")
    assert account is not None
    assert (account.email_confirmed, account.phone_confirmed) == (True, True)
    assert org.id in await host.access.organizations(
        who(account.id), "companies.organizations.view"
    )
    mine = await signed_in.get("/companies/organizations")
    assert mine.status_code == 200
    assert "ООО Приглашение по ссылке" in mine.text
    # The link is used up: the page says so instead of a form.
    again = await web.client.get(f"/companies/invitation?token={token}")
    assert again.status_code == 410
    assert "Приглашение уже принято" in again.text
    assert '<form method="post" action="/companies/invitation"' not in again.text


async def test_expired_and_revoked_invitations_are_refused_with_a_clear_page(
    web: Portal, svc: CompaniesService, clock: FrozenClock
) -> None:
    org = await svc.create_organization("ООО Старые приглашения")
    reg = svc.registration
    late = await reg.invite(
        organization_id=org.id, email="late@example.test", full_name="Поздний", actor_id=None
    )
    late_token = _invitation_token(web.host, "late@example.test")
    revoked = await reg.invite(
        organization_id=org.id, email="revoked@example.test", full_name="Отозванный",
        actor_id=None,
    )  # fmt: skip
    revoked_token = _invitation_token(web.host, "revoked@example.test")
    await reg.revoke(revoked.id)
    clock.advance(days=8)
    assert (await reg.invitation(late.id)).status == "expired"
    expired = await web.client.get(f"/companies/invitation?token={late_token}")
    assert expired.status_code == 410
    assert "Срок приглашения истёк" in expired.text
    gone = await web.client.get(f"/companies/invitation?token={revoked_token}")
    assert gone.status_code == 410
    assert "Приглашение отозвано" in gone.text
    unknown = await web.client.get("/companies/invitation?token=not-a-token")
    assert unknown.status_code == 404
    assert "Ссылка приглашения неверна" in unknown.text
    tried = await web.client.post(
        "/companies/invitation",
        data={
            "token": late_token,
            "phone": "+79165550078",
            "password": "long-enough-5",
            "password2": "long-enough-5",
            "consent": "yes",
        },
    )
    assert tried.status_code == 400
    assert "Срок приглашения истёк" in tried.text
    assert await reg.identity.find_by_email("late@example.test") is None


async def test_the_header_switch_changes_the_organization_whose_data_the_pages_show(
    web: Portal, svc: CompaniesService
) -> None:
    north = await svc.create_organization("ООО Север Переключатель")
    south = await svc.create_organization("ООО Юг Переключатель")
    both = (await web.person(name="Двойной")).id
    colleague_n = (await web.person(name="Северянин")).id
    colleague_s = (await web.person(name="Южанин")).id
    await svc.set_roles(SYSTEM, both, north.id, ["client"])
    await svc.set_roles(SYSTEM, both, south.id, ["client"])
    await svc.set_roles(SYSTEM, colleague_n, north.id, ["client"])
    await svc.set_roles(SYSTEM, colleague_s, south.id, ["client"])
    await web.host.services["roles"].grant(both, "manager", north.id)  # may see contacts
    await web.host.services["roles"].grant(both, "manager", south.id)
    session = await web.signed_in(both)

    first = await session.get("/companies/organizations")
    assert "ООО Север Переключатель" in body(first)  # all my companies at first
    assert "ООО Юг Переключатель" in body(first)
    assert '<option value="all" selected>' in first.text  # the header's switch

    switched = await session.post(
        "/companies/current",
        data={"organization": str(south.id), "next": "/companies/organizations"},
    )
    assert switched.status_code == 303
    assert switched.headers["location"] == "/companies/organizations"
    chosen = switched.headers["set-cookie"].split(";")[0]
    assert chosen == f"kabinet_org={south.id}"
    after = await session.get("/companies/organizations")  # the client keeps the cookie
    assert "ООО Юг Переключатель" in body(after)
    assert "ООО Север Переключатель" not in body(after)
    assert f'<option value="{south.id}" selected>' in after.text
    contacts = await session.get("/companies/contacts")
    assert contacts.status_code == 200
    assert "Южанин" in body(contacts)
    assert "Северянин" not in body(contacts)
    # Someone else's organization cannot be chosen: the cookie is ignored (all of mine).
    other = await svc.create_organization("ООО Чужая Переключатель")
    elsewhere = await web.signed_in(both)
    elsewhere.cookies.set("kabinet_org", str(other.id))
    foreign = await elsewhere.get("/companies/organizations")
    assert "ООО Север Переключатель" in body(foreign)
    assert "ООО Юг Переключатель" in body(foreign)
    assert "ООО Чужая Переключатель" not in foreign.text
    # Staff-wide people are not narrowed by it.
    admin = await web.signed_in(await web.person("admin"))
    admin.cookies.set("kabinet_org", str(south.id))
    everything = await admin.get("/companies/organizations?q=Переключатель")
    assert "ООО Север Переключатель" in body(everything)
    assert "ООО Юг Переключатель" in body(everything)


async def test_contact_copies_follow_the_account_when_it_changes(
    portal: Portal, host: Host
) -> None:
    """The harness's portal runs no jobs in the background: the test relays and drains."""
    svc = companies(host)
    org = await svc.create_organization("ООО Контакты Следят")
    who_id = (await portal.person(name="Старое Имя", phone="+79160000001")).id
    await svc.set_roles(SYSTEM, who_id, org.id, ["client"])
    stranger = (await portal.person(name="Не Контакт")).id
    identity = host.services["identity"]
    before = await identity.get_account(who_id)
    await identity.update_profile(
        who_id, full_name="Новое Имя", email=before.email, phone="+79160000002",
        language="ru", timezone="Europe/Moscow",
    )  # fmt: skip
    other = await identity.get_account(stranger)
    await identity.update_profile(
        stranger, full_name="Всё Ещё Не Контакт", email=other.email, phone=None,
        language="ru", timezone="Europe/Moscow",
    )  # fmt: skip
    while await host.events.relay():
        pass
    await host.jobs.drain()
    async with host.db.session() as s:
        row = (await s.execute(contact.select().where(contact.c.person_id == who_id))).one()
        assert (row.full_name, row.phone) == ("Новое Имя", "+79160000002")
        assert "новое имя" in row.search
        none = await s.scalar(
            contact.select()
            .with_only_columns(contact.c.person_id)
            .where(contact.c.person_id == stranger)
        )
        assert none is None  # a change does not make anyone a contact
