"""Each channel against a local server speaking its wire format, through the whole path:
event, delivery record, job, provider answer, retry or report."""

from __future__ import annotations

import datetime as dt
import email
import gc
import json
import warnings
from email import policy
from pathlib import Path
from typing import Any

import httpx
import pytest
import structlog.testing
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword
from notif_fakes import (
    BotApiFake,
    PushFake,
    SmsRuFake,
    Subscriber,
    self_signed,
    serve,
    server_context,
)
from notif_support import deliveries, publish, run

from kabinet.clock import FrozenClock
from kabinet.host import Host
from kabinet.testing import Portal
from kabinet_notifications import sending
from kabinet_notifications.channels.base import Outgoing
from kabinet_notifications.channels.email import SmtpChannel
from kabinet_notifications.commands import vapid_keys
from kabinet_notifications.crypto import derived
from kabinet_notifications.services import Editor, service_of

pytestmark = pytest.mark.smoke
EVENT = "depot.parcel.arrived"
STAFF = Editor(person_id=None, name="Staff")


async def only(host: Host, channel: str, **config: str) -> None:
    """Turn every other channel off and configure ``channel``."""
    svc = await service_of(host)
    for c in ("email", "sms", "telegram", "push"):
        await svc.save_channel(c, c == channel, config if c == channel else {}, editor=STAFF)


# -- e-mail ---------------------------------------------------------------------------------


class Inbox:
    def __init__(self) -> None:
        self.messages: list[email.message.EmailMessage] = []
        self.peers: list[Any] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.messages.append(email.message_from_bytes(envelope.content, policy=policy.default))  # type: ignore[arg-type]
        self.peers.append(session.peer)
        return "250 OK"


def authenticator(
    server: Any, session: Any, envelope: Any, mechanism: str, data: Any
) -> AuthResult:
    ok = isinstance(data, LoginPassword) and (data.login, data.password) == (b"mailer", b"s3cret")
    return AuthResult(success=ok)


async def test_email_over_starttls_with_auth_arrives_as_multipart_on_one_connection(
    tmp_path: Path,
) -> None:
    cert, key = self_signed(tmp_path)
    inbox = Inbox()
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    controller = Controller(
        inbox,
        hostname="127.0.0.1",
        port=port,
        tls_context=server_context(cert, key),
        require_starttls=True,
        authenticator=authenticator,
        auth_require_tls=True,
    )
    controller.start()
    try:
        channel = SmtpChannel(
            {
                "smtp_host": "127.0.0.1",
                "smtp_port": port,
                "smtp_security": "starttls",
                "smtp_username": "mailer",
                "smtp_password": "s3cret",
                "smtp_ca_file": str(cert),
                "email_from": "portal@example.com",
            },
            "Кабинет",
        )
        batch = [
            Outgoing(
                delivery_id=i,
                event=EVENT,
                to=f"p{i}@example.com",
                language="ru",
                subject=f"Посылка {i}",
                body=f"Текст {i}",
                html=f"<p>HTML {i}</p>",
            )
            for i in range(3)
        ]
        outcomes = await channel.send_batch(batch)
        assert [o.verdict for o in outcomes] == ["sent"] * 3
        assert len(inbox.messages) == 3
        assert len(set(inbox.peers)) == 1
        first = inbox.messages[0]
        assert first["To"] == "p0@example.com"
        assert first["Subject"] == "Посылка 0"
        assert "Кабинет" in str(first["From"])
        assert first.get_content_type() == "multipart/alternative"
        assert first.get_body(("plain",)).get_content().strip() == "Текст 0"  # type: ignore[union-attr]
        assert first.get_body(("html",)).get_content().strip() == "<p>HTML 0</p>"  # type: ignore[union-attr]
        assert outcomes[0].provider_id == first["Message-ID"]
    finally:
        controller.stop()
        # aiosmtpd's STARTTLS leaves the server's plain socket to the garbage collector,
        # which warned (ResourceWarning) in whichever test ran next: collect it here, where
        # the socket is ours (the channel's own connection is closed by QUIT, asserted above).
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ResourceWarning)
            gc.collect()


async def test_smtp_down_is_retried_with_backoff(
    portal: Portal, host: Host, clock: FrozenClock
) -> None:
    await only(host, "email", smtp_host="127.0.0.1", smtp_port="1", smtp_security="none")
    ivan = await portal.person()
    await publish(host, EVENT, {"account_id": ivan.id, "parcel": "P", "depot": "D"})
    await run(host)
    [row] = await deliveries(host, person_id=ivan.id)
    assert (row["status"], row["attempts"]) == ("queued", 1)
    assert "connection" in row["error"]
    assert row["next_attempt_at"] is not None


# -- SMS.ru ---------------------------------------------------------------------------------


