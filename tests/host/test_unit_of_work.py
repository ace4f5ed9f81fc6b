"""One unit of work per request and per job: the same code commits the same way on
SQLite and PostgreSQL (issue 17, point 1).

A plugin's routes write through services that each open ``host.db.session()``; the
request joins them into one transaction, committed before the answer (kept for a 4xx,
undone for a 5xx); a job sent from a request is queued only once the request's writes are
committed; ``host.db.apart()`` commits whatever the unit does.
"""

from __future__ import annotations

import sys
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import text

from kabinet.db import ApartError
from kabinet.host import Host
from kabinet.jobs import EmbeddedJobs, settle_embedded
from kabinet.testing import PluginFactory
from kabinet.web import build_app

pytestmark = pytest.mark.smoke

BODY = """
from litestar import Router, get, post
from litestar.di import NamedDependency
from litestar.exceptions import NotFoundException
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession
from kabinet.access import public
from kabinet.host import Host
from kabinet.services import ServiceKey, inject

TABLE = {table!r}


async def write(host, what):
    # a service: it takes the unit's session, never opens a transaction of its own
    async with host.db.session() as s:
        await s.execute(text(f"INSERT INTO {{TABLE}} (what) VALUES (:w)"), {{"w": what}})


async def failing(host):
    async with host.db.session() as s:
        await s.execute(text(f"INSERT INTO {{TABLE}} (what) VALUES ('lost')"))
        raise ValueError("this service failed")


async def failing_with_job(host):
    async with host.db.session() as s:
        await s.execute(text(f"INSERT INTO {{TABLE}} (what) VALUES ('lost')"))
        await host.jobs.send("uw.count")
        raise ValueError("this service failed after sending its job")


async def count(host):
    async with host.db.session() as s:
        return (await s.execute(text(f"SELECT count(*) FROM {{TABLE}}"))).scalar_one()


seen = []


async def counting_job():
    seen.append(await count(HOST[0]))


async def one_transaction_job(session, fail):
    await session.execute(text(f"INSERT INTO {{TABLE}} (what) VALUES ('job')"))
    await write(HOST[0], "job service")  # joins the job's unit
    if fail:
        raise RuntimeError("the job failed after writing")


HOST = []


class Counter:
    # a service the plugin publishes under its key, injected into a route

    def __init__(self):
        self.calls = 0


COUNTER = ServiceKey("uw.counter", Counter)


@hookimpl
def startup(host):
    host.services.provide(COUNTER, Counter())


@hookimpl
def actors(host):
    HOST[:] = [host]
    return [
        Actor(name="uw.count", fn=counting_job, max_retries=0),
        Actor(name="uw.once", fn=one_transaction_job, max_retries=0),
    ]


@hookimpl
def routers(host):
    @post("/api/uw/two", access=public)
    async def two() -> dict:
        await write(host, "a")
        await write(host, "b")
        return {{"seen": await count(host)}}

    @post("/api/uw/boom", access=public)
    async def boom() -> None:
        await write(host, "a")
        raise RuntimeError("after writing")

    @post("/api/uw/refused", access=public)
    async def refused() -> None:
        await write(host, "counted")
        raise NotFoundException("refused after counting")

    @post("/api/uw/caught", access=public)
    async def caught() -> dict:
        await write(host, "before")
        try:
            await failing(host)
        except ValueError:
            pass
        await write(host, "after")
        return {{"ok": True}}

    @post("/api/uw/job", access=public)
    async def job() -> dict:
        await write(host, "for the job")
        await host.jobs.send("uw.count")
        return {{"ok": True}}

    async def job_in_failed_block(first):
        if not first:
            await write(host, "before")  # the failing block is then a savepoint
        try:
            await failing_with_job(host)
        except ValueError:
            pass
        await write(host, "after")
        return {{"ok": True}}

    @post("/api/uw/failed-block-first", access=public)
    async def failed_block_first() -> dict:
        return await job_in_failed_block(True)

    @post("/api/uw/failed-block-later", access=public)
    async def failed_block_later() -> dict:
        return await job_in_failed_block(False)

    @post("/api/uw/job-fails", access=public)
    async def job_fails() -> None:
        await write(host, "lost with the request")
        await host.jobs.send("uw.count")
        raise RuntimeError("the request failed after sending the job")

    @post("/api/uw/apart", access=public)
    async def apart() -> None:
        async with host.db.apart() as s:
            await s.execute(text(f"INSERT INTO {{TABLE}} (what) VALUES ('audit')"))
        await write(host, "undone")
        raise RuntimeError("after the audit line")

    @post("/injected", access=public)
    async def injected(
        session: NamedDependency[AsyncSession],
        host: NamedDependency[Host],
        counter: NamedDependency[Counter],
    ) -> dict:
        # the injected session is the request's unit: a service's block joins it
        await session.execute(text(f"INSERT INTO {{TABLE}} (what) VALUES ('injected')"))
        await write(host, "service")
        counter.calls += 1
        seen = (await session.execute(text(f"SELECT count(*) FROM {{TABLE}}"))).scalar_one()
        return {{"seen": seen, "calls": counter.calls}}

    @post("/injected-boom", access=public)
    async def injected_boom(
        session: NamedDependency[AsyncSession], host: NamedDependency[Host]
    ) -> None:
        await session.execute(text(f"INSERT INTO {{TABLE}} (what) VALUES ('injected')"))
        await write(host, "service")
        raise RuntimeError("both writes go with the unit")

    di = Router(
        "/api/uw/di",
        dependencies={{"counter": inject(COUNTER)}},
        route_handlers=[injected, injected_boom],
    )
    return [
        two, boom, refused, caught, job, failed_block_first, failed_block_later, job_fails,
        apart, di,
    ]
"""


