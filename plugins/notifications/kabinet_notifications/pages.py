"""Staff pages: notifications, template editor, channels, statistics, undelivered + resend.

Thin routes: read the form, call the services, redirect with a flash or render again
with the refusal next to the field (a template error with its line).
"""

from __future__ import annotations

import base64
import datetime as dt
import json
from collections import defaultdict
from typing import Any
from zoneinfo import ZoneInfo

from litestar import Controller, Request, Response, get, post
from litestar.exceptions import NotFoundException
from litestar.params import FromPath, FromQuery
from litestar.status_codes import HTTP_303_SEE_OTHER

from kabinet.access import AllOrganizations
from kabinet.i18n import localized
from kabinet.pages import flash, picker_source, principal_of, shell_of
from kabinet.pages import page as host_page
from kabinet_notifications import charts, reports
from kabinet_notifications.crypto import mask_address
from kabinet_notifications.permissions import (
    CONTACTS,
    DO_RESEND,
    EDIT,
    MANAGE_CHANNELS,
    RESEND,
    VIEW_STATS,
)
from kabinet_notifications.render import CHANNELS, FIELDS, TemplateError, sms_length
from kabinet_notifications.services import (
    CHANNEL_FIELDS,
    SECRET_FIELDS,
    Editor,
    NotificationError,
    NotificationsService,
    service_of,
)
from kabinet_notifications.texts import TEXT

Req = Request[Any, Any, Any]


def texts(request: Req) -> dict[str, str]:
    return TEXT.get(shell_of(request).language(request), TEXT["en"])


async def svc(request: Req) -> NotificationsService:
    return await service_of(shell_of(request).host)


def labels(request: Req, s: NotificationsService) -> dict[str, dict[str, str]]:
    """What a person reads for codes: each status's, channel's and event's label."""
    t = texts(request)
    lang = shell_of(request).language(request)
    return {
        "status": {k[3:]: v for k, v in t.items() if k.startswith("st_")},
        "channel": {c: t.get(f"ch_{c}", c) for c in CHANNELS},
        "event": {e: localized(typ.title, lang) or e for e, typ in sorted(s.catalog.types.items())},
    }


FIELD_TEXT = {
    "start": "from",
    "end": "to",
    "channel": "channels",
    "organization": "organization",
    "status": "status",
}
"""The text key of each filter's label: a refusal of a filter names it."""


def worded(request: Req, exc: NotificationError) -> str:
    """A refusal in the person's language, after its field's label (the English
    ``message`` where no wording is written)."""
    t = texts(request)
    said = t.get(f"err_{exc.key}", exc.message) if exc.key else exc.message
    field = FIELD_TEXT.get(exc.field or "")
    return f"{t[field]}: {said}" if field else said


def editor(request: Req) -> Editor:
    p = principal_of(request.scope)
    return Editor(person_id=p.person_id, name=p.name)


FLASH_COOKIE = "kabinet_notifications_flash"
"""Messages for the page after a redirect: the host keeps a flash across a redirect only
in a session, and pages here have none, so they ride in a short cookie instead."""


def say(request: Req, message: str, category: str = "info") -> None:
    """Like ``flash``, for a message shown after :func:`redirect`."""
    state: dict[str, Any] = request.scope.setdefault("state", {})
    state.setdefault(FLASH_COOKIE, []).append({"message": message, "category": category})


def redirect(location: str, request: Req | None = None) -> Response[str]:
    response: Response[str] = Response(
        "", status_code=HTTP_303_SEE_OTHER, headers={"Location": location}
    )
    pending = request.scope.get("state", {}).get(FLASH_COOKIE) if request else None
    if pending:
        value = base64.urlsafe_b64encode(json.dumps(pending[:5]).encode()).decode()
        response.set_cookie(
            FLASH_COOKIE, value, path="/notifications", httponly=True, samesite="lax", max_age=60
        )
    return response


async def page(request: Req, template: str, **context: Any) -> Response[str]:
    """The host's page, showing the messages a redirect carried here (once)."""
    carried = request.cookies.get(FLASH_COOKIE)
    if carried:
        try:
            items = json.loads(base64.urlsafe_b64decode(carried.encode()))
        except ValueError:
            items = []
        for item in items if isinstance(items, list) else []:
            if isinstance(item, dict):
                category = str(item.get("category", "info"))
                flash(request, str(item.get("message", "")), category)
    response = await host_page(request, template, **context)
    if carried:
        response.delete_cookie(FLASH_COOKIE, path="/notifications")
    return response


async def form(request: Req) -> dict[str, list[str]]:
    data = await request.form()
    found: dict[str, list[str]] = defaultdict(list)
    for key, value in data.multi_items():
        if isinstance(value, str):
            found[key].append(value)
    return found


