"""What ``/metrics`` shows of the deliveries, per channel (the ``metrics`` hook): those that
failed in the last hour, and those queued with the oldest one's age (docs/operations.md,
"Metrics"). Two grouped queries at scrape time on the (status, created_at) index."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from typing import TYPE_CHECKING

from sqlalchemy import func, select

from kabinet.metrics import Metric, MetricsCollector, age_seconds, gauge
from kabinet_notifications import models as m
from kabinet_notifications.render import CHANNELS

if TYPE_CHECKING:
    from kabinet.host import Host

WINDOW = dt.timedelta(hours=1)
"""Failures are counted over deliveries created in this window."""


def collectors() -> list[MetricsCollector]:
    return [MetricsCollector(name="notifications", collect=collect)]


async def collect(host: Host) -> Iterable[Metric]:
    d = m.delivery.c
    now = host.clock.now()
    async with host.db.reader() as s:
        failed_rows = await s.execute(
            select(d.channel, func.count())
            .where(d.status == "failed", d.created_at >= now - WINDOW)
            .group_by(d.channel)
        )
        failed: dict[str, int] = {str(ch): int(n) for ch, n in failed_rows}
        queued_rows = await s.execute(
            select(d.channel, func.count(), func.min(d.created_at))
            .where(d.status == "queued")
            .group_by(d.channel)
        )
        queued = {str(ch): (int(n), oldest) for ch, n, oldest in queued_rows}
    failures = gauge(
        "notifications_deliveries_failed_last_hour",
        "Deliveries created in the last hour that failed for good, by channel.",
        ["channel"],
    )
    waiting = gauge(
        "notifications_deliveries_queued",
        "Deliveries waiting to be sent (quiet hours and digests included), by channel.",
        ["channel"],
    )
    oldest = gauge(
        "notifications_deliveries_oldest_queued_seconds",
        "Age of the oldest delivery waiting to be sent (0: none waits), by channel.",
        ["channel"],
    )
    for channel in sorted({*CHANNELS, *failed, *queued}):
        failures.add_metric([channel], failed.get(channel, 0))
        count, first = queued.get(channel, (0, None))
        waiting.add_metric([channel], count)
        oldest.add_metric([channel], age_seconds(now, first))
    return [failures, waiting, oldest]