@pytest.fixture
async def portal(
    plugin_factory: PluginFactory, database_url: str, tmp_path: Path
) -> AsyncIterator[tuple[Host, httpx.AsyncClient, str]]:
    table = f"uw_{uuid.uuid4().hex[:8]}"
    plugin_factory.add("uw", BODY.format(table=table))
    env = {
        "KABINET__HOST__DATABASE_URL": database_url,
        "KABINET__HOST__VAR_DIR": str(tmp_path),
    }
    host = await Host.create(None, env=env, candidates=plugin_factory.candidates())
    serial = "INTEGER PRIMARY KEY" if host.db.dialect == "sqlite" else "SERIAL PRIMARY KEY"
    async with host.db.session() as s:
        await s.execute(text(f"CREATE TABLE {table} (id {serial}, what TEXT)"))
    app = await build_app(host)
    await host.startup()
    # Jobs run when a test drains them; what start-up queued (deliveries an earlier test
    # left unfinished) runs now, not in the test's count.
    await settle_embedded(host)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        yield host, client, table
    async with host.db.session() as s:
        await s.execute(text(f"DROP TABLE {table}"))
    await host.shutdown()


async def rows(host: Host, table: str) -> list[str]:
    async with host.db.reader() as s:
        found = await s.execute(text(f"SELECT what FROM {table} ORDER BY id"))  # noqa: S608 (our name)
        return [r[0] for r in found]


async def test_a_request_is_one_transaction_that_sees_its_own_writes(portal: Any) -> None:
    host, client, table = portal
    answer = await client.post("/api/uw/two")
    assert answer.status_code == 201, answer.text
    assert answer.json() == {"seen": 2}
    assert await rows(host, table) == ["a", "b"]


async def test_a_5xx_keeps_nothing_the_request_wrote(portal: Any) -> None:
    host, client, table = portal
    answer = await client.post("/api/uw/boom")
    assert answer.status_code == 500
    assert await rows(host, table) == []


async def test_a_4xx_keeps_what_completed_before_the_refusal(portal: Any) -> None:
    """A refused sign-in still counts the failure: a 4xx is an answer, not a fault."""
    host, client, table = portal
    answer = await client.post("/api/uw/refused")
    assert answer.status_code == 404
    assert await rows(host, table) == ["counted"]


async def test_a_failed_service_loses_only_its_own_rows(portal: Any) -> None:
    host, client, table = portal
    answer = await client.post("/api/uw/caught")
    assert answer.status_code == 201, answer.text
    assert await rows(host, table) == ["before", "after"]


