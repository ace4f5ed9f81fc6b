"""The Redis runner of background jobs (``[host] redis_url`` set): a dramatiq
``RedisBroker`` any process sends through, and :func:`run_worker`, what ``kabinet worker``
runs. Jobs run through :meth:`kabinet.jobs.Jobs.execute`, as with the embedded runner; the
interface and the policy are in :mod:`kabinet.jobs`. dramatiq is imported only here, and
only when Redis is configured.

A scheduled tick's job runs once even when its tick was sent twice (see
:mod:`kabinet.scheduler`): before running a message whose origin is a tick
(``schedule:…``) the worker claims ``kabinet:tick:<origin>`` with the message's id
(``SET NX``, :data:`TICK_SECONDS`); a message of that origin with another id is dropped,
while the same message again (redelivered after its worker died, or a retry) still runs."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from kabinet.jobs import REDIS_NAMESPACE, SCHEDULE_ORIGIN, JobError, JobMessage, Jobs

if TYPE_CHECKING:
    import dramatiq

    from kabinet.host import Host

log = logging.getLogger("kabinet.jobs")

BULK_PRIORITY = 100
"""dramatiq's priority of bulk actors (``Actor.bulk``): behind every other (0)."""
HEARTBEAT_TIMEOUT_MS = 15_000
"""A worker silent in Redis this long is taken for dead, and the jobs it had taken go back
to the queue for another worker (dramatiq's default, a minute, left a killed worker's job
waiting that long). A live worker's consumers ask Redis several times a second, busy or
not, so only a process that is gone (or frozen this long) is taken for dead."""
MAINTENANCE_CHANCE = 20_000
"""Per million of a worker's calls to Redis, those that also return dead workers' jobs to
their queue. A queue's jobs are returned only by a call on that queue: at dramatiq's
default (1,000, 0.1 %) an idle queue polled ten times a second waited 100 s on average
after the heartbeat timeout; at 2 % it waits about 5 s. The check is two small sorted-set
reads when no worker is dead."""
TICK_SECONDS = 86_400
"""How long a worker remembers which message of a tick ran: a second message of the same
tick follows the first by seconds (a scheduler's take-over after its lease)."""


