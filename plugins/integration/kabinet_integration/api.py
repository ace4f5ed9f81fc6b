"""JSON API: the push inbox (for the production system) and the runs (for staff).

Module functions gathered by :func:`router`; each reaches the host through the shell
(:func:`host_of`). Filters and pages are typed query parameters, so the OpenAPI document
shows them."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any, Literal

import msgspec
from litestar import Request, Router, get, post
from litestar.exceptions import HTTPException, NotAuthorizedException, NotFoundException
from litestar.params import Body, FromPath, QueryParameter

from kabinet.access import machine, permission
from kabinet.inputs import INT_MAX
from kabinet.pages import principal_of, shell_of
from kabinet.paging import PageNo, Paging
from kabinet_integration import reasons, services
from kabinet_integration.inbox import InboxBatch, Received, Unauthorized, check_token, receive
from kabinet_integration.locks import Busy
from kabinet_integration.sync import SyncError

if TYPE_CHECKING:
    from kabinet.host import Host

VIEW = permission("integration.runs.view", scope="global")
Req = Request[Any, Any, Any]


class Conflict(HTTPException):
    status_code = 409


class Run(msgspec.Struct, kw_only=True):
    id: int
    source: str
    mode: str
    state: str
    started_at: str
    finished_at: str | None
    received: int
    applied: int
    unchanged: int
    quarantined: int
    progress: str
    error: str | None


def run_of(row: Any) -> Run:
    return Run(
        id=row.id,
        source=row.source,
        mode=row.mode,
        state=row.state,
        started_at=row.started_at.isoformat(),
        finished_at=row.finished_at.isoformat() if row.finished_at else None,
        received=row.received,
        applied=row.applied,
        unchanged=row.unchanged,
        quarantined=row.quarantined,
        progress=row.progress,
        error=row.error,
    )


EntityName = Literal["", "counterparty", "contract", "order", "invoice", "answer"]
State = Literal["open", "dismissed", ""]


class Quarantined(msgspec.Struct, kw_only=True):
    """A record 1C sent that the portal could not apply, with 1C's object as it came."""

    id: int
    source: str
    entity: str
    ref: str
    """The object's id in 1C (its ``Ref_Key``)."""
    reason: str
    """Why, in English, naming 1C's attributes (and the portal's field in brackets)."""
    reason_code: str
    """Why, as a stable code (``missing_field``, ``unknown_value``, ``unknown_contract``…;
    ``other``: a reason of no known code, or a record set aside before reasons had codes)."""
    reason_params: dict[str, Any]
    """The code's parameters (``field``: the portal's field, ``at``: its 1C attributes and
    line numbers, ``value``…); empty with ``other``."""
    state: str
    attempts: int
    run_id: int | None
    created_at: str
    updated_at: str
    payload: Any = None
    """The 1C object as it came (in the list only with ``payload=true``)."""


class QuarantinePage(msgspec.Struct, kw_only=True):
    items: list[Quarantined]
    next: int | None
    """Pass as ``before`` for the next (older) page; null on the last."""


def quarantined_of(row: Any, *, payload: bool = True) -> Quarantined:
    return Quarantined(
        id=row.id,
        source=row.source,
        entity=row.entity,
        ref=row.ref,
        reason=row.reason,
        reason_code=row.reason_code or reasons.OTHER,
        reason_params=dict(row.reason_params or {}) if row.reason_code else {},
        state=row.state,
        attempts=row.attempts,
        run_id=row.run_id,
        created_at=row.created_at.isoformat(),
        updated_at=row.updated_at.isoformat(),
        payload=row.payload if payload else None,
    )


def host_of(request: Req) -> Host:
    host: Host = shell_of(request).host
    return host


@post(
    "/inbox/{source:str}",
    access=machine("token"),
    status_code=200,
    summary="A batch of changes pushed by the production system (Bearer token)",
)
async def inbox(
    request: Req, source: FromPath[str], data: Annotated[InboxBatch, Body()]
) -> Received:
    host = host_of(request)
    try:
        check_token(host, source, request.headers.get("authorization"))
    except Unauthorized as exc:
        raise NotAuthorizedException(detail=str(exc)) from None
    try:
        return await receive(host, source, data)
    except Busy:
        raise Conflict(detail=f"a run of {source} is going on; send again later") from None
    except SyncError as exc:
        raise NotFoundException(detail=str(exc)) from None


@get("/runs", access=VIEW, summary="Sync runs, newest first")
async def runs(
    request: Req,
    source: Annotated[str, QueryParameter(description="Only this source.", max_length=64)] = "",
    limit: Annotated[int, QueryParameter(ge=1, le=500, description="Runs per page.")] = 50,
    page_no: PageNo = 1,
) -> list[Run]:
    paging = Paging.of(None, page_no, limit, most=500)
    rows = await services.runs(
        host_of(request), source=source, limit=paging.limit, offset=paging.offset
    )
    return [run_of(r) for r in rows]


@get("/quarantine", access=VIEW, summary="Quarantined records, newest first")
async def quarantine(
    request: Req,
    source: Annotated[str, QueryParameter(description="Only this source.", max_length=64)] = "",
    entity: Annotated[EntityName, QueryParameter(description="Only this entity.")] = "",
    show: Annotated[
        State, QueryParameter(name="state", description="open, dismissed, or empty: all.")
    ] = "open",
    limit: Annotated[int, QueryParameter(ge=1, le=500)] = 50,
    before: Annotated[
        int | None,
        QueryParameter(ge=1, le=INT_MAX, description="The previous page's `next`."),
    ] = None,
    payload: Annotated[bool, QueryParameter(description="Include 1C's objects.")] = False,
) -> QuarantinePage:
    host = host_of(request)
    rows = await services.quarantined(
        host,
        await services.quarantine_scope(host, principal_of(request.scope)),
        source=source,
        entity=entity,
        state=show,
        limit=limit + 1,
        before=before,
    )
    more = len(rows) > limit
    rows = rows[:limit]
    return QuarantinePage(
        items=[quarantined_of(r, payload=payload) for r in rows],
        next=rows[-1].id if more and rows else None,
    )


@get("/quarantine/{item_id:int}", access=VIEW, summary="One quarantined record")
async def quarantined_record(request: Req, item_id: FromPath[int]) -> Quarantined:
    host = host_of(request)
    scope = await services.quarantine_scope(host, principal_of(request.scope))
    found = 0 < item_id <= INT_MAX
    row = await services.quarantined_one(host, scope, item_id) if found else None
    if row is None:
        raise NotFoundException(detail=f"no quarantined record {item_id}")
    return quarantined_of(row)


def router() -> Router:
    """``/api/integration/``: the push inbox (a source's token), runs and quarantine (staff)."""
    return Router(
        "/api/integration",
        route_handlers=[inbox, runs, quarantine, quarantined_record],
        tags=["integration"],
    )
