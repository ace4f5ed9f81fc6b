"""``/metrics`` (kabinet.metrics): absent without a token, refused without the right one,
and what an operator reads there: requests by route template and status, failed jobs
per queue, the outbox's depth and age. Plugins' figures are tested in their apps."""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import random
import uuid
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import delete, insert

from kabinet import models
from kabinet.host import Host
from kabinet.jobs import stop_embedded
from kabinet.metrics import Metric, MetricsCollector
from kabinet.testing import PluginFactory
from kabinet.web import KabinetApp, build_app

pytestmark = pytest.mark.smoke

TOKEN = "scrape-token-5d1c9e7a"


@asynccontextmanager
async def portal(
    database_url: str, tmp_path: Path, *, token: str = TOKEN
) -> AsyncIterator[tuple[Host, KabinetApp, httpx.AsyncClient]]:
    settings = tmp_path / "settings.toml"
    settings.write_text(
        f'[host]\nvar_dir = "var"\nsecret_key = "metrics-secret"\nmetrics_token = "{token}"\n'
    )
    host = await Host.create(settings, env={"KABINET__HOST__DATABASE_URL": database_url})
    app = await build_app(host)
    await host.startup()
    await stop_embedded(host)  # no relay: the outbox keeps what the test writes
    try:
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://127.0.0.1:8000"
        ) as client:
            yield host, app, client
    finally:
        await host.shutdown()


