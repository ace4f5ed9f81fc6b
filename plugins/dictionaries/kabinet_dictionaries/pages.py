"""Pages of the dictionaries app, under ``/dictionaries/``.

Thin routes: read the form, call :class:`~kabinet_dictionaries.services.Dictionaries`,
redirect with a flash, or render the form again with each refused field's message next to
it. Entry lists filter, sort and page with plain links that htmx swaps in place.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from litestar import Controller, Request, Response, Router, get, post
from litestar.datastructures import UploadFile
from litestar.exceptions import HTTPException
from litestar.params import FromPath, FromQuery
from litestar.response import Stream
from litestar.status_codes import HTTP_303_SEE_OTHER

from kabinet.access import Principal, permission
from kabinet.host import Host
from kabinet.pages import flash, page, picker_source, principal_of, shell_of
from kabinet.problems import handle_http
from kabinet_dictionaries import kinds
from kabinet_dictionaries.documents import DocumentMeta
from kabinet_dictionaries.documents import meta_from as docs_meta_from
from kabinet_dictionaries.errors import DictionaryError, Invalid
from kabinet_dictionaries.kinds import Choice, FieldDef
from kabinet_dictionaries.queries import OPS, Filter, Query
from kabinet_dictionaries.services import (
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
from kabinet_dictionaries.texts import text_for
from kabinet_dictionaries.transfer import Format

Req = Request[Any, Any, Any]
READ = permission(VIEW)
WRITE = permission(EDIT, scope="global")
ADMIN = permission(MANAGE, scope="global")
DOCS = permission(DOCS_VIEW)
DOCS_ADMIN = permission(DOCS_MANAGE, scope="global")


def svc(request: Req) -> Dictionaries:
    found: Dictionaries = shell_of(request).host.services["dictionaries"]
    return found


def lang(request: Req) -> str:
    return shell_of(request).language(request)


def tz(request: Req) -> str:
    return shell_of(request).timezone(request)


def who(request: Req) -> Principal:
    return principal_of(request.scope)


def actor(request: Req) -> Actor:
    p = who(request)
    return Actor(person_id=p.person_id, name=p.name)


def redirect(location: str) -> Response[str]:
    return Response("", status_code=HTTP_303_SEE_OTHER, headers={"Location": location})


async def form(request: Req) -> tuple[dict[str, list[str]], dict[str, UploadFile]]:
    data = await request.form()
    values: dict[str, list[str]] = defaultdict(list)
    files: dict[str, UploadFile] = {}
    for key, value in data.multi_items():
        if isinstance(value, str):
            values[key].append(value)
        elif isinstance(value, UploadFile) and value.filename:
            files[key] = value
    return values, files


def one(data: dict[str, list[str]], key: str) -> str:
    return (data.get(key) or [""])[0]


def error_of(request: Req, exc: DictionaryError) -> dict[str, str]:
    return {"field": exc.field or "", "message": exc.message(lang(request))}


async def organization_names(request: Req, ids: Any) -> dict[int, str]:
    """Organizations' names by id, from the app that owns them (none: no names)."""
    host = shell_of(request).host
    wanted = sorted({int(i) for i in ids if isinstance(i, int) or str(i).isdigit()})
    names: dict[int, str] = {}
    if wanted and wanted[-1] <= 2**31 - 1:
        for found in await host.plugins.acall("organization_names", host=host, ids=wanted):
            names.update(found.value)
    return names


def page_error(request: Req, exc: DictionaryError) -> Response[Any]:
    """A refusal no form can show (a missing dictionary): the shell's error page."""
    return handle_http(request, HTTPException(status_code=exc.status, detail=exc.message("en")))


async def chunks(upload: UploadFile) -> Any:
    while chunk := await upload.read(64 * 1024):
        yield chunk


# -- types -------------------------------------------------------------------------------------


