"""Staff pages: notifications, template editor, channels, statistics, undelivered + resend.

Thin routes on the page kit: read the form into a struct (:mod:`.forms`), call the
services, redirect with a flash or render again with the refusal next to the field (a
template error with its line). Handlers are module functions gathered by :func:`router`.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any
from zoneinfo import ZoneInfo

from litestar import Request, Response, Router, get, post
from litestar.exceptions import NotFoundException
from litestar.params import FromPath, FromQuery, QueryParameter

from kabinet.access import AllOrganizations
from kabinet.forms import FieldError, FormView, form_view, read_form
from kabinet.htmx import redirect
from kabinet.i18n import localized
from kabinet.pages import flash, page, picker_source, principal_of, shell_of
from kabinet.paging import PageNo, Paging
from kabinet_notifications import charts, reports
from kabinet_notifications.crypto import mask_address
from kabinet_notifications.forms import (
    CHANNEL_FORMS,
    Active,
    Defaults,
    Resend,
    Rollback,
    TemplateParts,
)
from kabinet_notifications.organizations import organization_name
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
OldPageNo = Annotated[
    int | None,
    QueryParameter(name="page_no", required=False, description="The page's former name."),
]
"""``?page_no=`` of links made before the kit's ``?page=`` (bookmarks keep working)."""
VERSIONS_PAGE = 20
"""A template's versions on one page of the editor."""


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


def worded(request: Req, exc: FieldError) -> str:
    """A refusal shown apart from its field (a flash, the filters' banner): in the
    person's language (``err_<key>`` of texts.py for the app's own, the kit's words for a
    form's), after its field's label."""
    said = exc.text(shell_of(request).language(request))
    field = FIELD_TEXT.get(exc.field or "")
    return f"{texts(request)[field]}: {said}" if field else said


def editor(request: Req) -> Editor:
    p = principal_of(request.scope)
    return Editor(person_id=p.person_id, name=p.name)


def parse_day(value: str, field: str) -> dt.date | None:
    if not value:
        return None
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise NotificationError("a date is YYYY-MM-DD", field, key="date") from None


# -- list and one notification ---------------------------------------------------------


@get("/", access=EDIT)
async def index(request: Req) -> Response[str]:
    s = await svc(request)
    return await page(
        request, "notifications/index.html", t=texts(request), items=await s.notifications()
    )


async def _view(request: Req, event: str) -> Any:
    try:
        return await (await svc(request)).notification(event)
    except NotificationError:
        raise NotFoundException(f"no notification {event}") from None


@get("/n/{event:str}", access=EDIT)
async def notification(request: Req, event: FromPath[str]) -> Response[str]:
    view = await _view(request, event)
    return await page(
        request,
        "notifications/notification.html",
        t=texts(request),
        n=view,
        languages=shell_of(request).host.settings.host.languages,
        all_channels=CHANNELS,
    )


@post("/n/{event:str}/active", access=EDIT)
async def set_active(request: Req, event: FromPath[str]) -> Response[Any]:
    await _view(request, event)
    back = f"/notifications/n/{event}"
    try:
        data = await read_form(request, Active)
        await (await svc(request)).set_active(
            event, data.active, channel=data.channel, editor=editor(request)
        )
    except FieldError as exc:
        return redirect(request, back, flash=worded(request, exc), category="error")
    return redirect(request, back)


@post("/n/{event:str}/defaults", access=EDIT)
async def set_defaults(request: Req, event: FromPath[str]) -> Response[Any]:
    """Staff's defaults: the channels a person gets until they choose."""
    await _view(request, event)
    back = f"/notifications/n/{event}"
    try:
        data = await read_form(request, Defaults)
        await (await svc(request)).set_defaults(event, data.default, editor=editor(request))
    except FieldError as exc:
        return redirect(request, back, flash=worded(request, exc), category="error")
    return redirect(request, back, flash=texts(request)["defaults_saved"])


# -- the template editor ---------------------------------------------------------------


