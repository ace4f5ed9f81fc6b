"""The companies' lists over the API (kabinet.lists): a search finds what was typed
literally (``%`` and ``_`` are no wildcards), Russian letters whatever their case, and a
``?sort=`` the list does not know is a 400 naming ``sort``."""

from __future__ import annotations

import uuid

import pytest

from kabinet.testing import Portal
from kabinet_companies.services import SYSTEM, CompaniesService
from kabinet_companies.validation import make_inn

pytestmark = pytest.mark.smoke


async def test_searches_find_percent_and_underscore_literally(
    web: Portal, svc: CompaniesService
) -> None:
    tag = uuid.uuid4().hex[:8]
    literal = await svc.create_organization(f"Груз 100% {tag}")
    wild = await svc.create_organization(f"Груз 1000 {tag}")
    for n, org in enumerate((literal, wild)):
        await svc.create_counterparty(
            SYSTEM,
            name=f"{org.name} ООО",
            inn=make_inn(int(tag[:6], 16) * 2 + n),
            organization_id=org.id,
        )
    for name in (f"Контакт a_b {tag}", f"Контакт axb {tag}"):  # contacts: members
        await svc.set_roles(SYSTEM, (await web.person(name=name)).id, literal.id, ["client"])
    admin = await web.signed_in(await web.person("admin"))

    async def names(path: str, q: str, field: str = "name") -> list[str]:
        answer = await admin.get(path, params={"q": q})
        assert answer.status_code == 200, answer.text[:300]
        body = answer.json()
        assert body["total"] == len(body["items"])
        return sorted(item[field] for item in body["items"])

    orgs, cps = "/api/companies/organizations", "/api/companies/counterparties"
    assert await names(orgs, f"100% {tag}") == [f"Груз 100% {tag}"]
    assert await names(orgs, f"% {tag}") == [f"Груз 100% {tag}"]
    assert await names(orgs, f"ГРУЗ 100% {tag.upper()}") == [f"Груз 100% {tag}"]
    assert await names(orgs, tag) == [f"Груз 100% {tag}", f"Груз 1000 {tag}"]
    assert await names(cps, f"100% {tag}") == [f"Груз 100% {tag} ООО"]
    assert await names(cps, f"груз 100% {tag} ооо") == [f"Груз 100% {tag} ООО"]
    contacts = await names("/api/companies/contacts", f"a_b {tag}", "full_name")
    assert len(contacts) == 1
    assert contacts[0].startswith(f"Контакт a_b {tag}")
    upper = await names("/api/companies/contacts", f"КОНТАКТ AXB {tag.upper()}", "full_name")
    assert len(upper) == 1
    assert upper[0].startswith(f"Контакт axb {tag}")


async def test_an_unknown_sort_is_a_400_naming_sort(web: Portal) -> None:
    admin = await web.signed_in(await web.person("admin"))
    for path in ("/api/companies/organizations", "/api/companies/contacts"):
        answer = await admin.get(path, params={"sort": "password"})
        assert answer.status_code == 400, path
        assert answer.headers["content-type"].startswith("application/problem+json")
        assert answer.json()["errors"][0]["field"] == "sort"
        assert "password" in answer.json()["errors"][0]["message"]
        fine = await admin.get(path, params={"sort": "-created"})
        assert fine.status_code == 200, path


async def test_the_openapi_document_names_the_sorts(web: Portal) -> None:
    admin = await web.signed_in(await web.person("admin"))
    answer = await admin.get("/api/schema/openapi.json")
    assert answer.status_code == 200, answer.text[:300]
    schema = answer.json()
    for path, known in (
        ("/api/companies/organizations", ["name", "-name", "created", "-created"]),
        ("/api/companies/contacts", ["name", "-name", "email", "created", "-created"]),
        ("/api/companies/link-requests", ["created", "-created", "status", "person", "decided"]),
    ):
        params = {p["name"]: p for p in schema["paths"][path]["get"]["parameters"]}
        assert params["sort"]["schema"]["enum"] == known, path