def field_from(data: dict[str, list[str]], prefix: str = "") -> FieldDef:
    """A field definition from the editor's form (choices one per line: ``code=Название``)."""
    choices = []
    for line in one(data, f"{prefix}choices").splitlines():
        code, _, label = line.strip().partition("=")
        if code.strip():
            ru, _, en = label.partition("|")
            choices.append(
                Choice(code=code.strip(), ru=(ru or code).strip(), en=(en or ru or code).strip())
            )
    precision = one(data, f"{prefix}precision").strip()
    kind = one(data, f"{prefix}kind") or "text"
    return FieldDef(
        code=one(data, f"{prefix}code").strip(),
        name_ru=one(data, f"{prefix}name_ru"),
        name_en=one(data, f"{prefix}name_en"),
        kind=kind,  # type: ignore[arg-type]
        required=bool(one(data, f"{prefix}required")),
        unique=bool(one(data, f"{prefix}unique")),
        default=one(data, f"{prefix}default") or None,
        choices=choices,
        precision=int(precision) if precision.isdigit() else None,
        reference=one(data, f"{prefix}reference") or None,
    )


def choices_text(field: FieldDef) -> str:
    return "\n".join(f"{c.code}={c.ru}|{c.en}" for c in field.choices)


class TypePages(Controller):
    """The list of dictionaries and the structure editor (admins)."""

    path = "/"
    include_in_schema = False

    @get("/", access=READ)
    async def index(self, request: Req) -> Response[str]:
        return await self._index(request)

    async def _index(
        self,
        request: Req,
        *,
        status: int = 200,
        error: dict[str, str] | None = None,
        values: dict[str, str] | None = None,
    ) -> Response[str]:
        principal = who(request)
        return await page(
            request,
            "dictionaries/index.html",
            status_code=status,
            t=text_for(lang(request)),
            types=await svc(request).types(principal),
            can_manage=await svc(request).can_manage(principal),
            error=error,
            values=values or {},
        )

    @post("/", access=ADMIN)
    async def create(self, request: Req) -> Response[str]:
        data, _ = await form(request)
        values = {k: one(data, k).strip() for k in ("code", "name_ru", "name_en")}
        try:
            await svc(request).create_type(
                code=values["code"], name_ru=values["name_ru"], name_en=values["name_en"]
            )
        except DictionaryError as exc:
            return await self._index(
                request, status=exc.status, error=error_of(request, exc), values=values
            )
        flash(request, text_for(lang(request))["created"], "success")
        return redirect(f"/dictionaries/{values['code']}/structure")

    async def _structure(
        self,
        request: Req,
        code: str,
        *,
        status: int = 200,
        error: dict[str, str] | None = None,
        form_of: str = "",
    ) -> Response[str]:
        found = await svc(request).get_type(code)
        roles = await shell_of(request).host.services["roles"].roles()
        names = await organization_names(request, found.organizations)
        return await page(
            request,
            "dictionaries/structure.html",
            status_code=status,
            t=text_for(lang(request)),
            type=found,
            entries=await svc(request).count_entries(code),
            kinds=[
                (k, kinds.KIND_LABELS[k][0 if lang(request) == "ru" else 1]) for k in kinds.KINDS
            ],
            types=await svc(request).types(),
            roles=roles,
            choices_text=choices_text,
            error=error,
            form_of=form_of,
            picker=picker_source(request, "organizations"),
            published_to=[(o, names.get(o, f"#{o}")) for o in found.organizations],
        )

    @get("/{code:str}/structure", access=ADMIN)
    async def structure(self, request: Req, code: FromPath[str]) -> Response[str]:
        return await self._structure(request, code)

    @post("/{code:str}/structure", access=ADMIN)
    async def rename(self, request: Req, code: FromPath[str]) -> Response[str]:
        data, _ = await form(request)
        try:
            await svc(request).update_type(
                code,
                name_ru=one(data, "name_ru"),
                name_en=one(data, "name_en"),
                editor_roles=data.get("editor_roles", []),
            )
        except DictionaryError as exc:
            return await self._structure(
                request, code, status=exc.status, error=error_of(request, exc), form_of="type"
            )
        flash(request, text_for(lang(request))["saved"], "success")
        return redirect(f"/dictionaries/{code}/structure")

    @post("/{code:str}/publication", access=ADMIN)
    async def publication(self, request: Req, code: FromPath[str]) -> Response[str]:
        data, _ = await form(request)
        # The picker posts one field per organization; the number field of old (no
        # script) one field of numbers separated by spaces or commas.
        raw = " ".join(data.get("organizations", [])).replace(",", " ").split()
        try:
            if any(not o.isdigit() for o in raw):
                raise DictionaryError("organization", "organizations")
            await svc(request).set_publication(code, one(data, "publish"), [int(o) for o in raw])
        except DictionaryError as exc:
            return await self._structure(
                request, code, status=exc.status, error=error_of(request, exc), form_of="publish"
            )
        flash(request, text_for(lang(request))["saved"], "success")
        return redirect(f"/dictionaries/{code}/structure")

    @post("/{code:str}/fields", access=ADMIN)
    async def add_field(self, request: Req, code: FromPath[str]) -> Response[str]:
        data, _ = await form(request)
        try:
            await svc(request).add_field(code, field_from(data), actor=actor(request))
        except DictionaryError as exc:
            return await self._structure(
                request, code, status=exc.status, error=error_of(request, exc), form_of="new"
            )
        flash(request, text_for(lang(request))["saved"], "success")
        return redirect(f"/dictionaries/{code}/structure")

    @post("/{code:str}/fields/{field:str}", access=ADMIN)
    async def change_field(
        self, request: Req, code: FromPath[str], field: FromPath[str]
    ) -> Response[str]:
        data, _ = await form(request)
        try:
            await svc(request).change_field(code, field, field_from(data), actor=actor(request))
        except DictionaryError as exc:
            if exc.status == 404:
                raise
            return await self._structure(
                request, code, status=exc.status, error=error_of(request, exc), form_of=field
            )
        flash(request, text_for(lang(request))["saved"], "success")
        return redirect(f"/dictionaries/{code}/structure")

    @post("/{code:str}/fields/{field:str}/remove", access=ADMIN)
    async def remove_field(
        self, request: Req, code: FromPath[str], field: FromPath[str]
    ) -> Response[str]:
        await svc(request).remove_field(code, field, actor=actor(request))
        flash(request, text_for(lang(request))["removed"], "success")
        return redirect(f"/dictionaries/{code}/structure")

    @post("/{code:str}/fields/{field:str}/move", access=ADMIN)
    async def move_field(
        self, request: Req, code: FromPath[str], field: FromPath[str]
    ) -> Response[str]:
        data, _ = await form(request)
        await svc(request).move_field(code, field, -1 if one(data, "to") == "up" else 1)
        return redirect(f"/dictionaries/{code}/structure")

    @post("/{code:str}/delete", access=ADMIN)
    async def delete(self, request: Req, code: FromPath[str]) -> Response[str]:
        try:
            await svc(request).delete_type(code)
        except DictionaryError as exc:
            if exc.status == 404:
                raise
            return await self._structure(
                request, code, status=exc.status, error=error_of(request, exc), form_of="type"
            )
        flash(request, text_for(lang(request))["deleted"], "success")
        return redirect("/dictionaries/")


