"""The event bus: an outbox written in the publisher's transaction, relayed after commit.

``await host.events.publish(session, "shipments.order.created", payload)`` inserts a
row into ``host_event`` in the caller's transaction, so an event of a rolled-back
transaction never exists. The relay marks committed rows relayed and sends, per
subscriber, one job (:data:`DELIVER_BATCH_ACTOR`) carrying up to
:attr:`EventBus.batch_size` of them; the relay runs in every web and worker process and
is woken (after a few milliseconds that let concurrent commits join the batch) when a
session that published commits.

Delivery is at least once. Each subscriber's handling is recorded in
``host_event_handling`` (unique per subscriber and event) in the same transaction as
the handler's own writes through the session it is given, so a redelivered event has no
second effect; a batch is one transaction with a savepoint per event, so one failing
handler rolls back its own writes only. A failing handler is retried with backoff, its
attempts and last error kept, and after :attr:`EventBus.max_attempts` it is marked
failed for an admin to retry.
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import inspect
import logging
import traceback
from typing import TYPE_CHECKING, Any, NamedTuple

import msgspec
from sqlalchemy import event as sa_event
from sqlalchemy import insert, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from kabinet import models
from kabinet.contrib import Subscription
from kabinet.jobs import backoff, event_of_this_loop, wait_for_either

if TYPE_CHECKING:
    from kabinet.host import Host

log = logging.getLogger(__name__)

DELIVER_ACTOR = "host.deliver_event"
DELIVER_BATCH_ACTOR = "host.deliver_events"
REDELIVER_ACTOR = "host.redeliver_stale_events"
_ARMED = "kabinet.events.armed"


class EventError(Exception):
    """An event cannot be published or retried as asked; the message says why."""


@dataclasses.dataclass(frozen=True)
class Event:
    """What a subscriber's handler receives."""

    id: int
    type: str
    payload: Any
    """The declared payload struct, or a dict when the type declares none."""
    created_at: dt.datetime


class EventHandling(msgspec.Struct, kw_only=True):
    """A subscriber's handling of an event that has an error, as admins see it."""

    event_id: int
    event_type: str
    subscriber: str
    state: str
    attempts: int
    last_error: str | None
    next_attempt_at: str | None
    updated_at: str
    payload: Any


