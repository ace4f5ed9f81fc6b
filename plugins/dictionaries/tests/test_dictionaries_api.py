"""The JSON API and the pages through the assembled app: problem details, access, the
route matrix over every route of this app, uploads checked by content."""

from __future__ import annotations

import pytest
from dictionaries_support import TARIFF_FIELDS, code

from kabinet.host import Host
from kabinet.routematrix import routes_of
from kabinet.testing import Portal
from kabinet_dictionaries.documents import DocumentMeta
from kabinet_dictionaries.kinds import FieldDef
from kabinet_dictionaries.services import Dictionaries

pytestmark = pytest.mark.smoke

PDF = b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"


async def test_every_route_of_the_app_keeps_its_access_rule(
    web: Portal,
) -> None:
    ours = [r for r in routes_of(web.app) if "/dictionaries" in r.path]
    assert len(ours) > 40
    assert all(r.path.startswith(("/dictionaries", "/api/dictionaries")) for r in ours)
    faults = await web.route_faults("/dictionaries") + await web.route_faults("/api/dictionaries")
    assert faults == [], "\n".join(faults)


async def test_api_creates_a_type_and_refuses_bad_values_by_field(
    web: Portal,
) -> None:
    client = await web.signed_in(await web.person("admin"))
    name = code("api")
    fields = [
        {
            "code": "route",
            "name_ru": "Маршрут",
            "name_en": "Route",
            "kind": "text",
            "required": True,
        },
        {"code": "price", "name_ru": "Цена", "name_en": "Price", "kind": "money"},
    ]
    created = await client.post(
        "/api/dictionaries/types",
        json={"code": name, "name_ru": "Тарифы", "name_en": "Tariffs", "fields": fields},
    )
    assert created.status_code == 201, created.text
    assert [f["code"] for f in created.json()["fields"]] == ["route", "price"]
    again = await client.post(
        "/api/dictionaries/types",
        json={"code": name, "name_ru": "Т", "name_en": "T"},
    )
    assert again.status_code == 422
    assert again.headers["content-type"].startswith("application/problem+json")
    assert again.json()["errors"] == [{"field": "code", "message": f"A dictionary {name} exists."}]
    bad = await client.post(
        f"/api/dictionaries/types/{name}/entries",
        json={"values": {"price": "1,234"}},
    )
    assert bad.status_code == 422
    assert bad.json()["errors"] == [
        {"field": "values.route", "message": "A value is required."},
        {"field": "values.price", "message": "At most 2 decimal places."},
    ]
    good = await client.post(
        f"/api/dictionaries/types/{name}/entries",
        json={"values": {"route": "Москва — Тверь", "price": "15000"}},
    )
    assert good.status_code == 201
    assert good.json()["values"] == {"route": "Москва — Тверь", "price": "15000.00"}
    listed = await client.get(
        f"/api/dictionaries/types/{name}/entries",
        params={"f.price.ge": "10000", "sort": "-price"},
    )
    assert listed.json()["total"] == 1
    wrong = await client.get(f"/api/dictionaries/types/{name}/entries", params={"f.nope": "1"})
    assert wrong.status_code == 422
    assert wrong.json()["errors"] == [
        {"field": "filters.0.nope", "message": "The dictionary has no field nope."}
    ]
    bad_op = await client.get(
        f"/api/dictionaries/types/{name}/entries", params={"f.price.about": "1"}
    )
    assert bad_op.status_code == 422
    assert [e["field"] for e in bad_op.json()["errors"]] == ["f.price.about"]
    # The entries page leaves out a filter it cannot show rather than refusing the page.
    page = await client.get(f"/dictionaries/{name}", params={"f.price.about": "1"})
    assert page.status_code == 200
    assert "Москва — Тверь" in page.text
    # Required with empty entries: 409 naming the count.
    required = await client.put(
        f"/api/dictionaries/types/{name}/fields/price",
        json={**fields[1], "required": True},
    )
    assert required.status_code == 200  # the one entry has a price
    await client.post(
        f"/api/dictionaries/types/{name}/fields",
        json={"code": "note", "name_ru": "Заметка", "name_en": "Note", "kind": "text"},
    )
    refused = await client.put(
        f"/api/dictionaries/types/{name}/fields/note",
        json={
            "code": "note",
            "name_ru": "Заметка",
            "name_en": "Note",
            "kind": "text",
            "required": True,
        },
    )
    assert refused.status_code == 409
    assert refused.json()["detail"] == (
        "1 entry has no value for Заметка: give it one or set a default."
    )
    schema = await web.client.get("/schema/openapi.json")
    if schema.status_code == 200:
        assert "/api/dictionaries/types/{code}/entries" in schema.json()["paths"]