# -- entries ---------------------------------------------------------------------------------


def query_from(request: Req, found: TypeInfo, per_page: int) -> tuple[Query, dict[str, str]]:
    """Filters from ``f.<field>[.<op>]`` parameters, also returned to refill the form."""
    params = request.query_params
    filters, shown = [], {}
    for key, value in params.multi_items():
        if not key.startswith("f.") or not value.strip():
            continue
        code, _, op = key[2:].partition(".")
        if found.field(code) is None or (op and op not in OPS):
            continue
        filters.append(Filter(field=code, op=op or "eq", value=value))  # type: ignore[arg-type]
        shown[key] = value
    number = params.get("page") or "1"
    return (
        Query(
            filters=filters,
            sort=params.get("sort") or None,
            search=params.get("q") or "",
            page=int(number) if number.isdigit() and int(number) > 0 else 1,
            per_page=per_page,
        ),
        shown,
    )


def raw_values(found: TypeInfo, data: dict[str, list[str]]) -> dict[str, Any]:
    """The entry form's fields (a checkbox absent means "no"; files come separately)."""
    raw: dict[str, Any] = {}
    for field in found.fields:
        name = f"v.{field.code}"
        if field.kind == "bool":
            raw[field.code] = bool(one(data, name))
        elif field.kind == "file":
            if one(data, f"{name}.keep"):
                continue
            raw[field.code] = None
        elif field.kind == "datetime":
            raw[field.code] = one(data, name).replace("T", " ")
        else:
            raw[field.code] = one(data, name)
    return raw


