"""Counts per hour, notification, channel and status, kept as deliveries change.

Every status a delivery reaches adds one to its hour's row, so the statistics page reads
a few hundred rows for a month however many deliveries there were.
"""

from __future__ import annotations

import collections
import dataclasses
import datetime as dt
from collections.abc import Iterable
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from kabinet_notifications import models as m

STATUSES = ("queued", "sent", "delivered", "failed", "skipped")


def hour_of(value: dt.datetime) -> dt.datetime:
    return value.astimezone(dt.UTC).replace(minute=0, second=0, microsecond=0)


async def bump(
    session: AsyncSession, dialect: str, at: dt.datetime, items: Iterable[tuple[str, str, str]]
) -> None:
    """Add one per ``(event, channel, status)`` in ``items`` to the hour of ``at``."""
    counts = collections.Counter(items)
    if not counts:
        return
    hour = hour_of(at)
    for table, key, when in ((m.stat, "hour", hour), (m.stat_day, "day", hour.replace(hour=0))):
        rows = [
            {key: when, "event": e, "channel": c, "status": s, "count": n}
            for (e, c, s), n in sorted(counts.items())
        ]
        ins = postgresql.insert(table) if dialect == "postgresql" else sqlite.insert(table)
        stmt = ins.on_conflict_do_update(
            index_elements=[key, "event", "channel", "status"],
            set_={"count": table.c.count + ins.excluded.count},
        )
        await session.execute(stmt, rows)


@dataclasses.dataclass
class Summary:
    """What the statistics page draws."""

    buckets: list[dt.datetime]
    """Start of each bar (an hour for periods up to two days, else a day)."""
    by_status: dict[str, list[int]]
    by_channel: dict[str, int]
    totals: dict[str, int]
    step: str


async def summary(
    session: AsyncSession,
    start: dt.datetime,
    end: dt.datetime,
    *,
    event: str | None = None,
    channel: str | None = None,
) -> Summary:
    daily = end - start > dt.timedelta(days=2)
    s = m.stat_day if daily else m.stat
    bucket = s.c.day if daily else s.c.hour
    first = hour_of(start).replace(hour=0) if daily else hour_of(start)
    conds = [bucket >= first, bucket < end]
    if event:
        conds.append(s.c.event == event)
    if channel:
        conds.append(s.c.channel == channel)
    # Two small aggregates rather than one by (bucket, channel, status): the database
    # returns a row per bar segment and one per channel, not their product.
    total = func.sum(s.c.count)
    rows: list[Any] = list(
        (
            await session.execute(
                select(bucket, s.c.status, total).where(*conds).group_by(bucket, s.c.status)
            )
        ).all()
    )
    # A delivery is counted once when it is created: queued, or skipped by preference.
    per_channel = (
        await session.execute(
            select(s.c.channel, total)
            .where(*conds, s.c.status.in_(("queued", "skipped")))
            .group_by(s.c.channel)
        )
    ).all()
    step = dt.timedelta(days=1) if daily else dt.timedelta(hours=1)
    buckets: list[dt.datetime] = []
    cursor = first
    while cursor < end and len(buckets) < 400:
        buckets.append(cursor)
        cursor += step
    index = {b: i for i, b in enumerate(buckets)}
    # SQLite gives the stored UTC times back naive; aware ones hash by their UTC instant.
    index.update({b.replace(tzinfo=None): i for b, i in index.items()})
    by_status = {st: [0] * len(buckets) for st in STATUSES}
    by_channel = {str(ch): int(n) for ch, n in per_channel}
    totals = dict.fromkeys(STATUSES, 0)
    for at, status, count in rows:
        i = index.get(at)
        if i is None or status not in by_status:
            continue
        by_status[status][i] += int(count)
        totals[status] += int(count)
    return Summary(
        buckets=buckets,
        by_status=by_status,
        by_channel=dict(by_channel),
        totals=totals,
        step="day" if daily else "hour",
    )