async def test_page_form_comes_back_with_the_fields_error(web: Portal, svc: Dictionaries) -> None:
    client = await web.signed_in(await web.person("admin"))
    name = code("form")
    await svc.create_type(code=name, name_ru="Тарифы", name_en="Tariffs", fields=TARIFF_FIELDS)
    from kabinet.pages import CSRF_FIELD, CSRF_HEADER

    token = client.headers[CSRF_HEADER]
    sent = await client.post(
        f"/dictionaries/{name}/new",
        data={CSRF_FIELD: token, "v.route": "Москва — Тверь", "v.price": "дорого"},
    )
    assert sent.status_code == 422
    assert 'id="e-price"' in sent.text
    assert "Введите число." in sent.text
    assert 'value="Москва — Тверь"' in sent.text
    fixed = await client.post(
        f"/dictionaries/{name}/new",
        data={CSRF_FIELD: token, "v.route": "Москва — Тверь", "v.price": "15000"},
    )
    assert fixed.status_code == 303
    shown = await client.get(fixed.headers["location"])
    assert "15000.00" in shown.text
    assert "История изменений" in shown.text


async def test_uploads_are_checked_by_content_and_versions_kept(
    web: Portal, svc: Dictionaries
) -> None:
    client = await web.signed_in(await web.person("admin"))
    from kabinet.pages import CSRF_FIELD, CSRF_HEADER

    token = client.headers[CSRF_HEADER]
    fake = await client.post(
        "/dictionaries/documents/",
        data={CSRF_FIELD: token, "title": "Прайс"},
        files={"file": ("price.pdf", b"MZ\x90\x00 this is a program", "application/pdf")},
    )
    assert fake.status_code == 415
    assert "Файл этого вида не принимается" in fake.text
    big = await client.post(
        "/dictionaries/documents/",
        data={CSRF_FIELD: token, "title": "Прайс"},
        files={"file": ("price.pdf", PDF + b"0" * (1024 * 1024), "application/pdf")},
    )
    assert big.status_code == 413
    assert "Файл больше 1 МБ" in big.text
    ok = await client.post(
        "/dictionaries/documents/",
        data={CSRF_FIELD: token, "title": "Прайс", "organization_id": "777"},
        files={"file": ("прайс.pdf", PDF, "application/octet-stream")},
    )
    assert ok.status_code == 303, ok.text
    doc_id = int(ok.headers["location"].rsplit("/", 1)[-1])
    await svc.replace_document_file(doc_id, "прайс-2.pdf", PDF + b"%v2\n")
    found = await svc.document(doc_id)
    assert [v.filename for v in found.versions] == ["прайс-2.pdf", "прайс.pdf"]
    first = await client.get(f"/api/dictionaries/documents/{doc_id}/file?version=1")
    assert first.content == PDF
    assert first.headers["content-type"] == "application/pdf"
    latest = await client.get(f"/api/dictionaries/documents/{doc_id}/file")
    assert latest.content == PDF + b"%v2\n"


async def test_clients_see_their_organizations_documents_only(
    host: Host, svc: Dictionaries
) -> None:
    from kabinet.access import Principal

    mine = await svc.create_document(DocumentMeta(title="Наш", organization_id=601), "a.pdf", PDF)
    everyone = await svc.create_document(DocumentMeta(title="Всем"), "b.pdf", PDF)
    other = await svc.create_document(
        DocumentMeta(title="Чужой", organization_id=602), "c.pdf", PDF
    )
    identity, roles = host.services["identity"], host.services["roles"]
    account = await identity.create_account(full_name="К", email=f"{code('d')}@example.test")
    await roles.grant(int(account.id), "client", 601)
    client = Principal(person_id=int(account.id), name="К", kind="person")
    seen = {d.id for d in await svc.documents(principal=client)}
    assert {mine.id, everyone.id} <= seen
    assert other.id not in seen
    from kabinet_dictionaries.errors import NotFound

    with pytest.raises(NotFound):
        await svc.download(other.id, principal=client)


