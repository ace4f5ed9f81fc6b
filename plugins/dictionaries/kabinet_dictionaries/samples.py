"""How the route matrix reaches the app's objects (the ``route_samples`` hook).

Each sample makes a dictionary published to the given organization only (with one
entry), or a document of that organization, so a person of another organization (and a
manager of other organizations, on the staff's writes too) must get 404 where a person of
this one gets the page.
"""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING

from kabinet.routematrix import RouteSample, SampleRequest
from kabinet_dictionaries.documents import DocumentMeta
from kabinet_dictionaries.kinds import FieldDef
from kabinet_dictionaries.services import DICTIONARIES, Dictionaries

if TYPE_CHECKING:
    from kabinet.host import Host

PDF = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"


def _svc(host: Host) -> Dictionaries:
    return host.services.of(DICTIONARIES)


async def _type(host: Host, organization: int) -> tuple[str, int]:
    code = f"sample_{uuid.uuid4().hex[:10]}"
    svc = _svc(host)
    await svc.create_type(
        code=code,
        name_ru="Образец",
        name_en="Sample",
        fields=[FieldDef(code="name", name_ru="Название", name_en="Name", kind="text")],
    )
    await svc.set_publication(code, "some", [organization])
    entry = await svc.create_entry(code, {"name": "Образец"})
    return code, entry.id


async def type_(host: Host, organization: int) -> SampleRequest:
    code, _ = await _type(host, organization)
    return SampleRequest(params={"code": code})


async def entry(host: Host, organization: int) -> SampleRequest:
    code, entry_id = await _type(host, organization)
    return SampleRequest(params={"code": code, "entry_id": entry_id})


async def entry_file(host: Host, organization: int) -> SampleRequest:
    code = f"sample_{uuid.uuid4().hex[:10]}"
    svc = _svc(host)
    await svc.create_type(
        code=code,
        name_ru="Образец",
        name_en="Sample",
        fields=[FieldDef(code="scan", name_ru="Скан", name_en="Scan", kind="file")],
    )
    await svc.set_publication(code, "some", [organization])
    upload = await svc.upload_file("scan.pdf", PDF)
    entry = await svc.create_entry(code, {"scan": upload.key})
    return SampleRequest(params={"code": code, "entry_id": entry.id, "field": "scan"})


async def document(host: Host, organization: int) -> SampleRequest:
    found = await _svc(host).create_document(
        DocumentMeta(title="Образец", organization_id=organization), "sample.pdf", PDF
    )
    return SampleRequest(params={"doc_id": found.id})


async def entry_change(host: Host, organization: int) -> SampleRequest:
    code, entry_id = await _type(host, organization)
    return SampleRequest(
        params={"code": code, "entry_id": entry_id}, json={"values": {"name": "Изменено"}}
    )


async def new_entry(host: Host, organization: int) -> SampleRequest:
    code, _ = await _type(host, organization)
    return SampleRequest(params={"code": code}, json={"values": {"name": "Новое"}})


async def entry_form(host: Host, organization: int) -> SampleRequest:
    code, entry_id = await _type(host, organization)
    return SampleRequest(params={"code": code, "entry_id": entry_id}, form={"name": "Изменено"})


async def document_change(host: Host, organization: int) -> SampleRequest:
    found = await document(host, organization)
    meta = {"title": "Изменено", "organization_id": organization}
    return SampleRequest(params=found.params, json=meta)


async def document_form(host: Host, organization: int) -> SampleRequest:
    found = await document(host, organization)
    return SampleRequest(
        params=found.params, form={"title": "Изменено", "organization_id": str(organization)}
    )


def samples() -> list[RouteSample]:
    return [
        RouteSample(path="/api/dictionaries/types/{code:str}", make=type_),
        RouteSample(path="/api/dictionaries/types/{code:str}/entries", make=type_),
        RouteSample(path="/api/dictionaries/types/{code:str}/entries/{entry_id:int}", make=entry),
        RouteSample(
            path="/api/dictionaries/types/{code:str}/entries/{entry_id:int}/history", make=entry
        ),
        RouteSample(path="/api/dictionaries/documents/{doc_id:int}", make=document),
        RouteSample(path="/api/dictionaries/documents/{doc_id:int}/file", make=document),
        RouteSample(path="/dictionaries/{code:str}", make=type_),
        RouteSample(path="/dictionaries/{code:str}/{entry_id:int}", make=entry),
        RouteSample(
            path="/dictionaries/{code:str}/{entry_id:int}/files/{field:str}", make=entry_file
        ),
        RouteSample(path="/dictionaries/documents/{doc_id:int}", make=document),
        RouteSample(path="/dictionaries/documents/{doc_id:int}/file", make=document),
        # staff's writes: a manager of other organizations must not reach these either
        RouteSample(
            path="/api/dictionaries/types/{code:str}/entries", make=new_entry, methods=("POST",)
        ),
        RouteSample(path="/api/dictionaries/types/{code:str}/export", make=type_),
        RouteSample(path="/dictionaries/{code:str}/export", make=type_),
        RouteSample(path="/dictionaries/{code:str}/new", make=type_),
        RouteSample(path="/dictionaries/{code:str}/import", make=type_),
        RouteSample(
            path="/api/dictionaries/types/{code:str}/entries/{entry_id:int}",
            make=entry_change,
            methods=("PATCH",),
        ),
        RouteSample(
            path="/api/dictionaries/types/{code:str}/entries/{entry_id:int}",
            make=entry,
            methods=("DELETE",),
        ),
        RouteSample(
            path="/dictionaries/{code:str}/{entry_id:int}", make=entry_form, methods=("POST",)
        ),
        RouteSample(
            path="/dictionaries/{code:str}/{entry_id:int}/delete", make=entry, methods=("POST",)
        ),
        RouteSample(
            path="/api/dictionaries/documents/{doc_id:int}",
            make=document_change,
            methods=("PATCH",),
        ),
        RouteSample(
            path="/api/dictionaries/documents/{doc_id:int}", make=document, methods=("DELETE",)
        ),
        RouteSample(
            path="/dictionaries/documents/{doc_id:int}", make=document_form, methods=("POST",)
        ),
        RouteSample(
            path="/dictionaries/documents/{doc_id:int}/delete", make=document, methods=("POST",)
        ),
    ]
