"""Jobs: one interface, the embedded runner (frozen clock) and Redis with a real worker."""

from __future__ import annotations

import asyncio
import os
import random
import signal
import subprocess
import sys
import textwrap
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import delete, make_url, select, text

from kabinet import models
from kabinet.access import Principal
from kabinet.builtin import api as host_api
from kabinet.clock import FrozenClock
from kabinet.db import Database
from kabinet.errors import PluginError
from kabinet.host import Host
from kabinet.jobs import EmbeddedJobs, JobError, backoff
from kabinet.jobs_redis import RedisJobs
from kabinet.testing import PluginFactory, drop_database, migrated_database

JOBT = """
from pathlib import Path

CALLS = []
FAIL = {"times": 0}

@hookimpl
def actors(host):
    async def record(note):
        CALLS.append(note)
        if FAIL["times"] > 0:
            FAIL["times"] -= 1
            raise ConnectionError(f"1C is not answering ({note})")

    def sync_total(values):
        CALLS.append(sum(values))

    return [
        Actor(name="jobt.record", fn=record, queue="jobt", max_retries=3),
        Actor(name="jobt.total", fn=sync_total),
    ]
"""


HOST_TABLES = "host_event_handling", "host_event", "host_failed_job"


@pytest.fixture(scope="module")
async def module_url(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[str]:
    """One migrated database for this module (creating one per test takes seconds)."""
    url = await migrated_database(tmp_path_factory.mktemp("db"))
    yield url
    await drop_database(url)


@pytest.fixture
async def fresh_url(module_url: str) -> str:
    """The module's database with the host's tables emptied, so no earlier test's events
    are relayed and ids start at 1."""
    db = Database(make_url(module_url))
    try:
        async with db.session() as s:
            if db.dialect == "postgresql":
                await s.execute(text(f"TRUNCATE {', '.join(HOST_TABLES)} RESTART IDENTITY"))
            else:
                for table in (models.event_handling, models.event, models.failed_job):
                    await s.execute(delete(table))
    finally:
        await db.dispose()
    return module_url


@pytest.fixture
async def host(
    plugin_factory: PluginFactory, fresh_url: str, clock: FrozenClock
) -> AsyncIterator[Host]:
    plugin_factory.add("jobt", JOBT)
    h = await Host.create(
        None,
        env={"KABINET__HOST__DATABASE_URL": fresh_url},
        candidates=plugin_factory.candidates(),
        clock=clock,
    )
    yield h
    await h.db.dispose()


def mod(factory: PluginFactory) -> Any:
    return sys.modules[factory.modules[0]]


def embedded(host: Host) -> EmbeddedJobs:
    assert isinstance(host.jobs, EmbeddedJobs)
    return host.jobs


@pytest.mark.smoke
async def test_embedded_default_runs_jobs_in_process(
    host: Host, plugin_factory: PluginFactory
) -> None:
    assert host.settings.host.redis_url == ""
    await host.jobs.send("jobt.record", note="first")
    await host.jobs.send("jobt.total", values=[1, 2, 3])
    assert await embedded(host).drain() == 2
    assert mod(plugin_factory).CALLS == ["first", 6]


@pytest.mark.smoke
async def test_send_refuses_unknown_actor_and_non_json_arguments(host: Host) -> None:
    with pytest.raises(JobError, match=r"no plugin contributes an actor named 'jobt\.recrod'"):
        await host.jobs.send("jobt.recrod", note="x")
    with pytest.raises(JobError, match="must be JSON values"):
        await host.jobs.send("jobt.record", note=object())
    assert embedded(host).pending == 0


@pytest.mark.smoke
async def test_failing_job_is_retried_with_backoff_then_recorded_and_retried_by_admin(
    host: Host, plugin_factory: PluginFactory, clock: FrozenClock
) -> None:
    plugin = mod(plugin_factory)
    plugin.FAIL["times"] = 100
    runner = embedded(host)
    await host.jobs.send("jobt.record", note="sync orders")

    assert await runner.drain() == 1
    for retry in (1, 2, 3):  # max_retries=3
        clock.advance(backoff(retry) - 0.1)
        assert await runner.drain() == 0, f"retry {retry} ran before its backoff"
        clock.advance(0.1)
        assert await runner.drain() == 1
    assert plugin.CALLS == ["sync orders"] * 4
    assert runner.pending == 0

    [failed] = await host.jobs.failed()
    assert (failed.actor, failed.kwargs, failed.attempts, failed.state) == (
        "jobt.record",
        {"note": "sync orders"},
        4,
        "failed",
    )
    assert "ConnectionError: 1C is not answering (sync orders)" in failed.error
    assert failed.failed_at == clock.now().isoformat()

    plugin.FAIL["times"] = 0
    message_id = await host.jobs.retry(failed.id)
    assert await runner.drain() == 1
    assert plugin.CALLS[-1] == "sync orders"
    assert await host.jobs.failed() == []
    [retried] = await host.jobs.failed(include_retried=True)
    assert (retried.state, retried.retry_message_id) == ("retried", message_id)
    with pytest.raises(JobError, match="already retried"):
        await host.jobs.retry(failed.id)
    with pytest.raises(JobError, match="no failed job with id 999"):
        await host.jobs.retry(999)


def test_backoff_doubles_up_to_a_cap() -> None:
    assert [backoff(n) for n in (1, 2, 3, 4)] == [5.0, 10.0, 20.0, 40.0]
    assert backoff(30) == 3600.0


@pytest.mark.smoke
async def test_time_limit_fails_a_stuck_job(
    plugin_factory: PluginFactory, fresh_url: str, clock: FrozenClock
) -> None:
    plugin_factory.add(
        "stuck",
        """
        import asyncio

        @hookimpl
        def actors(host):
            async def hang():
                await asyncio.Event().wait()
            return [Actor(name="stuck.hang", fn=hang, max_retries=0, time_limit_ms=20)]
        """,
    )
    host = await Host.create(
        None,
        env={"KABINET__HOST__DATABASE_URL": fresh_url},
        candidates=plugin_factory.candidates(),
        clock=clock,
    )
    try:
        await host.jobs.send("stuck.hang")
        await embedded(host).drain()
        [failed] = await host.jobs.failed()
        assert failed.actor == "stuck.hang"
        assert "TimeoutError" in failed.error
    finally:
        await host.db.dispose()


# --- the admin API ----------------------------------------------------------------------


def test_every_runtime_route_requires_the_jobs_permission(host: Host) -> None:
    routers = host_api.routers(host)
    handlers = {h for router in routers for route in router.routes for h in route.route_handlers}
    # Litestar adds an OPTIONS handler per path; the guard lets those through.
    declared = [h for h in handlers if h.http_methods != {"OPTIONS"}]
    assert len(declared) == 7  # four JSON routes, the page and its two retry forms
    for handler in declared:
        rule = handler.opt["access"]
        assert (rule.code, rule.scope) == ("host.jobs.manage", "global")
    assert "host.jobs.manage" in host.permissions


def client_of(app: Any) -> httpx.AsyncClient:
    """A client calling the app in this test's event loop, where the host's engine lives."""
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test")


@pytest.mark.smoke
async def test_admin_api_lists_and_retries_failed_jobs(
    host: Host, plugin_factory: PluginFactory
) -> None:
    from litestar import Litestar
    from litestar.types import ASGIApp, Receive, Scope, Send

    def as_admin(app: ASGIApp) -> ASGIApp:
        async def middleware(scope: Scope, receive: Receive, send: Send) -> None:
            scope["user"] = Principal(person_id=1, name="admin", kind="person")
            await app(scope, receive, send)

        return middleware

    mod(plugin_factory).FAIL["times"] = 1
    runner = embedded(host)
    # A job on its last attempt, which fails: recorded for the admin.
    assert not await host.jobs.execute(host.jobs.message("jobt.record", {"note": "n1"}, attempt=3))
    app = Litestar(route_handlers=host_api.routers(host), middleware=[as_admin])
    async with client_of(app) as client:
        listed = (await client.get("/api/host/jobs/failed")).json()
        assert [(j["actor"], j["kwargs"], j["attempts"]) for j in listed] == [
            ("jobt.record", {"note": "n1"}, 4)
        ]
        assert "1C is not answering (n1)" in listed[0]["error"]
        done = await client.post(f"/api/host/jobs/failed/{listed[0]['id']}/retry")
        assert done.status_code == 202
        assert done.json()["message_id"]
        assert await runner.drain() == 1
        assert (await client.get("/api/host/jobs/failed")).json() == []
        again = await client.post(f"/api/host/jobs/failed/{listed[0]['id']}/retry")
        assert again.status_code == 409
        assert "already retried" in again.text
        missing = await client.post("/api/host/jobs/failed/424242/retry")
        assert missing.status_code == 404
        bad = await client.get("/api/host/jobs/failed", params={"limit": 0})
        assert bad.status_code == 400
        assert "limit" in bad.text
        assert (await client.get("/api/host/jobs/events")).json() == []
        gone = await client.post("/api/host/jobs/events/1/nobody.here/retry")
        assert gone.status_code == 404


@pytest.mark.smoke
async def test_admin_api_refuses_anonymous_in_the_real_app(host: Host) -> None:
    from kabinet.web import build_app

    app = await build_app(host)
    async with client_of(app) as client:
        for path in ("/api/host/jobs/failed", "/api/host/jobs/events"):
            response = await client.get(path)
            assert response.status_code == 401, path
        page = await client.get("/host/jobs")
        assert page.status_code in (302, 303)
        assert page.headers["location"].startswith("/login")


# --- the hooks, as the host consumes them -------------------------------------------------


@pytest.mark.smoke
async def test_hook_actors_run_through_host_jobs(host: Host, plugin_factory: PluginFactory) -> None:
    assert {"jobt.record", "jobt.total", "host.deliver_event"} <= set(host.actors)
    assert host.actors["jobt.record"][1].queue == "jobt"
    await host.jobs.send("jobt.record", note="hook")
    await embedded(host).drain()
    assert mod(plugin_factory).CALLS == ["hook"]


async def test_hook_actors_duplicate_names_refused(plugin_factory: PluginFactory) -> None:
    plugin_factory.add("jobt", JOBT)
    plugin_factory.add(
        "twin",
        """
        @hookimpl
        def actors(host):
            return [Actor(name="jobt.record", fn=print)]
        """,
    )
    with pytest.raises(PluginError, match=r"jobt\.record"):
        await Host.create(None, env={}, candidates=plugin_factory.candidates())


# --- production: Redis and a real `kabinet worker` ----------------------------------------

REDIS_PLUGIN = """
from pathlib import Path

import msgspec

class Noted(msgspec.Struct):
    text: str
    out: str

def _append(path, line):
    with open(path, "a") as f:
        f.write(line + "\\n")

@hookimpl
def event_types():
    return [EventType(name="rjob.note.added", payload=Noted)]

@hookimpl
def subscriptions(host):
    def write(event):
        _append(event.payload.out, "event " + event.payload.text)
    return [Subscription(event="rjob.note.added", name="rjob.writer", handler=write)]

@hookimpl
def actors(host):
    async def record(out, text):
        _append(out, "job " + text)

    async def flaky(out):
        if not Path(out + ".ok").exists():
            raise RuntimeError("the printer is out of paper")
        _append(out, "flaky ok")

    return [
        Actor(name="rjob.record", fn=record, queue=QUEUE),
        Actor(name="rjob.flaky", fn=flaky, queue=QUEUE, max_retries=0),
    ]
"""


def redis_url() -> str:
    # A database of its own (not 0, which others use); a run shares it with nobody.
    return f"redis://127.0.0.1:6379/{random.randint(1, 15)}"


@pytest.fixture
def redis_settings(tmp_path: Path, fresh_url: str, plugin_factory: PluginFactory) -> Path:
    queue = f"rjob_{uuid.uuid4().hex[:8]}"
    plugin_factory.add("rjob", f"QUEUE = {queue!r}\n" + textwrap.dedent(REDIS_PLUGIN))
    path = tmp_path / "settings.toml"
    path.write_text(f'[host]\ndatabase_url = "{fresh_url}"\nredis_url = "{redis_url()}"\n')
    return path


def kabinet_process(settings: Path, site: Path, *args: str) -> subprocess.Popen[str]:
    env = {
        **os.environ,
        "KABINET_SETTINGS": str(settings),
        "PYTHONPATH": os.pathsep.join([str(site), os.environ.get("PYTHONPATH", "")]),
    }
    exe = Path(sys.executable).with_name("kabinet")
    return subprocess.Popen(
        [str(exe), *args],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


@pytest.fixture
def worker(redis_settings: Path, plugin_factory: PluginFactory) -> Iterator[subprocess.Popen[str]]:
    proc = kabinet_process(redis_settings, plugin_factory.site, "worker", "--threads", "2")
    yield proc
    proc.send_signal(signal.SIGTERM)
    try:
        _, err = proc.communicate(timeout=15)
    except subprocess.TimeoutExpired:
        proc.kill()
        _, err = proc.communicate()
        pytest.fail(f"kabinet worker did not stop on SIGTERM:\n{err}")
    assert proc.returncode == 0, err


async def eventually(check: Callable[[], Awaitable[bool]], proc: Any, what: str) -> None:
    """Wait (bounded) for another process to do something; fail with its output if not."""
    for _ in range(300):
        if await check():
            return
        if proc.poll() is not None:
            pytest.fail(f"the worker exited while waiting for {what}:\n{proc.stderr.read()}")
        await asyncio.sleep(0.05)
    pytest.fail(f"timed out waiting for {what}")


def lines(path: Path) -> list[str]:
    return path.read_text().splitlines() if path.exists() else []


@pytest.mark.slow
@pytest.mark.postgres
async def test_job_and_event_through_redis_and_a_real_worker(
    redis_settings: Path, worker: subprocess.Popen[str], tmp_path: Path
) -> None:
    out = tmp_path / "out.txt"
    host = await Host.create(redis_settings)
    try:
        assert isinstance(host.jobs, RedisJobs)
        await host.jobs.send("rjob.record", out=str(out), text="hello")
        async with host.db.session() as s:
            event_id = await host.events.publish(
                s, "rjob.note.added", {"text": "published", "out": str(out)}
            )

        async def both() -> bool:
            return sorted(lines(out)) == ["event published", "job hello"]

        # The worker's relay picks the committed event up from the outbox.
        await eventually(both, worker, "the job and the event")
        h = models.event_handling
        # The handler writes the file before its delivery's transaction commits the
        # handling record: wait for the record too, rather than read it once.

        async def handled() -> bool:
            async with host.db.session() as s:
                state = (
                    await s.execute(select(h.c.state).where(h.c.event_id == event_id))
                ).scalar_one_or_none()
            return state == "handled"

        await eventually(handled, worker, "the event's handling record")

        # A job that fails for good is recorded; an admin's retry runs it on the worker.
        await host.jobs.send("rjob.flaky", out=str(out))

        async def recorded() -> bool:
            return any(f.actor == "rjob.flaky" for f in await host.jobs.failed())

        await eventually(recorded, worker, "the failed job")
        [failed] = [f for f in await host.jobs.failed() if f.actor == "rjob.flaky"]
        assert "the printer is out of paper" in failed.error
        Path(str(out) + ".ok").touch()  # noqa: ASYNC240 (a file, instantly)
        await host.jobs.retry(failed.id)

        async def flaky_ok() -> bool:
            return "flaky ok" in lines(out)

        await eventually(flaky_ok, worker, "the retried job")
    finally:
        await host.jobs.close()
        await host.db.dispose()


def test_worker_refuses_to_start_without_redis(tmp_path: Path) -> None:
    settings = tmp_path / "settings.toml"
    settings.write_text(f'[host]\ndatabase_url = "sqlite+aiosqlite:///{tmp_path}/x.sqlite3"\n')
    proc = kabinet_process(settings, tmp_path, "worker")
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 2
    assert "kabinet worker needs [host] redis_url" in err


@pytest.mark.smoke
def test_the_runner_waits_in_a_second_event_loop_instead_of_spinning() -> None:
    """`kabinet demo` prepares its data in one event loop and serves in another; the
    runner's wake-up event, first used in the first, must not make it spin in the second."""
    import types

    from kabinet.clock import SystemClock
    from kabinet.jobs import EmbeddedJobs

    jobs = EmbeddedJobs(types.SimpleNamespace(clock=SystemClock()))  # type: ignore[arg-type]
    passes = 0
    take_due = jobs._take_due

    def counting() -> list[Any]:
        nonlocal passes
        passes += 1
        return take_due()

    jobs._take_due = counting  # type: ignore[method-assign]

    async def run_for(seconds: float) -> None:
        stop = asyncio.Event()
        runner = asyncio.create_task(jobs.run(stop))
        await asyncio.sleep(seconds)
        stop.set()
        await runner

    asyncio.run(run_for(0.1))  # the demo's preparation: the event now belongs to this loop
    passes = 0
    asyncio.run(run_for(0.5))  # serving, in a new loop
    assert passes <= 3  # idle: one pass a second at most (it spun thousands of times)
