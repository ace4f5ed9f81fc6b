"""A person's own page: which notifications on which channel, Telegram link, browser push.

The choices need a table, a Telegram link and a push button, so they are a page of their
own (``/notifications/me``, in the navigation); :func:`profile_panel` puts a summary and a
link to it on identity's profile page (slot ``identity.profile``).
"""

from __future__ import annotations

from typing import Any

from litestar import Request, Response, Router, get, post
from litestar.exceptions import NotAuthorizedException
from markupsafe import Markup

from kabinet.access import signed_in
from kabinet.forms import FieldError, FormView, form_view, read_form
from kabinet.htmx import redirect
from kabinet.pages import page, principal_of, shell_of
from kabinet_notifications import quiet
from kabinet_notifications.forms import Preferences
from kabinet_notifications.pages import svc, texts
from kabinet_notifications.services import NotificationsService, service_of
from kabinet_notifications.texts import TEXT

Req = Request[Any, Any, Any]


def me(request: Req) -> int:
    person = principal_of(request.scope).person_id
    if person is None:
        raise NotAuthorizedException()
    return person


async def _render(
    request: Req,
    s: NotificationsService,
    *,
    telegram_url: str = "",
    status: int = 200,
    form: FormView | None = None,
) -> Response[str]:
    person = me(request)
    prefs = await s.wanted(person)
    configs = await s.channel_configs()
    items = [n for n in await s.notifications() if n.active and n.type.event]
    start, end = await quiet.quiet_hours(s.host, person)
    return await page(
        request,
        "notifications/me.html",
        status_code=status,
        t=texts(request),
        items=items,
        prefs=prefs,
        quiet_from=quiet.format_time(start),
        quiet_to=quiet.format_time(end),
        form=form,
        zone=shell_of(request).timezone(request),
        telegram=await s.telegram_state(person),
        telegram_url=telegram_url,
        devices=await s.subscriptions_of(person),
        vapid_key=configs["push"].get("vapid_public_key", ""),
    )


@get("/", access=signed_in)
async def index(request: Req) -> Response[str]:
    return await _render(request, await svc(request))


@post("/", access=signed_in)
async def save(request: Req) -> Response[Any]:
    s = await svc(request)
    try:
        data = await read_form(request, Preferences)
        start = quiet.parse_time(data.quiet_from, "quiet_from")
        end = quiet.parse_time(data.quiet_to, "quiet_to")
        await quiet.set_quiet_hours(s.host, me(request), start, end)
    except FieldError as exc:
        # nothing is stored: the person sees their choices and the refusal by its field
        return await _render(request, s, status=exc.status, form=await form_view(request, exc))
    chosen = set()
    for value in data.p:
        event, _, channel = value.rpartition(":")
        chosen.add((event, channel))
    await s.set_preferences(me(request), chosen)
    return redirect(request, "/notifications/me", flash=texts(request)["prefs_saved"])


@post("/telegram", access=signed_in)
async def telegram(request: Req) -> Response[str]:
    s = await svc(request)
    token = await s.telegram_link_token(me(request))
    bot = (await s.channel_configs())["telegram"]["telegram_bot_username"]
    return await _render(request, s, telegram_url=f"https://t.me/{bot}?start={token}")


@post("/telegram/unlink", access=signed_in)
async def unlink(request: Req) -> Response[Any]:
    await (await svc(request)).unlink_telegram(me(request))
    return redirect(request, "/notifications/me")


async def profile_panel(request: Req, host: Any, lang: str, **_: Any) -> str:
    """The profile's part: how many choices are off, and the way to the page."""
    t = TEXT.get(lang, TEXT["en"])
    person = principal_of(request.scope).person_id
    if person is None:
        return ""
    s = await service_of(shell_of(request).host if host is None else host)
    chosen = await s.preferences(person)
    off = [key for key, on in (await s.wanted(person)).items() if not on]
    mine = sum(1 for key in off if key in chosen)
    said = [t["panel_off"].format(n=mine)] if mine else []
    if len(off) > mine:  # staff's defaults the person has not changed
        said.append(t["panel_default_off"].format(n=len(off) - mine))
    state = " ".join(said) or t["panel_all_on"]
    return str(
        Markup(
            '<p id="notifications-summary">{}</p>'
            '<p><a class="button secondary" href="/notifications/me">{}</a></p>'
        ).format(state, t["panel_choose"])
    )


def router() -> Router:
    """``/notifications/me``: a signed-in person's own choices."""
    return Router(
        "/notifications/me",
        include_in_schema=False,
        route_handlers=[index, save, telegram, unlink],
    )