async def test_sms_send_status_poll_errors_and_retries(
    portal: Portal, host: Host, clock: FrozenClock
) -> None:
    fake = SmsRuFake()
    async with serve(fake.app()) as url:
        await only(host, "sms", sms_api_id="good-key", sms_sender="Kabinet", sms_api_url=url)
        ivan = await portal.person(phone="+79161112233")
        nowhere = await portal.person(phone="+79990000000")
        await publish(host, EVENT, {"account_id": ivan.id, "parcel": "S-1", "depot": "D"})
        await publish(host, EVENT, {"account_id": nowhere.id, "parcel": "S-2", "depot": "D"})
        await run(host)
        [ok] = await deliveries(host, person_id=ivan.id)
        [bad] = await deliveries(host, person_id=nowhere.id)
        assert fake.sent[0]["to"] == "79161112233"
        assert fake.sent[0]["from"] == "Kabinet"
        assert fake.sent[0]["msg"] == "Посылка S-1 прибыла"
        assert fake.sent[0]["json"] == "1"
        assert (ok["status"], ok["provider_id"]) == ("sent", fake.sent_ids[0])
        assert (bad["status"], bad["attempts"]) == ("failed", 1)  # 207: no retry
        assert "207" in bad["error"]
        fake.states[ok["provider_id"]] = 103
        assert await sending.poll_sms(host) == 1
        [ok] = await deliveries(host, person_id=ivan.id)
        assert ok["status"] == "delivered"
        assert ok["delivered_at"] is not None

        fake.fail_http = 1
        again = await portal.person(phone="+79161114455")
        await publish(host, EVENT, {"account_id": again.id, "parcel": "S-3", "depot": "D"})
        await run(host)
        [row] = await deliveries(host, person_id=again.id)
        assert (row["status"], row["attempts"], row["error"]) == ("queued", 1, "HTTP 503")
        clock.advance(seconds=31)
        await run(host)
        [row] = await deliveries(host, person_id=again.id)
        assert (row["status"], row["attempts"]) == ("sent", 2)


async def test_sms_delivery_callback_answers_100_and_moves_the_delivery(
    portal: Portal, host: Host
) -> None:
    from kabinet.web import build_app

    fake = SmsRuFake()
    async with serve(fake.app()) as url:
        await only(host, "sms", sms_api_id="good-key", sms_api_url=url)
        ivan = await portal.person(phone="+79162223344")
        await publish(host, EVENT, {"account_id": ivan.id, "parcel": "C-1", "depot": "D"})
        await run(host)
        [row] = await deliveries(host, person_id=ivan.id)
        app = await build_app(host)
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://t"
        ) as c:
            secret = derived(host, "sms-callback")
            data = {
                "data[0]": f"sms_status\n{row['provider_id']}\n103\n1735700000",
                "data[1]": "junk",
            }
            wrong = await c.post("/api/notifications/sms/callback/nope", data=data)
            assert wrong.status_code == 403
            answer = await c.post(f"/api/notifications/sms/callback/{secret}", data=data)
            assert (answer.status_code, answer.text) == (200, "100")
        [row] = await deliveries(host, person_id=ivan.id)
        assert row["status"] == "delivered"


# -- Telegram -------------------------------------------------------------------------------


async def test_telegram_link_by_deep_link_then_send_blocked_and_rate_limited(
    portal: Portal, host: Host, clock: FrozenClock
) -> None:
    from kabinet.web import build_app

    fake = BotApiFake()
    svc = await service_of(host)
    async with serve(fake.app()) as url:
        await only(
            host,
            "telegram",
            telegram_token=fake.token,
            telegram_api_url=url,
            telegram_webhook_secret="hook-secret",
        )
        people = [await portal.person(name=f"T{i}") for i in range(3)]
        app = await build_app(host)
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://t"
        ) as c:
            for chat, p in zip((5001, 5002, 5003), people, strict=True):
                token = await svc.telegram_link_token(p.id)
                update = {
                    "update_id": chat,
                    "message": {
                        "message_id": 5,
                        "from": {"id": chat, "is_bot": False, "first_name": "I"},
                        "chat": {"id": chat, "type": "private"},
                        "date": 1735700000,
                        "text": f"/start {token}",
                        "entities": [{"offset": 0, "length": 6, "type": "bot_command"}],
                    },
                }
                forged = await c.post(
                    "/api/notifications/telegram/webhook",
                    json=update,
                    headers={"X-Telegram-Bot-Api-Secret-Token": "x"},
                )
                assert forged.status_code == 403
                ok = await c.post(
                    "/api/notifications/telegram/webhook",
                    json=update,
                    headers={"X-Telegram-Bot-Api-Secret-Token": "hook-secret"},
                )
                assert ok.json() == {"ok": True, "linked": True}
                reused = await c.post(
                    "/api/notifications/telegram/webhook",
                    json=update,
                    headers={"X-Telegram-Bot-Api-Secret-Token": "hook-secret"},
                )
                assert reused.json()["linked"] is False  # one-time
        fake.blocked.add(5002)
        fake.limited.add(5003)
        for p in people:
            await publish(host, EVENT, {"account_id": p.id, "parcel": "<T>", "depot": "D"})
        await run(host)
        sent, blocked, limited = [(await deliveries(host, person_id=p.id))[0] for p in people]
        assert sent["status"] == "sent"
        assert fake.sent[0]["parse_mode"] == "HTML"
        assert fake.sent[0]["text"] == "<b>&lt;T&gt;</b> прибыла"
        assert fake.sent[0]["chat_id"] == 5001
        assert blocked["status"] == "failed"
        assert "blocked" in blocked["error"]
        assert await svc.telegram_state(people[1].id) == "broken"
        assert limited["status"] == "queued"
        wait = limited["next_attempt_at"].replace(tzinfo=dt.UTC) - host.clock.now()
        assert wait >= dt.timedelta(seconds=41)


