"""What notifications keep about a person (the ``personal_data`` hook).

Delivery records (the address a message went to, its text, its status) are removed
``deliveries_kept_days`` after they were made; the hourly counts (``notifications_stat``)
name nobody and stay. A person's download lists their preferences, quiet hours, Telegram
link, push subscriptions and deliveries; removing them deletes all of it.
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any

from sqlalchemy import delete, select, update

from kabinet.personal import Kept, PersonalData, Rows, rows
from kabinet_notifications.models import (
    delivery,
    person_setting,
    preference,
    push_subscription,
    telegram_link,
    telegram_token,
)
from kabinet_notifications.settings import Settings

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession

    from kabinet.host import Host

DELIVERY_FIELDS = (
    "event",
    "organization_id",
    "channel",
    "address",
    "language",
    "subject",
    "body",
    "status",
    "attempts",
    "error",
    "created_at",
    "sent_at",
    "delivered_at",
)


async def _delete_deliveries(s: AsyncSession, where: Any) -> int:
    """Delete the deliveries ``where`` selects; a resend of one of them forgets its origin."""
    gone = select(delivery.c.id).where(where).scalar_subquery()
    await s.execute(update(delivery).where(delivery.c.resend_of.in_(gone)).values(resend_of=None))
    result = await s.execute(delete(delivery).where(where))
    return int(getattr(result, "rowcount", 0) or 0)


def personal_data(host: Host) -> PersonalData:
    settings = host.plugin_settings("notifications")
    assert isinstance(settings, Settings)

    async def deliveries(s: AsyncSession, before: dt.datetime) -> int:
        return await _delete_deliveries(s, delivery.c.created_at < before)

    async def export(s: AsyncSession, person_id: int) -> dict[str, Rows]:
        async def of(table: Any, *columns: Any) -> Rows:
            chosen = columns or tuple(table.c)
            query = select(*chosen).where(table.c.person_id == person_id)
            return rows(await s.execute(query))

        return {
            "notifications_preference": await of(preference),
            "notifications_person_setting": await of(person_setting),
            "notifications_telegram_link": await of(
                telegram_link, telegram_link.c.state, telegram_link.c.linked_at
            ),
            "notifications_push_subscription": await of(
                push_subscription, push_subscription.c.endpoint, push_subscription.c.created_at
            ),
            "notifications_delivery": rows(
                await s.execute(
                    select(*(delivery.c[name] for name in DELIVERY_FIELDS))
                    .where(delivery.c.person_id == person_id)
                    .order_by(delivery.c.id)
                )
            ),
        }

    async def erase(s: AsyncSession, person_id: int) -> dict[str, int]:
        done = {
            "notifications_delivery": await _delete_deliveries(s, delivery.c.person_id == person_id)
        }
        for table in (preference, person_setting, telegram_link, telegram_token, push_subscription):
            result = await s.execute(delete(table).where(table.c.person_id == person_id))
            done[table.name] = int(getattr(result, "rowcount", 0) or 0)
        return done

    return PersonalData(
        kept=[
            Kept(
                name="notifications_delivery", days=settings.deliveries_kept_days, purge=deliveries
            )
        ],
        export=export,
        erase=erase,
    )