def samples(text: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """(sample name, its labels) -> value, as Prometheus reads them."""
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def value(
    found: dict[tuple[str, frozenset[tuple[str, str]]], float], name: str, **labels: str
) -> float:
    return found.get((name, frozenset(labels.items())), 0.0)


async def scrape(client: httpx.AsyncClient) -> str:
    response = await client.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain; version=0.0.4")
    assert response.headers["cache-control"] == "no-store"
    return response.text


async def test_without_a_token_configured_there_is_no_metrics_endpoint(
    database_url: str, tmp_path: Path
) -> None:
    async with portal(database_url, tmp_path, token="") as (_host, _app, client):
        response = await client.get("/metrics", headers={"Authorization": "Bearer "})
        assert response.status_code == 404


async def test_metrics_are_refused_without_the_token(database_url: str, tmp_path: Path) -> None:
    async with portal(database_url, tmp_path) as (_host, _app, client):
        for headers in (
            {},
            {"Authorization": "Bearer wrong-token"},
            {"Authorization": f"Basic {TOKEN}"},
            {"Authorization": f"Bearer {TOKEN}x"},
        ):
            response = await client.get("/metrics", headers=headers)
            assert response.status_code == 401, headers
            assert response.headers["www-authenticate"] == 'Bearer realm="metrics"'
            assert "kabinet_" not in response.text


async def test_requests_are_counted_by_route_template_and_status(
    database_url: str, tmp_path: Path
) -> None:
    async with portal(database_url, tmp_path) as (host, _app, client):
        for _ in range(3):
            assert (await client.get("/health")).status_code == 200
        await client.get("/shipments/orders/48151623")  # anonymous: sent to sign in
        await client.get("/no-such-page/48151623?q=secret-search")
        for made_up in ("BREW", "PROPFIND", "X48151623"):
            await client.request(made_up, "/health")
        text = await scrape(client)
        found = samples(text)

        assert (
            value(found, "kabinet_http_requests_total", method="GET", route="/health", status="200")
            == 3
        )
        order = {"method": "GET", "route": "/shipments/orders/{order_id}"}
        assert (
            sum(
                v
                for (n, labels), v in found.items()
                if n == "kabinet_http_requests_total" and set(order.items()) <= labels
            )
            == 1
        )
        assert (
            value(
                found,
                "kabinet_http_requests_total",
                method="GET",
                route="(unmatched)",
                status="404",
            )
            == 1
        )
        assert (
            value(
                found, "kabinet_http_request_duration_seconds_count", method="GET", route="/health"
            )
            == 3
        )
        assert (
            value(
                found,
                "kabinet_http_request_duration_seconds_bucket",
                method="GET",
                route="/health",
                le="+Inf",
            )
            == 3
        )
        other = sum(
            v
            for (n, labels), v in found.items()
            if n == "kabinet_http_requests_total" and ("method", "OTHER") in labels
        )
        assert other == 3  # a made-up method is one series, whatever its name
        # what was asked never becomes a label: no ids, no query, no token
        for secret in ("48151623", "secret-search", TOKEN, "metrics-secret"):
            assert secret not in text
        assert value(found, "kabinet_metrics_collector_up", collector="host.jobs") == 1
        if host.db.dialect == "postgresql":  # SQLite opens a connection per use: no pool
            assert value(found, "kabinet_db_pool_size") >= 1
            assert ("kabinet_db_pool_checked_out", frozenset()) in found


async def test_failed_jobs_and_the_outbox_are_read_at_scrape_time(
    database_url: str, tmp_path: Path
) -> None:
    async with portal(database_url, tmp_path) as (host, app, client):
        app.metrics.cache_seconds = 0  # each scrape reads again
        before = samples(await scrape(client))
        now = host.clock.now()
        async with host.db.session() as s:
            failed = await s.execute(
                insert(models.failed_job)
                .values(
                    actor="notifications.deliver",
                    kwargs={},
                    queue="notifications",
                    message_id="m-metrics-1",
                    error="boom",
                    attempts=4,
                    failed_at=now,
                    state="failed",
                )
                .returning(models.failed_job.c.id)
            )
            failed_id = failed.scalar_one()
            waiting = await s.execute(
                insert(models.event)
                .values(
                    type="identity.metrics.test",
                    payload={},
                    created_at=now - dt.timedelta(minutes=10),
                )
                .returning(models.event.c.id)
            )
            event_id = waiting.scalar_one()
        try:
            after = samples(await scrape(client))
            fails = "kabinet_jobs_failed"
            assert (
                value(after, fails, queue="notifications")
                == value(before, fails, queue="notifications") + 1
            )
            assert (
                value(after, "kabinet_events_outbox_depth")
                == value(before, "kabinet_events_outbox_depth") + 1
            )
            assert value(after, "kabinet_events_outbox_oldest_age_seconds") >= 600
            assert value(after, "kabinet_jobs_queued", queue="notifications") == 0
        finally:
            async with host.db.session() as s:
                await s.execute(
                    delete(models.failed_job).where(models.failed_job.c.id == failed_id)
                )
                await s.execute(delete(models.event).where(models.event.c.id == event_id))


async def test_a_second_scrape_within_seconds_reads_the_cache(
    database_url: str, tmp_path: Path
) -> None:
    calls = []

    async with portal(database_url, tmp_path) as (_host, app, client):
        metrics = app.metrics
        first = metrics.collectors[0]

        async def counting(host: Host) -> Iterable[Metric]:
            calls.append(1)
            return await first.collect(host)

        metrics.collectors[0] = dataclasses.replace(first, collect=counting)
        await scrape(client)
        await scrape(client)
        assert len(calls) == 1  # two Prometheus servers at once read the database once
        metrics.cache_seconds = 0
        await scrape(client)
        assert len(calls) == 2


async def test_a_failing_collector_is_reported_and_leaves_the_others(
    database_url: str, tmp_path: Path
) -> None:
    async def broken(host: Host) -> Iterable[Metric]:
        raise RuntimeError("the database is away")

    async with portal(database_url, tmp_path) as (_host, app, client):
        app.metrics.collectors.append(MetricsCollector(name="test.broken", collect=broken))
        found = samples(await scrape(client))
        assert value(found, "kabinet_metrics_collector_up", collector="test.broken") == 0
        assert value(found, "kabinet_metrics_collector_up", collector="host.events") == 1
        assert ("kabinet_events_outbox_depth", frozenset()) in found


FUEL = """
from kabinet.metrics import MetricsCollector, gauge


async def read(host):
    waiting = gauge("fuel_prices_waiting", "Prices not applied yet, by depot.", ["depot"])
    waiting.add_metric(["north"], 3)
    waiting.add_metric(["south"], 0)
    return [waiting]


@hookimpl
def metrics(host):
    return [MetricsCollector(name="fuel.prices", collect=read)]
"""


async def test_hook_metrics_a_plugins_collector_is_read_at_each_scrape(
    plugin_factory: PluginFactory, database_url: str, tmp_path: Path
) -> None:
    plugin_factory.add("fuel", FUEL)
    host = await Host.create(
        None,
        env={
            "KABINET__HOST__DATABASE_URL": database_url,
            "KABINET__HOST__VAR_DIR": str(tmp_path),
            "KABINET__HOST__METRICS_TOKEN": TOKEN,
        },
        candidates=plugin_factory.candidates(),
    )
    app = await build_app(host)
    try:
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://127.0.0.1:8000"
        ) as client:
            found = samples(await scrape(client))
    finally:
        await host.db.dispose()
    assert value(found, "kabinet_fuel_prices_waiting", depot="north") == 3
    assert value(found, "kabinet_fuel_prices_waiting", depot="south") == 0
    assert value(found, "kabinet_metrics_collector_up", collector="fuel.prices") == 1


