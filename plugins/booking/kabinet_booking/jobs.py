"""Background jobs of the booking app (scheduled in plugin.py)."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import delete

from kabinet.host import Host
from kabinet_booking import models as m
from kabinet_booking.settings import Settings


async def prune_keys(host: Host) -> int:
    """Forget API answers kept for retries past ``idempotency_days`` (by the host's clock)."""
    settings = host.plugin_settings("booking", Settings)
    cutoff = host.clock.now() - dt.timedelta(days=settings.idempotency_days)
    async with host.db.session() as session:
        done = await session.execute(
            delete(m.idempotency).where(m.idempotency.c.created_at < cutoff)
        )
    return int(done.rowcount)  # type: ignore[attr-defined]
