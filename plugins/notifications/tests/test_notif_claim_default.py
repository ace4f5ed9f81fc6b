"""``[notifications] claim_seconds``: 180 by default (a dead worker's messages wait about
three minutes, not ten), at least twice the channels' timeouts (``smtp_timeout``,
``http_timeout``) or start-up stops with the file and key, honoured by every other sender,
and outlasting what a sender waits on a stalled server before it gives up by itself."""

from __future__ import annotations

import asyncio
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from notif_support import DEPOT, deliveries, notifications_candidates, publish, run

from kabinet.clock import FrozenClock
from kabinet.errors import SettingsError
from kabinet.host import Host
from kabinet.plugins import builtin_candidates
from kabinet.testing import PluginFactory, Portal, PortalFactory, free_port
from kabinet_notifications import sending
from kabinet_notifications.channels.base import Outcome, Outgoing
from kabinet_notifications.channels.email import SmtpChannel
from kabinet_notifications.settings import Settings

pytestmark = pytest.mark.smoke


async def _host(tmp_path: Path, text: str, **env: str) -> Host:
    """A host with the notifications app, built from a settings file holding ``text``."""
    path = tmp_path / "settings.toml"
    path.write_text(text, encoding="utf-8")
    url = f"sqlite+aiosqlite:///{tmp_path / 'k.sqlite3'}"
    return await Host.create(
        path,
        env={"KABINET__HOST__DATABASE_URL": url, **env},
        candidates=[*builtin_candidates(), *notifications_candidates()],
    )


async def _refusal(tmp_path: Path, text: str, **env: str) -> str:
    with pytest.raises(SettingsError) as refused:
        await _host(tmp_path, text, **env)
    return str(refused.value)


def _time_limit(host: Host) -> int:
    _plugin, actor = host.actors[sending.SEND_ACTOR]
    return actor.time_limit_ms


async def test_the_default_claim_is_three_minutes_and_the_send_jobs_time_limit(
    tmp_path: Path,
) -> None:
    defaults = Settings()
    assert defaults.claim_seconds == 180
    assert defaults.claim_seconds >= 2 * max(defaults.smtp_timeout, defaults.http_timeout)
    host = await _host(tmp_path, "[notifications]\n")
    try:
        assert _time_limit(host) == 180_000
    finally:
        await host.db.dispose()
    host = await _host(tmp_path, "[notifications]\nclaim_seconds = 60\n")  # 2 x 30 s: enough
    try:
        assert _time_limit(host) == 60_000
    finally:
        await host.db.dispose()


async def test_a_claim_below_twice_a_channel_timeout_stops_start_up_naming_file_and_key(
    tmp_path: Path,
) -> None:
    path = tmp_path / "settings.toml"
    refused = await _refusal(tmp_path, "[notifications]\nclaim_seconds = 59\n")
    assert refused.startswith(f"{path}: [notifications] claim_seconds: 59 is below 2 x"), refused
    assert "[notifications] smtp_timeout (30 s)" in refused
    assert "set claim_seconds to 60 plus what a batch takes" in refused

    # the longest timeout counts, whichever channel's it is
    text = "[notifications]\nclaim_seconds = 100\nsmtp_timeout = 10\nhttp_timeout = 55\n"
    refused = await _refusal(tmp_path, text)
    assert "[notifications] http_timeout (55 s)" in refused, refused
    assert "or lower http_timeout" in refused

    # a value from the environment is named by its variable
    refused = await _refusal(
        tmp_path, "[notifications]\n", KABINET__NOTIFICATIONS__CLAIM_SECONDS="30"
    )
    assert refused.startswith("environment variable KABINET__NOTIFICATIONS__CLAIM_SECONDS"), refused

    refused = await _refusal(tmp_path, "[notifications]\nsmtp_timeout = 0\n")
    assert refused.startswith(f"{path}: [notifications] smtp_timeout: expected"), refused


def test_the_channels_wait_on_a_provider_as_long_as_the_settings_say() -> None:
    """The timeouts checked against the claim are the ones the senders use."""
    config: dict[str, Any] = {
        **{k: getattr(Settings(), k) for k in Settings.__struct_fields__},
        "smtp_host": "127.0.0.1",
        "smtp_timeout": 7.5,
        "http_timeout": 12.5,
        "sms_api_id": "key",
        "telegram_token": "1:token",
        "transport": "provider",
    }
    email = sending.make_channel(None, "email", config)  # type: ignore[arg-type]
    assert isinstance(email, SmtpChannel)
    assert email._client().timeout == 7.5
    sms: Any = sending.make_channel(None, "sms", config)  # type: ignore[arg-type]
    telegram: Any = sending.make_channel(None, "telegram", config)  # type: ignore[arg-type]
    for client in (sms.gateway.client, telegram.api.client):
        timeout = client.timeout
        assert (timeout.connect, timeout.read, timeout.write) == (12.5, 12.5, 12.5)


