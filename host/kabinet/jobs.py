"""Background jobs: one interface, two runners.

Plugins contribute actors (:class:`kabinet.contrib.Actor`); code sends them with
``await host.jobs.send("plugin.actor", key=value)``. Where the job runs depends on the
settings, never on the caller:

- ``[host] redis_url`` set (production): messages go to Redis through a dramatiq
  ``RedisBroker``, and ``kabinet worker`` processes on any machine run them
  (:mod:`kabinet.jobs_redis`);
- no ``redis_url`` (the embedded default): an asyncio task in the web process runs them,
  from a queue in memory.

Both run a job through :meth:`Jobs.execute`, which owns the policy: a time limit, retries
with exponential backoff (dramatiq's own retry middleware is not used, so both runners
behave alike and tests drive the backoff with the injected clock), and, when the retries
are spent, a row in ``host_failed_job`` that an admin can read and retry.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import heapq
import inspect
import itertools
import logging
import traceback
import uuid
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

import msgspec
from sqlalchemy import insert, select, update

from kabinet import models
from kabinet.db import current_unit
from kabinet.services import ServiceKey

if TYPE_CHECKING:
    from kabinet.host import Host

log = logging.getLogger(__name__)

BACKOFF_BASE = 5.0
"""Seconds before the first retry; each further retry waits twice as long."""
BACKOFF_CAP = 3600.0
REDIS_NAMESPACE = "kabinet"
"""Prefix of every Redis key of the job queues."""
SCHEDULE_ORIGIN = "schedule:"
"""How the origin of a scheduler's message begins: ``schedule:<name>@<tick>``. A tick may
be sent twice (a scheduler killed between its send and its confirmation); the Redis
worker runs only the first message of each such origin (:mod:`kabinet.jobs_redis`)."""


class JobError(Exception):
    """A job cannot be sent or retried as asked; the message says why."""


def backoff(retry: int, *, base: float = BACKOFF_BASE, cap: float = BACKOFF_CAP) -> float:
    """Seconds to wait before retry number ``retry`` (1, 2, …): base, 2×base, 4×base…"""
    return float(min(cap, base * 2 ** max(retry - 1, 0)))


@dataclasses.dataclass(frozen=True)
class JobMessage:
    """One job to run: the actor, its JSON arguments, and how many times it has failed."""

    actor: str
    kwargs: dict[str, Any]
    queue: str
    id: str = dataclasses.field(default_factory=lambda: uuid.uuid4().hex)
    attempt: int = 0
    """Earlier runs that failed; 0 for the first run."""
    origin: str = ""
    """Who sent it, for people reading queues and failures (``schedule:…``, ``retry:…``)."""

    def to_wire(self) -> list[Any]:
        return [self.id, self.attempt, self.origin, self.kwargs]

    @classmethod
    def from_wire(cls, actor: str, queue: str, data: Sequence[Any]) -> JobMessage:
        mid, attempt, origin, kwargs = data
        return cls(actor=actor, kwargs=kwargs, queue=queue, id=mid, attempt=attempt, origin=origin)


class Jobs:
    """What callers use: send, retry, read failures. Subclasses put messages somewhere."""

    embedded: bool = False

    def __init__(self, host: Host) -> None:
        self.host = host
        self.running: dict[str, int] = {}
        """Jobs this process is running now, by queue (``/metrics`` reads it)."""

    # --- sending -------------------------------------------------------------------

    def message(
        self, actor: str, kwargs: dict[str, Any], *, attempt: int = 0, origin: str = ""
    ) -> JobMessage:
        """A checked message: the actor exists and the arguments survive JSON."""
        found = self.host.actors.get(actor)
        if found is None:
            known = ", ".join(sorted(self.host.actors)) or "none"
            raise JobError(f"no plugin contributes an actor named {actor!r} (known: {known})")
        try:
            wire = msgspec.json.decode(msgspec.json.encode(kwargs))
        except (TypeError, msgspec.EncodeError) as exc:
            raise JobError(f"arguments of {actor!r} must be JSON values: {exc}") from None
        return JobMessage(
            actor=actor, kwargs=wire, queue=found[1].queue, attempt=attempt, origin=origin
        )

    async def send(self, actor: str, /, **kwargs: Any) -> str:
        """Send ``actor`` to run with ``kwargs`` (JSON values); returns the message id."""
        msg = self.message(actor, kwargs)
        await self.enqueue([msg])
        return msg.id

    async def send_later(
        self, delay: float, actor: str, kwargs: dict[str, Any], *, origin: str = ""
    ) -> str:
        """Send ``actor`` to run no sooner than ``delay`` seconds from now."""
        msg = self.message(actor, kwargs, origin=origin)
        await self.enqueue([msg], delay=delay)
        return msg.id

    async def send_many(
        self, items: Iterable[tuple[str, dict[str, Any]]], *, origin: str = ""
    ) -> list[str]:
        """Send several jobs at once (one round trip where the runner allows it)."""
        msgs = [self.message(actor, kwargs, origin=origin) for actor, kwargs in items]
        if msgs:
            await self.enqueue(msgs)
        return [m.id for m in msgs]

    async def enqueue(self, messages: Sequence[JobMessage], *, delay: float = 0.0) -> None:
        """Queue ``messages``; inside a unit of work (a request, say) only once the unit has
        committed, so the job finds what the unit wrote (and a rolled-back unit sends
        nothing)."""
        unit = current_unit(self.host.db)
        if unit is None:
            await self._enqueue(messages, delay=delay)
            return
        unit.after_commit(lambda: self._enqueue(messages, delay=delay))

    async def _enqueue(self, messages: Sequence[JobMessage], *, delay: float = 0.0) -> None:
        raise NotImplementedError

    # --- running -------------------------------------------------------------------

    async def execute(self, msg: JobMessage) -> bool:
        """Run one message; on failure retry later or record it. True when it succeeded."""
        self.running[msg.queue] = self.running.get(msg.queue, 0) + 1
        try:
            return await self._execute(msg)
        finally:
            self.running[msg.queue] -= 1

    async def _execute(self, msg: JobMessage) -> bool:
        found = self.host.actors.get(msg.actor)
        if found is None:
            await self._record_failure(msg, f"no actor named {msg.actor!r} in this process")
            return False
        actor = found[1]
        try:
            await asyncio.wait_for(
                _call(self.host, actor.fn, msg.kwargs), actor.time_limit_ms / 1000
            )
        except Exception as exc:
            error = _describe(exc)
            if msg.attempt < actor.max_retries:
                retry = dataclasses.replace(msg, attempt=msg.attempt + 1)
                delay = backoff(retry.attempt)
                log.warning(
                    "job %s %s failed (attempt %d), retrying in %.0f s: %s",
                    msg.actor,
                    msg.id,
                    retry.attempt,
                    delay,
                    exc,
                )
                await self.enqueue([retry], delay=delay)
            else:
                log.error("job %s %s failed for good: %s", msg.actor, msg.id, exc)
                await self._record_failure(msg, error)
            return False
        return True

    async def _record_failure(self, msg: JobMessage, error: str) -> None:
        async with self.host.db.session() as s:
            await s.execute(
                insert(models.failed_job).values(
                    actor=msg.actor,
                    kwargs=msg.kwargs,
                    queue=msg.queue,
                    message_id=msg.id,
                    error=error,
                    attempts=msg.attempt + 1,
                    failed_at=self.host.clock.now(),
                    state="failed",
                )
            )

    # --- failures ------------------------------------------------------------------

    async def failed(self, *, include_retried: bool = False, limit: int = 100) -> list[FailedJob]:
        """Failed jobs, newest first."""
        t = models.failed_job
        query = select(t).order_by(t.c.failed_at.desc(), t.c.id.desc()).limit(limit)
        if not include_retried:
            query = query.where(t.c.state == "failed")
        async with self.host.db.session() as s:
            rows = (await s.execute(query)).mappings().all()
        return [FailedJob.from_row(dict(r)) for r in rows]

    async def retry(self, failed_id: int) -> str:
        """Send a failed job again with a fresh set of retries; returns the new message id."""
        t = models.failed_job
        async with self.host.db.session() as s:
            row = (
                (await s.execute(select(t).where(t.c.id == failed_id).with_for_update()))
                .mappings()
                .one_or_none()
            )
            if row is None:
                raise JobError(f"no failed job with id {failed_id}")
            if row["state"] != "failed":
                raise JobError(f"failed job {failed_id} was already retried")
            msg = self.message(row["actor"], dict(row["kwargs"]), origin=f"retry:{failed_id}")
            await s.execute(
                update(t)
                .where(t.c.id == failed_id)
                .values(state="retried", retried_at=self.host.clock.now(), retry_message_id=msg.id)
            )
            await self.enqueue([msg])
        return msg.id

    async def close(self) -> None:
        """Release connections."""


class FailedJob(msgspec.Struct, kw_only=True):
    """A job that ran out of retries, as admins see it."""

    id: int
    actor: str
    kwargs: dict[str, Any]
    queue: str
    message_id: str
    error: str
    attempts: int
    failed_at: str
    state: str
    retried_at: str | None = None
    retry_message_id: str | None = None

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> FailedJob:
        row = models.row_times(row, "failed_at", "retried_at")
        return cls(
            **{
                **row,
                "failed_at": row["failed_at"].isoformat(),
                "retried_at": row["retried_at"].isoformat() if row["retried_at"] else None,
            }
        )


async def _call(host: Host, fn: Any, kwargs: dict[str, Any]) -> None:
    if inspect.iscoroutinefunction(fn):
        if takes_session(fn):
            # The job is one unit of work: the host gives it the session and commits.
            async with host.db.unit(), host.db.session() as session:
                await fn(session=session, **kwargs)
            return
        await fn(**kwargs)
        return
    result = await asyncio.to_thread(fn, **kwargs)
    if inspect.isawaitable(result):
        await result


def takes_session(fn: Any) -> bool:
    """Whether a job's function asks for the unit of work's session (a ``session``
    parameter): then the job is one transaction, committed when it returns. A job without
    one commits as it goes (a sync run commits each page, a sender each claim), each
    ``host.db.session()`` block its own unit."""
    try:
        return "session" in inspect.signature(fn).parameters
    except (TypeError, ValueError):
        return False


def _describe(exc: BaseException) -> str:
    return "".join(traceback.format_exception(exc)).strip()


# --- the embedded runner -----------------------------------------------------------------


def event_of_this_loop(event: asyncio.Event) -> asyncio.Event:
    """A new Event, set if ``event`` was. An Event belongs to the loop that first waited on
    it; `kabinet demo` prepares its data in one loop and serves in another, where waiting
    on the old one would fail at once, every time, and a waiting loop would spin."""
    fresh = asyncio.Event()
    if event.is_set():
        fresh.set()
    return fresh


async def wait_for_either(wake: asyncio.Event, stop: asyncio.Event, seconds: float) -> None:
    """Until ``wake`` or ``stop`` is set, or ``seconds`` pass; a waiter's failure is
    raised, never taken for a wake-up (which would make the caller's loop spin)."""
    waiters = [asyncio.create_task(wake.wait()), asyncio.create_task(stop.wait())]
    try:
        done, _ = await asyncio.wait(waiters, timeout=seconds, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for w in waiters:
            w.cancel()
    for w in done:
        failure = w.exception()
        if failure is not None:
            raise failure


class EmbeddedJobs(Jobs):
    """Jobs in this process: a queue in memory ordered by when each message is due.

    Bulk actors' messages (``Actor.bulk``) wait in a queue of their own: they start only
    when no other message is due, at most ``bulk_concurrency`` at a time, and never take
    one of the ``concurrency`` places of the other jobs, so a client request sent behind
    thousands of them starts at once.

    Due times are read from ``host.clock``, so a test moves a frozen clock past a backoff
    and calls :meth:`drain`; the web process runs :meth:`run` as a background task. The
    queue does not survive a restart: events are recovered from the outbox at start-up,
    other jobs sent just before a stop are lost (production uses Redis).
    """

    embedded = True

    def __init__(self, host: Host, *, concurrency: int = 4, bulk_concurrency: int = 1) -> None:
        super().__init__(host)
        self.concurrency = concurrency
        self.bulk_concurrency = max(1, bulk_concurrency)
        self._heap: list[tuple[float, int, JobMessage]] = []
        self._bulk: list[tuple[float, int, JobMessage]] = []
        self._seq = itertools.count()
        self._wake = asyncio.Event()

    def _now(self) -> float:
        return self.host.clock.now().timestamp()

    async def _enqueue(self, messages: Sequence[JobMessage], *, delay: float = 0.0) -> None:
        due = self._now() + delay
        for msg in messages:
            heap = self._bulk if self._is_bulk(msg) else self._heap
            heapq.heappush(heap, (due, next(self._seq), msg))
        self._wake.set()

    def _is_bulk(self, msg: JobMessage) -> bool:
        found = self.host.actors.get(msg.actor)
        return found is not None and found[1].bulk

    @property
    def pending(self) -> int:
        """Messages waiting, due or not."""
        return len(self._heap) + len(self._bulk)

    def _take_due(self) -> list[JobMessage]:
        """Every message due now but the bulk ones."""
        now = self._now()
        due: list[JobMessage] = []
        while self._heap and self._heap[0][0] <= now:
            due.append(heapq.heappop(self._heap)[2])
        return due

    def _take_bulk(self, most: int) -> list[JobMessage]:
        """Up to ``most`` bulk messages due now."""
        now = self._now()
        due: list[JobMessage] = []
        while len(due) < most and self._bulk and self._bulk[0][0] <= now:
            due.append(heapq.heappop(self._bulk)[2])
        return due

    async def drain(self, *, limit: int = 10_000) -> int:
        """Run every message due now, and those they send that are due now; returns how many.
        A bulk message runs only when no other is due."""
        ran = 0
        while ran < limit and (due := self._take_due() or self._take_bulk(1)):
            for msg in due:
                await self.execute(msg)
                ran += 1
        return ran

    async def run(self, stop: asyncio.Event) -> None:
        """Run messages as they fall due until ``stop`` is set."""
        gate = asyncio.Semaphore(self.concurrency)
        running: set[asyncio.Task[bool]] = set()
        bulk: set[asyncio.Task[bool]] = set()
        self._wake = event_of_this_loop(self._wake)

        async def one(msg: JobMessage) -> bool:
            async with gate:
                return await self.execute(msg)

        def bulk_done(task: asyncio.Task[bool]) -> None:
            bulk.discard(task)
            self._wake.set()  # a bulk place is free

        while not stop.is_set():
            for msg in self._take_due() + self._take_bulk(self.bulk_concurrency - len(bulk)):
                if self._is_bulk(msg):
                    task = asyncio.create_task(self.execute(msg))
                    bulk.add(task)
                    task.add_done_callback(bulk_done)
                else:
                    task = asyncio.create_task(one(msg))
                running.add(task)
                task.add_done_callback(running.discard)
            self._wake.clear()
            heads = [self._heap[0][0]] if self._heap else []
            if self._bulk and len(bulk) < self.bulk_concurrency:
                heads.append(self._bulk[0][0])
            wait = min(1.0, max(0.0, min(heads) - self._now())) if heads else 1.0
            await wait_for_either(self._wake, stop, wait)
        if running:
            await asyncio.wait(running, timeout=30)


def create_jobs(host: Host) -> Jobs:
    """The runner the settings ask for."""
    url = host.settings.host.redis_url
    if not url:
        return EmbeddedJobs(host)
    from kabinet.jobs_redis import RedisJobs

    return RedisJobs(host, url)


# --- background work in the web process ----------------------------------------------------


@dataclasses.dataclass
class _Background:
    stop: asyncio.Event
    tasks: list[asyncio.Task[None]]


BACKGROUND: ServiceKey[_Background] = ServiceKey("host.background", _Background)
"""What :func:`start_embedded` runs in this process (absent when nothing runs)."""


async def start_embedded(host: Host) -> None:
    """Start what a web process runs besides requests.

    Always the event relay (so an event published by a request reaches the job system
    at once); in the embedded default also the job runner and the scheduler, and a pass
    that re-sends events whose delivery a previous process did not finish.
    """
    from kabinet.scheduler import Scheduler

    if host.services.find(BACKGROUND) is not None:
        return
    stop = asyncio.Event()
    tasks = [asyncio.create_task(host.events.run_relay(stop), name="kabinet-relay")]
    jobs = host.jobs
    if isinstance(jobs, EmbeddedJobs):
        await host.events.redeliver_stale(older_than=0.0)
        tasks.append(asyncio.create_task(jobs.run(stop), name="kabinet-jobs"))
        tasks.append(asyncio.create_task(Scheduler(host).run(stop), name="kabinet-scheduler"))
    host.services.provide(BACKGROUND, _Background(stop=stop, tasks=tasks))


async def settle_embedded(host: Host, *, limit: int = 100_000) -> int:
    """Stop what :func:`start_embedded` started, then hand every committed event to the
    queue and run every message due, until nothing is left; returns how many ran.

    A process that stops on purpose (the demo's set-up, before it serves in a new loop)
    leaves no event delivery behind in the embedded queue, which would be lost with it
    and re-sent, with a warning, by the next process.
    """
    await stop_embedded(host)
    jobs = host.jobs
    if not isinstance(jobs, EmbeddedJobs):
        return 0
    ran = 0
    while ran < limit:
        relayed = await host.events.relay()
        done = await jobs.drain(limit=limit - ran)
        ran += done
        if not relayed and not done:
            break
    return ran


async def stop_embedded(host: Host) -> None:
    """Stop what :func:`start_embedded` started, letting running jobs finish."""
    bg = host.services.pop(BACKGROUND.name, None)
    if isinstance(bg, _Background):
        bg.stop.set()
        for task in bg.tasks:
            with contextlib.suppress(Exception):
                await task
    with contextlib.suppress(Exception):
        await host.jobs.close()
