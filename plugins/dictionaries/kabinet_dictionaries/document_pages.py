"""The document library, under ``/dictionaries/documents/``: clients see theirs, staff
upload and replace."""

from __future__ import annotations

from typing import Any

from litestar import Response, get, post
from litestar.params import FromPath, FromQuery
from litestar.response import Stream

from kabinet.forms import FieldError, FormView, form_view, read_form
from kabinet.htmx import redirect
from kabinet.pages import page, picker_source, shell_of
from kabinet_dictionaries.errors import DictionaryError
from kabinet_dictionaries.forms import DocumentForm, Upload
from kabinet_dictionaries.pages import (
    DOCS,
    DOCS_ADMIN,
    Req,
    actor,
    chunks,
    organization_names,
    svc,
    texts,
    who,
)
from kabinet_dictionaries.services import DOCS_MANAGE


async def _library(
    request: Req, *, status: int = 200, form: FormView | None = None
) -> Response[Any]:
    principal = who(request)
    kind = request.query_params.get("kind") or ""
    q = request.query_params.get("q") or ""
    manage = await shell_of(request).host.access.can(principal, DOCS_MANAGE)
    documents = await svc(request).documents(principal=principal, kind=kind, search=q)
    chosen = form.value("organization_id") if form is not None else None
    return await page(
        request,
        "dictionaries/documents.html",
        status_code=status,
        t=texts(request),
        documents=documents,
        picker=picker_source(request, "organizations"),
        organization_names=await organization_names(
            request, [d.organization_id for d in documents if manage] + [chosen]
        ),
        manage=manage,
        kind=kind,
        q=q,
        form=form,
        today=shell_of(request).host.clock.now().date(),
    )


@get("/documents", access=DOCS)
async def library(request: Req) -> Response[Any]:
    return await _library(request)


@post("/documents", access=DOCS_ADMIN)
async def upload(request: Req) -> Response[Any]:
    try:
        data = await read_form(request, DocumentForm)
        meta = data.meta()
        if data.file is None:
            raise DictionaryError("file", "file")
        created = await svc(request).create_document(
            meta,
            data.file.filename,
            chunks(data.file),
            actor=actor(request),
            principal=who(request),
        )
    except FieldError as exc:
        return await _library(request, status=exc.status, form=await form_view(request, exc))
    return redirect(
        request, f"/dictionaries/documents/{created.id}", flash=texts(request)["uploaded"]
    )


async def _document(
    request: Req, doc_id: int, *, status: int = 200, form: FormView | None = None
) -> Response[Any]:
    principal = who(request)
    doc = await svc(request).document(doc_id, principal=principal)
    return await page(
        request,
        "dictionaries/document.html",
        status_code=status,
        t=texts(request),
        doc=doc,
        manage=await svc(request).may_manage_document(principal, doc.organization_id),
        form=form,
        picker=picker_source(request, "organizations"),
        organization_names=await organization_names(request, [doc.organization_id]),
    )


async def _refused(request: Req, doc_id: int, exc: FieldError) -> Response[Any]:
    if exc.status == 404:
        raise exc
    return await _document(request, doc_id, status=exc.status, form=await form_view(request, exc))


@get("/documents/{doc_id:int}", access=DOCS)
async def document(request: Req, doc_id: FromPath[int]) -> Response[Any]:
    return await _document(request, doc_id)


@post("/documents/{doc_id:int}", access=DOCS_ADMIN)
async def change(request: Req, doc_id: FromPath[int]) -> Response[Any]:
    try:
        data = await read_form(request, DocumentForm)
        await svc(request).update_document(doc_id, data.meta(), principal=who(request))
    except FieldError as exc:
        return await _refused(request, doc_id, exc)
    return redirect(request, f"/dictionaries/documents/{doc_id}", flash=texts(request)["saved"])


@post("/documents/{doc_id:int}/replace", access=DOCS_ADMIN)
async def replace(request: Req, doc_id: FromPath[int]) -> Response[Any]:
    try:
        data = await read_form(request, Upload)
        if data.file is None:
            raise DictionaryError("file", "file")
        await svc(request).replace_document_file(
            doc_id,
            data.file.filename,
            chunks(data.file),
            actor=actor(request),
            principal=who(request),
        )
    except FieldError as exc:
        return await _refused(request, doc_id, exc)
    return redirect(request, f"/dictionaries/documents/{doc_id}", flash=texts(request)["uploaded"])


@post("/documents/{doc_id:int}/delete", access=DOCS_ADMIN)
async def delete_document(request: Req, doc_id: FromPath[int]) -> Response[Any]:
    await svc(request).delete_document(doc_id, principal=who(request))
    return redirect(request, "/dictionaries/documents/", flash=texts(request)["deleted"])


@get("/documents/{doc_id:int}/file", access=DOCS)
async def download(
    request: Req, doc_id: FromPath[int], version: FromQuery[int | None] = None
) -> Stream:
    return await svc(request).download(doc_id, version, principal=who(request))


HANDLERS = [library, upload, document, change, replace, delete_document, download]
