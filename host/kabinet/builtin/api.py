"""Admins' view of the job system: failed jobs and event handlings with errors, and retry.

JSON under ``/api/host/jobs``, and the page ``/host/jobs`` in the page shell.

Routes are thin: the job system (:mod:`kabinet.jobs`) and the event bus
(:mod:`kabinet.events`) hold the rules; a refusal there becomes a 404 or 409 problem.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

import msgspec
from litestar import Request, Response, Router, get, post
from litestar.exceptions import HTTPException, NotFoundException
from litestar.params import FromPath, QueryParameter
from litestar.response import Redirect

from kabinet.access import permission
from kabinet.events import EventError, EventHandling
from kabinet.jobs import FailedJob, JobError

if TYPE_CHECKING:
    from litestar.types import ControllerRouterHandler

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


def routers(host: Host) -> list[ControllerRouterHandler]:
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

    @get("/", access=MANAGE, include_in_schema=False)
    async def jobs_page(request: Request[Any, Any, Any]) -> Response[str]:
        from kabinet.pages import page

        return await page(
            request,
            "host/jobs.html",
            jobs=await host.jobs.failed(limit=200),
            events=await host.events.with_errors(limit=200),
        )

    @post("/failed/{failed_id:int}/retry", access=MANAGE, include_in_schema=False)
    async def retry_job_page(request: Request[Any, Any, Any], failed_id: FromPath[int]) -> Redirect:
        from kabinet.pages import flash

        try:
            await host.jobs.retry(failed_id)
            flash(request, f"Job {failed_id} sent again.", "success")
        except JobError as exc:
            flash(request, str(exc), "error")
        return Redirect("/host/jobs")

    @post("/events/{event_id:int}/{subscriber:str}/retry", access=MANAGE, include_in_schema=False)
    async def retry_event_page(
        request: Request[Any, Any, Any], event_id: FromPath[int], subscriber: FromPath[str]
    ) -> Redirect:
        from kabinet.pages import flash

        try:
            await host.events.retry(event_id, subscriber)
            flash(request, f"Event {event_id} sent again to {subscriber}.", "success")
        except EventError as exc:
            flash(request, str(exc), "error")
        return Redirect("/host/jobs")

    return [
        Router(
            "/api/host/jobs",
            route_handlers=[failed_jobs, retry_job, event_errors, retry_event],
            tags=["host: jobs"],
        ),
        Router("/host/jobs", route_handlers=[jobs_page, retry_job_page, retry_event_page]),
    ]
