"""Telegram long polling: where no public URL exists, a job fetches updates with ``getUpdates``.

Each update goes to :meth:`NotificationsService.telegram_update`, the same rules the webhook
applies (``/start <token>`` links the chat). The offset (last update id + 1) is stored per
bot, so an update is confirmed to Telegram and not handled again on the next tick.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import httpx
import structlog
from sqlalchemy import insert, select, update

from kabinet_notifications import models as m
from kabinet_notifications.channels.telegram import TelegramApi
from kabinet_notifications.services import service_of

if TYPE_CHECKING:
    from kabinet.host import Host

log = structlog.get_logger("kabinet.notifications")
POLL_ACTOR = "notifications.poll_telegram"


async def poll_telegram(host: Host) -> int:
    """One ``getUpdates`` round; returns how many updates linked a chat.

    Does nothing when Telegram is off, has no bot token (messages go to the folder) or has a
    webhook URL (Telegram then pushes updates and refuses ``getUpdates`` with 409).
    """
    svc = await service_of(host)
    config = (await svc.channel_configs())["telegram"]
    if not config["enabled"] or config["transport"] != "provider":
        return 0
    if config.get("telegram_webhook_url"):
        return 0
    token = str(config["telegram_token"])
    bot_id = token.split(":", 1)[0]
    offset = await _offset(host, bot_id)
    params: dict[str, Any] = {
        "timeout": int(config.get("telegram_poll_timeout") or 0),
        "allowed_updates": ["message"],
    }
    if offset is not None:
        params["offset"] = offset
    api = TelegramApi(token, str(config["telegram_api_url"]))
    try:
        response = await api.call("getUpdates", **params)
    except httpx.HTTPError as exc:
        log.warning("notifications.telegram_poll_failed", reason=type(exc).__name__)
        return 0
    finally:
        await api.close()
    try:
        body: dict[str, Any] = response.json()
    except ValueError:
        body = {}
    if response.status_code != 200 or not body.get("ok"):
        code = int(body.get("error_code") or response.status_code)
        text = str(body.get("description") or f"HTTP {response.status_code}")
        if code == 409:
            log.warning(
                "notifications.telegram_poll_conflict",
                reason="a webhook is set for this bot, so Telegram refuses getUpdates: "
                "enter its URL as telegram_webhook_url, or delete the webhook to poll",
                error=text,
            )
        else:
            log.warning("notifications.telegram_poll_failed", code=code, reason=text)
        return 0
    linked = 0
    for item in body.get("result") or []:
        update_id = item.get("update_id") if isinstance(item, dict) else None
        if not isinstance(update_id, int):
            continue
        if await svc.telegram_update(item):
            linked += 1
        # Stored after each update: a crash re-reads at most one (linking is one-time anyway).
        await _store_offset(host, bot_id, update_id + 1)
    return linked


async def _offset(host: Host, bot_id: str) -> int | None:
    async with host.db.reader() as s:
        found = await s.scalar(
            select(m.telegram_poll.c.next_offset).where(m.telegram_poll.c.bot_id == bot_id)
        )
        return int(found) if found is not None else None


async def _store_offset(host: Host, bot_id: str, next_offset: int) -> None:
    tp = m.telegram_poll
    now = host.clock.now()
    async with host.db.session() as s:
        current = await s.scalar(
            select(tp.c.next_offset).where(tp.c.bot_id == bot_id).with_for_update()
        )
        if current is None:
            await s.execute(
                insert(tp).values(bot_id=bot_id, next_offset=next_offset, updated_at=now)
            )
        elif next_offset > current:
            await s.execute(
                update(tp)
                .where(tp.c.bot_id == bot_id)
                .values(next_offset=next_offset, updated_at=now)
            )
