"""What a person gets: staff's default channels per notification, and each person's own
choice per kind of message and channel, which wins (issue 16, point 3). The service's
methods of the same names call these."""

from __future__ import annotations

from collections.abc import Collection
from typing import TYPE_CHECKING

from sqlalchemy import delete, insert, select

from kabinet_notifications import models as m
from kabinet_notifications.render import CHANNELS

if TYPE_CHECKING:
    from kabinet_notifications.services import Editor, NotificationsService


async def set_defaults(
    svc: NotificationsService, event: str, on: Collection[str], *, editor: Editor
) -> None:
    """Staff's defaults: the channels of ``event`` a person gets until they choose
    (the others are off for them until they turn them on); a person's choice wins."""
    from kabinet_notifications.services import NotificationError

    t = svc.type_of(event)
    if t.mandatory:
        raise NotificationError(
            "a mandatory notification goes on every channel", "default", key="mandatory"
        )
    unknown = set(on) - set(CHANNELS)
    if unknown:
        raise NotificationError(f"unknown channel {sorted(unknown)[0]!r}", "default")
    view = await svc.notification(event)
    off = sorted(c for c in view.channels if c not in on)
    await svc._touch(event, editor, defaults_off=off)


async def preferences(svc: NotificationsService, person_id: int) -> dict[tuple[str, str], bool]:
    """(event, channel) -> on, as the person chose; what they never chose is not here
    (see :func:`wanted`)."""
    p = m.preference
    async with svc.host.db.reader() as s:
        rows = (await s.execute(select(p).where(p.c.person_id == person_id))).mappings()
        return {(r["event"], r["channel"]): bool(r["enabled"]) for r in rows}


async def wanted(svc: NotificationsService, person_id: int) -> dict[tuple[str, str], bool]:
    """(event, channel) -> on for every channel of every notification: the person's
    choice, else staff's default; a mandatory one is always on."""
    chosen = await preferences(svc, person_id)
    return {
        (v.type.event, c): True
        if v.type.mandatory
        else chosen.get((v.type.event, c), v.on_by_default(c))
        for v in await svc.notifications()
        for c in v.channels
    }


async def set_preferences(
    svc: NotificationsService, person_id: int, chosen: set[tuple[str, str]]
) -> None:
    """``chosen`` = the (event, channel) pairs the person wants; mandatory ones stay on.
    Every box as shown is stored: a later change of staff's defaults does not move it."""
    p = m.preference
    rows = []
    for view in await svc.notifications():
        if view.type.mandatory:
            continue
        for channel in view.channels:
            rows.append(
                {
                    "person_id": person_id,
                    "event": view.type.event,
                    "channel": channel,
                    "enabled": (view.type.event, channel) in chosen,
                }
            )
    async with svc.host.db.session() as s:
        await s.execute(delete(p).where(p.c.person_id == person_id))
        if rows:
            await s.execute(insert(p), rows)