MJOB = """
@hookimpl
def actors(host):
    async def work():
        pass

    return [Actor(name="mjob.work", fn=work, queue=QUEUE)]
"""


async def test_jobs_queued_and_taken_are_read_from_redis(
    plugin_factory: PluginFactory, database_url: str, tmp_path: Path
) -> None:
    """Production's shape: messages wait in Redis for the workers; what a worker has taken
    (dramatiq's acknowledgement set of that worker and queue) counts as running."""
    import redis

    from kabinet.jobs import REDIS_NAMESPACE
    from kabinet.jobs_redis import RedisJobs

    queue = f"mjob_{uuid.uuid4().hex[:8]}"
    plugin_factory.add("mjob", f"QUEUE = {queue!r}\n" + MJOB)
    url = f"redis://127.0.0.1:6379/{random.randint(1, 15)}"  # as test_jobs: not 0
    host = await Host.create(
        None,
        env={
            "KABINET__HOST__DATABASE_URL": database_url,
            "KABINET__HOST__VAR_DIR": str(tmp_path),
            "KABINET__HOST__REDIS_URL": url,
            "KABINET__HOST__METRICS_TOKEN": TOKEN,
        },
        candidates=plugin_factory.candidates(),
    )
    client = redis.Redis.from_url(url)
    taken = f"{REDIS_NAMESPACE}:__acks__.metrics-test-worker.{queue}"
    try:
        assert isinstance(host.jobs, RedisJobs)
        await host.jobs.send("mjob.work")
        await host.jobs.send("mjob.work")
        await host.jobs.send_later(3600, "mjob.work", {})
        client.sadd(taken, "a-message-id")
        app = await build_app(host)
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://127.0.0.1:8000"
        ) as http:
            found = samples(await scrape(http))
        assert value(found, "kabinet_jobs_queued", queue=queue) == 3  # 2 due, 1 delayed
        assert value(found, "kabinet_jobs_running", queue=queue) == 1
        assert value(found, "kabinet_jobs_failed", queue=queue) == 0
    finally:
        for key in client.scan_iter(match=f"{REDIS_NAMESPACE}:{queue}*"):
            client.delete(key)
        client.delete(taken)
        client.close()
        await host.jobs.close()
        await host.db.dispose()


SLOW = """
import asyncio


@hookimpl
def actors(host):
    async def slow():
        await asyncio.sleep(0.5)

    return [Actor(name="mslow.slow", fn=slow, queue="mslow")]
"""


async def test_jobs_running_in_this_process_are_counted(
    plugin_factory: PluginFactory, database_url: str, tmp_path: Path
) -> None:
    """The embedded runner (no Redis): a job under way shows as running on its queue."""
    plugin_factory.add("mslow", SLOW)
    host = await Host.create(
        None,
        env={
            "KABINET__HOST__DATABASE_URL": database_url,
            "KABINET__HOST__VAR_DIR": str(tmp_path),
            "KABINET__HOST__METRICS_TOKEN": TOKEN,
        },
        candidates=plugin_factory.candidates(),
    )
    app = await build_app(host)
    app.metrics.cache_seconds = 0
    try:
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://127.0.0.1:8000"
        ) as client:
            job = asyncio.create_task(host.jobs.execute(host.jobs.message("mslow.slow", {})))
            await asyncio.sleep(0.05)
            during = samples(await scrape(client))
            assert await job
            after = samples(await scrape(client))
    finally:
        await host.db.dispose()
    assert value(during, "kabinet_jobs_running", queue="mslow") == 1
    assert value(after, "kabinet_jobs_running", queue="mslow") == 0
    assert ("kabinet_jobs_running", frozenset({("queue", "mslow")})) in after