class EntryPages(Controller):
    """Entries of one dictionary: list, form, history, import, export."""

    path = "/"
    include_in_schema = False

    @get("/{code:str}", access=READ)
    async def entries(self, request: Req, code: FromPath[str]) -> Response[str]:
        principal = who(request)
        found = await svc(request).get_type(code, principal)
        settings: Settings = svc(request).settings
        query, shown = query_from(request, found, settings.page_size)
        error = None
        try:
            result = await svc(request).entries(
                code, query, principal=principal, language=lang(request), timezone=tz(request)
            )
        except Invalid as exc:
            error = exc.message(lang(request))
            result = await svc(request).entries(
                code,
                Query(per_page=settings.page_size),
                principal=principal,
                language=lang(request),
                timezone=tz(request),
            )
        htmx = request.headers.get("hx-request") == "true"
        return await page(
            request,
            "dictionaries/_table.html" if htmx else "dictionaries/entries.html",
            t=text_for(lang(request)),
            type=found,
            result=result,
            query=query,
            shown=shown,
            error=error,
            can_edit=await svc(request).can_edit(principal, found),
            can_manage=await svc(request).can_manage(principal),
            pages=max(1, -(-result.total // query.per_page)),
        )

    async def _form(
        self,
        request: Req,
        found: TypeInfo,
        *,
        entry_id: int | None = None,
        values: dict[str, Any] | None = None,
        errors: dict[str, str] | None = None,
        published: bool = True,
        status: int = 200,
    ) -> Response[str]:
        history = []
        files: dict[str, str] = {}
        if entry_id is not None:
            current = await svc(request).entry(
                found.code, entry_id, language=lang(request), timezone=tz(request)
            )
            history = await svc(request).history(found.code, entry_id)
            files = {f.code: current.display[f.code] for f in found.fields if f.kind == "file"}
            if values is None:
                values = dict(current.values)
                published = current.published
        refs = {}
        for field in found.fields:
            if field.kind == "reference" and field.reference:
                refs[field.code] = await svc(request).choices(
                    field.reference, language=lang(request)
                )
        return await page(
            request,
            "dictionaries/entry.html",
            status_code=status,
            t=text_for(lang(request)),
            type=found,
            entry_id=entry_id,
            values=values or {},
            errors=errors or {},
            published=published,
            history=history,
            refs=refs,
            files=files,
            editable=True,
        )

    @get("/{code:str}/new", access=WRITE)
    async def new(self, request: Req, code: FromPath[str]) -> Response[str]:
        found = await svc(request).editable(who(request), code)
        defaults = {f.code: f.default for f in found.fields if f.default}
        return await self._form(request, found, values=defaults)

    async def _save(self, request: Req, code: str, entry_id: int | None) -> Response[str]:
        found = await svc(request).editable(who(request), code)
        data, uploads = await form(request)
        raw = raw_values(found, data)
        errors: dict[str, str] = {}
        for field in found.fields:
            upload = uploads.get(f"v.{field.code}")
            if field.kind == "file" and upload is not None:
                try:
                    stored = await svc(request).upload_file(upload.filename, chunks(upload))
                    raw[field.code] = stored.key
                except DictionaryError as exc:
                    errors[field.code] = exc.message(lang(request))
        published = bool(one(data, "published"))
        try:
            if errors:
                raise Invalid({})
            if entry_id is None:
                saved = await svc(request).create_entry(
                    code, raw, actor=actor(request), published=published, timezone=tz(request)
                )
            else:
                saved = await svc(request).update_entry(
                    code,
                    entry_id,
                    raw,
                    actor=actor(request),
                    published=published,
                    timezone=tz(request),
                )
        except Invalid as exc:
            errors.update(exc.by_field(lang(request)))
            shown = dict(raw)
            return await self._form(
                request,
                found,
                entry_id=entry_id,
                values=shown,
                errors=errors,
                published=published,
                status=422,
            )
        flash(request, text_for(lang(request))["saved"], "success")
        return redirect(f"/dictionaries/{code}/{saved.id}")

    @post("/{code:str}/new", access=WRITE)
    async def create(self, request: Req, code: FromPath[str]) -> Response[str]:
        return await self._save(request, code, None)

    @get("/{code:str}/{entry_id:int}", access=READ)
    async def entry(
        self, request: Req, code: FromPath[str], entry_id: FromPath[int]
    ) -> Response[str]:
        principal = who(request)
        found = await svc(request).get_type(code, principal)
        if await svc(request).can_edit(principal, found):
            return await self._form(request, found, entry_id=entry_id)
        item = await svc(request).entry(
            code, entry_id, principal=principal, language=lang(request), timezone=tz(request)
        )
        return await page(
            request,
            "dictionaries/entry_view.html",
            t=text_for(lang(request)),
            type=found,
            item=item,
        )

    @post("/{code:str}/{entry_id:int}", access=WRITE)
    async def save(
        self, request: Req, code: FromPath[str], entry_id: FromPath[int]
    ) -> Response[str]:
        return await self._save(request, code, entry_id)

    @post("/{code:str}/{entry_id:int}/delete", access=WRITE)
    async def delete(
        self, request: Req, code: FromPath[str], entry_id: FromPath[int]
    ) -> Response[str]:
        await svc(request).editable(who(request), code)
        try:
            await svc(request).delete_entry(code, entry_id)
        except DictionaryError as exc:
            if exc.status == 404:
                raise
            flash(request, exc.message(lang(request)), "error")
            return redirect(f"/dictionaries/{code}/{entry_id}")
        flash(request, text_for(lang(request))["deleted"], "success")
        return redirect(f"/dictionaries/{code}")

    @get("/{code:str}/{entry_id:int}/files/{field:str}", access=READ)
    async def file(
        self, request: Req, code: FromPath[str], entry_id: FromPath[int], field: FromPath[str]
    ) -> Stream:
        return await svc(request).field_file(code, entry_id, field, who(request))

    @get("/{code:str}/import", access=WRITE)
    async def import_form(self, request: Req, code: FromPath[str]) -> Response[str]:
        found = await svc(request).editable(who(request), code)
        return await page(
            request,
            "dictionaries/import.html",
            t=text_for(lang(request)),
            type=found,
            report=None,
            error=None,
        )

    @post("/{code:str}/import", access=WRITE)
    async def import_(self, request: Req, code: FromPath[str]) -> Response[str]:
        found = await svc(request).editable(who(request), code)
        _data, uploads = await form(request)
        upload = uploads.get("file")
        t = text_for(lang(request))
        report, error, status = None, None, 200
        try:
            if upload is None:
                raise DictionaryError("import_format", "file")
            content = await upload.read(svc(request).settings.max_import_mb * 1024 * 1024 + 1)
            if len(content) > svc(request).settings.max_import_mb * 1024 * 1024:
                raise DictionaryError(
                    "file_size", "file", limit=svc(request).settings.max_import_mb
                )
            report = await svc(request).import_table(
                code, content, actor=actor(request), language=lang(request), timezone=tz(request)
            )
        except DictionaryError as exc:
            error, status = exc.message(lang(request)), exc.status
        return await page(
            request,
            "dictionaries/import.html",
            status_code=status,
            t=t,
            type=found,
            report=report,
            error=error,
        )

    @get("/{code:str}/export", access=WRITE)
    async def export(
        self, request: Req, code: FromPath[str], format: FromQuery[str] = "xlsx"
    ) -> Response[bytes]:
        found = await svc(request).editable(who(request), code)
        fmt: Format = "csv" if format == "csv" else "xlsx"
        query, _ = query_from(request, found, 500)
        body = await svc(request).export_table(
            code, fmt, query, language=lang(request), timezone=tz(request)
        )
        media = (
            "text/csv; charset=utf-8"
            if fmt == "csv"
            else "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
        )
        return Response(
            body,
            media_type=media,
            headers={"Content-Disposition": f'attachment; filename="{code}.{fmt}"'},
        )


# -- documents ----------------------------------------------------------------------------------


def meta_from(data: dict[str, list[str]]) -> DocumentMeta:
    return docs_meta_from(lambda name: one(data, name))


class DocumentPages(Controller):
    """The document library: clients see theirs, staff upload and replace."""

    path = "/documents"
    include_in_schema = False

    async def _library(
        self,
        request: Req,
        *,
        status: int = 200,
        error: dict[str, str] | None = None,
        values: dict[str, str] | None = None,
    ) -> Response[str]:
        principal = who(request)
        kind = request.query_params.get("kind") or ""
        q = request.query_params.get("q") or ""
        manage = await shell_of(request).host.access.can(principal, DOCS_MANAGE)
        documents = await svc(request).documents(principal=principal, kind=kind, search=q)
        values = values or {}
        return await page(
            request,
            "dictionaries/documents.html",
            status_code=status,
            t=text_for(lang(request)),
            documents=documents,
            picker=picker_source(request, "organizations"),
            organization_names=await organization_names(
                request,
                [d.organization_id for d in documents if manage] + [values.get("organization_id")],
            ),
            manage=manage,
            kind=kind,
            q=q,
            error=error,
            values=values,
            today=shell_of(request).host.clock.now().date(),
        )

    @get("/", access=DOCS)
    async def library(self, request: Req) -> Response[str]:
        return await self._library(request)

    @post("/", access=DOCS_ADMIN)
    async def upload(self, request: Req) -> Response[str]:
        data, uploads = await form(request)
        values = {
            k: one(data, k)
            for k in (
                "title",
                "kind",
                "number",
                "date",
                "organization_id",
                "valid_from",
                "valid_to",
            )
        }
        try:
            meta = meta_from(data)
            upload = uploads.get("file")
            if upload is None:
                raise DictionaryError("file", "file")
            created = await svc(request).create_document(
                meta, upload.filename, chunks(upload), actor=actor(request), principal=who(request)
            )
        except DictionaryError as exc:
            return await self._library(
                request, status=exc.status, error=error_of(request, exc), values=values
            )
        flash(request, text_for(lang(request))["uploaded"], "success")
        return redirect(f"/dictionaries/documents/{created.id}")

    async def _document(
        self,
        request: Req,
        doc_id: int,
        *,
        status: int = 200,
        error: dict[str, str] | None = None,
    ) -> Response[str]:
        principal = who(request)
        doc = await svc(request).document(doc_id, principal=principal)
        return await page(
            request,
            "dictionaries/document.html",
            status_code=status,
            t=text_for(lang(request)),
            doc=doc,
            manage=await svc(request).may_manage_document(principal, doc.organization_id),
            error=error,
            picker=picker_source(request, "organizations"),
            organization_names=await organization_names(request, [doc.organization_id]),
        )

    @get("/{doc_id:int}", access=DOCS)
    async def document(self, request: Req, doc_id: FromPath[int]) -> Response[str]:
        return await self._document(request, doc_id)

    @post("/{doc_id:int}", access=DOCS_ADMIN)
    async def change(self, request: Req, doc_id: FromPath[int]) -> Response[str]:
        data, _ = await form(request)
        try:
            await svc(request).update_document(doc_id, meta_from(data), principal=who(request))
        except DictionaryError as exc:
            if exc.status == 404:
                raise
            return await self._document(
                request, doc_id, status=exc.status, error=error_of(request, exc)
            )
        flash(request, text_for(lang(request))["saved"], "success")
        return redirect(f"/dictionaries/documents/{doc_id}")

    @post("/{doc_id:int}/replace", access=DOCS_ADMIN)
    async def replace(self, request: Req, doc_id: FromPath[int]) -> Response[str]:
        _data, uploads = await form(request)
        try:
            upload = uploads.get("file")
            if upload is None:
                raise DictionaryError("file", "file")
            await svc(request).replace_document_file(
                doc_id,
                upload.filename,
                chunks(upload),
                actor=actor(request),
                principal=who(request),
            )
        except DictionaryError as exc:
            if exc.status == 404:
                raise
            return await self._document(
                request, doc_id, status=exc.status, error=error_of(request, exc)
            )
        flash(request, text_for(lang(request))["uploaded"], "success")
        return redirect(f"/dictionaries/documents/{doc_id}")

    @post("/{doc_id:int}/delete", access=DOCS_ADMIN)
    async def delete(self, request: Req, doc_id: FromPath[int]) -> Response[str]:
        await svc(request).delete_document(doc_id, principal=who(request))
        flash(request, text_for(lang(request))["deleted"], "success")
        return redirect("/dictionaries/documents/")

    @get("/{doc_id:int}/file", access=DOCS)
    async def download(
        self, request: Req, doc_id: FromPath[int], version: FromQuery[int | None] = None
    ) -> Stream:
        return await svc(request).download(doc_id, version, principal=who(request))


def routers(host: Host) -> list[Any]:
    """The pages, with multipart bodies up to the file limit (Litestar's default is 10 MB)."""
    settings: Settings = host.plugin_settings("dictionaries")
    limit = (max(settings.max_file_size_mb, settings.max_import_mb) + 1) * 1024 * 1024
    return [
        Router(
            path="/dictionaries",
            route_handlers=[DocumentPages, TypePages, EntryPages],
            exception_handlers={DictionaryError: page_error},
            request_max_body_size=limit,
        )
    ]
