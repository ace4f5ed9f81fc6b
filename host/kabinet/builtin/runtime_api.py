"""Admins' JSON API for the job system: failed jobs and event handlings with errors, retry.

Routes are thin: the job system (:mod:`kabinet.jobs`) and the event bus
(:mod:`kabinet.events`) hold the rules; a refusal there becomes a 404 or 409 problem.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

import msgspec
from litestar import Router, get, post
from litestar.exceptions import HTTPException, NotFoundException
from litestar.params import FromPath, QueryParameter

from kabinet.access import permission
from kabinet.events import EventError, EventHandling
from kabinet.jobs import FailedJob, JobError

if TYPE_CHECKING:
    from kabinet.host import Host

MANAGE = permission("host.jobs.manage", scope="global")
Limit = Annotated[int, QueryParameter(ge=1, le=1000, description="At most this many rows.")]


class Retried(msgspec.Struct, kw_only=True):
    """What a retry did."""

    retried: bool = True
    message_id: str | None = None


class Conflict(HTTPException):
    status_code = 409


def _refusal(exc: Exception) -> HTTPException:
    text = str(exc)
    if text.startswith("no "):
        return NotFoundException(detail=text)
    return Conflict(detail=text)


def routers(host: Host) -> list[Any]:
    """The ``/api/host/jobs`` router, bound to ``host``."""

    @get("/failed", access=MANAGE, summary="Failed jobs, newest first")
    async def failed_jobs(
        limit: Limit = 100,
        include_retried: Annotated[
            bool, QueryParameter(description="Also jobs already sent again.")
        ] = False,
    ) -> list[FailedJob]:
        return await host.jobs.failed(include_retried=include_retried, limit=limit)

    @post("/failed/{failed_id:int}/retry", access=MANAGE, status_code=202, summary="Retry a job")
    async def retry_job(failed_id: FromPath[int]) -> Retried:
        try:
            return Retried(message_id=await host.jobs.retry(failed_id))
        except JobError as exc:
            raise _refusal(exc) from None

    @get("/events", access=MANAGE, summary="Event handlings that failed or are being retried")
    async def event_errors(
        limit: Limit = 100,
    ) -> list[EventHandling]:
        return await host.events.with_errors(limit=limit)

    @post(
        "/events/{event_id:int}/{subscriber:str}/retry",
        access=MANAGE,
        status_code=202,
        summary="Deliver a failed event to its subscriber again",
    )
    async def retry_event(event_id: FromPath[int], subscriber: FromPath[str]) -> Retried:
        try:
            await host.events.retry(event_id, subscriber)
        except EventError as exc:
            raise _refusal(exc) from None
        return Retried()

    return [
        Router(
            "/api/host/jobs",
            route_handlers=[failed_jobs, retry_job, event_errors, retry_event],
            tags=["host: jobs"],
        )
    ]