def one(data: dict[str, list[str]], key: str) -> str:
    return (data.get(key) or [""])[0]


def parse_day(value: str, field: str) -> dt.date | None:
    if not value:
        return None
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise NotificationError("a date is YYYY-MM-DD", field, key="date") from None


class StaffPages(Controller):
    path = "/notifications"
    include_in_schema = False

    # -- list and one notification ------------------------------------------------------

    @get("/", access=EDIT)
    async def index(self, request: Req) -> Response[str]:
        s = await svc(request)
        return await page(
            request, "notifications/index.html", t=texts(request), items=await s.notifications()
        )

    async def _view(self, request: Req, event: str) -> Any:
        try:
            return await (await svc(request)).notification(event)
        except NotificationError:
            raise NotFoundException(f"no notification {event}") from None

    @get("/n/{event:str}", access=EDIT)
    async def notification(self, request: Req, event: FromPath[str]) -> Response[str]:
        view = await self._view(request, event)
        return await page(
            request,
            "notifications/notification.html",
            t=texts(request),
            n=view,
            languages=shell_of(request).host.settings.host.languages,
            all_channels=CHANNELS,
        )

    @post("/n/{event:str}/active", access=EDIT)
    async def set_active(self, request: Req, event: FromPath[str]) -> Response[str]:
        await self._view(request, event)
        data = await form(request)
        channel = one(data, "channel") or None
        try:
            await (await svc(request)).set_active(
                event, one(data, "active") == "1", channel=channel, editor=editor(request)
            )
        except NotificationError as exc:
            say(request, worded(request, exc), "error")
        return redirect(f"/notifications/n/{event}", request)

    @post("/n/{event:str}/defaults", access=EDIT)
    async def set_defaults(self, request: Req, event: FromPath[str]) -> Response[str]:
        """Staff's defaults: the channels a person gets until they choose."""
        await self._view(request, event)
        data = await form(request)
        try:
            await (await svc(request)).set_defaults(
                event, data.get("default", []), editor=editor(request)
            )
        except NotificationError as exc:
            say(request, worded(request, exc), "error")
        else:
            say(request, texts(request)["defaults_saved"], "success")
        return redirect(f"/notifications/n/{event}", request)

    # -- the template editor ------------------------------------------------------------

    async def _editor(
        self,
        request: Req,
        event: str,
        channel: str,
        language: str,
        *,
        parts: dict[str, str] | None = None,
        error: TemplateError | NotificationError | None = None,
        preview: dict[str, str] | None = None,
        status: int = 200,
    ) -> Response[str]:
        s = await svc(request)
        view = await self._view(request, event)
        if (
            channel not in CHANNELS
            or language not in shell_of(request).host.settings.host.languages
        ):
            raise NotFoundException("no such channel or language")
        current = await s.template(event, channel, language)
        values = parts or {"subject": current.subject, "body": current.body, "html": current.html}
        if preview is None and error is None:
            try:
                preview = await s.preview(event, channel, values)
            except (TemplateError, NotificationError) as exc:
                error = exc  # the current template, stored before a check that refuses it
        return await page(
            request,
            "notifications/editor.html",
            status_code=status,
            t=texts(request),
            n=view,
            channel=channel,
            language=language,
            fields=FIELDS[channel],
            values=values,
            current=current,
            versions=await s.versions(event, channel, language),
            error=error,
            preview=preview,
            sms=sms_length(preview["body"]) if preview and channel == "sms" else None,
        )

    @get("/n/{event:str}/{channel:str}/{language:str}", access=EDIT)
    async def edit(
        self, request: Req, event: FromPath[str], channel: FromPath[str], language: FromPath[str]
    ) -> Response[str]:
        return await self._editor(request, event, channel, language)

    @post("/n/{event:str}/{channel:str}/{language:str}", access=EDIT)
    async def save(
        self, request: Req, event: FromPath[str], channel: FromPath[str], language: FromPath[str]
    ) -> Response[str]:
        await self._view(request, event)
        if channel not in CHANNELS:
            raise NotFoundException("no such channel")
        data = await form(request)
        parts = {f: one(data, f) for f in ("subject", "body", "html")}
        s = await svc(request)
        if one(data, "action") == "preview":
            try:
                shown = await s.preview(event, channel, parts)
            except (TemplateError, NotificationError) as exc:
                return await self._editor(
                    request, event, channel, language, parts=parts, error=exc, status=400
                )
            return await self._editor(request, event, channel, language, parts=parts, preview=shown)
        try:
            await s.save_template(event, channel, language, parts, editor=editor(request))
        except (TemplateError, NotificationError) as exc:
            return await self._editor(
                request, event, channel, language, parts=parts, error=exc, status=400
            )
        say(request, texts(request)["saved"], "success")
        return redirect(f"/notifications/n/{event}/{channel}/{language}", request)

    @post("/n/{event:str}/{channel:str}/{language:str}/rollback", access=EDIT)
    async def rollback(
        self, request: Req, event: FromPath[str], channel: FromPath[str], language: FromPath[str]
    ) -> Response[str]:
        await self._view(request, event)
        data = await form(request)
        version = one(data, "version")
        if not version.isdigit():
            return await self._editor(
                request,
                event,
                channel,
                language,
                error=NotificationError("choose a version", "version"),
                status=400,
            )
        try:
            await (await svc(request)).rollback(
                event, channel, language, int(version), editor=editor(request)
            )
        except NotificationError as exc:
            if exc.status == 404:
                raise NotFoundException(exc.message) from None
            return await self._editor(request, event, channel, language, error=exc, status=400)
        except TemplateError as exc:  # a version stored before a check that now refuses it
            return await self._editor(request, event, channel, language, error=exc, status=400)
        say(request, texts(request)["saved"], "success")
        return redirect(f"/notifications/n/{event}/{channel}/{language}", request)

    # -- channels -----------------------------------------------------------------------

    @get("/channels", access=MANAGE_CHANNELS)
    async def channels(self, request: Req) -> Response[str]:
        s = await svc(request)
        return await page(
            request,
            "notifications/channels.html",
            t=texts(request),
            channels=await s.channel_view(),
            fields=CHANNEL_FIELDS,
            secrets=SECRET_FIELDS,
            error=None,
        )

    @post("/channels/{channel:str}", access=MANAGE_CHANNELS)
    async def save_channel(self, request: Req, channel: FromPath[str]) -> Response[str]:
        if channel not in CHANNELS:
            raise NotFoundException("no such channel")
        data = await form(request)
        values = {k: one(data, k) for k in CHANNEL_FIELDS[channel] if k in data}
        s = await svc(request)
        try:
            await s.save_channel(
                channel,
                one(data, "enabled") == "1",
                values,
                editor=editor(request),
                clear=[k for k in SECRET_FIELDS[channel] if one(data, f"clear_{k}") == "1"],
            )
        except NotificationError as exc:
            return await page(
                request,
                "notifications/channels.html",
                status_code=400,
                t=texts(request),
                channels=await s.channel_view(),
                fields=CHANNEL_FIELDS,
                secrets=SECRET_FIELDS,
                error={"channel": channel, "field": exc.field, "message": worded(request, exc)},
            )
        say(request, texts(request)["channel_saved"], "success")
        return redirect("/notifications/channels", request)

    @post("/channels/{channel:str}/test", access=MANAGE_CHANNELS)
    async def test_channel(self, request: Req, channel: FromPath[str]) -> Response[str]:
        if channel not in CHANNELS:
            raise NotFoundException("no such channel")
        from kabinet_notifications.direct import send_test

        t = texts(request)
        person = principal_of(request.scope).person_id
        result = await send_test(shell_of(request).host, channel, person)
        if result is None:
            say(request, t["no_address"], "error")
        elif result.verdict in ("sent", "delivered"):
            say(request, t["test_sent"], "success")
        else:
            say(request, f"{t['test_failed']}: {result.error}", "error")
        return redirect("/notifications/channels", request)

    # -- statistics ---------------------------------------------------------------------

    @get("/stats", access=VIEW_STATS)
    async def stats(
        self,
        request: Req,
        start: FromQuery[str] = "",
        end: FromQuery[str] = "",
        event: FromQuery[str] = "",
        channel: FromQuery[str] = "",
    ) -> Response[str]:
        host = shell_of(request).host
        try:
            first = parse_day(start, "start")
            last = parse_day(end, "end")
        except NotificationError as exc:
            flash(request, worded(request, exc), "error")
            first = last = None
        # Days are the portal's: its time zone's midnights bound the period and the bars.
        zone = ZoneInfo(host.settings.host.timezone)
        today = host.clock.now().astimezone(zone).date()
        last = last or today
        first = first or (last - dt.timedelta(days=13))
        if first > last:
            first, last = last, first
        lo = dt.datetime.combine(first, dt.time(), zone)
        hi = dt.datetime.combine(last + dt.timedelta(days=1), dt.time(), zone)
        summary = await reports.summary(host, lo, hi, event=event, channel=channel)
        t = texts(request)
        fmt = "%d.%m" if summary.step == "day" else "%H:00"
        bucket_labels = [b.strftime(fmt) for b in summary.buckets]
        s = await svc(request)
        names = labels(request, s)
        return await page(
            request,
            "notifications/stats.html",
            t=t,
            names=names,
            summary=summary,
            status_chart=charts.stacked(
                bucket_labels,
                summary.by_status,
                title=t["by_status"],
                css_class="chart-wide",
                names=names["status"],
            ),
            status_chart_phone=charts.stacked(
                bucket_labels,
                summary.by_status,
                title=t["by_status"],
                width=360,
                css_class="chart-phone",
                names=names["status"],
            ),
            channel_chart=charts.bars(
                summary.by_channel, title=t["by_channel"], names=names["channel"]
            ),
            start=first.isoformat(),
            end=last.isoformat(),
            event=event,
            channel=channel,
            events=sorted(s.catalog.types),
            all_channels=CHANNELS,
        )

    # -- undelivered and resend ---------------------------------------------------------

    async def _within(self, request: Req) -> frozenset[int] | None:
        """Where the person's right to resend reaches: ``None`` everywhere (an admin), else
        the organizations assigned to them (deliveries are addressed to organizations)."""
        reach = await shell_of(request).host.access.organizations(
            principal_of(request.scope), RESEND
        )
        return None if isinstance(reach, AllOrganizations) else frozenset(reach)

    def _filters(self, q: dict[str, str], within: frozenset[int] | None) -> reports.Filters:
        org = q.get("organization", "").strip()
        if org and not org.isdigit():
            raise NotificationError("an organization is a number", "organization", key="number")
        first = parse_day(q.get("start", ""), "start")
        last = parse_day(q.get("end", ""), "end")
        status = q.get("status", "")
        if status not in ("", "failed", "skipped"):
            raise NotificationError("status is failed or skipped", "status", key="status")
        channel = q.get("channel", "")
        if channel and channel not in CHANNELS:
            raise NotificationError("unknown channel", "channel", key="channel")
        return reports.Filters(
            event=q.get("event", ""),
            channel=channel,
            organization=int(org) if org else None,
            start=dt.datetime.combine(first, dt.time(), dt.UTC) if first else None,
            end=dt.datetime.combine(last + dt.timedelta(days=1), dt.time(), dt.UTC)
            if last
            else None,
            status=status,
            within=within,
        )

    @get("/failed", access=DO_RESEND)
    async def failed(self, request: Req, page_no: FromQuery[int] = 1) -> Response[str]:
        host = shell_of(request).host
        q = {k: v for k, v in request.query_params.items() if isinstance(v, str)}
        error = None
        within = await self._within(request)
        try:
            f = self._filters(q, within)
        except NotificationError as exc:
            error, f = exc, reports.Filters(within=within)
        rows, total = await reports.undelivered(host, f, page=page_no)
        contacts = await shell_of(request).allowed(principal_of(request.scope), CONTACTS)
        for r in rows:
            r["shown_address"] = r["address"] if contacts else mask_address(r["address"])
        s = await svc(request)
        return await page(
            request,
            "notifications/failed.html",
            picker=picker_source(request, "organizations"),
            organization_name=await _organization_name(request, f.organization),
            status_code=400 if error else 200,
            t=texts(request),
            names=labels(request, s),
            rows=rows,
            total=total,
            page_no=page_no,
            pages=max(1, -(-total // reports.PAGE)),
            q=q,
            error=error,
            error_text=worded(request, error) if error else "",
            resends=await reports.resends_of(host, [r["id"] for r in rows]),
            events=sorted(s.catalog.types),
            all_channels=CHANNELS,
        )

    @post("/failed/resend", access=DO_RESEND)
    async def resend(self, request: Req) -> Response[str]:
        host = shell_of(request).host
        data = await form(request)
        channel = one(data, "channel") or None
        try:
            if one(data, "scope") == "all":
                q = {
                    k: one(data, k)
                    for k in ("event", "channel_filter", "organization", "start", "end", "status")
                }
                q["channel"] = q.pop("channel_filter")
                new = await reports.resend_filtered(
                    host,
                    self._filters(q, await self._within(request)),
                    channel=channel,
                    editor=editor(request),
                )
            else:
                ids = [int(v) for v in data.get("id", []) if v.isdigit()]
                if not ids:
                    raise NotificationError("choose a delivery", "id", key="choose")
                new = await reports.resend(
                    host,
                    ids,
                    channel=channel,
                    editor=editor(request),
                    within=await self._within(request),
                )
        except NotificationError as exc:
            say(request, worded(request, exc), "error")
            return redirect("/notifications/failed", request)
        say(request, texts(request)["resent"].format(n=len(new)), "success")
        return redirect("/notifications/failed", request)


def routers() -> list[Any]:
    return [StaffPages]


async def _organization_name(request: Req, organization_id: int | None) -> str:
    """The filter's organization by name, when the companies app shows it to this person."""
    companies = shell_of(request).host.services.get("companies")
    if organization_id is None or companies is None:
        return ""
    try:
        found = await companies.organization(organization_id, principal_of(request.scope))
    except Exception:  # not visible to this person, or gone: the number stays
        return ""
    return str(found.name)
