"""Pages of the dictionaries app, under ``/dictionaries/``, on the host's page kit.

Thin routes: read the form into a struct (:mod:`kabinet_dictionaries.forms`, with
:func:`kabinet.forms.read_form`), call :class:`~kabinet_dictionaries.services.Dictionaries`,
redirect with a flash (:func:`kabinet.htmx.redirect`), or render the form again with each
refused field's message next to it (a :class:`~kabinet.forms.FormView`). Entry lists
filter, sort and page (:class:`kabinet.paging.Paging`) with plain links that htmx swaps in
place.

The routes are module functions in :mod:`~kabinet_dictionaries.type_pages` (the list of
dictionaries and the structure editor), :mod:`~kabinet_dictionaries.entry_pages` (entries,
import, export) and :mod:`~kabinet_dictionaries.document_pages` (the document library);
:func:`router` gathers them. This module holds what they share.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from litestar import Request, Response, Router
from litestar.datastructures import UploadFile
from litestar.exceptions import HTTPException

from kabinet.access import Principal, permission
from kabinet.host import Host
from kabinet.pages import principal_of, shell_of
from kabinet.problems import handle_http
from kabinet_dictionaries.errors import DictionaryError
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
)
from kabinet_dictionaries.texts import text_for

Req = Request[Any, Any, Any]
READ = permission(VIEW)
WRITE = permission(EDIT, scope="global")
ADMIN = permission(MANAGE, scope="global")
DOCS = permission(DOCS_VIEW)
DOCS_ADMIN = permission(DOCS_MANAGE, scope="global")


def svc(request: Req) -> Dictionaries:
    return shell_of(request).host.services.of(DICTIONARIES)


def lang(request: Req) -> str:
    return shell_of(request).language(request)


def tz(request: Req) -> str:
    return shell_of(request).timezone(request)


def texts(request: Req) -> dict[str, str]:
    return text_for(lang(request))


def who(request: Req) -> Principal:
    return principal_of(request.scope)


def actor(request: Req) -> Actor:
    p = who(request)
    return Actor(person_id=p.person_id, name=p.name)


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
    return handle_http(request, HTTPException(status_code=exc.status, detail=exc.english()))


async def chunks(upload: UploadFile) -> AsyncIterator[bytes]:
    """The upload in pieces, so the service checks the size while it stores."""
    while chunk := await upload.read(64 * 1024):
        yield chunk


def router(host: Host) -> Router:
    """The pages, with multipart bodies up to the file limit (Litestar's default is 10 MB)."""
    from kabinet_dictionaries import document_pages, entry_pages, type_pages

    settings = host.plugin_settings("dictionaries", Settings)
    limit = (max(settings.max_file_size_mb, settings.max_import_mb) + 1) * 1024 * 1024
    return Router(
        path="/dictionaries",
        route_handlers=[
            *document_pages.HANDLERS,
            *type_pages.HANDLERS,
            *entry_pages.HANDLERS,
        ],
        exception_handlers={DictionaryError: page_error},
        request_max_body_size=limit,
        include_in_schema=False,
    )
