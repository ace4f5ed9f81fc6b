"""Pages under ``/shipments/``: exporting the registry's view to CSV or XLSX.

A small view is written at once; a larger one is offered as a background export (a form,
so a link alone never starts a job), whose page shows its progress and then the file.
The routes are mounted by :func:`kabinet_shipments.pages.routers`.
"""

from __future__ import annotations

from typing import Any

from litestar import Response, get, post
from litestar.exceptions import NotFoundException
from litestar.params import FromPath

from kabinet.access import permission
from kabinet.files import content_disposition
from kabinet.forms import read_form
from kabinet.htmx import redirect
from kabinet.pages import page, principal_of, shell_of
from kabinet_shipments.exports import (
    MEDIA,
    QUERY_FIELDS,
    ExportError,
    Exports,
    expires_at,
    file_name,
)
from kabinet_shipments.forms import ExportForm
from kabinet_shipments.pages import Req, bad_field, bad_query, lang_of, link, params_of
from kabinet_shipments.registry import QueryError
from kabinet_shipments.services import EXPORTS, VIEW, NotFound
from kabinet_shipments.texts import texts


def exports_of(request: Req) -> Exports:
    return shell_of(request).host.services.of(EXPORTS)


def _file(content: bytes, fmt: str, name: str) -> Response[bytes]:
    return Response(
        content,
        status_code=200,
        media_type=MEDIA[fmt],
        headers={"Content-Disposition": content_disposition(name)},
    )


async def _export_now_or_offer(request: Req, fmt: str) -> Response[Any]:
    """A link to the view's file: small views at once; a larger one is offered as a
    background export (a form, so that a link alone never starts a job)."""
    exports = exports_of(request)
    params = params_of(request)
    try:
        query = exports.parse(params, fmt)
    except QueryError as exc:
        raise bad_query(exc) from exc
    principal = principal_of(request.scope)
    limit = exports.shipments.settings.export_limit
    lang = lang_of(request)
    if await exports.count(principal, query, limit) <= limit:
        tz = shell_of(request).timezone(request)
        content = await exports.write_now(principal, query, fmt, limit, tz, lang)
        return _file(content, fmt, file_name(fmt, exports.shipments.today()))
    return await page(
        request,
        "shipments/export.html",
        t=texts(lang),
        e=None,
        fmt=fmt,
        params={k: v for k, v in params.items() if k in QUERY_FIELDS},
        limit=limit,
        link=link,
    )


@get("/orders.csv", access=permission(VIEW))
async def export_csv(request: Req) -> Response[Any]:
    return await _export_now_or_offer(request, "csv")


@get("/orders.xlsx", access=permission(VIEW))
async def export_xlsx(request: Req) -> Response[Any]:
    return await _export_now_or_offer(request, "xlsx")


@post("/exports", access=permission(VIEW))
async def start_export(request: Req) -> Response[Any]:
    """Export the view posted (its URL parameters and ``format``): the file itself up to
    ``export_limit`` orders, else a background job and a redirect to its progress."""
    exports = exports_of(request)
    try:
        form = await read_form(request, ExportForm)
        tz = shell_of(request).timezone(request)
        lang = lang_of(request)
        started = await exports.start(
            principal_of(request.scope), form.view(), form.format, tz, lang
        )
    except QueryError as exc:
        raise bad_query(exc) from exc
    except ExportError as exc:  # the format, or no person to send the file to
        raise bad_field(exc.field, exc.message) from exc
    if started.content is not None:
        return _file(started.content, form.format, started.file_name)
    return redirect(request, f"/shipments/exports/{started.export_id}")


async def _own_export(request: Req, export_id: str) -> Any:
    try:
        return await exports_of(request).get(principal_of(request.scope), export_id)
    except NotFound:
        raise NotFoundException(f"no export {export_id}") from None


def _export_context(request: Req, row: Any) -> dict[str, Any]:
    lang = lang_of(request)
    return {
        "t": texts(lang),
        "e": row,
        "fmt": row.format,
        "params": dict(row.params),
        "expires": expires_at(row),
        "link": link,
    }


@get("/exports/{export_id:str}", access=permission(VIEW))
async def export_page(request: Req, export_id: FromPath[str]) -> Response[str]:
    row = await _own_export(request, export_id)
    return await page(request, "shipments/export.html", **_export_context(request, row))


@get("/exports/{export_id:str}/status", access=permission(VIEW))
async def export_status(request: Req, export_id: FromPath[str]) -> Response[str]:
    """The progress fragment the export page polls (it stops polling when done)."""
    row = await _own_export(request, export_id)
    return await page(request, "shipments/_export.html", **_export_context(request, row))


@get("/exports/{export_id:str}/file", access=permission(VIEW))
async def export_file(request: Req, export_id: FromPath[str]) -> Any:
    row = await _own_export(request, export_id)
    if row.status != "done" or not row.file_key:
        raise NotFoundException(f"export {export_id} is not ready")
    return await shell_of(request).host.files.download(
        row.file_key, filename=row.file_name, content_type=MEDIA[row.format]
    )
