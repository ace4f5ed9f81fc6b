"""Tenant isolation from outside, over HTTP on the assembled portal (issue 14, points 1, 3, 4).

- an API token limited to one organization reads nothing of its owner's other ones;
- a manager's staff rights on objects addressed to organizations (documents, dictionaries)
  apply only in the organizations assigned to them; an admin's everywhere;
- nobody gives themselves roles, and a token never carries more than its owner holds.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from kabinet.access import Principal
from kabinet.host import Host
from kabinet.identity.services import IDENTITY
from kabinet.pages import CSRF_COOKIE, CSRF_HEADER
from kabinet.roles.services import ROLES
from kabinet.routematrix import RouteMatrix
from kabinet.web import build_app
from kabinet_dictionaries.services import DICTIONARIES

pytestmark = pytest.mark.smoke

PDF = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"
CLIENT_CODES = [
    "shipments.orders.view",
    "shipments.invoices.view",
    "shipments.contracts.view",
    "companies.organizations.view",
    "dictionaries.documents.view",
    "dictionaries.entries.view",
]


class Portal:
    """The assembled portal served in this test's event loop, and ways to act on it."""

    def __init__(self, host: Host, client: httpx.AsyncClient, matrix: RouteMatrix) -> None:
        self.host = host
        self.client = client
        self.matrix = matrix

    async def person(self, name: str) -> int:
        return await self.matrix.person(name)

    async def token(self, person_id: int, codes: list[str], organizations: list[int]) -> str:
        identity = self.host.services.of(IDENTITY)
        me = Principal(person_id=person_id, kind="person")
        made = await identity.create_token(me, "ERP", codes, organizations)
        return str(made.token)

    async def as_token(self, method: str, path: str, token: str, **kwargs: Any) -> httpx.Response:
        self.client.cookies.clear()
        headers = {"Authorization": f"Bearer {token}"}
        return await self.client.request(method, path, headers=headers, **kwargs)

    async def status(
        self, method: str, path: str, *, token: str = "", person: int = 0, **kwargs: Any
    ) -> int:
        """The status code of a request with a token, or as a person."""
        if token:
            return (await self.as_token(method, path, token, **kwargs)).status_code
        return (await self.as_person(method, path, person, **kwargs)).status_code

    async def as_person(
        self, method: str, path: str, person_id: int, **kwargs: Any
    ) -> httpx.Response:
        """With a session, and the CSRF pair a browser sends on writes."""
        self.client.cookies.clear()
        session = await self.matrix.session(person_id)
        cookies = [session]
        headers = {}
        if method not in ("GET", "HEAD"):
            csrf = await self.matrix.csrf(session)
            cookies.append(f"{CSRF_COOKIE}={csrf}")
            headers[CSRF_HEADER] = csrf
        headers["Cookie"] = "; ".join(cookies)
        return await self.client.request(
            method, path, headers=headers, follow_redirects=False, **kwargs
        )

    async def order(self, organization: int) -> dict[str, Any]:
        from kabinet_shipments.samples import make_order

        return await make_order(self.host, organization)

    async def document(self, organization: int | None) -> int:
        from kabinet_dictionaries.documents import DocumentMeta

        svc = self.host.services.of(DICTIONARIES)
        meta = DocumentMeta(title=f"Документ {organization}", organization_id=organization)
        found = await svc.create_document(meta, "doc.pdf", PDF)
        return int(found.id)

    async def dictionary(self, organizations: list[int]) -> tuple[str, int]:
        import uuid

        from kabinet_dictionaries.kinds import FieldDef

        svc = self.host.services.of(DICTIONARIES)
        code = f"iso_{uuid.uuid4().hex[:10]}"
        field = FieldDef(code="name", name_ru="Название", name_en="Name", kind="text")
        await svc.create_type(code=code, name_ru="Тарифы", name_en="Rates", fields=[field])
        await svc.set_publication(code, "some", organizations)
        entry = await svc.create_entry(code, {"name": "Москва"})
        return code, int(entry.id)

    async def member(self, person_id: int, organization: int) -> None:
        from kabinet_companies.services import companies

        async with self.host.db.session() as s:
            await companies(self.host).add_member(s, person_id, organization)

    async def manager(self, *organizations: int) -> int:
        from kabinet_companies.services import companies

        person = await self.person("manager")
        await self.host.services.of(ROLES).grant(person, "manager")
        for org in organizations:
            await companies(self.host).ensure_organization(org)
            await companies(self.host).assign_manager(None, org, person)
        return person


@pytest.fixture
async def portal(database_url: str, tmp_path: Path) -> AsyncIterator[Portal]:
    settings = tmp_path / "settings.toml"
    settings.write_text('[host]\nvar_dir = "var"\nsecret_key = "isolation-secret"\n')
    host = await Host.create(settings, env={"KABINET__HOST__DATABASE_URL": database_url})
    app = await build_app(host)
    await host.startup()
    try:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1:8000") as c:
            yield Portal(host, c, RouteMatrix(host, app, c))
    finally:
        await host.shutdown()


