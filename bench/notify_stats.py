"""bench/notify_stats: the statistics page over 1,000,000 delivery records on PostgreSQL.

Builds (once; ``--build``) a database with 1,000,000 deliveries spread over 90 days,
4 channels, 5 statuses and 6 notifications, and their counts per hour as the app keeps
them; then requests ``/notifications/stats`` for a 14-day and a 90-day period through the
whole app (sign-in session, access check, page shell) and prints p50/p95. The baseline in
the same run is the same aggregation done by scanning the deliveries table (what the
page would cost without the counts). Target (issue 5): p95 <= 100 ms. Not run in CI.

    .venv/bin/python bench/notify_stats.py --build [--rows 1000000] [--requests 50]
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import re
import statistics
import tempfile
import time
from pathlib import Path

import asyncpg
import httpx
from sqlalchemy import text

from kabinet.host import Host
from kabinet.plugins import builtin_candidates, entry_point_candidates
from kabinet.web import build_app

DB = "kabinet_bench_notify_stats"
PASSWORD = "correct horse battery"  # noqa: S105 - a throwaway bench account
ADMIN = "postgresql://postgres@127.0.0.1:5432/postgres"
URL = f"postgresql+asyncpg://postgres@127.0.0.1:5432/{DB}"

FILL = """
INSERT INTO notifications_delivery
  (key, event, person_id, channel, address, language, subject, body, html, variables,
   masked, status, attempts, created_at, updated_at)
SELECT 'bench:' || g, 'bench.event.' || (g % 6), g % 50000,
       (ARRAY['email','sms','telegram','push'])[1 + g % 4], 'x@example.com', 'ru',
       's', 'b', '', '{}', false,
       (ARRAY['sent','delivered','failed','skipped','queued','delivered','sent'])[1 + g % 7],
       1, now() - (g % (90*24*60)) * interval '1 minute', now()
FROM generate_series(1, :rows) AS g
"""
COUNTS = """
INSERT INTO notifications_stat (hour, event, channel, status, count)
SELECT date_trunc('hour', created_at), event, channel, status, count(*)
FROM notifications_delivery GROUP BY 1, 2, 3, 4;
"""
DAYS = """
INSERT INTO notifications_stat_day (day, event, channel, status, count)
SELECT date_trunc('day', hour), event, channel, status, sum(count)
FROM notifications_stat GROUP BY 1, 2, 3, 4
"""
SCAN = """
SELECT date_trunc('day', created_at), channel, status, count(*) FROM notifications_delivery
WHERE created_at >= now() - interval '90 days' GROUP BY 1, 2, 3
"""


async def host_for(tmp: Path) -> Host:
    settings = tmp / "settings.toml"
    settings.write_text(f'[host]\nvar_dir = "{tmp}"\nsecret_key = "bench"\naccess_log = false\n')
    mine = [c for c in entry_point_candidates() if c.name == "notifications"]
    return await Host.create(
        settings,
        env={"KABINET__HOST__DATABASE_URL": URL},
        candidates=[*builtin_candidates(), *mine],
    )


async def build(rows: int, tmp: Path) -> None:
    admin = await asyncpg.connect(ADMIN)
    await admin.execute(f"DROP DATABASE IF EXISTS {DB}")
    await admin.execute(f"CREATE DATABASE {DB}")
    await admin.close()
    host = await host_for(tmp)
    await host.migrations.upgrade()
    async with host.db.session() as s:
        await s.execute(text(FILL), {"rows": rows})
        await s.execute(text(COUNTS.rstrip().rstrip(";")))
        await s.execute(text(DAYS))
    async with host.db.engine.connect() as c:
        await c.execute(text("COMMIT"))
        await c.execute(text("ANALYZE"))
    await host.db.dispose()


def pct(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(q * len(values)))]


async def measure(requests: int, tmp: Path) -> None:
    host = await host_for(tmp)
    app = await build_app(host)
    host.services["host.process"] = "bench"
    await host.startup()
    identity = host.services["identity"]
    email = f"stats-{int(time.time())}@example.com"
    account = await identity.create_account(full_name="Bench", email=email, password=PASSWORD)
    from kabinet.roles.services import Actor

    await host.services["roles"].grant(account.id, "admin", None, actor=Actor(None, ""))
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1:8000") as c:
        login = await c.get("/login")
        token = re.search(r'name="csrf_token" value="([^"]+)"', login.text)
        assert token
        await c.post(
            "/login",
            data={
                "login": email,
                "password": PASSWORD,
                "csrf_token": token.group(1),
                "next": "/",
            },
        )
        for label, query in (("14 days", {}), ("90 days", {"start": "2000-01-01"})):
            if label == "90 days":
                query = {"start": (dt.date.today() - dt.timedelta(days=89)).isoformat()}
            times = []
            for _ in range(requests):
                t0 = time.perf_counter()
                r = await c.get("/notifications/stats", params=query)
                times.append((time.perf_counter() - t0) * 1000)
                assert r.status_code == 200, r.status_code
            p50, p95 = pct(times, 0.5), pct(times, 0.95)
            print(f"stats page {label:8s} p50 {p50:6.1f} ms  p95 {p95:6.1f} ms  (target <= 100 ms)")
    scans = []
    async with host.db.engine.connect() as conn:
        for _ in range(5):
            t0 = time.perf_counter()
            await conn.execute(text(SCAN))
            scans.append((time.perf_counter() - t0) * 1000)
    print(
        f"baseline: scanning the deliveries for 90 days   median {statistics.median(scans):8.1f} ms"
    )
    await host.shutdown()


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--build", action="store_true")
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--requests", type=int, default=50)
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="notify-stats-"))
    if args.build:
        t0 = time.perf_counter()
        await build(args.rows, tmp)
        print(f"built {args.rows} deliveries in {time.perf_counter() - t0:.0f} s")
    await measure(args.requests, tmp)


if __name__ == "__main__":
    asyncio.run(main())
