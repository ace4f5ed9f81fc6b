"""Staff pages: sync runs (with progress and "run now"), quarantine with filters.

Thin routes on the page kit: module functions gathered by :func:`router`, the host reached
through the shell (:func:`host_of`), forms read into the structs of :mod:`.forms`, the
kit's :func:`~kabinet.htmx.redirect` with a flash after a post, and :class:`Paging` for
the lists (``?page=``).
"""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING, Annotated, Any

from litestar import Request, Response, Router, get, post
from litestar.exceptions import NotFoundException
from litestar.params import FromPath, QueryParameter

from kabinet.access import permission
from kabinet.forms import FieldError, read_form
from kabinet.htmx import redirect
from kabinet.inputs import INT_MAX
from kabinet.pages import language, page, principal_of, shell_of
from kabinet.paging import PageNo, Paging
from kabinet_integration import reasons, services
from kabinet_integration.forms import PageRefusal, RunNow
from kabinet_integration.jobs import SYNC_ACTOR
from kabinet_integration.mapping import ORDER
from kabinet_integration.settings import Settings
from kabinet_integration.texts import Texts

if TYPE_CHECKING:
    from kabinet.host import Host

VIEW = permission("integration.runs.view", scope="global")
MANAGE = permission("integration.runs.manage", scope="global")
RUNS_PAGE = 50
"""Runs on one page of ``/integration/runs``."""
QUARANTINE_PAGE = 50
"""Records on one page of ``/integration/quarantine`` (each with its 1C object)."""
Req = Request[Any, Any, Any]
Filter = Annotated[str, QueryParameter(description="Filter value; empty: all.")]


def host_of(request: Req) -> Host:
    host: Host = shell_of(request).host
    return host


def texts(request: Req) -> Texts:
    return Texts(language(request))


def sources(request: Req) -> list[str]:
    return sorted(host_of(request).plugin_settings("integration", Settings).sources)


@get("/runs", access=VIEW)
async def runs_page(
    request: Req,
    source: Filter = "",
    after: Annotated[
        int | None,
        QueryParameter(description="A run was asked for after this one: poll until it is."),
    ] = None,
    page_no: PageNo = 1,
) -> Response[str]:
    host = host_of(request)
    scope = await services.quarantine_scope(host, principal_of(request.scope))
    paging = Paging.of(request, page_no, size=RUNS_PAGE)
    rows = await services.runs(host, source=source, limit=paging.limit, offset=paging.offset)
    paging.counted(await services.count_runs(host, source=source))
    # Only the first page (the newest runs) follows a run in progress.
    newest = paging.page == 1
    waiting = newest and after is not None and not any(r.id > after for r in rows)
    return await page(
        request,
        "integration/runs.html",
        t=texts(request),
        runs=rows,
        paging=paging,
        sources=sources(request),
        running=waiting or (newest and any(r.state == "running" for r in rows)),
        poll_url="/integration/runs" + (f"?after={after}" if after is not None else ""),
        # The requests and files of the organizations the viewer may see (untied ones:
        # integration.runs.manage only); the runs' counts are numbers of every company.
        outbound=await services.outbound(host, scope),
        writes_back=services.RequestStates(host).connected(),
        files=await services.failing_files(host, scope),
        can_manage=await host.access.can(principal_of(request.scope), MANAGE.code),
    )


@post("/runs/sync", access=MANAGE)
async def run_now(request: Req) -> Response[Any]:
    host = host_of(request)
    try:
        data = await read_form(request, RunNow)
        if data.source not in host.plugin_settings("integration", Settings).sources:
            raise PageRefusal("no_source_named", "source")
    except FieldError as exc:
        said = exc.text(language(request))
        return redirect(request, "/integration/runs", flash=said, category="error")
    latest = await services.runs(host, limit=1)
    await host.jobs.send(SYNC_ACTOR, source=data.source, mode=data.mode)
    # The page polls until the run asked for has started and ended.
    return redirect(
        request,
        f"/integration/runs?after={latest[0].id if latest else 0}",
        flash=texts(request).started_flash,
    )


@post("/outbound/{item_id:int}/retry", access=MANAGE)
async def retry_outbound(request: Req, item_id: FromPath[int]) -> Response[Any]:
    from kabinet_integration.outbound import send_due

    host = host_of(request)
    scope = await services.quarantine_scope(host, principal_of(request.scope), MANAGE.code)
    found = 0 < item_id <= INT_MAX
    if not found or await services.outbound_one(host, scope, item_id) is None:
        raise NotFoundException(f"no outbound request {item_id}")
    await send_due(host, force_ids=(item_id,))
    return redirect(request, "/integration/runs")


@get("/quarantine", access=VIEW)
async def quarantine_page(
    request: Req,
    source: Filter = "",
    entity: Filter = "",
    show: Annotated[str, QueryParameter(description="open, dismissed, or empty: all.")] = "open",
    page_no: PageNo = 1,
) -> Response[str]:
    host = host_of(request)
    paging = Paging.of(request, page_no, size=QUARANTINE_PAGE)
    chosen = {"source": source, "entity": entity, "state": show}
    scope = await services.quarantine_scope(host, principal_of(request.scope))
    items = await services.quarantined(
        host,
        scope,
        source=source,
        entity=entity,
        state=show,
        limit=paging.limit,
        offset=paging.offset,
    )
    total = await services.count_quarantined(host, scope, source=source, entity=entity, state=show)
    paging.counted(total)
    return await page(
        request,
        "integration/quarantine.html",
        t=texts(request),
        items=items,
        paging=paging,
        sources=sources(request),
        entities=ORDER,
        chosen=chosen,
        reason=functools.partial(reasons.shown, lang=language(request)),
    )


@post("/quarantine/{item_id:int}/{action:str}", access=MANAGE)
async def quarantine_action(
    request: Req, item_id: FromPath[int], action: FromPath[str]
) -> Response[Any]:
    from kabinet_integration.locks import Busy
    from kabinet_integration.sync import integration

    host = host_of(request)
    t = texts(request)
    back = "/integration/quarantine"
    svc = integration(host)
    scope = await services.quarantine_scope(host, principal_of(request.scope), MANAGE.code)
    found = 0 < item_id <= INT_MAX
    item = await services.quarantined_one(host, scope, item_id) if found else None
    if item is None or action not in ("retry", "dismiss"):  # as for a record not seen
        raise NotFoundException(f"no quarantined record {item_id} to {action}")
    if action == "dismiss":
        await svc.dismiss([item_id])
        return redirect(request, back)
    try:
        outcome = await svc.retry(item.source, [item_id])
    except Busy:
        return redirect(request, back, flash=t.busy, category="error")
    said = f"{t.retry_done}: {t.of(outcome.state)}"
    return redirect(
        request, back, flash=f"{said}. {outcome.error}" if outcome.error else said, category="info"
    )


def router() -> Router:
    """``/integration/``: staff only (``integration.runs.view``, ``.manage`` to act)."""
    return Router(
        "/integration",
        route_handlers=[runs_page, run_now, retry_outbound, quarantine_page, quarantine_action],
        include_in_schema=False,
    )