async def test_a_token_limited_to_one_organization_reads_none_of_the_others(
    portal: Portal,
) -> None:
    roles = portal.host.services.of(ROLES)
    one, two = await portal.order(1), await portal.order(2)
    doc_one, doc_two = await portal.document(1), await portal.document(2)
    anna = await portal.person("anna")
    for org in (1, 2):
        await roles.grant(anna, "client", org)
        await portal.member(anna, org)
    token = await portal.token(anna, CLIENT_CODES, [2])

    me = (await portal.as_token("GET", "/api/identity/me", token)).json()
    assert me["organizations"] == [2]
    listed = await portal.as_token("GET", "/api/shipments/orders", token)
    assert listed.status_code == 200
    assert {o["id"] for o in listed.json()["items"]} == {two["order_id"]}
    assert listed.json()["counts"]["all"] == 1
    assert (
        await portal.status("GET", f"/api/shipments/orders/{one['order_id']}", token=token) == 404
    )
    assert (
        await portal.status("GET", f"/api/shipments/orders/{two['order_id']}", token=token) == 200
    )
    assert (
        await portal.status("GET", f"/api/shipments/invoices/{one['invoice_id']}", token=token)
        == 404
    )
    assert (
        await portal.status("GET", f"/api/shipments/contracts/{one['contract_id']}", token=token)
        == 404
    )
    invoices = (await portal.as_token("GET", "/api/shipments/invoices", token)).json()
    assert one["invoice_id"] not in {i["id"] for i in invoices["items"]}
    assert await portal.status("GET", "/api/companies/organizations/1", token=token) == 404
    assert await portal.status("GET", "/api/companies/organizations/2", token=token) == 200
    orgs = (await portal.as_token("GET", "/api/companies/organizations", token)).json()
    assert {o["id"] for o in orgs["items"]} == {2}
    debt = await portal.as_token("GET", "/api/shipments/debt", token)
    assert debt.status_code == 200
    contracts = {r["contract_id"] for r in debt.json()["contracts"]}
    assert one["contract_id"] not in contracts
    assert two["contract_id"] in contracts
    assert (
        await portal.status("GET", f"/api/dictionaries/documents/{doc_one}/file", token=token)
        == 404
    )
    assert await portal.status("GET", f"/api/dictionaries/documents/{doc_one}", token=token) == 404
    assert (
        await portal.status("GET", f"/api/dictionaries/documents/{doc_two}/file", token=token)
        == 200
    )
    docs = (await portal.as_token("GET", "/api/dictionaries/documents", token)).json()
    assert doc_one not in {d["id"] for d in docs}
    memberships = (await portal.as_token("GET", "/api/companies/memberships", token)).json()
    assert [m["organization_id"] for m in memberships] == [2]
    # nor does it act as the person beyond its permissions (a request to join a company)
    asked = await portal.as_token(
        "POST", "/api/companies/my/link-requests", token, json={"inn": "7707083893"}
    )
    assert asked.status_code == 403
    # the person herself, by session, still sees both organizations
    mine = await portal.as_person("GET", f"/api/shipments/orders/{one['order_id']}", anna)
    assert mine.status_code == 200


async def test_a_token_limited_to_one_permission_does_nothing_else(portal: Portal) -> None:
    roles = portal.host.services.of(ROLES)
    order = await portal.order(5)
    dima = await portal.person("dima")
    await roles.grant(dima, "client", 5)
    token = await portal.token(dima, ["shipments.orders.view"], [5])
    assert (
        await portal.status("GET", f"/api/shipments/orders/{order['order_id']}", token=token) == 200
    )
    assert await portal.status("GET", "/api/shipments/invoices", token=token) == 403
    assert await portal.status("GET", "/api/shipments/debt", token=token) == 403
    assert await portal.status("GET", "/api/companies/organizations/5", token=token) == 403