class EventBus:
    """Publish, relay and deliver; one per host (``host.events``)."""

    max_attempts = 5
    """Runs of a failing handler before its handling is marked failed."""
    backoff_base = 2.0
    relay_batch = 500
    """Outbox rows one relay pass reads."""
    batch_size = 100
    """Events of one subscriber in one delivery job (and one transaction)."""
    relay_linger = 0.01
    """Seconds the relay waits after a commit woke it, so concurrent commits share a pass."""

    def __init__(self, host: Host) -> None:
        self.host = host
        self._wake = asyncio.Event()
        self._takes_session: dict[str, bool] = {}

    @property
    def subscriptions(self) -> dict[str, Subscription]:
        return {name: sub for name, (_p, sub) in self.host.subscriptions.items()}

    def subscribers(self, event_type: str) -> list[Subscription]:
        return [s for s in self.subscriptions.values() if s.event == event_type]

    # --- publishing ------------------------------------------------------------------

    async def publish(
        self, session: AsyncSession, type: str, payload: msgspec.Struct | dict[str, Any]
    ) -> int:
        """Write an event to the outbox in ``session``'s transaction; returns its id."""
        declared = self.host.event_types.get(type)
        if declared is None:
            known = ", ".join(sorted(self.host.event_types)) or "none"
            raise EventError(
                f"event type {type!r} is not declared by any plugin's event_types hook "
                f"(declared: {known})"
            )
        data = _payload(type, declared[1].payload, payload)
        result = await session.execute(
            insert(models.event)
            .values(type=type, payload=data, created_at=self.host.clock.now())
            .returning(models.event.c.id)
        )
        self._arm(session)
        return int(result.scalar_one())

    def _arm(self, session: AsyncSession) -> None:
        """Wake this process's relay when the publishing transaction commits."""
        if session.info.get(_ARMED):
            return
        session.info[_ARMED] = True

        def committed(sync_session: Any) -> None:
            sync_session.info.pop(_ARMED, None)
            self._wake.set()

        sa_event.listen(session.sync_session, "after_commit", committed, once=True)

    # --- relaying --------------------------------------------------------------------

    async def relay(self, limit: int | None = None) -> int:
        """Hand committed, unrelayed events to the job system; returns how many."""
        t = models.event
        pick = (
            select(t.c.id)
            .where(t.c.relayed_at.is_(None))
            .order_by(t.c.id)
            .limit(limit or self.relay_batch)
        )
        if self.host.db.dialect == "postgresql":
            # Relays in several processes share the work instead of sending twice.
            pick = pick.with_for_update(skip_locked=True)
        # One statement marks and reads the rows; the mark commits only after the jobs
        # are sent, so a failed send leaves them for the next pass, and a crash between
        # send and commit sends again, which the handling records make harmless.
        mark = (
            update(t)
            .where(t.c.id.in_(pick.scalar_subquery()))
            .values(relayed_at=self.host.clock.now())
            .returning(t.c.id, t.c.type, t.c.payload, t.c.created_at)
        )
        async with self.host.db.session() as s:
            rows = sorted((await s.execute(mark)).all())
            if not rows:
                return 0
            by_type: dict[str, list[str]] = {}
            for sub in sorted(self.subscriptions.values(), key=lambda x: x.name):
                by_type.setdefault(sub.event, []).append(sub.name)
            per_sub: dict[str, list[list[Any]]] = {}
            for eid, etype, payload, created in rows:
                wire = [eid, etype, payload, models.utc(created).isoformat()]  # type: ignore[union-attr]
                for name in by_type.get(etype, []):
                    per_sub.setdefault(name, []).append(wire)
            size = self.batch_size
            items = [
                (DELIVER_BATCH_ACTOR, {"subscriber": name, "events": events[i : i + size]})
                for name, events in per_sub.items()
                for i in range(0, len(events), size)
            ]
            await self.host.jobs.send_many(items, origin="relay")
        return len(rows)

    def wake(self) -> None:
        self._wake.set()

    async def run_relay(self, stop: asyncio.Event, *, poll: float = 0.5) -> None:
        """Relay until ``stop`` is set: at once after a local commit, else every ``poll`` s."""
        self._wake = event_of_this_loop(self._wake)
        while not stop.is_set():
            self._wake.clear()
            try:
                if await self.relay() >= self.relay_batch:
                    continue
            except Exception:  # the database may be away for a moment; try again later
                log.exception("event relay failed")
            await wait_for_either(self._wake, stop, poll)
            if self._wake.is_set() and not stop.is_set() and self.relay_linger > 0:
                # Under load many commits arrive together: one pass, one job for them all.
                await asyncio.sleep(self.relay_linger)

    # --- delivering --------------------------------------------------------------------

    async def deliver(
        self,
        event_id: int,
        subscriber: str,
        attempt: int = 0,
        event: dict[str, Any] | None = None,
    ) -> str:
        """Run one subscriber for one event, once; returns what happened.

        ``handled``; ``skipped`` (already handled or failed, or a stale duplicate of an
        earlier attempt); ``retrying`` (failed, sent again after a backoff); ``failed``.
        ``event`` is the outbox row as the relay read it (type, payload, created_at),
        which saves reading it again; without it the row is read here.
        """
        sub = self.subscriptions.get(subscriber)
        h = models.event_handling
        now = self.host.clock.now()
        try:
            async with self.host.db.session() as s:
                # Claim the handling row: insert it, or lock the existing one and read it.
                # A concurrent duplicate waits here for the first one's commit, then skips.
                claim = (
                    _insert(self.host.db.dialect, h)
                    .values(
                        event_id=event_id,
                        subscriber=subscriber,
                        state="pending",
                        attempts=0,
                        updated_at=now,
                    )
                    .on_conflict_do_update(
                        index_elements=["subscriber", "event_id"], set_={"state": h.c.state}
                    )
                    .returning(h.c.state, h.c.attempts)
                )
                row = (await s.execute(claim)).mappings().one()
                if row["state"] in ("handled", "failed") or row["attempts"] != attempt:
                    return "skipped"
                ev = self._event(event_id, event) if event else await self._load(s, event_id)
                if sub is None:
                    raise EventError(f"no subscriber named {subscriber!r} in this process")
                args = (ev, s) if self._session_arg(sub) else (ev,)
                await _run(sub.handler(*args))
                done = self.host.clock.now()
                await s.execute(
                    update(h)
                    .where(h.c.event_id == event_id, h.c.subscriber == subscriber)
                    .values(
                        state="handled",
                        attempts=attempt + 1,
                        handled_at=done,
                        updated_at=done,
                        next_attempt_at=None,
                    )
                )
            return "handled"
        except Exception as exc:
            error = "".join(traceback.format_exception(exc)).strip()
        return await self._failed(event_id, subscriber, attempt, error)

    async def deliver_batch(self, subscriber: str, events: list[list[Any]]) -> dict[str, int]:
        """Run one subscriber for events the relay read, in one transaction; counts outcomes.

        ``events`` are ``[id, type, payload, created_at]`` as :meth:`relay` sends them,
        first attempts all. One statement claims every handling row (a concurrent
        duplicate batch waits for this one's commit, then skips); each handler that
        takes the session runs in a savepoint, so a failure rolls back its own writes and
        is recorded with its error while the others' effects and handled records commit
        together. Retries of failures are sent after the commit, one event each.
        """
        sub = self.subscriptions.get(subscriber)
        counts = {"handled": 0, "skipped": 0, "retrying": 0, "failed": 0}
        if sub is None or not events:
            for eid, etype, payload, created in events:
                data = {"type": etype, "payload": payload, "created_at": created}
                counts[await self.deliver(eid, subscriber, 0, data)] += 1
            return counts
        h = models.event_handling
        now = self.host.clock.now()
        events = sorted(events, key=lambda e: int(e[0]))  # claim rows in one order
        ids = [int(e[0]) for e in events]
        # Executed with one parameter set per event: a statement compiled once and cached,
        # sent as multi-row inserts (SQLAlchemy's "insertmanyvalues").
        claim = (
            _insert(self.host.db.dialect, h)
            .on_conflict_do_update(
                index_elements=["subscriber", "event_id"], set_={"state": h.c.state}
            )
            .returning(h.c.event_id, h.c.state, h.c.attempts)
        )
        rows = [
            {
                "event_id": eid,
                "subscriber": subscriber,
                "state": "pending",
                "attempts": 0,
                "updated_at": now,
            }
            for eid in ids
        ]
        session_too = self._session_arg(sub)
        handled: list[int] = []
        failures: list[tuple[int, str]] = []
        async with self.host.db.session() as s:
            claimed = {eid: (state, n) for eid, state, n in (await s.execute(claim, rows)).all()}
            for eid, etype, payload, created in events:
                state, attempts = claimed[eid]
                if state in ("handled", "failed") or attempts != 0:
                    counts["skipped"] += 1
                    continue
                data = {"type": etype, "payload": payload, "created_at": created}
                try:
                    ev = self._event(eid, data)
                    if session_too:
                        async with self.host.db.savepoint(s):
                            await _run(sub.handler(ev, s))
                    else:
                        await _run(sub.handler(ev))
                except Exception as exc:
                    failures.append((eid, "".join(traceback.format_exception(exc)).strip()))
                else:
                    handled.append(eid)
            done = self.host.clock.now()
            if handled:
                await s.execute(
                    update(h)
                    .where(h.c.subscriber == subscriber, h.c.event_id.in_(handled))
                    .values(
                        state="handled",
                        attempts=1,
                        handled_at=done,
                        updated_at=done,
                        next_attempt_at=None,
                    )
                )
            plan = self._retry_plan(0, done)
            for eid, error in failures:
                await s.execute(
                    update(h)
                    .where(h.c.subscriber == subscriber, h.c.event_id == eid)
                    .values(
                        state=plan.state,
                        attempts=1,
                        last_error=error,
                        next_attempt_at=plan.next_at,
                        updated_at=done,
                    )
                )
        counts["handled"] = len(handled)
        counts[plan.state] += len(failures)
        for eid, _error in failures:
            self._log_failure(subscriber, eid, plan)
        if failures and plan.state == "retrying":
            retries = [
                self.host.jobs.message(
                    DELIVER_ACTOR,
                    {"event_id": eid, "subscriber": subscriber, "attempt": 1},
                    origin=f"retry:{subscriber}",
                )
                for eid, _error in failures
            ]
            await self.host.jobs.enqueue(retries, delay=plan.delay)
        return counts

    def _session_arg(self, sub: Subscription) -> bool:
        """Whether ``sub``'s handler takes the session (read once per subscriber)."""
        known = self._takes_session.get(sub.name)
        if known is None:
            known = self._takes_session[sub.name] = _takes_session(sub)
        return known

    def _retry_plan(self, attempt: int, now: dt.datetime) -> _RetryPlan:
        """What follows failed attempt number ``attempt`` (0-based): a retry, or the end."""
        attempts = attempt + 1
        delay = backoff(attempts, base=self.backoff_base, cap=3600.0)
        if attempts >= self.max_attempts:
            return _RetryPlan("failed", attempts, delay, None)
        return _RetryPlan("retrying", attempts, delay, now + dt.timedelta(seconds=delay))

    @staticmethod
    def _log_failure(subscriber: str, event_id: int, plan: _RetryPlan) -> None:
        log.warning(
            "subscriber %s failed on event %d (attempt %d%s)",
            subscriber,
            event_id,
            plan.attempts,
            ", giving up" if plan.state == "failed" else f", retrying in {plan.delay:.0f} s",
        )

    async def _load(self, s: AsyncSession, event_id: int) -> Event:
        t = models.event
        row = (await s.execute(select(t).where(t.c.id == event_id))).mappings().one_or_none()
        if row is None:
            raise EventError(f"event {event_id} does not exist")
        created = models.utc(row["created_at"])
        assert created is not None
        return self._event(
            event_id,
            {"type": row["type"], "payload": row["payload"], "created_at": created.isoformat()},
        )

    def _event(self, event_id: int, data: dict[str, Any]) -> Event:
        declared = self.host.event_types.get(data["type"])
        struct = declared[1].payload if declared else None
        raw = data["payload"]
        payload = msgspec.convert(raw, struct) if struct else dict(raw)
        created = dt.datetime.fromisoformat(data["created_at"])
        return Event(id=event_id, type=data["type"], payload=payload, created_at=created)

    async def _failed(self, event_id: int, subscriber: str, attempt: int, error: str) -> str:
        h = models.event_handling
        now = self.host.clock.now()
        plan = self._retry_plan(attempt, now)
        async with self.host.db.session() as s:
            await s.execute(
                _insert_ignore(self.host.db.dialect, h).values(
                    event_id=event_id,
                    subscriber=subscriber,
                    state="pending",
                    attempts=attempt,
                    updated_at=now,
                )
            )
            done = await s.execute(
                update(h)
                .where(
                    h.c.event_id == event_id,
                    h.c.subscriber == subscriber,
                    h.c.attempts == attempt,
                    h.c.state.in_(("pending", "retrying")),
                )
                .values(
                    state=plan.state,
                    attempts=plan.attempts,
                    last_error=error,
                    next_attempt_at=plan.next_at,
                    updated_at=now,
                )
            )
            if not getattr(done, "rowcount", 1):
                return "skipped"  # a concurrent duplicate got there first
            if plan.state == "retrying":
                await self.host.jobs.send_later(
                    plan.delay,
                    DELIVER_ACTOR,
                    {"event_id": event_id, "subscriber": subscriber, "attempt": plan.attempts},
                    origin=f"retry:{subscriber}",
                )
        self._log_failure(subscriber, event_id, plan)
        return plan.state

    # --- admin (kabinet.event_admin) ---------------------------------------------------

    async def with_errors(self, *, limit: int = 100) -> list[EventHandling]:
        """Handlings that failed or are being retried, newest first."""
        from kabinet.event_admin import with_errors

        return await with_errors(self, limit=limit)

    async def retry(self, event_id: int, subscriber: str) -> None:
        """Deliver a failed event to ``subscriber`` again, with a fresh set of attempts."""
        from kabinet.event_admin import retry

        await retry(self, event_id, subscriber)

    async def redeliver_stale(
        self, *, older_than: float = 600.0, within: float = 86400.0, limit: int = 1000
    ) -> int:
        """Send again deliveries that were relayed but seem lost; returns how many
        (:func:`kabinet.event_admin.redeliver_stale` says which)."""
        from kabinet.event_admin import redeliver_stale

        return await redeliver_stale(self, older_than=older_than, within=within, limit=limit)


