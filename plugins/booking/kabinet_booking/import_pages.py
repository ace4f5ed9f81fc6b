"""The import pages (under /booking/import): the template to download, a file's rows
checked and shown with their errors, and the valid rows sent as one batch."""

from __future__ import annotations

from typing import Any

import msgspec
from litestar import Request, Response, get, post
from litestar.datastructures import UploadFile

from kabinet.access import permission
from kabinet.forms import FieldError, read_form
from kabinet.htmx import redirect
from kabinet.pages import page, principal_of, shell_of
from kabinet_booking import imports
from kabinet_booking.pages import svc, texts
from kabinet_booking.services import CREATE

Req = Request[Any, Any, Any]
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


class Upload(msgspec.Struct, kw_only=True):
    file: UploadFile


class Send(msgspec.Struct, kw_only=True):
    token: str
    name: str = ""


async def _show(
    request: Req,
    rows: list[imports.Row] | None = None,
    *,
    token: str = "",
    name: str = "",
    error: FieldError | None = None,
) -> Response[Any]:
    lang = shell_of(request).language(request)
    return await page(
        request,
        "booking/import.html",
        status_code=error.status if error else 200,
        t=texts(request),
        rows=rows,
        valid=sum(1 for r in rows or () if r.valid),
        token=token,
        name=name,
        error=error.text(lang) if error else "",
        columns=imports.COLUMNS,
        items=[(r, [(e.field or "", e.text(lang)) for e in r.errors]) for r in rows or ()],
    )


@get("/import", access=permission(CREATE), include_in_schema=False)
async def import_page(request: Req) -> Response[Any]:
    return await _show(request)


@get("/import/template.xlsx", access=permission(CREATE), include_in_schema=False)
async def template_xlsx() -> Response[bytes]:
    return Response(
        imports.template_xlsx(),
        media_type=XLSX,
        headers={"Content-Disposition": 'attachment; filename="booking-template.xlsx"'},
    )


@get("/import/template.csv", access=permission(CREATE), include_in_schema=False)
async def template_csv() -> Response[bytes]:
    return Response(
        imports.template_csv(),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": 'attachment; filename="booking-template.csv"'},
    )


@post("/import", access=permission(CREATE), include_in_schema=False)
async def import_check(request: Req) -> Response[Any]:
    """Read the file, check every row, show them all; nothing is sent yet."""
    service = svc(request)
    lang = shell_of(request).language(request)
    try:
        upload = await read_form(request, Upload)
        content = await upload.file.read()
        name = upload.file.filename or ""
        rows = await imports.rows_of(service, principal_of(request.scope), content, name, lang)
    except FieldError as exc:
        return await _show(request, error=exc)
    token = await imports.keep(service, content, name)
    return await _show(request, rows, token=token, name=name)


@post("/import/send", access=permission(CREATE), include_in_schema=False)
async def import_send(request: Req) -> Response[Any]:
    """Send the valid rows of a checked file as one batch."""
    service = svc(request)
    principal = principal_of(request.scope)
    lang = shell_of(request).language(request)
    try:
        data = await read_form(request, Send)
        content = await imports.kept(service, data.token)
        rows = await imports.rows_of(service, principal, content, data.name, lang)
        async with service.host.db.session() as session:
            made = await imports.send_valid(service, session, principal, rows)
    except FieldError as exc:
        return await _show(request, error=exc)
    done = texts(request)["import_sent"].format(n=len(made))
    return redirect(request, "/booking/?state=", flash=done)


HANDLERS = [import_page, template_xlsx, template_csv, import_check, import_send]