async def test_a_managers_rights_on_documents_and_dictionaries_stop_at_the_assigned_ones(
    portal: Portal,
) -> None:
    roles = portal.host.services.of(ROLES)
    kate = await portal.manager(3, 4)
    admin = await portal.person("admin")
    await roles.grant(admin, "admin")
    doc_one, doc_three, doc_all = (
        await portal.document(1),
        await portal.document(3),
        await portal.document(None),
    )
    code_one, entry_one = await portal.dictionary([1])
    code_three, entry_three = await portal.dictionary([3])

    async def kate_(method: str, path: str, **kwargs: Any) -> int:
        return (await portal.as_person(method, path, kate, **kwargs)).status_code

    # reading what is addressed to organization 1: as if it did not exist
    assert await kate_("GET", f"/api/dictionaries/documents/{doc_one}") == 404
    assert await kate_("GET", f"/api/dictionaries/documents/{doc_one}/file") == 404
    assert await kate_("GET", f"/dictionaries/documents/{doc_one}") == 404
    listed = (await portal.as_person("GET", "/api/dictionaries/documents", kate)).json()
    assert {d["id"] for d in listed} >= {doc_three, doc_all}
    assert doc_one not in {d["id"] for d in listed}
    assert await kate_("GET", f"/api/dictionaries/types/{code_one}") == 404
    assert await kate_("GET", f"/api/dictionaries/types/{code_one}/entries") == 404
    assert await kate_("GET", f"/api/dictionaries/types/{code_one}/entries/{entry_one}") == 404
    assert await kate_("GET", f"/dictionaries/{code_one}") == 404
    types = (await portal.as_person("GET", "/api/dictionaries/types", kate)).json()
    assert code_one not in {t["code"] for t in types}
    # ... and changing it
    change = {"title": "Чужой"}
    assert await kate_("PATCH", f"/api/dictionaries/documents/{doc_one}", json=change) == 404
    assert await kate_("DELETE", f"/api/dictionaries/documents/{doc_one}") == 404
    assert await kate_("POST", f"/dictionaries/documents/{doc_one}/delete") == 404
    assert (
        await kate_(
            "PATCH",
            f"/api/dictionaries/types/{code_one}/entries/{entry_one}",
            json={"values": {"name": "Казань"}},
        )
        == 404
    )
    assert await kate_("DELETE", f"/api/dictionaries/types/{code_one}/entries/{entry_one}") == 404
    upload = {"title": "Чужой", "organization_id": "1"}
    files = {"file": ("x.pdf", PDF, "application/pdf")}
    made = await portal.as_person(
        "POST", "/api/dictionaries/documents", kate, data=upload, files=files
    )
    assert made.status_code == 403, made.text
    assert made.json()["errors"][0]["field"] == "organization_id"
    svc = portal.host.services.of(DICTIONARIES)
    assert (await svc.document(doc_one)).title == "Документ 1"
    assert (await svc.entry(code_one, entry_one)).values["name"] == "Москва"
    # in her own organizations she does her job
    assert await kate_("GET", f"/api/dictionaries/documents/{doc_three}/file") == 200
    assert (
        await kate_(
            "PATCH",
            f"/api/dictionaries/types/{code_three}/entries/{entry_three}",
            json={"values": {"name": "Казань"}},
        )
        == 200
    )
    assert await kate_("DELETE", f"/api/dictionaries/documents/{doc_three}") == 204
    upload["organization_id"] = "4"
    files = {"file": ("x.pdf", PDF, "application/pdf")}
    made = await portal.as_person(
        "POST", "/api/dictionaries/documents", kate, data=upload, files=files
    )
    assert made.status_code == 201, made.text
    # an admin: everywhere
    assert await portal.status("GET", f"/api/dictionaries/documents/{doc_one}", person=admin) == 200
    assert await portal.status("GET", f"/api/dictionaries/types/{code_one}", person=admin) == 200
    assert (
        await portal.status("DELETE", f"/api/dictionaries/documents/{doc_one}", person=admin) == 204
    )


async def test_nobody_gives_themselves_a_role_and_a_token_follows_its_owner(
    portal: Portal,
) -> None:
    from kabinet_companies.services import companies

    roles = portal.host.services.of(ROLES)
    kate = await portal.manager(1)
    path = f"/api/companies/organizations/1/members/{kate}"
    refused = await portal.as_person("PUT", path, kate, json={"roles": ["client"]})
    assert refused.status_code == 403, refused.text
    assert refused.json()["detail"].startswith("person_id")
    assert [g.role.code for g in await roles.grants_of(kate)] == ["manager"]
    page = await portal.as_person(
        "POST", f"/companies/organizations/1/members/{kate}", kate, data={"roles": "client"}
    )
    assert page.status_code in (302, 303)
    assert [g.role.code for g in await roles.grants_of(kate)] == ["manager"]
    # nor by inviting her own address
    account = await portal.host.services.of(IDENTITY).get_account(kate)
    mine = {"email": account.email, "full_name": "Я", "role": "client"}
    invited = await portal.as_person(
        "POST", "/api/companies/organizations/1/invitations", kate, json=mine
    )
    assert invited.status_code == 403, invited.text
    assert invited.json()["detail"].startswith("email")

    # Someone else makes her a client there: she may then make a token, but only with what
    # she holds, and it stops working the moment she no longer holds it.
    admin = await portal.person("admin")
    await roles.grant(admin, "admin")
    given = await portal.as_person("PUT", path, admin, json={"roles": ["client"]})
    assert given.status_code == 200, given.text
    identity = portal.host.services.of(IDENTITY)
    from kabinet.identity.services import InvalidInput

    me = Principal(person_id=kate, kind="person")
    with pytest.raises(InvalidInput) as staff_wide:
        await identity.create_token(me, "ERP", ["companies.requests.decide"], [1])
    assert staff_wide.value.field == "permissions"
    with pytest.raises(InvalidInput):
        await identity.create_token(me, "ERP", ["companies.contacts.manage"], [2])
    token = await portal.token(kate, ["companies.contacts.manage"], [1])
    invite = {"email": "friend@example.test", "full_name": "Друг", "role": "client"}
    sent = await portal.as_token(
        "POST", "/api/companies/organizations/1/invitations", token, json=invite
    )
    assert sent.status_code == 201, sent.text
    await companies(portal.host).assign_manager(None, 1, kate, assign=False)
    invite["email"] = "other@example.test"
    sent = await portal.as_token(
        "POST", "/api/companies/organizations/1/invitations", token, json=invite
    )
    assert sent.status_code in (403, 404), sent.text
    # the profile offers only what she holds where she may make tokens
    profile = await portal.as_person("GET", "/identity/profile", kate)
    assert 'value="shipments.orders.view"' in profile.text
    assert 'value="companies.contacts.manage"' not in profile.text
    assert 'value="companies.requests.decide"' not in profile.text


