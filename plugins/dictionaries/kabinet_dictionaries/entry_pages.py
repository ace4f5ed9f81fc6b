"""Entries of one dictionary: the list (filters, sort, pages), the form, history, import
and export, under ``/dictionaries/<code>``."""

from __future__ import annotations

from typing import Any

from litestar import Response, get, post
from litestar.params import FromPath, FromQuery
from litestar.response import Stream

from kabinet.forms import FieldError, FormView, read_form
from kabinet.htmx import redirect
from kabinet.pages import page
from kabinet.paging import PageNo, Paging
from kabinet_dictionaries.errors import DictionaryError, Invalid
from kabinet_dictionaries.forms import Upload, entry_form, entry_values, uploads
from kabinet_dictionaries.pages import (
    READ,
    WRITE,
    Req,
    actor,
    chunks,
    lang,
    svc,
    texts,
    tz,
    who,
)
from kabinet_dictionaries.queries import Query, filter_params
from kabinet_dictionaries.services import TypeInfo
from kabinet_dictionaries.transfer import Format

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def query_from(request: Req, found: TypeInfo, paging: Paging) -> tuple[Query, dict[str, str]]:
    """Filters from ``f.<field>[.<op>]`` parameters, also returned to refill the form."""
    params = request.query_params
    filters, shown = [], {}
    for key, one in filter_params(params.multi_items()):
        if one is None or not str(one.value).strip() or found.field(one.field) is None:
            continue  # a filter the form cannot show is left out, not refused
        filters.append(one)
        shown[key] = one.value
    query = Query(
        filters=filters,
        sort=params.get("sort") or None,
        search=params.get("q") or "",
        page=paging.page,
        per_page=paging.per_page,
    )
    return query, shown


@get("/{code:str}", access=READ)
async def entries(request: Req, code: FromPath[str], page_no: PageNo = 1) -> Response[Any]:
    principal = who(request)
    found = await svc(request).get_type(code, principal)
    paging = Paging.of(request, page_no, size=svc(request).settings.page_size)
    query, shown = query_from(request, found, paging)
    error = None
    try:
        result = await svc(request).entries(
            code, query, principal=principal, language=lang(request), timezone=tz(request)
        )
    except Invalid as exc:
        error = exc.text(lang(request))
        paging = Paging.of(request, 1, size=paging.per_page)
        result = await svc(request).entries(
            code,
            Query(per_page=paging.per_page),
            principal=principal,
            language=lang(request),
            timezone=tz(request),
        )
    return await page(
        request,
        "dictionaries/entries.html",
        fragment="dictionaries/_table.html",
        t=texts(request),
        type=found,
        result=result,
        query=query,
        shown=shown,
        error=error,
        can_edit=await svc(request).can_edit(principal, found),
        can_manage=await svc(request).can_manage(principal),
        paging=paging.counted(result.total),
    )


async def _form(
    request: Req,
    found: TypeInfo,
    *,
    entry_id: int | None = None,
    form: FormView | None = None,
    published: bool = True,
    status: int = 200,
) -> Response[Any]:
    """The entry form: ``form`` holds the values by field code (those stored, the
    defaults, or those sent) and the refused fields' messages, by field code too."""
    history = []
    files: dict[str, str] = {}
    if entry_id is not None:
        current = await svc(request).entry(
            found.code, entry_id, language=lang(request), timezone=tz(request)
        )
        history = await svc(request).history(found.code, entry_id)
        files = {f.code: current.display[f.code] for f in found.fields if f.kind == "file"}
        if form is None:
            form = FormView(values=dict(current.values))
            published = current.published
    refs = {}
    for field in found.fields:
        if field.kind == "reference" and field.reference:
            refs[field.code] = await svc(request).choices(field.reference, language=lang(request))
    return await page(
        request,
        "dictionaries/entry.html",
        status_code=status,
        t=texts(request),
        type=found,
        entry_id=entry_id,
        form=form or FormView(),
        published=published,
        history=history,
        refs=refs,
        files=files,
        editable=True,
    )


@get("/{code:str}/new", access=WRITE)
async def new(request: Req, code: FromPath[str]) -> Response[Any]:
    found = await svc(request).editable(who(request), code)
    defaults = {f.code: f.default for f in found.fields if f.default}
    return await _form(request, found, form=FormView(values=defaults))


def _field_of(name: str | None) -> str:
    """The field code of an entry form key (``v.<code>``, ``v.<code>.keep``)."""
    key = (name or "").removeprefix("v.")
    return key.removesuffix(".keep")


