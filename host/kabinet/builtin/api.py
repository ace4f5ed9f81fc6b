"""Admins' view of the job system: failed jobs and event handlings with errors, and retry.

JSON under ``/api/host/jobs``, and the page ``/host/jobs`` in the page shell.

Routes are thin: the job system (:mod:`kabinet.jobs`) and the event bus
(:mod:`kabinet.events`) hold the rules; a refusal there becomes a 404 or 409 problem.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Annotated, Any

import msgspec
from litestar import Request, Response, Router, get, post
from litestar.exceptions import HTTPException, NotFoundException
from litestar.params import FromPath, QueryParameter
from litestar.response import Redirect

from kabinet.access import permission
from kabinet.events import EventError, EventHandling
from kabinet.i18n import gettext_, localized
from kabinet.jobs import FailedJob, JobError

if TYPE_CHECKING:
    from litestar.types import ControllerRouterHandler

    from kabinet.host import Host
    from kabinet.plugins import PluginInfo

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


def _person_id(data: Any) -> int | None:
    """The person a job's arguments or an event's payload is about (``person_id``, also in
    the event a delivery carries), or ``None``."""
    if not isinstance(data, Mapping):
        return None
    found = data.get("person_id")
    if found is None and isinstance(data.get("event"), Mapping):
        return _person_id(data["event"].get("payload"))
    return found if isinstance(found, int) and not isinstance(found, bool) else None


class Labels:
    """What the jobs page names in the reader's language: a job by its title (else its
    app's), an event and a subscriber by their app, a person by their name."""

    def __init__(self, host: Host, lang: str, names: Mapping[int, str]) -> None:
        self.host = host
        self.lang = lang
        self.names = names

    def _app(self, info: PluginInfo | None, code: str) -> str:
        if info is None:  # a plugin no longer installed: its code is all there is
            return code
        return localized(info.manifest.title, self.lang) or info.name

    def job(self, actor: str) -> str:
        found = self.host.actors.get(actor)
        if found is not None and found[1].title:
            return localized(found[1].title, self.lang)
        return self._app(found[0] if found else None, actor)

    def event(self, event_type: str) -> str:
        found = self.host.event_types.get(event_type)
        return self._app(found[0] if found else None, event_type)

    def subscriber(self, name: str) -> str:
        found = self.host.subscriptions.get(name)
        return self._app(found[0] if found else None, name)

    def person(self, data: Any) -> str:
        found = _person_id(data)
        return self.names.get(found, "") if found is not None else ""


async def _names(host: Host, ids: Iterable[int | None]) -> dict[int, str]:
    """The people's names by id (none without the built-in identity app)."""
    from kabinet.identity.services import IDENTITY

    identity = host.services.find(IDENTITY)
    if identity is None:
        return {}
    return {i: p.full_name for i, p in (await identity.people(ids)).items()}


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
        from kabinet.pages import language, page

        jobs = await host.jobs.failed(limit=200)
        events = await host.events.with_errors(limit=200)
        ids = [_person_id(j.kwargs) for j in jobs] + [_person_id(e.payload) for e in events]
        return await page(
            request,
            "host/jobs.html",
            jobs=jobs,
            events=events,
            label=Labels(host, language(request), await _names(host, ids)),
        )

    @post("/failed/{failed_id:int}/retry", access=MANAGE, include_in_schema=False)
    async def retry_job_page(request: Request[Any, Any, Any], failed_id: FromPath[int]) -> Redirect:
        from kabinet.pages import flash, language

        try:
            await host.jobs.retry(failed_id)
            said = gettext_(language(request), "Job {id} sent again.")
            flash(request, said.format(id=failed_id), "success")
        except JobError as exc:
            flash(request, str(exc), "error")
        return Redirect("/host/jobs")

    @post("/events/{event_id:int}/{subscriber:str}/retry", access=MANAGE, include_in_schema=False)
    async def retry_event_page(
        request: Request[Any, Any, Any], event_id: FromPath[int], subscriber: FromPath[str]
    ) -> Redirect:
        from kabinet.pages import flash, language

        try:
            await host.events.retry(event_id, subscriber)
            lang = language(request)
            said = gettext_(lang, "Event {id} sent again to its subscriber ({app}).")
            app = Labels(host, lang, {}).subscriber(subscriber)
            flash(request, said.format(id=event_id, app=app), "success")
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
