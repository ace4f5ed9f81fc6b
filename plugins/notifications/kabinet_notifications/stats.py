"""Counts per hour, notification, channel and status, kept as deliveries change.

Each delivery is counted once, in the hour it was created, under its status now: a new
one adds one to its status, a change of status moves that one from the old status to the
new. So the statuses of a period add up to its messages (never "queued" and "sent" of one
message both), and the statistics page reads a few hundred rows however many deliveries
there were. Days are made of those hours in the portal's time zone.
"""

from __future__ import annotations

import collections
import dataclasses
import datetime as dt
from collections.abc import Iterable
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import func, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from kabinet_notifications import models as m

STATUSES = ("queued", "sent", "delivered", "failed", "skipped")


def hour_of(value: dt.datetime) -> dt.datetime:
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.UTC)
    return value.astimezone(dt.UTC).replace(minute=0, second=0, microsecond=0)


Move = tuple[dt.datetime, str, str, str | None, str]
"""(the delivery's creation time, event, channel, old status or None if new, new status)."""


async def move(session: AsyncSession, dialect: str, items: Iterable[Move]) -> None:
    """Count each item's delivery under its new status instead of its old one."""
    counts: collections.Counter[tuple[dt.datetime, str, str, str]] = collections.Counter()
    for created, event, channel, old, new in items:
        if old == new:
            continue
        hour = hour_of(created)
        counts[(hour, event, channel, new)] += 1
        if old is not None:
            counts[(hour, event, channel, old)] -= 1
    rows = [
        {"hour": h, "event": e, "channel": c, "status": st, "count": n}
        for (h, e, c, st), n in sorted(counts.items())
        if n
    ]
    if not rows:
        return
    table = m.stat
    ins = postgresql.insert(table) if dialect == "postgresql" else sqlite.insert(table)
    stmt = ins.on_conflict_do_update(
        index_elements=["hour", "event", "channel", "status"],
        set_={"count": table.c.count + ins.excluded.count},
    )
    await session.execute(stmt, rows)


async def bump(
    session: AsyncSession, dialect: str, at: dt.datetime, items: Iterable[tuple[str, str, str]]
) -> None:
    """New deliveries created at ``at``: one per ``(event, channel, status)``."""
    await move(session, dialect, [(at, e, c, None, st) for e, c, st in items])


@dataclasses.dataclass
class Summary:
    """What the statistics page draws."""

    buckets: list[dt.datetime]
    """Start of each bar (an hour for periods up to two days, else a day), in the
    portal's time zone."""
    by_status: dict[str, list[int]]
    by_channel: dict[str, int]
    totals: dict[str, int]
    step: str


async def summary(
    session: AsyncSession,
    start: dt.datetime,
    end: dt.datetime,
    *,
    zone: str = "UTC",
    event: str | None = None,
    channel: str | None = None,
) -> Summary:
    """The messages created in [start, end) by status and channel; bars per hour, or per
    day of the portal's time zone ``zone`` for periods longer than two days."""
    tz = ZoneInfo(zone)
    daily = end - start > dt.timedelta(days=2)
    s = m.stat
    conds = [s.c.hour >= hour_of(start), s.c.hour < end]
    if event:
        conds.append(s.c.event == event)
    if channel:
        conds.append(s.c.channel == channel)
    # Two small aggregates rather than one by (hour, channel, status): the database
    # returns a row per hour and status, and one per channel, not their product.
    total = func.sum(s.c.count)
    rows: list[Any] = list(
        (
            await session.execute(
                select(s.c.hour, s.c.status, total).where(*conds).group_by(s.c.hour, s.c.status)
            )
        ).all()
    )
    per_channel = (
        await session.execute(select(s.c.channel, total).where(*conds).group_by(s.c.channel))
    ).all()
    first = start.astimezone(tz)
    if daily:
        first = first.replace(hour=0, minute=0, second=0, microsecond=0)
    else:
        first = first.replace(minute=0, second=0, microsecond=0)
    buckets: list[dt.datetime] = []
    cursor = first
    while cursor < end and len(buckets) < 400:
        buckets.append(cursor)
        if daily:  # the next local midnight (a day of 23 or 25 hours where clocks move)
            nxt = (cursor + dt.timedelta(days=1, hours=3)).date()
            cursor = dt.datetime.combine(nxt, dt.time(), tz)
        else:
            cursor = (cursor.astimezone(dt.UTC) + dt.timedelta(hours=1)).astimezone(tz)
    index: dict[Any, int] = {}
    for i, b in enumerate(buckets):
        index[b.date() if daily else b.astimezone(dt.UTC)] = i
    by_status = {st: [0] * len(buckets) for st in STATUSES}
    by_channel = {str(ch): int(n) for ch, n in per_channel if n}
    totals = dict.fromkeys(STATUSES, 0)
    for at, status, count in rows:
        at = hour_of(at)
        found = index.get(at.astimezone(tz).date() if daily else at)
        if found is None or status not in by_status:
            continue
        by_status[status][found] += int(count)
        totals[status] += int(count)
    return Summary(
        buckets=buckets,
        by_status=by_status,
        by_channel=dict(by_channel),
        totals=totals,
        step="day" if daily else "hour",
    )