async def _save(request: Req, code: str, entry_id: int | None) -> Response[Any]:
    found = await svc(request).editable(who(request), code)
    language = lang(request)
    raw: dict[str, Any] = {}
    published = True
    errors: dict[str, str] = {}
    try:
        data = await read_form(request, entry_form(found))
        raw, published = entry_values(found, data)
        for field_code, upload in uploads(found, data).items():
            try:
                stored = await svc(request).upload_file(upload.filename, chunks(upload))
                raw[field_code] = stored.key
            except DictionaryError as exc:
                errors[field_code] = exc.text(language)
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
    except FieldError as exc:
        if isinstance(exc, DictionaryError) and not isinstance(exc, Invalid):
            raise  # not about a value (a dictionary gone, a right that does not reach)
        for each in exc.errors:
            errors.setdefault(_field_of(each.field), each.text(language))
        return await _form(
            request,
            found,
            entry_id=entry_id,
            form=FormView(values=raw, errors=errors),
            published=published,
            status=422 if isinstance(exc, Invalid) else exc.status,
        )
    return redirect(request, f"/dictionaries/{code}/{saved.id}", flash=texts(request)["saved"])


@post("/{code:str}/new", access=WRITE)
async def create_entry(request: Req, code: FromPath[str]) -> Response[Any]:
    return await _save(request, code, None)


@get("/{code:str}/{entry_id:int}", access=READ)
async def entry(request: Req, code: FromPath[str], entry_id: FromPath[int]) -> Response[Any]:
    principal = who(request)
    found = await svc(request).get_type(code, principal)
    if await svc(request).can_edit(principal, found):
        return await _form(request, found, entry_id=entry_id)
    item = await svc(request).entry(
        code, entry_id, principal=principal, language=lang(request), timezone=tz(request)
    )
    return await page(
        request,
        "dictionaries/entry_view.html",
        t=texts(request),
        type=found,
        item=item,
    )


@post("/{code:str}/{entry_id:int}", access=WRITE)
async def save_entry(request: Req, code: FromPath[str], entry_id: FromPath[int]) -> Response[Any]:
    return await _save(request, code, entry_id)


@post("/{code:str}/{entry_id:int}/delete", access=WRITE)
async def delete_entry(request: Req, code: FromPath[str], entry_id: FromPath[int]) -> Response[Any]:
    await svc(request).editable(who(request), code)
    try:
        await svc(request).delete_entry(code, entry_id)
    except DictionaryError as exc:
        if exc.status == 404:
            raise
        return redirect(
            request,
            f"/dictionaries/{code}/{entry_id}",
            flash=exc.text(lang(request)),
            category="error",
        )
    return redirect(request, f"/dictionaries/{code}", flash=texts(request)["deleted"])


@get("/{code:str}/{entry_id:int}/files/{field:str}", access=READ)
async def entry_file(
    request: Req, code: FromPath[str], entry_id: FromPath[int], field: FromPath[str]
) -> Stream:
    return await svc(request).field_file(code, entry_id, field, who(request))


async def _import_page(
    request: Req, found: TypeInfo, *, status: int = 200, report: Any = None, error: str = ""
) -> Response[Any]:
    return await page(
        request,
        "dictionaries/import.html",
        status_code=status,
        t=texts(request),
        type=found,
        report=report,
        error=error,
    )


@get("/{code:str}/import", access=WRITE)
async def import_form(request: Req, code: FromPath[str]) -> Response[Any]:
    return await _import_page(request, await svc(request).editable(who(request), code))


@post("/{code:str}/import", access=WRITE)
async def import_table(request: Req, code: FromPath[str]) -> Response[Any]:
    found = await svc(request).editable(who(request), code)
    limit = svc(request).settings.max_import_mb
    try:
        data = await read_form(request, Upload)
        if data.file is None:
            raise DictionaryError("import_format", "file")
        content = await data.file.read(limit * 1024 * 1024 + 1)
        if len(content) > limit * 1024 * 1024:
            raise DictionaryError("file_size", "file", limit=limit)
        report = await svc(request).import_table(
            code, content, actor=actor(request), language=lang(request), timezone=tz(request)
        )
    except FieldError as exc:
        return await _import_page(request, found, status=exc.status, error=exc.text(lang(request)))
    return await _import_page(request, found, report=report)


@get("/{code:str}/export", access=WRITE)
async def export(
    request: Req, code: FromPath[str], format: FromQuery[str] = "xlsx"
) -> Response[bytes]:
    found = await svc(request).editable(who(request), code)
    fmt: Format = "csv" if format == "csv" else "xlsx"
    query, _ = query_from(request, found, Paging.of(None, 1, size=500, most=500))
    body = await svc(request).export_table(
        code, fmt, query, language=lang(request), timezone=tz(request)
    )
    return Response(
        body,
        media_type="text/csv; charset=utf-8" if fmt == "csv" else XLSX,
        headers={"Content-Disposition": f'attachment; filename="{code}.{fmt}"'},
    )


HANDLERS = [
    entries,
    new,
    create_entry,
    entry,
    save_entry,
    delete_entry,
    entry_file,
    import_form,
    import_table,
    export,
]
