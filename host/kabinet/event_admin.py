"""The admin side of the event bus: the handlings that have an error, a failed one retried,
and deliveries that seem lost sent again. ``host.events`` (:class:`~kabinet.events.EventBus`)
offers each as a method; the CLI, the runtime API and the redelivery job call those."""

from __future__ import annotations

import datetime as dt
import logging
from typing import TYPE_CHECKING, Any

from sqlalchemy import and_, exists, select, update

from kabinet import models
from kabinet.events import DELIVER_ACTOR, EventError, EventHandling

if TYPE_CHECKING:
    from kabinet.events import EventBus

log = logging.getLogger("kabinet.events")


async def with_errors(bus: EventBus, *, limit: int = 100) -> list[EventHandling]:
    """Handlings that failed or are being retried, newest first."""
    h, e = models.event_handling, models.event
    query = (
        select(h, e.c.type, e.c.payload)
        .join(e, e.c.id == h.c.event_id)
        .where(h.c.state.in_(("failed", "retrying")))
        .order_by(h.c.updated_at.desc(), h.c.id.desc())
        .limit(limit)
    )
    async with bus.host.db.session() as s:
        rows = (await s.execute(query)).mappings().all()
    out = []
    for r in rows:
        nxt = models.utc(r["next_attempt_at"])
        upd = models.utc(r["updated_at"])
        assert upd is not None
        out.append(
            EventHandling(
                event_id=r["event_id"],
                event_type=r["type"],
                subscriber=r["subscriber"],
                state=r["state"],
                attempts=r["attempts"],
                last_error=r["last_error"],
                next_attempt_at=nxt.isoformat() if nxt else None,
                updated_at=upd.isoformat(),
                payload=r["payload"],
            )
        )
    return out


async def retry(bus: EventBus, event_id: int, subscriber: str) -> None:
    """Deliver a failed event to ``subscriber`` again, with a fresh set of attempts."""
    h = models.event_handling
    if subscriber not in bus.subscriptions:
        raise EventError(f"no subscriber named {subscriber!r}")
    async with bus.host.db.session() as s:
        done = await s.execute(
            update(h)
            .where(
                h.c.event_id == event_id,
                h.c.subscriber == subscriber,
                h.c.state == "failed",
            )
            .values(state="retrying", attempts=0, updated_at=bus.host.clock.now())
        )
        if not getattr(done, "rowcount", 0):
            raise EventError(
                f"subscriber {subscriber!r} has no failed handling of event {event_id}"
            )
        await bus.host.jobs.send_many(
            [(DELIVER_ACTOR, {"event_id": event_id, "subscriber": subscriber, "attempt": 0})],
            origin="retry",
        )


async def redeliver_stale(
    bus: EventBus, *, older_than: float = 600.0, within: float = 86400.0, limit: int = 1000
) -> int:
    """Send again deliveries that were relayed but seem lost; returns how many.

    A delivery is lost when its job vanished (the embedded queue of a stopped process,
    a Redis flushed by hand): the event was relayed more than ``older_than`` seconds
    ago and the subscriber neither finished it nor has a retry that is due within
    that margin. Only events of the last ``within`` seconds count, so a newly installed
    subscriber is not fed the whole history.
    """
    e, h = models.event, models.event_handling
    now = bus.host.clock.now()
    cutoff = now - dt.timedelta(seconds=older_than)
    since = now - dt.timedelta(seconds=within)
    items: list[tuple[str, dict[str, Any]]] = []
    async with bus.host.db.session() as s:
        for sub in sorted(bus.subscriptions.values(), key=lambda x: x.name):
            other = h.alias("other")
            done = exists().where(
                other.c.event_id == e.c.id,
                other.c.subscriber == sub.name,
                other.c.state.in_(("handled", "failed")),
            )
            pending = exists().where(
                other.c.event_id == e.c.id,
                other.c.subscriber == sub.name,
                other.c.state == "retrying",
                other.c.next_attempt_at > cutoff,
            )
            query = (
                select(e.c.id, h.c.attempts)
                .outerjoin(h, and_(h.c.event_id == e.c.id, h.c.subscriber == sub.name))
                .where(
                    e.c.type == sub.event,
                    e.c.relayed_at.is_not(None),
                    e.c.relayed_at <= cutoff,
                    e.c.created_at >= since,
                    ~done,
                    ~pending,
                )
                .order_by(e.c.id)
                .limit(limit)
            )
            for eid, attempts in (await s.execute(query)).all():
                items.append(
                    (
                        DELIVER_ACTOR,
                        {"event_id": eid, "subscriber": sub.name, "attempt": attempts or 0},
                    )
                )
    await bus.host.jobs.send_many(items, origin="redeliver")
    if items:
        log.warning("re-sent %d event deliveries that seemed lost", len(items))
    return len(items)
