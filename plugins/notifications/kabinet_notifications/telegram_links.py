"""Linking a person's Telegram chat: a one-time deep-link token, the bot's ``/start``
update that uses it, the link's state, unlinking. The service's methods of the same
purpose (``telegram_link_token``, ``telegram_update``, ``telegram_state``,
``unlink_telegram``) call these."""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import structlog
from sqlalchemy import delete, insert, select, update

from kabinet_notifications import models as m

if TYPE_CHECKING:
    from kabinet_notifications.services import NotificationsService

log = structlog.get_logger("kabinet.notifications")


def digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


async def link_token(svc: NotificationsService, person_id: int) -> str:
    """A one-time token for ``https://t.me/<bot>?start=<token>`` (stored hashed)."""
    token = secrets.token_urlsafe(24)
    expires = svc.now + dt.timedelta(seconds=svc.settings.telegram_link_ttl)
    async with svc.host.db.session() as s:
        await s.execute(delete(m.telegram_token).where(m.telegram_token.c.person_id == person_id))
        await s.execute(
            insert(m.telegram_token).values(
                token_hash=digest(token), person_id=person_id, expires_at=expires
            )
        )
    return token


async def update_from(svc: NotificationsService, update_: Mapping[str, Any]) -> bool:
    """Read one webhook update; ``/start <token>`` links the chat. True if it linked."""
    from kabinet_notifications.services import utc

    message = update_.get("message") or {}
    text = message.get("text") or ""
    chat = (message.get("chat") or {}).get("id")
    if not isinstance(text, str) or not text.startswith("/start ") or not isinstance(chat, int):
        return False
    token = text.removeprefix("/start ").strip()
    tt = m.telegram_token
    async with svc.host.db.session() as s:
        row = (
            (await s.execute(select(tt).where(tt.c.token_hash == digest(token)).with_for_update()))
            .mappings()
            .one_or_none()
        )
        expires = utc(row["expires_at"]) if row else None
        if row is None or row["used_at"] is not None or expires is None or expires <= svc.now:
            log.info("notifications.telegram_link_refused")
            return False
        await s.execute(
            update(tt).where(tt.c.token_hash == row["token_hash"]).values(used_at=svc.now)
        )
        person = row["person_id"]
        await s.execute(delete(m.telegram_link).where(m.telegram_link.c.person_id == person))
        await s.execute(
            insert(m.telegram_link).values(
                person_id=person, chat_id=chat, state="linked", linked_at=svc.now
            )
        )
    log.info("notifications.telegram_linked", person_id=person)
    return True


async def state(svc: NotificationsService, person_id: int) -> str | None:
    async with svc.host.db.reader() as s:
        found = await s.scalar(
            select(m.telegram_link.c.state).where(m.telegram_link.c.person_id == person_id)
        )
        return str(found) if found else None


async def unlink(svc: NotificationsService, person_id: int) -> None:
    async with svc.host.db.session() as s:
        await s.execute(delete(m.telegram_link).where(m.telegram_link.c.person_id == person_id))
