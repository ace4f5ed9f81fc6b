"""JSON API of the dictionaries app, under ``/api/dictionaries/``. Thin: parse, call, answer.

Refusals become RFC 9457 problem details: a value refused by its field answers 422 with
``errors: [{"field": "values.<code>", "message": …}]``; a structure change that would
break entries answers 409 with the number of entries at fault.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Annotated, Any

import msgspec
from litestar import Request, Response, Router, delete, get, patch, post, put
from litestar.datastructures import UploadFile
from litestar.enums import RequestEncodingType
from litestar.params import Body, FromPath, FromQuery, JSONBody, QueryParameter
from litestar.response import Stream

from kabinet.access import permission
from kabinet.host import Host
from kabinet.inputs import Id, fits
from kabinet.pages import principal_of, shell_of
from kabinet.paging import PageNo, Paging, PerPage
from kabinet.problems import VALIDATION_TYPE, problem
from kabinet_dictionaries import models
from kabinet_dictionaries.documents import Document, DocumentMeta, StoredUpload, meta_from
from kabinet_dictionaries.entries import Entry, EntryPage, Version
from kabinet_dictionaries.errors import DictionaryError, Invalid
from kabinet_dictionaries.kinds import FieldDef
from kabinet_dictionaries.queries import MAX_PER_PAGE, Query, filter_params
from kabinet_dictionaries.services import (
    DICTIONARIES,
    DOCS_MANAGE,
    DOCS_VIEW,
    EDIT,
    MANAGE,
    VIEW,
    Actor,
    Dictionaries,
    Settings,
    TypeInfo,
)
from kabinet_dictionaries.transfer import Format, ImportReport

Req = Request[Any, Any, Any]
READ = permission(VIEW)
WRITE = permission(EDIT, scope="global")
ADMIN = permission(MANAGE, scope="global")
DOCS = permission(DOCS_VIEW)
DOCS_ADMIN = permission(DOCS_MANAGE, scope="global")
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
MULTIPART = Body(media_type=RequestEncodingType.MULTI_PART)


_type = models.dictionary_type.c
Code = Annotated[str, fits(_type.code)]
TypeName = Annotated[str, fits(_type.name_ru)]
ShortText = Annotated[str, msgspec.Meta(max_length=32)]
"""A date or a number as a form sends it."""
RoleCode = Annotated[str, msgspec.Meta(max_length=64)]
"""A role's code (the roles table's ``code`` column)."""


class TypeIn(msgspec.Struct, kw_only=True):
    code: Code
    name_ru: TypeName
    name_en: TypeName
    fields: list[FieldDef] = msgspec.field(default_factory=list)
    editor_roles: list[RoleCode] = msgspec.field(default_factory=list)


class TypeChange(msgspec.Struct, kw_only=True):
    name_ru: TypeName
    name_en: TypeName
    editor_roles: list[RoleCode] = msgspec.field(default_factory=list)


class Publication(msgspec.Struct, kw_only=True):
    publish: Annotated[str, fits(_type.publish)]
    """``none`` (staff only), ``all`` organizations, or ``some`` (those listed)."""
    organizations: list[Id] = msgspec.field(default_factory=list)


@dataclass
class FileUpload:
    """A multipart upload: the file (its kind is checked by content, not by name)."""

    file: UploadFile


@dataclass
class TableUpload:
    """A table to import (multipart field ``data``; without it the request is a 400)."""

    data: UploadFile


@dataclass
class DocumentUpload:
    """A multipart upload of a new document: the file and its metadata (dates ISO)."""

    file: UploadFile
    title: Annotated[str, fits(models.document.c.title)]
    kind: Annotated[str, fits(models.document.c.kind)] = ""
    number: Annotated[str, fits(models.document.c.number)] = ""
    date: ShortText = ""
    organization_id: ShortText = ""
    """Empty: every client may see it."""
    valid_from: ShortText = ""
    valid_to: ShortText = ""


async def chunks(upload: UploadFile) -> AsyncIterator[bytes]:
    """The upload in pieces, so the service checks the size while it stores."""
    while chunk := await upload.read(64 * 1024):
        yield chunk


class EntryIn(msgspec.Struct, kw_only=True):
    values: dict[Annotated[str, fits(models.field.c.code)], Any]
    published: bool | None = None


def handle(request: Req, exc: DictionaryError) -> Response[Any]:
    """A refusal as problem details naming the field(s) at fault."""
    if isinstance(exc, Invalid):
        errors = [
            {"field": k if k.startswith("filters.") else f"values.{k}", "message": v}
            for k, v in exc.by_field("en").items()
        ]
        return problem(request, 422, detail=exc.english(), type_=VALIDATION_TYPE, errors=errors)
    named = [{"field": exc.field, "message": exc.english()}] if exc.field else None
    # What fits the OpenAPI document but the app's rules refuse is 422 (400 is for a
    # request that does not fit the document: Litestar's).
    status = 422 if exc.status == 400 else exc.status
    return problem(request, status, detail=exc.english(), errors=named)


Search = Annotated[str, QueryParameter(description="Entries whose values contain this text.")]
Sort = Annotated[
    str | None,
    QueryParameter(description="A field's code to sort by, ``-code`` for descending."),
]


def query_of(request: Req, q: str, sort: str | None, paging: Paging) -> Query:
    """``?q=…&sort=-price&page=2&f.route=Москва&f.price.ge=100&f.note.empty=``: the
    filters are ``f.<field>[.<op>]`` (the fields are the dictionary's own)."""
    filters = []
    for key, found in filter_params(request.query_params.multi_items()):
        if found is None:
            raise DictionaryError("unknown_field", key, code=key.rsplit(".", 1)[1])
        filters.append(found)
    return Query(
        filters=filters,
        sort=sort or None,
        search=q,
        page=paging.page,
        per_page=paging.per_page,
    )


def actor_of(request: Req) -> Actor:
    principal = principal_of(request.scope)
    return Actor(person_id=principal.person_id, name=principal.name)


def svc(request: Req) -> Dictionaries:
    return shell_of(request).host.services.of(DICTIONARIES)


# -- types ------------------------------------------------------------------------------


@get("/types", access=READ)
async def list_types(request: Req) -> list[TypeInfo]:
    """Dictionaries the caller may read."""
    return await svc(request).types(principal_of(request.scope))


@post("/types", access=ADMIN, status_code=201)
async def create_type(request: Req, data: JSONBody[TypeIn]) -> TypeInfo:
    return await svc(request).create_type(
        code=data.code,
        name_ru=data.name_ru,
        name_en=data.name_en,
        fields=data.fields,
        editor_roles=data.editor_roles,
    )


@get("/types/{code:str}", access=READ)
async def get_type(request: Req, code: FromPath[str]) -> TypeInfo:
    return await svc(request).get_type(code, principal_of(request.scope))


@patch("/types/{code:str}", access=ADMIN)
async def change_type(request: Req, code: FromPath[str], data: JSONBody[TypeChange]) -> TypeInfo:
    return await svc(request).update_type(
        code, name_ru=data.name_ru, name_en=data.name_en, editor_roles=data.editor_roles
    )


@delete("/types/{code:str}", access=ADMIN, status_code=204)
async def delete_type(request: Req, code: FromPath[str]) -> None:
    await svc(request).delete_type(code)


@put("/types/{code:str}/publication", access=ADMIN)
async def publish(request: Req, code: FromPath[str], data: JSONBody[Publication]) -> TypeInfo:
    return await svc(request).set_publication(code, data.publish, data.organizations)


@post("/types/{code:str}/fields", access=ADMIN, status_code=201)
async def add_field(request: Req, code: FromPath[str], data: JSONBody[FieldDef]) -> FieldDef:
    return await svc(request).add_field(code, data, actor=actor_of(request))


@put("/types/{code:str}/fields/{field:str}", access=ADMIN)
async def change_field(
    request: Req, code: FromPath[str], field: FromPath[str], data: JSONBody[FieldDef]
) -> FieldDef:
    return await svc(request).change_field(code, field, data, actor=actor_of(request))


@delete("/types/{code:str}/fields/{field:str}", access=ADMIN, status_code=204)
async def remove_field(request: Req, code: FromPath[str], field: FromPath[str]) -> None:
    await svc(request).remove_field(code, field, actor=actor_of(request))


# -- entries ----------------------------------------------------------------------------


@get("/types/{code:str}/entries", access=READ)
async def list_entries(
    request: Req,
    code: FromPath[str],
    q: Search = "",
    sort: Sort = None,
    page_no: PageNo = 1,
    per_page: PerPage = None,
) -> EntryPage:
    """Filter with ``f.<field>[.<op>]=value`` (ops: eq, ne, lt, le, gt, ge, contains,
    empty, filled), sort with ``sort=<field>`` or ``-<field>``, search with ``q``."""
    paging = Paging.of(request, page_no, per_page, size=50, most=MAX_PER_PAGE)
    return await svc(request).entries(
        code,
        query_of(request, q, sort, paging),
        principal=principal_of(request.scope),
        language="en",
    )


@post("/types/{code:str}/entries", access=WRITE, status_code=201)
async def create_entry(request: Req, code: FromPath[str], data: JSONBody[EntryIn]) -> Entry:
    await svc(request).editable(principal_of(request.scope), code)
    return await svc(request).create_entry(
        code,
        data.values,
        actor=actor_of(request),
        published=True if data.published is None else data.published,
        language="en",
    )


@get("/types/{code:str}/entries/{entry_id:int}", access=READ)
async def get_entry(request: Req, code: FromPath[str], entry_id: FromPath[int]) -> Entry:
    return await svc(request).entry(
        code, entry_id, principal=principal_of(request.scope), language="en"
    )


@patch("/types/{code:str}/entries/{entry_id:int}", access=WRITE)
async def change_entry(
    request: Req, code: FromPath[str], entry_id: FromPath[int], data: JSONBody[EntryIn]
) -> Entry:
    await svc(request).editable(principal_of(request.scope), code)
    return await svc(request).update_entry(
        code,
        entry_id,
        data.values,
        actor=actor_of(request),
        published=data.published,
        language="en",
    )


@delete("/types/{code:str}/entries/{entry_id:int}", access=WRITE, status_code=204)
async def delete_entry(request: Req, code: FromPath[str], entry_id: FromPath[int]) -> None:
    await svc(request).editable(principal_of(request.scope), code)
    await svc(request).delete_entry(code, entry_id)


@get("/types/{code:str}/entries/{entry_id:int}/history", access=READ)
async def history(request: Req, code: FromPath[str], entry_id: FromPath[int]) -> list[Version]:
    principal = principal_of(request.scope)
    found = await svc(request).get_type(code, principal)
    if not await svc(request).can_edit(principal, found):
        await svc(request).entry(code, entry_id, principal=principal)
    return await svc(request).history(code, entry_id, principal=principal)


@get("/types/{code:str}/export", access=WRITE, content_types=("text/csv", XLSX))
async def export(
    request: Req,
    code: FromPath[str],
    format: FromQuery[Format] = "csv",
    q: Search = "",
    sort: Sort = None,
) -> Response[bytes]:
    """All entries matching the filters, as ``format=csv`` or ``xlsx``."""
    await svc(request).editable(principal_of(request.scope), code)
    query = query_of(request, q, sort, Paging.of(None, 1, size=MAX_PER_PAGE))
    body = await svc(request).export_table(code, format, query, language="en")
    media = "text/csv; charset=utf-8" if format == "csv" else XLSX
    return Response(
        body,
        media_type=media,
        headers={"Content-Disposition": f'attachment; filename="{code}.{format}"'},
    )


@post("/types/{code:str}/import", access=WRITE)
async def import_(
    request: Req,
    code: FromPath[str],
    data: Annotated[TableUpload, MULTIPART],
) -> ImportReport:
    """A CSV or XLSX table (multipart field ``data``); good rows go in, bad ones are
    reported with their row number and each field's reason."""
    await svc(request).editable(principal_of(request.scope), code)
    content = await data.data.read()
    return await svc(request).import_table(code, content, actor=actor_of(request), language="en")


@post("/files", access=WRITE, status_code=201)
async def upload_file(request: Req, data: Annotated[FileUpload, MULTIPART]) -> StoredUpload:
    """Store a file for a file field (multipart field ``file``): its ``key`` is then
    the field's value in an entry's ``values``."""
    return await svc(request).upload_file(data.file.filename, chunks(data.file))


# -- documents -----------------------------------------------------------------------------


@post("/documents", access=DOCS_ADMIN, status_code=201)
async def create_document(request: Req, data: Annotated[DocumentUpload, MULTIPART]) -> Document:
    """A new document: multipart ``file`` and its metadata fields."""
    meta = meta_from(lambda name: str(getattr(data, name)))
    return await svc(request).create_document(
        meta,
        data.file.filename,
        chunks(data.file),
        actor=actor_of(request),
        principal=principal_of(request.scope),
    )


@patch("/documents/{doc_id:int}", access=DOCS_ADMIN)
async def change_document(
    request: Req, doc_id: FromPath[int], data: JSONBody[DocumentMeta]
) -> Document:
    return await svc(request).update_document(doc_id, data, principal=principal_of(request.scope))


@put("/documents/{doc_id:int}/file", access=DOCS_ADMIN)
async def replace_file(
    request: Req, doc_id: FromPath[int], data: Annotated[FileUpload, MULTIPART]
) -> Document:
    """A new version of the document's file; earlier versions stay downloadable."""
    return await svc(request).replace_document_file(
        doc_id,
        data.file.filename,
        chunks(data.file),
        actor=actor_of(request),
        principal=principal_of(request.scope),
    )


@delete("/documents/{doc_id:int}", access=DOCS_ADMIN, status_code=204)
async def delete_document(request: Req, doc_id: FromPath[int]) -> None:
    await svc(request).delete_document(doc_id, principal=principal_of(request.scope))


@get("/documents", access=DOCS)
async def list_documents(
    request: Req, kind: FromQuery[str] = "", q: FromQuery[str] = ""
) -> list[Document]:
    """Documents the caller may see (clients: their organizations' and those for all)."""
    return await svc(request).documents(principal=principal_of(request.scope), kind=kind, search=q)


@get("/documents/{doc_id:int}", access=DOCS)
async def get_document(request: Req, doc_id: FromPath[int]) -> Document:
    return await svc(request).document(doc_id, principal=principal_of(request.scope))


# The file in the type it was uploaded with (PDF, a scan, a spreadsheet, ...).
@get("/documents/{doc_id:int}/file", access=DOCS, content_types=("*/*",))
async def download(
    request: Req, doc_id: FromPath[int], version: FromQuery[int | None] = None
) -> Stream:
    return await svc(request).download(doc_id, version, principal=principal_of(request.scope))


def router(host: Host) -> Router:
    """``/api/dictionaries``: the handlers above; uploads may be as large as the settings
    allow (the file limit and room for the form: the service refuses a file over the
    limit with 413 naming the field), a table to import as large as its own limit."""
    settings = host.plugin_settings("dictionaries", Settings)
    max_import = settings.max_import_mb * 1024 * 1024 + 65536
    max_upload = settings.max_file_size_mb * 1024 * 1024 + 65536
    return Router(
        path="/api/dictionaries",
        route_handlers=[
            list_types,
            create_type,
            get_type,
            change_type,
            delete_type,
            publish,
            add_field,
            change_field,
            remove_field,
            list_entries,
            create_entry,
            get_entry,
            change_entry,
            delete_entry,
            history,
            export,
            Router(path="/", route_handlers=[import_], request_max_body_size=max_import),
            Router(
                path="/",
                route_handlers=[upload_file, create_document, replace_file],
                request_max_body_size=max_upload,
            ),
            list_documents,
            get_document,
            change_document,
            delete_document,
            download,
        ],
        exception_handlers={DictionaryError: handle},
        tags=["dictionaries"],
    )
