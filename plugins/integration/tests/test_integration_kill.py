"""A real ``kabinet integration sync`` process killed in the middle of a delta.

The process hangs on a request for objects of its second page (the local 1C server holds
the answer), and is killed with SIGKILL once its first page is committed. The lock is
released (with the process on PostgreSQL; at its expiry on SQLite), the cursor is where
the committed page put it, and the next run ends in exactly the state a run that nobody
killed reaches.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest
from integration_support import count, settings_text, state, wipe

from kabinet.clock import FrozenClock
from kabinet.host import Host
from kabinet_integration import models as m
from kabinet_integration.locks import Busy, RunLock
from kabinet_integration.sync import integration
from kabinet_integration_testing import Generated, OneCServer
from kabinet_shipments import models as sm

pytestmark = pytest.mark.smoke
HostFactory = Callable[..., Awaitable[Host]]


async def wait_for(predicate: Callable[[], bool], what: str) -> None:
    """Poll another process's progress (bounded), not a wait for time to pass."""
    end = time.monotonic() + 30
    while not predicate():
        if time.monotonic() > end:
            pytest.fail(f"gave up waiting for {what}")
        await asyncio.sleep(0.02)


async def test_a_killed_worker_resumes_from_its_last_committed_page(
    host: Host,
    onec: OneCServer,
    generated: Generated,
    module_url: str,
    tmp_path: Path,
    clock: FrozenClock,
) -> None:
    svc = integration(host)
    assert (await svc.run("onec")).state == "succeeded"  # the first load
    assert (await svc.run("onec")).state == "succeeded"  # the register's rows are known now
    start = await svc.cursor("onec")
    onec.data.tick(60)
    for ref in generated.orders:
        order = dict(onec.data.get("Document_ЗаявкаНаПеревозку", ref) or {})
        order["Дислокация"] = "Тверь"
        order["Статус"] = "ВРаботе"
        onec.data.put("Document_ЗаявкаНаПеревозку", order)
    # The first page's objects come (two requests of three), the next request hangs.
    onec.fault("hang", match="$filter=Ref_Key", after=2)
    settings = tmp_path / "worker.toml"
    settings.write_text(
        settings_text(onec.base_url).replace("timeout_seconds = 2", "timeout_seconds = 120")
    )
    kabinet = Path(sys.executable).parent / "kabinet"
    log = (tmp_path / "worker.log").open("w")
    worker = await asyncio.create_subprocess_exec(
        *(str(kabinet), "--settings", str(settings), "integration", "sync", "--source", "onec"),
        cwd=tmp_path,
        env={**os.environ, "KABINET__HOST__DATABASE_URL": module_url},
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        await wait_for(
            lambda: not onec.faults or worker.returncode is not None, "the hanging request"
        )
        # The next page is read ahead while the first is written: its commit may follow.
        end = time.monotonic() + 30
        while await svc.cursor("onec") == start:
            if time.monotonic() > end:
                pytest.fail("the first page was not committed")
            await asyncio.sleep(0.02)
        assert worker.returncode is None, (tmp_path / "worker.log").read_text()[-2000:]
    finally:
        worker.kill()
        await asyncio.wait_for(worker.wait(), timeout=10)
        log.close()
    middle = await svc.cursor("onec")
    assert middle is not None
    assert start is not None
    assert middle > start
    moved = await count(host, sm.order, sm.order.c.location == "Тверь")
    assert 0 < moved < 12  # the committed page only
    async with host.db.reader() as s:
        killed = (await s.execute(m.run.select().order_by(m.run.c.id.desc()))).first()
    assert killed is not None
    assert killed.state == "running"  # nobody could say otherwise

    lock = RunLock(host, "onec")
    if host.db.dialect == "postgresql":
        # The advisory lock ended with the killed process's connection.
        for _ in range(100):
            try:
                await lock.acquire()
                break
            except Busy:
                await asyncio.sleep(0.05)  # the server notices the closed connection
        else:
            pytest.fail("the killed worker's advisory lock was not released")
    else:
        async with host.db.reader() as s:
            expires = (await s.execute(m.lock.select())).one().expires_at
        with pytest.raises(Busy):
            await lock.acquire()
        if expires.tzinfo is None:
            expires = expires.replace(tzinfo=dt.UTC)
        clock.advance((expires - clock.now()).total_seconds() + 1)
        await lock.acquire()  # taken over once expired
    await lock.release()

    resumed = await svc.run("onec")
    assert resumed.state == "succeeded", resumed.error
    assert await svc.cursor("onec") > middle  # type: ignore[operator]
    assert await count(host, sm.order, sm.order.c.location == "Тверь") == 12
    async with host.db.reader() as s:
        states = [r.state for r in await s.execute(m.run.select().order_by(m.run.c.id))]
    assert states == ["succeeded", "succeeded", "interrupted", "succeeded"]
    after_kill = await state(host)

    # The same 1C data loaded by a run that nobody killed: the same rows.
    await wipe(host)
    assert (await svc.run("onec")).state == "succeeded"
    assert await state(host) == after_kill
