"""Background jobs of the built-in ``host`` plugin and their schedules: event deliveries
(one event, a subscriber's batch, those that seem lost sent again) and the nightly purge
of personal data past its period."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from kabinet.contrib import Actor, Schedule
from kabinet.events import DELIVER_ACTOR, DELIVER_BATCH_ACTOR, REDELIVER_ACTOR
from kabinet.personal import PURGE_ACTOR

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession

    from kabinet.host import Host


def actors(host: Host) -> list[Actor]:
    async def deliver(
        event_id: int, subscriber: str, attempt: int = 0, event: dict[str, Any] | None = None
    ) -> None:
        await host.events.deliver(event_id, subscriber, attempt, event)

    async def deliver_batch(subscriber: str, events: list[list[Any]]) -> None:
        await host.events.deliver_batch(subscriber, events)

    async def redeliver() -> None:
        await host.events.redeliver_stale()

    async def purge_personal_data(session: AsyncSession) -> None:
        from kabinet.personal import purge

        await purge(host, session)

    return [
        Actor(
            name=PURGE_ACTOR,
            fn=purge_personal_data,
            max_retries=2,
            title={
                "ru": "Удаление персональных данных с истёкшим сроком",
                "en": "Purge of personal data past its period",
            },
        ),
        Actor(
            name=DELIVER_ACTOR,
            fn=deliver,
            queue="events",
            title={"ru": "Передача события обработчику", "en": "Event delivery to a subscriber"},
        ),
        Actor(
            name=DELIVER_BATCH_ACTOR,
            fn=deliver_batch,
            queue="events",
            title={"ru": "Передача событий обработчику", "en": "Event deliveries to a subscriber"},
        ),
        Actor(
            name=REDELIVER_ACTOR,
            fn=redeliver,
            queue="events",
            max_retries=0,
            title={"ru": "Повтор потерянных событий", "en": "Lost event deliveries sent again"},
        ),
    ]


def schedules() -> list[Schedule]:
    return [
        # Deliveries whose job was lost (a stopped embedded process, a flushed Redis).
        Schedule(name="host.redeliver_events", actor=REDELIVER_ACTOR, interval=300),
        # Personal data past its period (docs/operations.md, Personal data), at night.
        Schedule(name="host.personal_data.purge", actor=PURGE_ACTOR, cron="17 3 * * *"),
    ]
