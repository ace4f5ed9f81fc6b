"""bench/notify_fanout: 10,000 e-mails from one event to a local SMTP server (aiosmtpd).

The portal path: one published event naming 10,000 people -> the relay -> the
notifications subscriber (renders each person's template, inserts 10,000 delivery
records, counts) -> sending jobs in batches, each batch over one SMTP connection ->
status updates. The baseline, in the same run: raw aiosmtplib sending the same number of
pre-rendered messages (flattened to bytes) over one connection to the same server.
Target (issue 5): the portal keeps >= 0.5x the raw rate.

    .venv/bin/python bench/notify_fanout.py [--messages 10000] [--database-url URL]

Without ``--database-url`` it uses a fresh SQLite file; give a PostgreSQL URL of an empty
database to measure that.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import socket
import sys
import tempfile
import time
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import aiosmtplib
from aiosmtpd.controller import Controller
from sqlalchemy import insert

from kabinet.host import Host
from kabinet.identity.models import Account
from kabinet.jobs import EmbeddedJobs
from kabinet.plugins import entry_point_candidates
from kabinet.testing import PluginFactory

BENCH = """
    @hookimpl
    def event_types():
        return [EventType(name="blast.news.published")]

    @hookimpl(optionalhook=True)
    def notifications_types(host):
        return [
            NotificationType(
                event="blast.news.published",
                title={"ru": "Новость", "en": "News"},
                recipients=Recipients(person="people"),
                variables={"headline": "Тарифы"},
                templates=(
                    DefaultTemplate(
                        channel="email", language="ru", subject="{{ headline }}",
                        body="{{ recipient_name }}, {{ headline }}.",
                        html="<p>{{ recipient_name }}, <b>{{ headline }}</b>.</p>",
                    ),
                ),
            )
        ]
"""


class Counter:
    def __init__(self) -> None:
        self.count = 0

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.count += 1
        return "250 OK"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def raw(port: int, n: int) -> float:
    messages = []
    for i in range(n):
        msg = EmailMessage()
        msg["From"] = "portal@example.com"
        msg["To"] = f"p{i}@example.com"
        msg["Subject"] = "Тарифы"
        msg.set_content(f"Person {i}, Тарифы.")
        msg.add_alternative(f"<p>Person {i}, <b>Тарифы</b>.</p>", subtype="html")
        messages.append((msg["To"], msg.as_bytes()))
    start = time.perf_counter()
    smtp = aiosmtplib.SMTP(hostname="127.0.0.1", port=port, start_tls=False)
    await smtp.connect()
    for to, data in messages:
        await smtp.sendmail("portal@example.com", [to], data)
    await smtp.quit()
    return n / (time.perf_counter() - start)


async def portal(port: int, n: int, database_url: str | None, counter: Counter) -> float:
    tmp = Path(tempfile.mkdtemp(prefix="notify-fanout-"))
    url = database_url or f"sqlite+aiosqlite:///{tmp / 'bench.sqlite3'}"
    settings = tmp / "settings.toml"
    settings.write_text(
        f'[host]\nvar_dir = "{tmp}"\nsecret_key = "bench"\n'
        f'[notifications]\nsmtp_host = "127.0.0.1"\nsmtp_port = {port}\n'
        f'smtp_security = "none"\nbatch_size = 500\nemail_from = "portal@example.com"\n'
        "sms_enabled = false\ntelegram_enabled = false\npush_enabled = false\n"
    )
    factory = PluginFactory(tmp / "plugins")
    sys.path.insert(0, str(factory.site))
    factory.add("blast", BENCH)
    candidates = [
        *factory.candidates(),
        *[c for c in entry_point_candidates() if c.name == "notifications"],
    ]
    host = await Host.create(
        settings, env={"KABINET__HOST__DATABASE_URL": url}, candidates=candidates
    )
    await host.migrations.upgrade()
    host.services["host.process"] = "bench"
    await host.startup()
    now = dt.datetime.now(dt.UTC)
    rows = [
        {
            "full_name": f"Person {i}",
            "email": f"fan-{i}@example.com",
            "language": "ru",
            "timezone": "Europe/Moscow",
            "status": "active",
            "email_confirmed": True,
            "phone_confirmed": False,
            "version": 1,
            "created_at": now,
        }
        for i in range(n)
    ]
    async with host.db.session() as s:
        for i in range(0, n, 2000):
            await s.execute(insert(Account), rows[i : i + 2000])
        ids = [
            r[0]
            for r in (
                await s.execute(Account.__table__.select().with_only_columns(Account.id))
            ).all()
        ]
    jobs = host.jobs
    assert isinstance(jobs, EmbeddedJobs)
    start = time.perf_counter()
    async with host.db.session() as s:
        await host.events.publish(s, "blast.news.published", {"people": ids, "headline": "Тарифы"})
    await host.events.relay()
    while counter.count < n:
        if not await jobs.drain():
            await asyncio.sleep(0.01)
    elapsed = time.perf_counter() - start
    await host.shutdown()
    factory.cleanup()
    return n / elapsed


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--messages", type=int, default=10_000)
    parser.add_argument("--database-url", default=None)
    args = parser.parse_args()
    port = free_port()
    counter = Counter()
    controller = Controller(counter, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        raw_rate = await raw(port, args.messages)
        counter.count = 0
        portal_rate = await portal(port, args.messages, args.database_url, counter)
    finally:
        controller.stop()
    ratio = portal_rate / raw_rate
    print(f"messages           {args.messages}")
    print(f"raw aiosmtplib     {raw_rate:8.0f} msg/s")
    print(f"portal (event->smtp) {portal_rate:6.0f} msg/s")
    print(f"ratio              {ratio:8.2f}x  (target >= 0.5x) {'OK' if ratio >= 0.5 else 'BELOW'}")


if __name__ == "__main__":
    asyncio.run(main())
