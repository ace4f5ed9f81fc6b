"""A notification whose sending worker is killed (SIGKILL) in the middle of the send is sent
once, by the other worker (issue 19.1), as real processes: two ``kabinet worker`` on a
fresh PostgreSQL database and a Redis database of their own, an SMTP server in this test
that holds each message's DATA until the test lets it answer, and a probe plugin
(``notify_once_probe``: one event whose notification is an e-mail) loaded by every
process.

The worker sending the e-mail is killed while the server holds the message: the server
never said it accepted it. Redis gives the job back to the other worker (about 20 s, see
docs/operations.md), which finds the delivery's claim lapsed (``[notifications]
claim_seconds``, 10 s here) and sends it: the mailbox holds it once, with the Message-ID
of the first attempt, and the delivery says sent after two attempts. Every wait polls,
with a bound.
"""

from __future__ import annotations

import asyncio
import email
import email.message
import email.policy
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from shape_support import Shape, environment, free_redis_db, wait_for
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from kabinet.clock import FrozenClock
from kabinet.testing import backend, drop_database, free_port, migrated_database, start_portal

pytestmark = [
    pytest.mark.postgres,
    pytest.mark.slow,
    pytest.mark.skipif(
        backend() == "sqlite",
        reason="the production shape is PostgreSQL and Redis: several processes on one "
        "SQLite file is no supported installation",
    ),
]

WORKERS = ("worker1", "worker2")
CLAIM_SECONDS = 10
"""Below Redis's 15 s heartbeat timeout: the job run again always finds the claim lapsed."""
TIMEOUT = CLAIM_SECONDS / 2
"""The channels' timeouts: a claim is at least twice them (``settings.check_claim``). The
worker is killed within this of the server receiving the message (it holds the answer)."""


class Mailbox:
    """An SMTP server's handler: each DATA is noted when it arrives and, while ``holding``
    is set, answered only when the test clears it. A message is accepted (kept) only when
    the server answers 250: a client gone before that (aiosmtpd cancels the handler) left
    nothing."""

    def __init__(self) -> None:
        self.port = free_port()
        self.holding = threading.Event()
        self.arrived: list[tuple[int, str, str]] = []
        """(client port, Message-ID, To) of each DATA received."""
        self.accepted: list[email.message.Message] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        message = email.message_from_bytes(
            envelope.original_content or envelope.content, policy=email.policy.default
        )
        self.arrived.append((int(session.peer[1]), str(message["Message-ID"]), str(message["To"])))
        while self.holding.is_set():  # noqa: ASYNC110 - the test's thread clears it
            await asyncio.sleep(0.05)
        self.accepted.append(message)
        return "250 OK"

    def of(self, address: str) -> list[email.message.Message]:
        return [m for m in self.accepted if m["To"] == address]

    def arrivals(self, address: str) -> list[tuple[int, str]]:
        return [(port, mid) for port, mid, to in self.arrived if to == address]


class Installation:
    def __init__(self, shape: Shape, mailbox: Mailbox, person: tuple[int, str]) -> None:
        self.shape = shape
        self.mailbox = mailbox
        self.person_id, self.email = person


def write_probe_site(site: Path) -> None:
    """An entry point naming the probe module, so every process's host loads it."""
    dist = site / "kabinet_notify_once_probe-1.0.dist-info"
    dist.mkdir(parents=True, exist_ok=True)
    (dist / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: kabinet-notify-once-probe\nVersion: 1.0\n"
    )
    (dist / "entry_points.txt").write_text("[kabinet.plugins]\nnotifyonce = notify_once_probe\n")


@pytest.fixture(scope="module")
def mailbox() -> Iterator[Mailbox]:
    from aiosmtpd.controller import Controller

    box = Mailbox()
    controller = Controller(box, hostname="127.0.0.1", port=box.port)
    controller.start()
    try:
        yield box
    finally:
        controller.stop()


