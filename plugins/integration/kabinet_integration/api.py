"""JSON API: the push inbox (for the production system) and the runs (for staff)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

import msgspec
from litestar import Request, Router, get, post
from litestar.exceptions import HTTPException, NotAuthorizedException, NotFoundException
from litestar.params import Body, FromPath, QueryParameter

from kabinet.access import machine, permission
from kabinet_integration import services
from kabinet_integration.inbox import InboxBatch, Received, Unauthorized, check_token, receive
from kabinet_integration.locks import Busy
from kabinet_integration.sync import SyncError

if TYPE_CHECKING:
    from kabinet.host import Host

VIEW = permission("integration.runs.view", scope="global")


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


def router(host: Host) -> Router:
    @post(
        "/inbox/{source:str}",
        access=machine("token"),
        status_code=200,
        summary="A batch of changes pushed by the production system (Bearer token)",
    )
    async def inbox(
        request: Request[Any, Any, Any], source: FromPath[str], data: Annotated[InboxBatch, Body()]
    ) -> Received:
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
        source: Annotated[str, QueryParameter(description="Only this source.")] = "",
        limit: Annotated[int, QueryParameter(ge=1, le=500)] = 50,
    ) -> list[Run]:
        return [run_of(r) for r in await services.runs(host, source=source, limit=limit)]

    return Router("/api/integration", route_handlers=[inbox, runs], tags=["integration"])
