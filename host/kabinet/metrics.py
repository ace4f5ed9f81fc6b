"""Prometheus metrics: what an operator graphs and alerts on (docs/operations.md, "Metrics").

``GET /metrics`` exists only when ``[host] metrics_token`` is set, and answers only a
request carrying ``Authorization: Bearer <that token>`` (401 otherwise): it is never
public. Each web process keeps its own request counters; gauges read from the database or
Redis are the same whichever process is asked.

Two kinds of figures:

- **per request**, counted as the request leaves :class:`kabinet.web.KabinetApp`: one
  counter and one histogram, labelled by the route's *template*
  (``/shipments/orders/{order_id:int}``, never the path asked, so ids and search text
  never become labels) and the status. That is all a request pays.
- **read at scrape time**, by :class:`MetricsCollector` objects: the host's own (jobs, the
  event outbox, the database pool) and those plugins return from the ``metrics`` hook
  (the 1C sources, deliveries, sign-in failures). They run concurrently, each within its
  ``timeout``; the result is kept for :data:`CACHE_SECONDS` so that two Prometheus servers
  scraping at once read the database once. A collector that fails or times out leaves its
  metrics out and shows ``kabinet_metrics_collector_up{collector="…"} 0``.

A plugin contributes with the ``metrics`` hook::

    from kabinet.metrics import MetricsCollector, gauge

    @hookimpl
    def metrics(host: Host) -> list[MetricsCollector]:
        async def read(host: Host) -> list[Metric]:
            waiting = gauge("fuel_prices_waiting", "Prices not yet applied.")
            waiting.add_metric([], await count_waiting(host))
            return [waiting]

        return [MetricsCollector(name="fuel", collect=read)]
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import hmac
import logging
import time
from collections.abc import Awaitable, Callable, Iterable, Sequence
from typing import TYPE_CHECKING, Any

from litestar import Request, get
from litestar.response import Response
from prometheus_client import CollectorRegistry, Counter, Histogram, disable_created_metrics
from prometheus_client.exposition import generate_latest
from prometheus_client.metrics_core import GaugeMetricFamily, Metric
from sqlalchemy import func, select

from kabinet import models
from kabinet.access import machine

if TYPE_CHECKING:
    from kabinet.host import Host

__all__ = [
    "CACHE_SECONDS",
    "CONTENT_TYPE",
    "Metric",
    "Metrics",
    "MetricsCollector",
    "age_seconds",
    "gauge",
    "host_collectors",
]

log = logging.getLogger(__name__)
disable_created_metrics()  # type: ignore[no-untyped-call]  # no *_created series: they double the lines and say little

CONTENT_TYPE = "text/plain; version=0.0.4"
"""Prometheus' text format (Litestar adds the charset)."""

CACHE_SECONDS = 5.0
"""How long a scrape's gauges are reused by the next scrape."""
BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
"""Request duration buckets, seconds: pages answer in tens of milliseconds, exports in
seconds."""
UNMATCHED = "(unmatched)"
"""The route label of a request no route answered (a 404 for an unknown path)."""
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


@dataclasses.dataclass(frozen=True, kw_only=True)
class MetricsCollector:
    """Metrics read when ``/metrics`` is scraped: ``collect(host)`` returns metric
    families (:func:`gauge`), within ``timeout`` seconds or it is left out of that scrape."""

    name: str
    collect: Callable[[Host], Awaitable[Iterable[Metric]]]
    timeout: float = 2.0


def gauge(name: str, documentation: str, labels: Sequence[str] = ()) -> GaugeMetricFamily:
    """A gauge family named ``kabinet_<name>``; add samples with ``.add_metric(values, x)``."""
    return GaugeMetricFamily(f"kabinet_{name}", documentation, labels=list(labels))


def age_seconds(now: dt.datetime, then: dt.datetime | None) -> float:
    """Seconds from ``then`` to ``now`` (naive values are UTC, as SQLite returns them)."""
    if then is None:
        return 0.0
    if then.tzinfo is None:
        then = then.replace(tzinfo=dt.UTC)
    return max(0.0, (now - then).total_seconds())


class _Scraped:
    """The registry's view of the last scrape's gauges (a prometheus_client collector)."""

    def __init__(self) -> None:
        self.families: list[Metric] = []

    def collect(self) -> Iterable[Metric]:
        return list(self.families)


