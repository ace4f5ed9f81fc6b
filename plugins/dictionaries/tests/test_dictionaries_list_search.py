"""Searches of the dictionaries' lists over the API (through kabinet.lists): an entry's
``q`` and ``contains`` filter and the documents' ``q`` take ``%`` and ``_`` literally and
find Russian text whatever its case, on either database."""

from __future__ import annotations

import httpx
import pytest
from dictionaries_support import code

from kabinet.testing import Portal
from kabinet_dictionaries.documents import DocumentMeta
from kabinet_dictionaries.kinds import FieldDef
from kabinet_dictionaries.services import Dictionaries

pytestmark = pytest.mark.smoke

PDF = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"
CITIES = ("Груз 100%", "Груз 1000", "Склад a_b", "Склад axb")


@pytest.fixture
async def admin(web: Portal) -> httpx.AsyncClient:
    return await web.signed_in(await web.person("admin"))


async def test_entry_searches_take_percent_and_underscore_literally(
    admin: httpx.AsyncClient, svc: Dictionaries
) -> None:
    client = admin
    name = code("search")
    await svc.create_type(
        code=name,
        name_ru="Города",
        name_en="Cities",
        fields=[FieldDef(code="city", name_ru="Город", name_en="City", kind="text")],
    )
    for city in CITIES:
        await svc.create_entry(name, {"city": city})

    async def cities(query: str) -> list[str]:
        found = await client.get(f"/api/dictionaries/types/{name}/entries?{query}")
        assert found.status_code == 200, found.text
        return sorted(e["values"]["city"] for e in found.json()["items"])

    assert await cities("q=100%25") == ["Груз 100%"]
    assert await cities("q=%25") == ["Груз 100%"]
    assert await cities("q=a_b") == ["Склад a_b"]
    assert await cities("q=ГРУЗ") == ["Груз 100%", "Груз 1000"]
    assert await cities("f.city.contains=100%25") == ["Груз 100%"]
    assert await cities("f.city.contains=_") == ["Склад a_b"]
    assert await cities("f.city.contains=СКЛАД") == ["Склад a_b", "Склад axb"]


async def test_document_search_takes_percent_literally(
    admin: httpx.AsyncClient, svc: Dictionaries
) -> None:
    client = admin
    tag = code("doc")
    for title in CITIES:
        await svc.create_document(DocumentMeta(title=f"{title} {tag}"), "a.pdf", PDF)

    async def titles(q: str) -> list[str]:
        found = await client.get("/api/dictionaries/documents", params={"q": q})
        assert found.status_code == 200, found.text
        return sorted(d["title"] for d in found.json() if tag in d["title"])

    assert await titles(f"100% {tag}") == [f"Груз 100% {tag}"]
    assert await titles(f"% {tag}") == [f"Груз 100% {tag}"]
    assert await titles(f"a_b {tag}") == [f"Склад a_b {tag}"]
    assert await titles("СКЛАД A") == [f"Склад a_b {tag}", f"Склад axb {tag}"]