async def _editor(
    request: Req,
    event: str,
    channel: str,
    language: str,
    *,
    parts: dict[str, str] | None = None,
    error: TemplateError | FieldError | None = None,
    preview: dict[str, str] | None = None,
    status: int = 200,
    page_no: int = 1,
) -> Response[str]:
    s = await svc(request)
    view = await _view(request, event)
    if channel not in CHANNELS or language not in shell_of(request).host.settings.host.languages:
        raise NotFoundException("no such channel or language")
    current = await s.template(event, channel, language)
    values = parts or {"subject": current.subject, "body": current.body, "html": current.html}
    if preview is None and error is None:
        try:
            preview = await s.preview(event, channel, values)
        except (TemplateError, NotificationError) as exc:
            error = exc  # the current template, stored before a check that refuses it
    if isinstance(error, FieldError) and not isinstance(error, NotificationError):
        error = NotificationError(worded(request, error), error.field)  # a form's refusal
    # The versions page by page; the links lead to the editor (a post's path may not).
    paging = Paging.of(None, page_no, size=VERSIONS_PAGE)
    paging.path = f"/notifications/n/{event}/{channel}/{language}"
    versions = await s.versions(event, channel, language, limit=paging.limit, offset=paging.offset)
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
        versions=versions,
        paging=paging.counted(await s.count_versions(event, channel, language)),
        error=error,
        preview=preview,
        sms=sms_length(preview["body"]) if preview and channel == "sms" else None,
    )


@get("/n/{event:str}/{channel:str}/{language:str}", access=EDIT)
async def edit(
    request: Req,
    event: FromPath[str],
    channel: FromPath[str],
    language: FromPath[str],
    page_no: PageNo = 1,
) -> Response[str]:
    return await _editor(request, event, channel, language, page_no=page_no)


@post("/n/{event:str}/{channel:str}/{language:str}", access=EDIT)
async def save(
    request: Req, event: FromPath[str], channel: FromPath[str], language: FromPath[str]
) -> Response[Any]:
    await _view(request, event)
    if channel not in CHANNELS:
        raise NotFoundException("no such channel")
    s = await svc(request)
    parts: dict[str, str] | None = None
    try:
        data = await read_form(request, TemplateParts)
        parts = data.parts()
        if data.action == "preview":
            shown = await s.preview(event, channel, parts)
            return await _editor(request, event, channel, language, parts=parts, preview=shown)
        await s.save_template(event, channel, language, parts, editor=editor(request))
    except (TemplateError, FieldError) as exc:
        return await _editor(request, event, channel, language, parts=parts, error=exc, status=400)
    return redirect(
        request,
        f"/notifications/n/{event}/{channel}/{language}",
        flash=texts(request)["saved"],
    )


@post("/n/{event:str}/{channel:str}/{language:str}/rollback", access=EDIT)
async def rollback(
    request: Req, event: FromPath[str], channel: FromPath[str], language: FromPath[str]
) -> Response[Any]:
    await _view(request, event)
    try:
        data = await read_form(request, Rollback)
        await (await svc(request)).rollback(
            event, channel, language, data.version, editor=editor(request)
        )
    except FieldError as exc:
        if exc.status == 404:
            raise NotFoundException(exc.message) from None
        return await _editor(request, event, channel, language, error=exc, status=400)
    except TemplateError as exc:  # a version stored before a check that now refuses it
        return await _editor(request, event, channel, language, error=exc, status=400)
    return redirect(
        request,
        f"/notifications/n/{event}/{channel}/{language}",
        flash=texts(request)["saved"],
    )


# -- channels --------------------------------------------------------------------------


async def _channels(
    request: Req, *, status: int = 200, posted: str = "", form: FormView | None = None
) -> Response[str]:
    s = await svc(request)
    return await page(
        request,
        "notifications/channels.html",
        status_code=status,
        t=texts(request),
        channels=await s.channel_view(),
        fields=CHANNEL_FIELDS,
        secrets=SECRET_FIELDS,
        posted=posted,
        form=form,
    )


@get("/channels", access=MANAGE_CHANNELS)
async def channels(request: Req) -> Response[str]:
    return await _channels(request)


@post("/channels/{channel:str}", access=MANAGE_CHANNELS)
async def save_channel(request: Req, channel: FromPath[str]) -> Response[Any]:
    if channel not in CHANNELS:
        raise NotFoundException("no such channel")
    try:
        data = await read_form(request, CHANNEL_FORMS[channel])
        sent = await request.form()
        values: dict[str, str] = {}
        for key in CHANNEL_FIELDS[channel]:
            if key in sent:  # a field not sent keeps its value; an emptied one is stored empty
                values[key] = getattr(data, key) or ""
        await (await svc(request)).save_channel(
            channel,
            getattr(data, "enabled"),  # noqa: B009 - a field of the channel's own form
            values,
            editor=editor(request),
            clear=[k for k in SECRET_FIELDS[channel] if getattr(data, f"clear_{k}")],
        )
    except FieldError as exc:
        return await _channels(
            request, status=exc.status, posted=channel, form=await form_view(request, exc)
        )
    return redirect(request, "/notifications/channels", flash=texts(request)["channel_saved"])