async def test_api_uploads_files_and_documents_with_the_pages_checks(
    web: Portal, svc: Dictionaries
) -> None:
    """Multipart uploads through the JSON API: a field's file, a document and a new version
    of it; refused by content and by size with problem details naming ``file``."""
    client = await web.signed_in(await web.person("admin"))
    before = len(await svc.documents())
    fake = await client.post(
        "/api/dictionaries/files",
        files={"file": ("price.pdf", b"MZ\x90\x00 this is a program", "application/pdf")},
    )
    assert fake.status_code == 415, fake.text
    assert fake.headers["content-type"].startswith("application/problem+json")
    assert [e["field"] for e in fake.json()["errors"]] == ["file"]
    big = await client.post(
        "/api/dictionaries/documents",
        data={"title": "Прайс"},
        files={"file": ("price.pdf", PDF + b"0" * (1024 * 1024), "application/pdf")},
    )
    assert big.status_code == 413, big.text
    assert [e["field"] for e in big.json()["errors"]] == ["file"]
    no_file = await client.post("/api/dictionaries/documents", data={"title": "X"})
    assert no_file.status_code == 400, no_file.text
    bad_date = await client.post(
        "/api/dictionaries/documents",
        data={"title": "Прайс", "valid_to": "31.12.2026"},
        files={"file": ("прайс.pdf", PDF, "application/octet-stream")},
    )
    assert bad_date.status_code == 422, bad_date.text
    assert [e["field"] for e in bad_date.json()["errors"]] == ["valid_to"]
    assert len(await svc.documents()) == before  # nothing stored by the refusals

    # A file for an entry's file field: uploaded, then its key is the field's value.
    name = code("files")
    await svc.create_type(
        code=name,
        name_ru="Инструкции",
        name_en="Instructions",
        fields=[
            TARIFF_FIELDS[0],
            FieldDef(code="scan", name_ru="Скан", name_en="Scan", kind="file"),
        ],
    )
    stored = await client.post(
        "/api/dictionaries/files",
        files={"file": ("скан.pdf", PDF, "application/octet-stream")},
    )
    assert stored.status_code == 201, stored.text
    upload = stored.json()
    assert (upload["filename"], upload["content_type"], upload["size"]) == (
        "скан.pdf",
        "application/pdf",
        len(PDF),
    )
    entry = await client.post(
        f"/api/dictionaries/types/{name}/entries",
        json={"values": {"route": "Москва — Казань", "scan": upload["key"]}},
    )
    assert entry.status_code == 201, entry.text
    assert entry.json()["display"]["scan"] == "скан.pdf"
    wrong = await client.post(
        f"/api/dictionaries/types/{name}/entries",
        json={"values": {"route": "Пермь", "scan": "dictionaries/files/none"}},
    )
    assert wrong.status_code == 422
    assert [e["field"] for e in wrong.json()["errors"]] == ["values.scan"]

    # A document, then a new version of its file; both versions stay downloadable.
    created = await client.post(
        "/api/dictionaries/documents",
        data={
            "title": "Прайс",
            "kind": "price",
            "organization_id": "777",
            "valid_to": "2030-01-01",
        },
        files={"file": ("прайс.pdf", PDF, "application/octet-stream")},
    )
    assert created.status_code == 201, created.text
    doc = created.json()
    assert (doc["title"], doc["organization_id"], doc["valid_to"], doc["version"]) == (
        "Прайс",
        777,
        "2030-01-01",
        1,
    )
    replaced = await client.put(
        f"/api/dictionaries/documents/{doc['id']}/file",
        files={"file": ("прайс-2.pdf", PDF + b"%v2\n", "application/pdf")},
    )
    assert replaced.status_code == 200, replaced.text
    assert [v["filename"] for v in replaced.json()["versions"]] == ["прайс-2.pdf", "прайс.pdf"]
    first = await client.get(f"/api/dictionaries/documents/{doc['id']}/file?version=1")
    assert first.content == PDF
    changed = await client.patch(
        f"/api/dictionaries/documents/{doc['id']}",
        json={"title": "Прайс 2026", "organization_id": None},
    )
    assert changed.status_code == 200, changed.text
    assert (changed.json()["title"], changed.json()["organization_id"]) == ("Прайс 2026", None)
    gone = await client.delete(f"/api/dictionaries/documents/{doc['id']}")
    assert gone.status_code == 204
    missing = await client.get(f"/api/dictionaries/documents/{doc['id']}")
    assert missing.status_code == 404