class RedisJobs(Jobs):
    """Jobs through Redis: a dramatiq ``RedisBroker`` with one dramatiq actor per actor.

    Any process may send. ``kabinet worker`` runs :func:`run_worker`: dramatiq's consumer
    and worker threads hand each message to this process's event loop, where
    :meth:`Jobs.execute` runs it with the same host as everywhere else.
    """

    def __init__(self, host: Host, url: str) -> None:
        from dramatiq.brokers.redis import RedisBroker

        super().__init__(host)
        self.broker = RedisBroker(  # type: ignore[no-untyped-call]
            url=url,
            namespace=REDIS_NAMESPACE,
            middleware=[],
            heartbeat_timeout=HEARTBEAT_TIMEOUT_MS,
            maintenance_chance=MAINTENANCE_CHANCE,
        )
        self.loop: asyncio.AbstractEventLoop | None = None
        self._actors: dict[str, dramatiq.Actor[Any, Any]] = {}
        for name, (_plugin, actor) in sorted(host.actors.items()):
            self._declare(name, actor.queue, bulk=actor.bulk)

    def _declare(self, name: str, queue: str, *, bulk: bool = False) -> None:
        import dramatiq

        def run(*data: Any) -> None:
            self._run_threadsafe(JobMessage.from_wire(name, queue, data))

        # dramatiq's priority orders the messages a worker has taken: lower runs first.
        self._actors[name] = dramatiq.Actor(
            run,
            broker=self.broker,
            actor_name=name,
            queue_name=queue,
            priority=BULK_PRIORITY if bulk else 0,
            options={},
        )

    def _run_threadsafe(self, msg: JobMessage) -> None:
        """Called in a dramatiq worker thread: run the job on the host's event loop."""
        if self.loop is None:
            raise RuntimeError("jobs run only inside `kabinet worker`")
        if not self.first_of_its_tick(msg):
            log.info("job %s %s skipped: tick %s was sent before", msg.actor, msg.id, msg.origin)
            return
        asyncio.run_coroutine_threadsafe(self.execute(msg), self.loop).result()

    def first_of_its_tick(self, msg: JobMessage) -> bool:
        """False for a second message of one scheduled tick; True for any other message,
        and for the first message of a tick each time it is delivered."""
        if not msg.origin.startswith(SCHEDULE_ORIGIN):
            return True
        key = f"{REDIS_NAMESPACE}:tick:{msg.origin}"
        client = self.broker.client
        if client.set(key, msg.id, nx=True, ex=TICK_SECONDS):
            return True
        found = client.get(key)
        return found is None or found in (msg.id, msg.id.encode())

    def _enqueue_sync(self, messages: Sequence[JobMessage], delay_ms: int | None) -> None:
        for msg in messages:
            dm = self._actors[msg.actor].message_with_options(args=tuple(msg.to_wire()))
            self.broker.enqueue(dm, delay=delay_ms)

    async def _enqueue(self, messages: Sequence[JobMessage], *, delay: float = 0.0) -> None:
        delay_ms = int(delay * 1000) if delay > 0 else None
        # redis-py here is blocking; a thread keeps the event loop (web requests) free.
        await asyncio.to_thread(self._enqueue_sync, messages, delay_ms)

    @property
    def queues(self) -> set[str]:
        return set(self.broker.get_declared_queues())

    async def close(self) -> None:
        """Close the broker and the sockets of its connection pool. dramatiq makes the pool
        itself and hands it to its ``redis.Redis``, whose ``close()`` then leaves the pool
        (and every socket in it) open; left to the garbage collector, each socket is a
        ``ResourceWarning`` (an "unraisable exception" failing whichever test runs then)."""
        self.broker.close()
        client = self.broker.client
        client.close()
        client.connection_pool.disconnect()


async def run_worker(
    host: Host,
    stop: asyncio.Event,
    *,
    threads: int = 8,
    queues: Sequence[str] = (),
    relay: bool = True,
    bulk_threads: int = 2,
) -> None:
    """``kabinet worker``: consume Redis until ``stop`` is set, then finish running jobs.

    Queues of bulk actors (``Actor.bulk``) run on ``bulk_threads`` threads of their own,
    the other queues on ``threads``: a worker busy with thousands of file fetches still
    takes a client request at once."""
    from dramatiq import Worker
    from dramatiq.common import dq_name

    jobs = host.jobs
    if not isinstance(jobs, RedisJobs):
        raise JobError(
            "kabinet worker needs [host] redis_url; without it the web process runs jobs itself"
        )
    unknown = set(queues) - jobs.queues
    if unknown:
        raise JobError(
            f"no actor uses queue(s) {', '.join(sorted(unknown))} "
            f"(known: {', '.join(sorted(jobs.queues))})"
        )
    jobs.loop = asyncio.get_running_loop()
    chosen = set(queues) or jobs.queues
    bulk = {a.queue for _p, a in host.actors.values() if a.bulk} & chosen
    # A short idle poll keeps the delay from commit to handling well under a second.
    workers = [
        Worker(
            jobs.broker,
            queues={q for name in names for q in (name, dq_name(name))},
            worker_threads=n,
            worker_timeout=100,
        )
        for names, n in ((chosen - bulk, threads), (bulk, max(1, bulk_threads)))
        if names
    ]
    for worker in workers:
        worker.start()
    relay_task = asyncio.create_task(host.events.run_relay(stop)) if relay else None
    try:
        await stop.wait()
        log.info("worker stopping: taking no more jobs, finishing the running ones")
    finally:
        if relay_task is not None:
            await relay_task
        # Worker threads wait on this loop, so stop them from another thread.
        for worker in workers:
            await asyncio.to_thread(worker.stop, 30_000)
        jobs.loop = None
