"""Quiet hours: SMS and Telegram messages due in a person's quiet hours wait for their end.

A person sets a window on their preferences page (``/notifications/me``), in their own
time zone, as minutes after midnight; a window may cross midnight (22:00–08:00). E-mail
and push are never held: they do not wake anyone. The sender (:func:`postpone`, called by
``sending.send`` on what it claimed) puts a held message back in the queue, due at the
window's end, so whatever else comes for the person there meanwhile joins it as one
digest.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from sqlalchemy import delete, insert, select, update

from kabinet.forms import FieldError
from kabinet.identity.services import PEOPLE
from kabinet_notifications import models as m

if TYPE_CHECKING:
    from kabinet.host import Host

QUIET_CHANNELS = ("sms", "telegram")
"""The channels quiet hours hold (a phone that buzzes); e-mail and push go at once."""


class QuietHoursError(FieldError):
    """A window that cannot be stored (400); ``field`` names the input at fault, ``reason``
    is the key of its wording on the page (``qerr_<reason>``: ``format``, ``both``, ``same``)."""

    def __init__(self, message: str, field: str, reason: str) -> None:
        super().__init__(message, field)
        self.reason = reason

    def text(self, lang: str) -> str:
        from kabinet_notifications.texts import TEXT

        t = TEXT.get(lang, TEXT["en"])
        return t.get(f"qerr_{self.reason}", self.message)


def parse_time(value: str, field: str) -> int | None:
    """``HH:MM`` as minutes after midnight; empty is ``None``."""
    value = value.strip()
    if not value:
        return None
    hours, sep, minutes = value.partition(":")
    if (
        not sep
        or not hours.isdigit()
        or not minutes.isdigit()
        or len(minutes) != 2
        or not 0 <= int(hours) <= 23
        or not 0 <= int(minutes) <= 59
    ):
        raise QuietHoursError("a time is HH:MM", field, "format")
    return int(hours) * 60 + int(minutes)


def format_time(minutes: int | None) -> str:
    return "" if minutes is None else f"{minutes // 60:02d}:{minutes % 60:02d}"


def window_end(
    now: dt.datetime, zone: ZoneInfo, start: int | None, end: int | None
) -> dt.datetime | None:
    """When the quiet window ``now`` is in ends (in UTC), or ``None`` outside it."""
    if start is None or end is None or start == end:
        return None
    local = now.astimezone(zone)
    minute = local.hour * 60 + local.minute
    # a window across midnight is the evening's part and the morning's
    inside = start <= minute < end if start < end else minute >= start or minute < end
    if not inside:
        return None
    day = local.date()
    if start > end and minute >= start:
        day += dt.timedelta(days=1)  # the evening part ends tomorrow morning
    ends = dt.datetime.combine(day, dt.time(end // 60, end % 60), zone)
    return ends.astimezone(dt.UTC)


async def quiet_hours(host: Host, person_id: int) -> tuple[int | None, int | None]:
    """A person's window (start, end), minutes after their midnight; ``(None, None)``."""
    ps = m.person_setting
    async with host.db.reader() as s:
        row = (
            await s.execute(
                select(ps.c.quiet_from, ps.c.quiet_to).where(ps.c.person_id == person_id)
            )
        ).one_or_none()
    return (row[0], row[1]) if row else (None, None)


async def set_quiet_hours(host: Host, person_id: int, start: int | None, end: int | None) -> None:
    """Store a person's window; both ends or neither, and not the same minute."""
    if (start is None) != (end is None):
        field = "quiet_to" if end is None else "quiet_from"
        raise QuietHoursError("give both ends of the quiet hours, or neither", field, "both")
    if start is not None and start == end:
        raise QuietHoursError("the quiet hours end when they begin", "quiet_to", "same")
    ps = m.person_setting
    values = {"quiet_from": start, "quiet_to": end, "updated_at": host.clock.now()}
    async with host.db.session() as s:
        found = await s.scalar(select(ps.c.person_id).where(ps.c.person_id == person_id))
        if found is None and start is None:
            return
        if found is None:
            await s.execute(insert(ps).values(person_id=person_id, **values))
        elif start is None:
            await s.execute(delete(ps).where(ps.c.person_id == person_id))
        else:
            await s.execute(update(ps).where(ps.c.person_id == person_id).values(**values))


async def _windows(host: Host, people: Sequence[int]) -> dict[int, tuple[int, int, ZoneInfo]]:
    ps = m.person_setting
    a = PEOPLE
    out: dict[int, tuple[int, int, ZoneInfo]] = {}
    if not people:
        return out
    async with host.db.reader() as s:
        rows = await s.execute(
            select(ps.c.person_id, ps.c.quiet_from, ps.c.quiet_to, a.c.timezone)
            .join(a, a.c.id == ps.c.person_id)
            .where(ps.c.person_id.in_(sorted(set(people))), ps.c.quiet_from.is_not(None))
        )
        for person, start, end, zone in rows:
            try:
                tz = ZoneInfo(zone or host.settings.host.timezone)
            except (ValueError, KeyError):
                tz = ZoneInfo(host.settings.host.timezone)
            out[person] = (start, end, tz)
    return out


async def postpone(
    host: Host, claimed: list[dict[str, Any]], now: dt.datetime
) -> tuple[list[dict[str, Any]], dict[float, list[int]]]:
    """Of the rows a sender claimed, those to send now; the rest are put back in the queue
    due at their person's quiet window's end. Returns (to send now, {delay: ids held}).

    Only a notification of an event is held: a direct message (a sign-in code) is wanted
    now, whatever the hour."""
    candidates = [
        r
        for r in claimed
        if r["channel"] in QUIET_CHANNELS
        and r["event_id"] is not None
        and r["person_id"] is not None
    ]
    held_ids = {r["id"] for r in candidates}
    windows = await _windows(host, [r["person_id"] for r in candidates])
    if not windows:
        return claimed, {}
    held: dict[dt.datetime, list[dict[str, Any]]] = defaultdict(list)
    keep = []
    for row in claimed:
        found = windows.get(row["person_id"]) if row["id"] in held_ids else None
        ends = window_end(now, found[2], found[0], found[1]) if found else None
        if ends is None:
            keep.append(row)
        else:
            held[ends].append(row)
    if not held:
        return claimed, {}
    d = m.delivery
    later: dict[float, list[int]] = {}
    async with host.db.session() as s:
        for ends, rows in held.items():
            for row in rows:  # the claim's attempt is given back: nothing was tried
                await s.execute(
                    update(d)
                    .where(d.c.id == row["id"])
                    .values(attempts=row["attempts"], next_attempt_at=ends, updated_at=now)
                )
            later[(ends - now).total_seconds()] = [int(r["id"]) for r in rows]
    return keep, later