def _payload(
    type: str, struct: type[msgspec.Struct] | None, payload: msgspec.Struct | dict[str, Any]
) -> Any:
    """The payload as JSON values, checked against the declared struct."""
    if struct is not None:
        if isinstance(payload, dict):
            try:
                payload = msgspec.convert(payload, struct)
            except msgspec.ValidationError as exc:
                raise EventError(
                    f"payload of {type!r} does not fit {struct.__name__}: {exc}"
                ) from None
        elif not isinstance(payload, struct):
            raise EventError(
                f"payload of {type!r} must be a {struct.__name__}, got {type_name(payload)}"
            )
    elif not isinstance(payload, (dict, msgspec.Struct)):
        raise EventError(f"payload of {type!r} must be a msgspec Struct or a dict")
    try:
        return msgspec.json.decode(msgspec.json.encode(payload))
    except (TypeError, msgspec.EncodeError) as exc:
        raise EventError(f"payload of {type!r} is not JSON-serialisable: {exc}") from None


class _RetryPlan(NamedTuple):
    state: str
    """``retrying`` or ``failed``."""
    attempts: int
    delay: float
    next_at: dt.datetime | None


async def _run(result: Any) -> None:
    """Await a coroutine handler's result; a plain function has already run."""
    if inspect.isawaitable(result):
        await result


def _takes_session(sub: Subscription) -> bool:
    """Whether the handler takes ``(event, session)`` rather than ``(event,)``."""
    try:
        params = inspect.signature(sub.handler).parameters.values()
    except (TypeError, ValueError):  # a builtin without a signature
        return False
    positional = [p for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    takes_all = any(p.kind is p.VAR_POSITIONAL for p in params)
    return takes_all or len(positional) >= 2


def type_name(value: object) -> str:
    return type(value).__name__


def _insert(dialect: str, table: Any) -> Any:
    """An ``INSERT`` that knows ``ON CONFLICT`` on either backend."""
    return postgresql.insert(table) if dialect == "postgresql" else sqlite.insert(table)


def _insert_ignore(dialect: str, table: Any) -> Any:
    """``INSERT … ON CONFLICT DO NOTHING`` on the unique (subscriber, event) key."""
    return _insert(dialect, table).on_conflict_do_nothing(index_elements=["subscriber", "event_id"])