class Metrics:
    """One web process's metrics: the request counters and the scrape-time collectors."""

    def __init__(self, host: Host, collectors: Sequence[MetricsCollector]) -> None:
        self.host = host
        self.collectors = list(collectors)
        self.registry = CollectorRegistry(auto_describe=False)
        self._requests = Counter(
            "kabinet_http_requests",
            "Requests answered, by method, route template and status.",
            ("method", "route", "status"),
            registry=self.registry,
        )
        self._duration = Histogram(
            "kabinet_http_request_duration_seconds",
            "Time from a request's arrival to its answer's end, by method and route template.",
            ("method", "route"),
            buckets=BUCKETS,
            registry=self.registry,
        )
        self._children: dict[tuple[str, str, int], tuple[Any, Any]] = {}
        self._scraped = _Scraped()
        self.registry.register(self._scraped)
        self.cache_seconds = CACHE_SECONDS
        """How long one scrape's gauges serve the next scrapes (0: read at every scrape)."""
        self._read_at: float | None = None
        self._lock = asyncio.Lock()

    def observe(self, scope: Any, status: int, seconds: float) -> None:
        """Count one answered request (called by :class:`kabinet.web.KabinetApp`)."""
        method = scope.get("method", "GET")
        if method not in METHODS:  # any word may be sent as a method: never a new series
            method = "OTHER"
        route = scope.get("path_template") or UNMATCHED
        key = (method, route, status)
        pair = self._children.get(key)
        if pair is None:
            pair = (
                self._requests.labels(method, route, str(status)),
                self._duration.labels(method, route),
            )
            self._children[key] = pair
        pair[0].inc()
        pair[1].observe(seconds)

    async def refresh(self) -> None:
        """Run every collector (at most once per :attr:`cache_seconds`)."""
        async with self._lock:
            read_at = self._read_at
            if read_at is not None and time.monotonic() - read_at < self.cache_seconds:
                return
            results = await asyncio.gather(*(self._run(c) for c in self.collectors))
            up = gauge(
                "metrics_collector_up",
                "1 when the collector answered in time at the last scrape, else 0.",
                ["collector"],
            )
            families: list[Metric] = []
            for collector, found in zip(self.collectors, results, strict=True):
                up.add_metric([collector.name], 0.0 if found is None else 1.0)
                families.extend(found or ())
            self._scraped.families = [*families, up]
            self._read_at = time.monotonic()

    async def _run(self, collector: MetricsCollector) -> list[Metric] | None:
        try:
            return list(
                await asyncio.wait_for(collector.collect(self.host), timeout=collector.timeout)
            )
        except Exception as exc:  # one broken collector leaves the others their say
            log.warning("metrics collector %s failed: %s", collector.name, type(exc).__name__)
            return None

    async def exposition(self) -> bytes:
        """The text Prometheus reads."""
        await self.refresh()
        return generate_latest(self.registry)

    def routes(self) -> list[Any]:
        """``GET /metrics``: the text format, for the token only (401 otherwise)."""
        metrics = self

        @get("/metrics", access=machine("signature"), include_in_schema=False)
        async def scrape(request: Request[Any, Any, Any]) -> Response[bytes]:
            """Prometheus' scrape: the bearer token of ``[host] metrics_token``."""
            if not metrics.authorized(request.headers.get("authorization", "")):
                # a plain 401 (not the pages' way to the sign-in form): a program asks
                return Response(
                    b"The metrics token is needed (Authorization: Bearer).\n",
                    status_code=401,
                    media_type="text/plain",
                    headers={"WWW-Authenticate": 'Bearer realm="metrics"'},
                )
            return Response(
                await metrics.exposition(),
                media_type=CONTENT_TYPE,
                headers={"Cache-Control": "no-store"},
            )

        return [scrape]

    def authorized(self, header: str) -> bool:
        """Whether an ``Authorization`` header carries the configured token."""
        token = self.host.settings.host.metrics_token
        scheme, _, given = header.partition(" ")
        return (
            bool(token)
            and scheme.lower() == "bearer"
            and hmac.compare_digest(given.strip().encode(), token.encode())
        )


# --- the host's own collectors ------------------------------------------------------------


def host_collectors() -> list[MetricsCollector]:
    """Jobs, the event outbox and the database pool."""
    return [
        MetricsCollector(name="host.jobs", collect=_jobs),
        MetricsCollector(name="host.events", collect=_events),
        MetricsCollector(name="host.database", collect=_database),
    ]


