"""Background jobs: send a batch, send again what is due, poll SMS statuses and Telegram."""

from __future__ import annotations

from typing import TYPE_CHECKING

from kabinet.contrib import Actor, Schedule
from kabinet_notifications import polling, sending
from kabinet_notifications.settings import Settings, check_claim

if TYPE_CHECKING:
    from kabinet.host import Host


def actors(host: Host) -> list[Actor]:
    async def send(ids: list[int]) -> None:
        await sending.send(host, [int(i) for i in ids])

    async def sweep() -> None:
        await sending.sweep(host)

    async def poll_sms() -> None:
        await sending.poll_sms(host)

    async def poll_telegram() -> None:
        await polling.poll_telegram(host)

    # Retries are the delivery's own (backoff, Retry-After, permanent errors): not the runner's.
    return [
        # A sender still at work when its claim lapses is stopped: nobody sends twice at once.
        Actor(
            name=sending.SEND_ACTOR,
            fn=send,
            queue="notifications",
            max_retries=0,
            time_limit_ms=claim_seconds(host) * 1000,
            title={"ru": "Отправка уведомлений", "en": "Sending notifications"},
        ),
        Actor(
            name="notifications.sweep",
            fn=sweep,
            queue="notifications",
            max_retries=0,
            title={"ru": "Повторная отправка уведомлений", "en": "Sending due notifications again"},
        ),
        Actor(
            name="notifications.poll_sms",
            fn=poll_sms,
            queue="notifications",
            max_retries=0,
            title={"ru": "Проверка доставки SMS", "en": "Checking SMS delivery"},
        ),
        Actor(
            name=polling.POLL_ACTOR,
            fn=poll_telegram,
            queue="notifications",
            max_retries=0,
            title={"ru": "Приём сообщений Telegram-бота", "en": "Receiving Telegram bot messages"},
        ),
    ]


def claim_seconds(host: Host) -> int:
    """The send job's time limit: the claim, checked against the channels' timeouts (this
    runs as every process builds its host, so a claim too short stops start-up)."""
    return check_claim(host, host.plugin_settings("notifications", Settings))


def schedules() -> list[Schedule]:
    return [
        Schedule(name="notifications.sweep", actor="notifications.sweep", interval=60),
        Schedule(name="notifications.poll_sms", actor="notifications.poll_sms", interval=600),
        # Long polling where no public URL exists; a no-op with a webhook URL or no bot token.
        Schedule(name=polling.POLL_ACTOR, actor=polling.POLL_ACTOR, interval=5),
    ]
