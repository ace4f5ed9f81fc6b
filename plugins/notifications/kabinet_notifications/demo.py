"""Demo data: default templates active, and a few deliveries of each status for statistics."""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING

from sqlalchemy import func, select

from kabinet_notifications import models as m
from kabinet_notifications import stats
from kabinet_notifications.services import service_of

if TYPE_CHECKING:
    from kabinet.host import Host

SPREAD = (
    ("sent", "email", 9),
    ("delivered", "sms", 6),
    ("failed", "sms", 2),
    ("failed", "email", 1),
    ("skipped", "telegram", 2),
    ("queued", "push", 1),
)

FAILURES = {
    "sms": "SMS.ru 207: no route to the number",
    "email": "recipient refused: [550]",
    "telegram": "Forbidden: bot was blocked by the user",
    "push": "push service 410: subscription gone",
}


async def load_demo(host: Host) -> None:
    """Idempotent: adds the sample deliveries once (keyed ``demo:…``)."""
    svc = await service_of(host)
    d = m.delivery
    async with host.db.session() as s:
        done = await s.scalar(select(func.count()).select_from(d).where(d.c.key.like("demo:%")))
        if done:
            return
        now = host.clock.now()
        event = "identity.code"
        rows = []
        counted = []
        n = 0
        for status, channel, count in SPREAD:
            for _ in range(count):
                n += 1
                at = now - dt.timedelta(hours=5 * n)
                rows.append(
                    {
                        "key": f"demo:{n}",
                        "event": event,
                        "channel": channel,
                        "address": "demo@example.com" if channel == "email" else "+79160000000",
                        "language": "ru",
                        "subject": "Код подтверждения",
                        "body": "Ваш код: •••",
                        "html": "",
                        "variables": {"code": "•••"},
                        "masked": True,
                        "status": status,
                        "attempts": 0 if status in ("queued", "skipped") else 1,
                        "error": FAILURES[channel] if status == "failed" else None,
                        "created_at": at,
                        "updated_at": at,
                        "sent_at": at if status in ("sent", "delivered") else None,
                    }
                )
                counted.append((at, event, channel, status))  # each message once
        await s.execute(d.insert(), rows)
        for at, e, c, st in counted:
            await stats.bump(s, host.db.dialect, at, [(e, c, st)])
    _ = svc