async def test_staff_see_and_resend_undelivered_messages_of_their_organizations_only(
    portal: Portal,
) -> None:
    from sqlalchemy import insert, select

    from kabinet_notifications import models as nm

    roles = portal.host.services.of(ROLES)
    await roles.create_role(
        code="support",
        name_ru="Поддержка",
        name_en="Support",
        permissions=["notifications.resend"],
        assigned_only=True,
    )
    kate = await portal.manager(3)
    await roles.grant(kate, "support")
    now = portal.host.clock.now()
    ids = {}
    async with portal.host.db.session() as s:
        for org in (1, 3):
            ids[org] = await s.scalar(
                insert(nm.delivery)
                .values(
                    key=f"iso-{org}",
                    event="test.event",
                    organization_id=org,
                    channel="email",
                    address=f"org{org}@example.test",
                    body=f"Сообщение {org}",
                    status="failed",
                    created_at=now,
                    updated_at=now,
                )
                .returning(nm.delivery.c.id)
            )
    listed = await portal.as_person("GET", "/notifications/failed", kate)
    assert listed.status_code == 200
    assert f'name="id" value="{ids[3]}"' in listed.text
    assert f'name="id" value="{ids[1]}"' not in listed.text
    for form in ({"id": str(ids[1]), "scope": "chosen"}, {"scope": "all", "organization": "1"}):
        sent = await portal.as_person("POST", "/notifications/failed/resend", kate, data=form)
        assert sent.status_code in (302, 303)
    async with portal.host.db.session() as s:
        resent = (
            (
                await s.execute(
                    select(nm.delivery.c.resend_of).where(nm.delivery.c.resend_of.is_not(None))
                )
            )
            .scalars()
            .all()
        )
    assert ids[1] not in resent
    sent = await portal.as_person(
        "POST", "/notifications/failed/resend", kate, data={"id": str(ids[3]), "scope": "chosen"}
    )
    async with portal.host.db.session() as s:
        resent = (
            (
                await s.execute(
                    select(nm.delivery.c.resend_of).where(nm.delivery.c.resend_of.is_not(None))
                )
            )
            .scalars()
            .all()
        )
    assert ids[3] in resent
    admin = await portal.person("admin")
    await roles.grant(admin, "admin")
    everything = await portal.as_person("GET", "/notifications/failed", admin)
    assert f'name="id" value="{ids[1]}"' in everything.text


async def test_a_manager_cannot_accept_her_own_request_to_join(portal: Portal) -> None:
    from kabinet_companies.validation import make_inn
    from kabinet_shipments.samples import ensure_counterparty

    roles = portal.host.services.of(ROLES)
    await ensure_counterparty(portal.host, 1)
    kate = await portal.manager(1)
    asked = await portal.as_person(
        "POST", "/api/companies/my/link-requests", kate, json={"inn": make_inn(1)}
    )
    assert asked.status_code == 201, asked.text
    accepted = await portal.as_person(
        "POST", f"/api/companies/link-requests/{asked.json()['id']}/accept", kate, json={}
    )
    assert accepted.status_code == 403, accepted.text
    assert accepted.json()["detail"].startswith("person")
    page = await portal.as_person(
        "POST", f"/companies/requests/{asked.json()['id']}/decide", kate, data={}
    )
    assert page.status_code == 403
    assert "Никто не даёт права самому себе" in page.text
    assert [g.role.code for g in await roles.grants_of(kate)] == ["manager"]
