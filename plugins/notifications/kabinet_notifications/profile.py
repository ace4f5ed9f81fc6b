"""A person's own page: which notifications on which channel, Telegram link, browser push.

The choices need a table, a Telegram link and a push button, so they are a page of their
own (``/notifications/me``, in the navigation); :func:`profile_panel` puts a summary and a
link to it on identity's profile page (slot ``identity.profile``).
"""

from __future__ import annotations

from typing import Any

from litestar import Controller, Request, Response, get, post
from litestar.exceptions import NotAuthorizedException
from markupsafe import Markup

from kabinet.access import signed_in
from kabinet.pages import principal_of, shell_of
from kabinet_notifications.pages import form, page, redirect, say, svc, texts
from kabinet_notifications.services import NotificationsService, service_of
from kabinet_notifications.texts import TEXT

Req = Request[Any, Any, Any]


def me(request: Req) -> int:
    person = principal_of(request.scope).person_id
    if person is None:
        raise NotAuthorizedException()
    return person


async def _render(
    request: Req, s: NotificationsService, *, telegram_url: str = ""
) -> Response[str]:
    person = me(request)
    prefs = await s.preferences(person)
    configs = await s.channel_configs()
    items = [n for n in await s.notifications() if n.active and n.type.event]
    return await page(
        request,
        "notifications/me.html",
        t=texts(request),
        items=items,
        prefs=prefs,
        telegram=await s.telegram_state(person),
        telegram_url=telegram_url,
        devices=await s.subscriptions_of(person),
        vapid_key=configs["push"].get("vapid_public_key", ""),
    )


class ProfilePages(Controller):
    path = "/notifications/me"
    include_in_schema = False

    @get("/", access=signed_in)
    async def index(self, request: Req) -> Response[str]:
        return await _render(request, await svc(request))

    @post("/", access=signed_in)
    async def save(self, request: Req) -> Response[str]:
        data = await form(request)
        chosen = set()
        for value in data.get("p", []):
            event, _, channel = value.rpartition(":")
            chosen.add((event, channel))
        await (await svc(request)).set_preferences(me(request), chosen)
        say(request, texts(request)["prefs_saved"], "success")
        return redirect("/notifications/me", request)

    @post("/telegram", access=signed_in)
    async def telegram(self, request: Req) -> Response[str]:
        s = await svc(request)
        token = await s.telegram_link_token(me(request))
        bot = (await s.channel_configs())["telegram"]["telegram_bot_username"]
        return await _render(request, s, telegram_url=f"https://t.me/{bot}?start={token}")

    @post("/telegram/unlink", access=signed_in)
    async def unlink(self, request: Req) -> Response[str]:
        await (await svc(request)).unlink_telegram(me(request))
        return redirect("/notifications/me")


async def profile_panel(request: Req, host: Any, lang: str, **_: Any) -> str:
    """The profile's part: how many choices are off, and the way to the page."""
    t = TEXT.get(lang, TEXT["en"])
    person = principal_of(request.scope).person_id
    if person is None:
        return ""
    s = await service_of(shell_of(request).host if host is None else host)
    off = sum(1 for on in (await s.preferences(person)).values() if not on)
    state = t["panel_off"].format(n=off) if off else t["panel_all_on"]
    return str(
        Markup(
            '<p id="notifications-summary">{}</p>'
            '<p><a class="button secondary" href="/notifications/me">{}</a></p>'
        ).format(state, t["panel_choose"])
    )


def routers() -> list[Any]:
    return [ProfilePages]