async def _jobs(host: Host) -> list[Metric]:
    queues = sorted({actor.queue for _, actor in host.actors.values()})
    queued = gauge("jobs_queued", "Jobs waiting to run (due or delayed), by queue.", ["queue"])
    running = gauge(
        "jobs_running",
        "Jobs taken and not yet finished, by queue (Redis: all workers; else this process).",
        ["queue"],
    )
    failed = gauge(
        "jobs_failed", "Jobs that ran out of retries and wait for an admin, by queue.", ["queue"]
    )
    t = models.failed_job
    async with host.db.reader() as s:
        rows = await s.execute(
            select(t.c.queue, func.count()).where(t.c.state == "failed").group_by(t.c.queue)
        )
        failures = {str(q): int(n) for q, n in rows}
    waiting, taken = await _queue_depths(host, queues)
    for queue in sorted({*queues, *failures}):
        queued.add_metric([queue], waiting.get(queue, 0))
        failed.add_metric([queue], failures.get(queue, 0))
        if taken is not None:
            running.add_metric([queue], taken.get(queue, 0))
    return [queued, failed] if taken is None else [queued, running, failed]


async def _queue_depths(
    host: Host, queues: list[str]
) -> tuple[dict[str, int], dict[str, int] | None]:
    """(waiting, taken) per queue: in this process (embedded), or in Redis for every worker;
    taken is ``None`` where it cannot be read."""
    jobs = host.jobs
    if jobs.embedded:
        waiting: dict[str, int] = {}
        for heap in (getattr(jobs, "_heap", []), getattr(jobs, "_bulk", [])):
            for _due, _seq, msg in heap:
                waiting[msg.queue] = waiting.get(msg.queue, 0) + 1
        return waiting, dict(jobs.running)
    broker = getattr(jobs, "broker", None)
    if broker is None:
        return {}, None
    return await asyncio.to_thread(_redis_depths, broker, queues)


def _redis_depths(broker: Any, queues: list[str]) -> tuple[dict[str, int], dict[str, int]]:
    """dramatiq's Redis keys: ``<ns>:<queue>`` (ready) and ``<ns>:<queue>.DQ`` (delayed)
    hold message ids; ``<ns>:__acks__.<worker>.<queue>`` what each worker has taken."""
    from kabinet.jobs import REDIS_NAMESPACE as ns

    client = broker.client
    waiting = {q: int(client.llen(f"{ns}:{q}")) + int(client.llen(f"{ns}:{q}.DQ")) for q in queues}
    taken = dict.fromkeys(queues, 0)
    for key in client.scan_iter(match=f"{ns}:__acks__.*", count=500):
        name = key.decode() if isinstance(key, bytes) else str(key)
        queue = name.rsplit(".", 1)[-1]
        if queue in taken and not name.endswith(".DQ"):
            taken[queue] += int(client.scard(key))
    return waiting, taken


async def _events(host: Host) -> list[Metric]:
    e, h = models.event, models.event_handling
    async with host.db.reader() as s:
        depth, oldest = (
            await s.execute(
                select(func.count(), func.min(e.c.created_at)).where(e.c.relayed_at.is_(None))
            )
        ).one()
        rows = await s.execute(
            select(h.c.state, func.count())
            .where(h.c.state.in_(("retrying", "failed")))
            .group_by(h.c.state)
        )
        states: dict[str, int] = {str(state): int(n) for state, n in rows}
    outbox = gauge("events_outbox_depth", "Events written and not yet relayed to the jobs.")
    outbox.add_metric([], int(depth or 0))
    age = gauge(
        "events_outbox_oldest_age_seconds",
        "Age of the oldest event not yet relayed (0 when none waits).",
    )
    age.add_metric([], age_seconds(host.clock.now(), oldest))
    handlings = gauge(
        "events_handlings",
        "Subscribers' handlings of events that are being retried or have failed for good.",
        ["state"],
    )
    for state in ("retrying", "failed"):
        handlings.add_metric([state], int(states.get(state, 0)))
    return [outbox, age, handlings]


async def _database(host: Host) -> list[Metric]:
    """The connection pool of this process (PostgreSQL; SQLite opens one per use)."""
    pool = host.db.engine.sync_engine.pool
    found: list[Metric] = []
    for name, doc, read in (
        ("db_pool_size", "Connections the pool keeps open.", "size"),
        ("db_pool_checked_out", "Connections in use by this process now.", "checkedout"),
        ("db_pool_overflow", "Connections opened beyond the pool's size now.", "overflow"),
    ):
        reader = getattr(pool, read, None)
        if callable(reader):
            family = gauge(name, doc)
            family.add_metric([], max(0.0, float(reader())))  # overflow counts up from -size
            found.append(family)
    return found
