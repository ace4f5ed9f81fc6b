"""What ``/metrics`` shows of sign-ins (the ``metrics`` hook): failed sign-ins and accounts
locked in the last hour, read from the audit log at scrape time (its ``action`` and
``at`` columns are indexed). A failure for an identifier of no account is not in the audit
log (there is no account to name) and is not counted here (docs/operations.md, "Metrics")."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from typing import TYPE_CHECKING

from sqlalchemy import func, select

from kabinet.identity.models import SecurityEvent
from kabinet.metrics import Metric, MetricsCollector, gauge

if TYPE_CHECKING:
    from kabinet.host import Host

WINDOW = dt.timedelta(hours=1)


def collectors() -> list[MetricsCollector]:
    return [MetricsCollector(name="identity", collect=collect)]


async def collect(host: Host) -> Iterable[Metric]:
    since = host.clock.now() - WINDOW
    async with host.db.reader() as s:
        rows = await s.execute(
            select(SecurityEvent.action, func.count())
            .where(
                SecurityEvent.action.in_(("login.failed", "login.locked")),
                SecurityEvent.at >= since,
            )
            .group_by(SecurityEvent.action)
        )
        counts: dict[str, int] = {str(action): int(n) for action, n in rows}
    failures = gauge(
        "identity_signin_failures_last_hour",
        "Failed sign-ins to existing accounts (wrong password, disabled) in the last hour.",
    )
    failures.add_metric([], counts.get("login.failed", 0))
    lockouts = gauge(
        "identity_signin_lockouts_last_hour",
        "Accounts locked in the last hour: a failed sign-in reached the failure limit.",
    )
    lockouts.add_metric([], counts.get("login.locked", 0))
    return [failures, lockouts]