@pytest.fixture(scope="module")
async def installation(
    tmp_path_factory: pytest.TempPathFactory, mailbox: Mailbox
) -> AsyncIterator[Installation]:
    folder = tmp_path_factory.mktemp("notify-once")
    url = await migrated_database(folder)
    redis_url = f"redis://127.0.0.1:6379/{free_redis_db()}"
    site = folder / "site"
    write_probe_site(site)
    settings = folder / "settings.toml"
    settings.write_text(
        f"""
[host]
database_url = "{url}"
redis_url = "{redis_url}"
secret_key = "notify-once-{uuid.uuid4().hex}"
var_dir = "{folder / "var"}"

[notifications]
digest_minutes = 0
claim_seconds = {CLAIM_SECONDS}
smtp_host = "127.0.0.1"
smtp_port = {mailbox.port}
smtp_security = "none"
smtp_timeout = {TIMEOUT}
http_timeout = {TIMEOUT}
email_from = "portal@example.test"
"""
    )
    shape = Shape(folder, settings, environment(folder, settings, site))
    shape.database_url = url
    shape.redis_url = redis_url
    try:
        for role in WORKERS:
            shape.start(role)
        portal = await start_portal(
            folder / "maker", url, clock=FrozenClock(), settings={"host": {"redis_url": redis_url}}
        )
        try:
            person = await portal.person(name="Иван Получатель")
        finally:
            await portal.aclose()
        shape.wait_ready(*WORKERS)
        yield Installation(shape, mailbox, (person.id, person.email))
    finally:
        shape.stop_all()
        await drop_database(url)
        import redis

        client = redis.Redis.from_url(redis_url)
        client.flushdb()
        client.close()


def publish(shape: Shape, person_id: int, parcel: str) -> None:
    """Publish the probe's event in a new process of the installation and relay it to
    Redis: what a web process does after a request that published it."""
    script = (
        "import asyncio, sys\n"
        "from kabinet.host import Host\n"
        "async def main(person, parcel):\n"
        "    host = await Host.create(None)\n"
        "    async with host.db.session() as s:\n"
        "        await host.events.publish(\n"
        "            s, 'notifyonce.parcel', {'account_id': int(person), 'parcel': parcel}\n"
        "        )\n"
        "    await host.events.relay()\n"
        "    await host.jobs.close()\n"
        "    await host.db.dispose()\n"
        "asyncio.run(main(*sys.argv[1:]))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script, str(person_id), parcel],
        env=shape.env,
        cwd=shape.folder,
        capture_output=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr.decode()[-3000:]


async def delivery_of(url: str, parcel: str) -> dict[str, Any] | None:
    engine = create_async_engine(url)
    try:
        async with engine.connect() as conn:
            row = (
                (
                    await conn.execute(
                        text(
                            "select id, status, attempts, provider_id from notifications_delivery "
                            "where event = 'notifyonce.parcel' and variables->>'parcel' = :parcel"
                        ),
                        {"parcel": parcel},
                    )
                )
                .mappings()
                .one_or_none()
            )
            return dict(row) if row is not None else None
    finally:
        await engine.dispose()


async def sent(url: str, parcel: str, most: float) -> dict[str, Any]:
    """The delivery of ``parcel`` once it says sent (polling the workers, bounded)."""
    end = time.monotonic() + most
    row = None
    while time.monotonic() < end:
        row = await delivery_of(url, parcel)
        if row is not None and row["status"] == "sent":
            return row
        await asyncio.sleep(0.2)  # polling the other worker
    pytest.fail(f"gave up after {most:g} s waiting for {parcel} to be sent: {row}")


async def test_an_email_whose_sender_is_killed_mid_send_reaches_the_mailbox_once(
    installation: Installation,
) -> None:
    shape, box = installation.shape, installation.mailbox
    parcel = f"K-{uuid.uuid4().hex[:6]}"
    box.holding.set()
    try:
        publish(shape, installation.person_id, parcel)
        first = wait_for(
            lambda: box.arrivals(installation.email), "the e-mail to reach the SMTP server", 120
        )
        port, message_id = first[0]
        victim = wait_for(lambda: shape.worker_on_port(port), "the worker sending it", 10)
        other = "worker2" if victim == "worker1" else "worker1"
        shape.signal(victim, signal.SIGKILL)
        shape.wait_exit(victim)
        assert box.of(installation.email) == []  # killed before the server answered
        row = await delivery_of(shape.database_url, parcel)
    finally:
        box.holding.clear()
    # The job goes back to the queue once Redis takes the killed worker for dead; the other
    # worker runs it, takes the delivery again (its claim lapsed) and sends it.
    assert row is not None
    assert (row["status"], row["attempts"]) == ("queued", 1)
    done = await sent(shape.database_url, parcel, 120)
    assert shape.alive(other)
    [mail] = box.of(installation.email)
    assert str(mail["Subject"]) == f"Parcel {parcel}"
    assert mail["Message-ID"] == message_id  # the same message as the killed attempt's
    assert (done["attempts"], done["provider_id"]) == (2, message_id)
    assert [mid for _port, mid in box.arrivals(installation.email)] == [message_id] * 2
    # And it stays once: a later notification goes through, nothing else comes.
    later = f"{parcel}-after"
    publish(shape, installation.person_id, later)
    await sent(shape.database_url, later, 60)
    assert [str(m["Subject"]) for m in box.of(installation.email)] == [
        f"Parcel {parcel}",
        f"Parcel {later}",
    ]