class Dies:
    """A channel whose worker is killed while the provider has the message."""

    name = "email"

    def __init__(self, seen: list[Outgoing]) -> None:
        self.seen = seen

    async def send_batch(self, messages: list[Outgoing]) -> list[Outcome]:
        self.seen.extend(messages)
        raise asyncio.CancelledError  # the job stops here, nothing is recorded


class Takes(Dies):
    async def send_batch(self, messages: list[Outgoing]) -> list[Outcome]:
        self.seen.extend(messages)
        return [Outcome(delivery_id=m.delivery_id, verdict="sent") for m in messages]


async def test_with_the_default_claim_a_dead_senders_message_goes_after_three_minutes(
    portal: Portal, host: Host, clock: FrozenClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: list[Outgoing] = []
    ivan = await portal.person()
    monkeypatch.setattr(sending, "make_channel", lambda *_: Dies(seen))
    await publish(
        host, "depot.parcel.arrived", {"account_id": ivan.id, "parcel": "C-1", "depot": "X"}
    )
    await host.events.relay()
    with pytest.raises(asyncio.CancelledError):
        await host.jobs.drain()  # type: ignore[attr-defined]
    [row] = await deliveries(host, person_id=ivan.id)
    assert (row["status"], row["attempts"]) == ("queued", 1)
    monkeypatch.setattr(sending, "make_channel", lambda *_: Takes(seen))
    clock.advance(179)  # another worker, the sweep: the claim still holds
    assert await sending.send(host, [row["id"]]) == {}
    clock.advance(2)  # it lapsed: taken again
    assert await sending.send(host, [row["id"]]) == {"sent": 1}
    [row] = await deliveries(host, person_id=ivan.id)
    assert (row["status"], row["attempts"]) == ("sent", 2)
    assert [m.delivery_id for m in seen] == [row["id"], row["id"]]


class Stalls:
    """An SMTP server that takes a message and never answers its end of data."""

    def __init__(self) -> None:
        self.port = free_port()
        self.released = threading.Event()
        self.arrived = 0

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.arrived += 1
        while not self.released.is_set():  # noqa: ASYNC110 - the test's thread sets it
            await asyncio.sleep(0.05)
        return "250 OK"


async def test_a_sender_gives_up_on_a_stalled_server_before_its_claim_lapses(
    make_portal: PortalFactory, plugin_factory: PluginFactory
) -> None:
    """What the relation guards: the sender stops waiting (a timeout) and gives the
    message back for a retry by itself, well before its claim (the job's time limit)
    would stop it with nothing recorded."""
    from aiosmtpd.controller import Controller

    server = Stalls()
    controller = Controller(server, hostname="127.0.0.1", port=server.port)
    controller.start()
    try:
        plugin_factory.add("depot", DEPOT)
        timeout, claim = 1.5, 5
        portal = await make_portal(
            settings={
                "notifications": {
                    "digest_minutes": 0,
                    "claim_seconds": claim,
                    "smtp_timeout": timeout,
                    "http_timeout": timeout,
                    "smtp_host": "127.0.0.1",
                    "smtp_port": server.port,
                    "smtp_security": "none",
                    "email_from": "portal@example.test",
                }
            },
            candidates=[*plugin_factory.candidates(), *notifications_candidates()],
            web=False,
        )
        host = portal.host
        ivan = await portal.person()
        await publish(
            host, "depot.parcel.arrived", {"account_id": ivan.id, "parcel": "C-2", "depot": "X"}
        )
        started = time.monotonic()
        await run(host)
        took = time.monotonic() - started
        [row] = [r for r in await deliveries(host, person_id=ivan.id) if r["channel"] == "email"]
        assert server.arrived == 1  # the server had it, and never answered
        assert timeout <= took < claim, took
        assert (row["status"], row["attempts"]) == ("queued", 1)
        assert row["error"] == "SMTP connection lost: SMTPReadTimeoutError"
        assert row["next_attempt_at"] is not None
    finally:
        server.released.set()
        controller.stop()
