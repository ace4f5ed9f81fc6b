"""``/metrics`` shows, per channel, the deliveries that failed in the last hour and those
waiting to be sent (with the oldest one's age), as Prometheus reads them."""

from __future__ import annotations

import datetime as dt
import uuid

from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import delete, insert

from kabinet.host import Host
from kabinet.metrics import Metrics
from kabinet_notifications import models as m
from kabinet_notifications.metrics import collectors


async def read(host: Host) -> dict[tuple[str, str], float]:
    """What the notifications collector adds to a scrape: (metric, channel) -> value."""
    metrics = Metrics(host, collectors())
    text = (await metrics.exposition()).decode()
    assert "+7916" not in text  # an address is never a label
    return {
        (s.name, s.labels.get("channel", "")): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
        if s.name.startswith("kabinet_notifications_") or s.name.startswith("kabinet_metrics")
    }


async def test_hook_metrics_failed_and_queued_deliveries_per_channel(host: Host) -> None:
    event = f"depot.metrics{uuid.uuid4().hex[:8]}"
    now = host.clock.now()

    def row(n: int, channel: str, status: str, minutes_ago: int) -> dict[str, object]:
        at = now - dt.timedelta(minutes=minutes_ago)
        return {
            "key": f"{event}:{n}",
            "event": event,
            "channel": channel,
            "address": "+79160000000",
            "status": status,
            "created_at": at,
            "updated_at": at,
        }

    before = await read(host)
    rows = [
        row(1, "sms", "failed", 5),
        row(2, "sms", "failed", 50),
        row(3, "sms", "failed", 120),  # before the last hour: not counted
        row(4, "email", "failed", 1),
        row(5, "telegram", "queued", 30),
        row(6, "telegram", "queued", 2),
        row(7, "email", "sent", 1),
    ]
    async with host.db.session() as s:
        await s.execute(insert(m.delivery), rows)
    try:
        after = await read(host)
    finally:
        async with host.db.session() as s:
            await s.execute(delete(m.delivery).where(m.delivery.c.event == event))

    def grew(name: str, channel: str) -> float:
        key = (f"kabinet_notifications_{name}", channel)
        return after[key] - before.get(key, 0.0)

    assert grew("deliveries_failed_last_hour", "sms") == 2
    assert grew("deliveries_failed_last_hour", "email") == 1
    assert grew("deliveries_failed_last_hour", "push") == 0  # every channel is listed
    assert grew("deliveries_queued", "telegram") == 2
    assert after[("kabinet_notifications_deliveries_oldest_queued_seconds", "telegram")] >= 30 * 60
    assert after[("kabinet_metrics_collector_up", "")] == 1