async def test_telegram_link_by_long_polling_without_webhook_url(
    portal: Portal, host: Host
) -> None:
    from kabinet.jobs import EmbeddedJobs
    from kabinet_notifications.polling import POLL_ACTOR

    fake = BotApiFake(token="424242:POLL")
    svc = await service_of(host)
    jobs = host.jobs
    assert isinstance(jobs, EmbeddedJobs)
    assert host.schedules[POLL_ACTOR][1].actor == POLL_ACTOR
    async with serve(fake.app()) as url:
        await only(host, "telegram", telegram_token=fake.token, telegram_api_url=url)
        p = await portal.person(name="Poll")
        token = await svc.telegram_link_token(p.id)
        fake.queue_start(6001, "hello")  # not a link: read and confirmed all the same
        fake.queue_start(6001, f"/start {token}")

        await jobs.send(POLL_ACTOR)
        await jobs.drain()
        assert await svc.telegram_state(p.id) == "linked"
        assert "offset" not in fake.polls[0]  # the first poll: from the oldest pending

        # The next tick confirms both updates and gets none again (a second reading of the
        # used token would be logged as a refused link).
        with structlog.testing.capture_logs() as logs:
            await jobs.send(POLL_ACTOR)
            await jobs.drain()
        assert fake.polls[1]["offset"] == 700002
        assert fake.updates == []
        assert not [e for e in logs if e["event"].startswith("notifications.telegram_link")]
        assert await svc.telegram_state(p.id) == "linked"

        # A webhook set for the bot elsewhere: 409, logged with its reason, nothing handled.
        fake.webhook_url = "https://example.org/hook"
        with structlog.testing.capture_logs() as logs:
            await jobs.send(POLL_ACTOR)
            await jobs.drain()
        conflict = [e for e in logs if e["event"] == "notifications.telegram_poll_conflict"]
        assert conflict
        assert "webhook is set" in conflict[0]["reason"]

        # With a webhook URL configured the job leaves getUpdates alone.
        polls = len(fake.polls)
        await only(
            host,
            "telegram",
            telegram_token=fake.token,
            telegram_api_url=url,
            telegram_webhook_url="https://example.org/hook",
        )
        await jobs.send(POLL_ACTOR)
        await jobs.drain()
        assert len(fake.polls) == polls


# -- web push -------------------------------------------------------------------------------


async def test_push_payload_is_decrypted_by_the_subscriber_and_a_gone_subscription_is_deleted(
    portal: Portal,
    host: Host,
) -> None:
    fake = PushFake()
    public, private = vapid_keys()
    svc = await service_of(host)
    async with serve(fake.app()) as url:
        await only(
            host,
            "push",
            vapid_public_key=public,
            vapid_private_key=private,
            vapid_subject="mailto:ops@example.com",
        )
        ivan = await portal.person()
        phone, old = Subscriber(), Subscriber()
        fake.subscribers.update({"phone": phone, "old": old})
        fake.gone.add("old")
        await svc.subscribe(
            ivan.id,
            f"{url}/push/phone",
            phone.p256dh,
            __import__("base64").urlsafe_b64encode(phone.auth).rstrip(b"=").decode(),
        )
        await svc.subscribe(
            ivan.id,
            f"{url}/push/old",
            old.p256dh,
            __import__("base64").urlsafe_b64encode(old.auth).rstrip(b"=").decode(),
        )
        await publish(host, EVENT, {"account_id": ivan.id, "parcel": "W-1", "depot": "D"})
        await run(host)
        [row] = await deliveries(host, person_id=ivan.id)
        assert row["status"] == "sent"
        tag = f"kabinet-{row['id']}"  # the delivery: a second push of it replaces the first
        assert fake.received == [
            {
                "sid": "phone",
                "payload": {"title": "Посылка", "body": "W-1 прибыла", "url": "/", "tag": tag},
                "ttl": "86400",
            }
        ]
        assert fake.topics == [tag]
        assert await svc.subscriptions_of(ivan.id) == 1  # the 410 one is gone


async def test_the_vapid_command_prints_a_usable_pair() -> None:
    from click.testing import CliRunner

    from kabinet_notifications.commands import group

    result = CliRunner().invoke(group, ["vapid-keys"])
    assert result.exit_code == 0
    assert "vapid_public_key" in result.output
    lines = dict(line.split(" = ") for line in result.output.splitlines()[1:])
    assert len(json.loads(lines["vapid_public_key"])) == 87  # 65 bytes, b64url