@post("/channels/{channel:str}/test", access=MANAGE_CHANNELS)
async def test_channel(request: Req, channel: FromPath[str]) -> Response[Any]:
    if channel not in CHANNELS:
        raise NotFoundException("no such channel")
    from kabinet_notifications.direct import send_test

    t = texts(request)
    person = principal_of(request.scope).person_id
    result = await send_test(shell_of(request).host, channel, person)
    back = "/notifications/channels"
    if result is None:
        return redirect(request, back, flash=t["no_address"], category="error")
    if result.verdict in ("sent", "delivered"):
        return redirect(request, back, flash=t["test_sent"])
    return redirect(request, back, flash=f"{t['test_failed']}: {result.error}", category="error")


# -- statistics ------------------------------------------------------------------------


@get("/stats", access=VIEW_STATS)
async def stats(
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


# -- undelivered and resend ------------------------------------------------------------


async def _within(request: Req) -> frozenset[int] | None:
    """Where the person's right to resend reaches: ``None`` everywhere (an admin), else
    the organizations assigned to them (deliveries are addressed to organizations)."""
    reach = await shell_of(request).host.access.organizations(principal_of(request.scope), RESEND)
    return None if isinstance(reach, AllOrganizations) else frozenset(reach)


def _filters(q: dict[str, str], within: frozenset[int] | None) -> reports.Filters:
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
        end=dt.datetime.combine(last + dt.timedelta(days=1), dt.time(), dt.UTC) if last else None,
        status=status,
        within=within,
    )


@get("/failed", access=DO_RESEND)
async def failed(request: Req, page_no: PageNo = 1, old_page: OldPageNo = None) -> Response[str]:
    host = shell_of(request).host
    q = {
        k: v
        for k, v in request.query_params.items()
        if isinstance(v, str) and k not in ("page", "page_no")
    }
    error = None
    within = await _within(request)
    try:
        f = _filters(q, within)
    except NotificationError as exc:
        error, f = exc, reports.Filters(within=within)
    if old_page is not None and "page" not in request.query_params:
        page_no = old_page  # a link from before the kit
    paging = Paging.of(request, page_no, size=reports.PAGE)
    paging.keep = tuple(kv for kv in paging.keep if kv[0] != "page_no")
    rows, total = await reports.undelivered(host, f, limit=paging.limit, offset=paging.offset)
    contacts = await shell_of(request).allowed(principal_of(request.scope), CONTACTS)
    for r in rows:
        r["shown_address"] = r["address"] if contacts else mask_address(r["address"])
    s = await svc(request)
    return await page(
        request,
        "notifications/failed.html",
        picker=picker_source(request, "organizations"),
        organization_name=await _organization_name(request, f.organization),
        status_code=error.status if error else 200,
        t=texts(request),
        names=labels(request, s),
        rows=rows,
        total=total,
        paging=paging.counted(total),
        q=q,
        error=error,
        error_text=worded(request, error) if error else "",
        resends=await reports.resends_of(host, [r["id"] for r in rows]),
        events=sorted(s.catalog.types),
        all_channels=CHANNELS,
    )


@post("/failed/resend", access=DO_RESEND)
async def resend(request: Req) -> Response[Any]:
    host = shell_of(request).host
    back = "/notifications/failed"
    try:
        data = await read_form(request, Resend)
        if data.scope == "all":
            new = await reports.resend_filtered(
                host,
                _filters(data.filters(), await _within(request)),
                channel=data.channel,
                editor=editor(request),
            )
        else:
            if not data.id:
                raise NotificationError("choose a delivery", "id", key="choose")
            new = await reports.resend(
                host,
                data.id,
                channel=data.channel,
                editor=editor(request),
                within=await _within(request),
            )
    except FieldError as exc:
        return redirect(request, back, flash=worded(request, exc), category="error")
    return redirect(request, back, flash=texts(request)["resent"].format(n=len(new)))


def router() -> Router:
    """``/notifications``: the staff's pages (each route checks its own permission)."""
    return Router(
        "/notifications",
        include_in_schema=False,
        route_handlers=[
            index,
            notification,
            set_active,
            set_defaults,
            edit,
            save,
            rollback,
            channels,
            save_channel,
            test_channel,
            stats,
            failed,
            resend,
        ],
    )


async def _organization_name(request: Req, organization_id: int | None) -> str:
    """The filter's organization by name, when the companies app shows it to this person."""
    host = shell_of(request).host
    return await organization_name(host, organization_id, principal_of(request.scope))
