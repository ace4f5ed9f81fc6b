"""What ``/metrics`` shows of the exchange with 1C, per source (the ``metrics`` hook):
how long since the last successful run, the last run's duration, state and counts, the
open quarantine and the client requests still waiting to reach 1C. Read at scrape time,
four grouped queries on indexed columns (docs/operations.md, "Metrics")."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from sqlalchemy import func, select

from kabinet.metrics import Metric, MetricsCollector, age_seconds, gauge
from kabinet_integration import models as m
from kabinet_integration.settings import Settings

if TYPE_CHECKING:
    from kabinet.host import Host

NEVER = -1.0
"""``kabinet_integration_last_success_age_seconds`` of a source that never succeeded."""
COUNTS = ("received", "applied", "unchanged", "quarantined")
WAITING = ("pending", "sending")
"""Outbound states of a request not yet in 1C (``failed``: given up, for a person)."""


def collectors() -> list[MetricsCollector]:
    return [MetricsCollector(name="integration", collect=collect)]


async def collect(host: Host) -> Iterable[Metric]:
    run, q, out = m.run.c, m.quarantine.c, m.outbound.c
    async with host.db.reader() as s:
        succeeded = dict(
            (
                await s.execute(
                    select(run.source, func.max(run.finished_at))
                    .where(run.state == "succeeded")
                    .group_by(run.source)
                )
            ).all()
        )
        newest = select(func.max(run.id)).group_by(run.source).scalar_subquery()
        last = {r.source: r for r in await s.execute(select(m.run).where(run.id.in_(newest)))}
        open_rows = await s.execute(
            select(q.source, func.count()).where(q.state == "open").group_by(q.source)
        )
        quarantine: dict[str, int] = {str(src): int(n) for src, n in open_rows}
        requests = [
            tuple(r)
            for r in await s.execute(
                select(out.source, out.state, func.count(), func.min(out.created_at))
                .where(out.state != "sent")  # what reached 1C is history
                .group_by(out.source, out.state)
            )
        ]
    settings = host.plugin_settings("integration", Settings)
    sources = sorted({*settings.sources, *succeeded, *last, *quarantine, *(r[0] for r in requests)})
    now = host.clock.now()
    families = _families()
    for source in sources:
        found = succeeded.get(source)
        families["success"].add_metric(
            [source], NEVER if found is None else age_seconds(now, found)
        )
        families["quarantine"].add_metric([source], int(quarantine.get(source, 0)))
        _last_run(families, source, last.get(source), now)
        waiting = [r for r in requests if r[0] == source and r[1] in WAITING]
        failed = sum(int(r[2]) for r in requests if r[0] == source and r[1] == "failed")
        families["waiting"].add_metric([source], sum(int(r[2]) for r in waiting))
        oldest = min((r[3] for r in waiting if r[3] is not None), default=None)
        families["oldest"].add_metric([source], age_seconds(now, oldest))
        families["failed"].add_metric([source], failed)
    return list(families.values())


def _families() -> dict[str, Any]:
    return {
        "success": gauge(
            "integration_last_success_age_seconds",
            "Seconds since the source's last successful run ended (-1: never).",
            ["source"],
        ),
        "running": gauge(
            "integration_running", "1 while a run of the source is under way.", ["source"]
        ),
        "failed_run": gauge(
            "integration_last_run_failed",
            "1 when the source's last finished run failed or was interrupted.",
            ["source"],
        ),
        "duration": gauge(
            "integration_last_run_duration_seconds",
            "How long the source's last run took (so far, while it runs).",
            ["source"],
        ),
        "records": gauge(
            "integration_last_run_records",
            "Records of the source's last run: received, applied, unchanged, quarantined.",
            ["source", "kind"],
        ),
        "quarantine": gauge(
            "integration_quarantine_open",
            "Records set aside by the sync and not yet resolved, by source.",
            ["source"],
        ),
        "waiting": gauge(
            "integration_requests_waiting",
            "Client requests not yet carried to 1C (pending or being sent), by source.",
            ["source"],
        ),
        "oldest": gauge(
            "integration_requests_oldest_waiting_seconds",
            "Age of the oldest client request not yet carried to 1C (0: none waits).",
            ["source"],
        ),
        "failed": gauge(
            "integration_requests_failed",
            "Client requests given up on (attempts spent or not writable for 1C).",
            ["source"],
        ),
    }


def _last_run(families: dict[str, Any], source: str, row: Any, now: Any) -> None:
    if row is None:
        families["running"].add_metric([source], 0)
        return
    running = row.state == "running"
    families["running"].add_metric([source], 1 if running else 0)
    families["failed_run"].add_metric([source], 1 if row.state in ("failed", "interrupted") else 0)
    ended = now if running or row.finished_at is None else row.finished_at
    families["duration"].add_metric(
        [source], max(0.0, age_seconds(now, row.started_at) - age_seconds(now, ended))
    )
    for kind in COUNTS:
        families["records"].add_metric([source, kind], int(getattr(row, kind) or 0))