async def test_a_job_sent_from_a_request_runs_after_its_commit(portal: Any) -> None:
    host, client, table = portal
    jobs = host.jobs
    assert isinstance(jobs, EmbeddedJobs)
    assert (await client.post("/api/uw/job")).status_code == 201
    await jobs.drain()
    module = sys.modules[host.actors["uw.count"][1].fn.__module__]
    assert module.seen == [1]  # the job found the request's row
    assert (await client.post("/api/uw/job-fails")).status_code == 500
    assert await jobs.drain() == 0  # a rolled-back request sends no job
    assert module.seen == [1]
    assert await rows(host, table) == ["for the job"]


async def test_a_job_sent_by_a_failed_block_is_dropped_with_its_rows(portal: Any) -> None:
    """The block's rows are undone and so is its job; the rest of the unit commits (once
    as the unit's first write, once inside a savepoint after an earlier write)."""
    host, client, table = portal
    jobs = host.jobs
    assert isinstance(jobs, EmbeddedJobs)
    for which, kept in (("first", ["after"]), ("later", ["after", "before", "after"])):
        answer = await client.post(f"/api/uw/failed-block-{which}")
        assert answer.status_code == 201, answer.text
        assert await jobs.drain() == 0  # the failed block's job is not sent
        assert sorted(await rows(host, table)) == sorted(kept)


async def test_apart_commits_whatever_the_unit_does(portal: Any) -> None:
    host, client, table = portal
    answer = await client.post("/api/uw/apart")
    assert answer.status_code == 500
    assert await rows(host, table) == ["audit"]


async def test_apart_after_the_unit_wrote_is_refused_on_sqlite(portal: Any) -> None:
    host, _client, table = portal
    async with host.db.unit():
        async with host.db.session() as s:
            await s.execute(text(f"INSERT INTO {table} (what) VALUES ('unit')"))  # noqa: S608
        if host.db.dialect == "sqlite":
            with pytest.raises(ApartError, match="before the unit's first write"):
                async with host.db.apart():
                    pass
    assert await rows(host, table) == ["unit"]


async def test_a_job_that_takes_the_session_is_one_transaction(portal: Any) -> None:
    host, _client, table = portal
    jobs = host.jobs
    assert isinstance(jobs, EmbeddedJobs)
    await jobs.send("uw.once", fail=True)
    await jobs.drain()
    assert await rows(host, table) == []  # both writes undone with the failed job
    failed = await jobs.failed()  # the database may hold other tests' failed jobs
    assert [f.actor for f in failed if f.actor.startswith("uw.")] == ["uw.once"]
    await jobs.send("uw.once", fail=False)
    await jobs.drain()
    assert await rows(host, table) == ["job", "job service"]


async def test_a_route_takes_the_units_session_the_host_and_a_service_by_injection(
    portal: Any,
) -> None:
    host, client, table = portal
    first = await client.post("/api/uw/di/injected")
    second = await client.post("/api/uw/di/injected")
    assert first.status_code == 201, first.text
    assert first.json() == {"seen": 2, "calls": 1}
    assert second.json() == {"seen": 4, "calls": 2}
    assert await rows(host, table) == ["injected", "service", "injected", "service"]
    assert (await client.post("/api/uw/di/injected-boom")).status_code == 500
    assert len(await rows(host, table)) == 4  # the injected session is the request's unit


async def test_read_connection_joins_the_unit_only_once_it_holds_one(portal: Any) -> None:
    """A read early in a request borrows a pooled connection for the read alone (the unit
    holds none through the page's rendering); once the unit holds one, the read takes it
    and sees the unit's writes (never a second pooled connection at once)."""
    host, _client, table = portal
    count = text(f"SELECT count(*) FROM {table}")  # noqa: S608 (our name)
    async with host.db.unit() as unit:
        async with host.db.read_connection() as early:
            assert (await early.execute(count)).scalar_one() == 0
        assert unit.open_session is None  # the early read did not pin the unit
        async with host.db.session() as s:
            await s.execute(text(f"INSERT INTO {table} (what) VALUES ('unit')"))  # noqa: S608
        async with host.db.read_connection() as later:
            assert (await later.execute(count)).scalar_one() == 1  # the unit's own write
    assert await rows(host, table) == ["unit"]
