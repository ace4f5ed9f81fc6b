"""Balances that heal and files that respect 1C (issue 15, points 3 and 4), against the
local 1C: a run that fails after committing pages leaves its contracts' balances owed
until a later run refreshes them; file fetches hold the source's limits across jobs and
workers, go in batches on their own queue behind client requests, and a file whose order
was deleted in 1C ends quietly."""

from __future__ import annotations

import asyncio
import base64
import random
import time
import types
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from integration_support import count, settings_text, wipe
from sqlalchemy import select

from kabinet.access import ALL
from kabinet.clock import FrozenClock
from kabinet.host import Host
from kabinet.jobs import EmbeddedJobs, stop_embedded
from kabinet_companies.services import COUNTERPARTY_ROWS
from kabinet_integration import files as f
from kabinet_integration import models as m
from kabinet_integration.services import QuarantineScope, failing_files
from kabinet_integration.sync import integration
from kabinet_integration_testing import FILES, Generated, OneCServer
from kabinet_shipments import models as sm
from kabinet_shipments.requests_writeback import on_request_created

pytestmark = pytest.mark.smoke
HostFactory = Callable[..., Awaitable[Host]]
ORDERS = "Document_ЗаявкаНаПеревозку"


async def portal_balances(host: Host) -> dict[str, Decimal | None]:
    async with host.db.reader() as s:
        rows = await s.execute(select(sm.contract.c.external_id, sm.contract.c.balance))
        return {r.external_id: r.balance for r in rows}


def onec_balances(onec: OneCServer, generated: Generated) -> dict[str, Decimal]:
    """1C's own operational balances (a contract without a row owes nothing)."""
    return {c: Decimal(str(onec.data.balances.get(c, 0))) for c in generated.contracts}


def change_in_1c(onec: OneCServer, generated: Generated, round_: int) -> None:
    """Every contract's balance moves, and one order of each changes (as a posting does)."""
    data = onec.data
    for n, contract in enumerate(generated.contracts):
        data.balances[contract] = float(1000 * (n + 1) * (round_ + 7))
    for ref in generated.orders[: len(generated.contracts)]:
        obj = dict(data.get(ORDERS, ref) or {})
        obj["Комментарий"] = f"оплата {round_}"
        data.put(ORDERS, obj)
    data.tick()


@pytest.mark.parametrize(
    ("mode", "fault"),
    [
        ("odata", {"status": 500, "match": "/Balance("}),
        ("odata", {"status": 401, "match": "/Balance("}),
        ("exchange", {"status": 500, "match": "changes/ack"}),
        ("exchange", {"status": 401, "match": "/Balance("}),
    ],
)
async def test_balances_owed_by_a_failed_run_are_refreshed_by_the_next_one(
    make_host: HostFactory,
    onec: OneCServer,
    generated: Generated,
    mode: str,
    fault: dict[str, object],
) -> None:
    host = await make_host(source=f'mode = "{mode}"\nfiles_ahead = false')
    try:
        svc = integration(host)
        assert (await svc.run("onec")).state == "succeeded"
        assert await portal_balances(host) == onec_balances(onec, generated)
        change_in_1c(onec, generated, 1)
        # Still failing after the run's own retries of a transient fault.
        onec.fault("status", times=100, **fault)  # type: ignore[arg-type]
        failed = await svc.run("onec")
        assert failed.state == "failed"
        onec.faults.clear()
        assert failed.counts.applied > 0  # its pages were committed
        assert await portal_balances(host) != onec_balances(onec, generated)
        # Nothing changes in 1C: the next run has no new change, yet it owes the balances.
        healed = await svc.run("onec")
        assert healed.state == "succeeded", healed.error
        assert await portal_balances(host) == onec_balances(onec, generated)
        # Owed no more: a further run asks 1C for no balance at all.
        onec.requests.clear()
        assert (await svc.run("onec")).state == "succeeded"
        assert not [t for _m, t in onec.requests if "/Balance(" in t]
    finally:
        await wipe(host)


# -- files ------------------------------------------------------------------------------------

LIMITS = "max_concurrency = 2\nrate_per_second = 5\n"


def add_files(onec: OneCServer, n: int) -> dict[str, str]:
    """``n`` more files in 1C (file id -> an order id), each a few bytes."""
    out = {}
    for i in range(n):
        ref = str(uuid.uuid4())
        onec.data.put(
            FILES,
            {
                "Ref_Key": ref,
                "Description": f"Акт-{i}",
                "Расширение": "pdf",
                "ВладелецФайла_Key": str(uuid.uuid4()),
                "ФайлХранилище_Base64Data": base64.b64encode(b"%PDF " + ref.encode()).decode(),
            },
            record=False,
        )
        out[ref] = str(uuid.uuid4())
    return out


async def run_actor(host: Host, name: str, **kwargs: Any) -> None:
    await host.actors[name][1].fn(**kwargs)


def assert_within_limits(onec: OneCServer) -> None:
    fetched = [t for _at, t in onec.arrivals if FILES in t]
    assert len(fetched) >= 20
    assert onec.peak <= 2, f"{onec.peak} requests at once with max_concurrency = 2"
    busiest = onec.busiest_second(FILES)
    # A start every 1/5 s: at most 5 in any second (one more where a second's edges meet).
    assert busiest <= 6, f"{busiest} requests in one second with rate_per_second = 5"


async def test_file_fetches_of_several_jobs_hold_the_source_limits(
    limited: Callable[..., Awaitable[Host]], onec: OneCServer
) -> None:
    """Single-file jobs (a person opened a document) and batch jobs at once, in one
    process: together no more than ``max_concurrency`` at once and ``rate_per_second``."""
    host = await limited()
    refs = list(add_files(onec, 24))
    await f.note_files(host, "onec", dict.fromkeys(refs, ""))
    onec.fault("slow", match=FILES, delay=0.1, times=1000)  # 1C takes its time
    onec.arrivals.clear()
    jobs = [run_actor(host, f.FETCH_ACTOR, source="onec", ref=r) for r in refs[:8]]
    jobs += [
        run_actor(host, f.BATCH_ACTOR, source="onec", refs=refs[i : i + 4]) for i in range(8, 24, 4)
    ]
    await asyncio.gather(*jobs)
    assert await count(host, m.file, m.file.c.state == "fetched") == 24
    assert_within_limits(onec)


@pytest.fixture
async def limited(
    module_url: str, clock: FrozenClock, tmp_path: Path, onec: OneCServer
) -> AsyncIterator[Callable[..., Awaitable[Host]]]:
    """Portals whose source has the limits of ``LIMITS`` (or what ``source`` says);
    ``redis_url``: processes sharing that Redis, as the web process and workers do."""
    started: list[Host] = []

    async def make(source: str = LIMITS, redis_url: str = "") -> Host:
        settings = tmp_path / f"settings-limited-{len(started)}.toml"
        text = settings_text(onec.base_url, "", source)
        settings.write_text(text.replace("rate_per_second = 0\n", "", 1))
        env = {"KABINET__HOST__DATABASE_URL": module_url}
        if redis_url:
            env["KABINET__HOST__REDIS_URL"] = redis_url
        host = await Host.create(settings, env=env, clock=clock)
        await host.startup()
        await stop_embedded(host)
        started.append(host)
        return host

    yield make
    if started:
        await wipe(started[0])
    for host in reversed(started):
        await host.shutdown()


async def test_file_fetches_of_several_workers_hold_the_limits_through_redis(
    limited: Callable[..., Awaitable[Host]], onec: OneCServer
) -> None:
    """Two processes (a web process and a worker, or two workers) sharing one Redis."""
    redis_url = f"redis://127.0.0.1:6379/{random.randint(1, 15)}"
    first, second = await limited(redis_url=redis_url), await limited(redis_url=redis_url)
    refs = list(add_files(onec, 24))
    await f.note_files(first, "onec", dict.fromkeys(refs, ""))
    onec.fault("slow", match=FILES, delay=0.1, times=1000)
    onec.arrivals.clear()
    jobs = [
        run_actor(host, f.FETCH_ACTOR, source="onec", ref=r)
        for host, r in zip([first, second] * 4, refs[:8], strict=True)
    ]
    jobs += [
        run_actor(host, f.BATCH_ACTOR, source="onec", refs=refs[i : i + 4])
        for host, i in zip([first, second] * 2, range(8, 24, 4), strict=True)
    ]
    await asyncio.gather(*jobs)
    assert await count(first, m.file, m.file.c.state == "fetched") == 24
    assert_within_limits(onec)


def request_created(order_ref: str) -> types.SimpleNamespace:
    payload = types.SimpleNamespace(
        portal_id=str(uuid.uuid4()),
        order_external_id=order_ref,
        kind="cancel",
        changes={},
        comment="Груз не готов",
        person_name="Иванов Иван",
        person_email="ivanov@example.test",
    )
    return types.SimpleNamespace(payload=payload)


async def test_a_client_request_reaches_1c_in_seconds_behind_thousands_of_queued_files(
    limited: Callable[..., Awaitable[Host]],
    onec: OneCServer,
    generated: Generated,
    clock: FrozenClock,
) -> None:
    host = await limited(source='rate_per_second = 20\nfiles_first_load = "ahead"')
    jobs = host.jobs
    assert isinstance(jobs, EmbeddedJobs)
    stop = asyncio.Event()
    runner = asyncio.create_task(jobs.run(stop))
    try:
        await f.queue_files(host, "onec", add_files(onec, 3000))
        await asyncio.sleep(1.0)  # the runner is busy with files now
        assert await count(host, m.file, m.file.c.state == "fetched") > 0
        async with host.db.session() as s:
            await on_request_created(host, request_created(generated.orders[0]), s)  # type: ignore[arg-type]
        clock.advance(1)  # the send is due a second after the commit
        sent = time.monotonic()
        requests = onec.data.sets["Document_ЗапросКлиента"]
        for _ in range(600):  # 30 s at most
            if requests:
                break
            await asyncio.sleep(0.05)
        took = time.monotonic() - sent
        assert requests, "the client request never reached 1C"
        assert took < 3.0, f"the client request reached 1C after {took:.1f} s"
        # The files are fetched all the same, behind it.
        assert await count(host, m.file, m.file.c.state == "pending") > 0
    finally:
        stop.set()
        runner.cancel()
        await asyncio.gather(runner, return_exceptions=True)


async def test_a_first_load_fetches_files_on_demand_by_default_and_ahead_by_setting(
    make_host: HostFactory, onec: OneCServer, generated: Generated
) -> None:
    host = await make_host()
    try:
        assert (await integration(host).run("onec")).state == "succeeded"
        assert await count(host, m.file) == 0  # fetched when someone opens a document
        assert host.jobs.pending == 0  # type: ignore[attr-defined]
        # After the first load, a delta's new orders have their files fetched ahead.
        more = add_files(onec, 1)
        obj = dict(onec.data.get(ORDERS, generated.orders[0]) or {})
        obj["Документы"] = [
            {
                "ВидДокумента": "Акт",
                "НомерДокумента": "А-1",
                "ДатаДокумента": obj["Date"],
                "Файл_Key": next(iter(more)),
            }
        ]
        onec.data.put(ORDERS, obj)
        onec.data.tick()
        assert (await integration(host).run("onec")).state == "succeeded"
        # (The invoices this delta reads again, registered while the load ran, have their
        # print forms listed again, so fetched ahead too: docs/integration.md, "Invoices'
        # print forms".)
        orders_files = m.file.c.entity == "file"
        assert await count(host, m.file, orders_files) == 1
        await host.jobs.drain()  # type: ignore[attr-defined]
        assert await count(host, m.file, orders_files, m.file.c.state == "fetched") == 1
    finally:
        await wipe(host)
    host = await make_host(source='files_first_load = "ahead"')
    try:
        assert (await integration(host).run("onec")).state == "succeeded"
        # The orders' files and the invoices' print forms alike.
        assert await count(host, m.file, m.file.c.entity == "file") == len(generated.files)
        invoices = m.file.c.entity == "invoice_file"
        assert await count(host, m.file, invoices) == len(generated.invoice_files)
        # Each is tied to its order's or invoice's counterparty (whose staff see it).
        assert await _tied_files(host) == await _owners_of_files(host)
        await host.jobs.drain()  # type: ignore[attr-defined]
        fetched = m.file.c.state == "fetched"
        assert await count(host, m.file, fetched) == len(generated.files) + len(
            generated.invoice_files
        )
    finally:
        await wipe(host)


async def _tied_files(host: Host) -> dict[str, str | None]:
    async with host.db.reader() as s:
        return dict(list(await s.execute(select(m.file.c.ref, m.file.c.counterparty))))


async def _owners_of_files(host: Host) -> dict[str, str | None]:
    """Each file's counterparty as the shipments app holds it: its order's, its invoice's."""
    cp = COUNTERPARTY_ROWS.c
    docs = (
        select(sm.document.c.file_ref, cp.external_id)
        .join(sm.order, sm.order.c.id == sm.document.c.order_id)
        .join(COUNTERPARTY_ROWS, cp.id == sm.order.c.counterparty_id)
        .where(sm.document.c.file_ref.is_not(None))
    )
    forms = (
        select(sm.invoice_file.c.file_ref, cp.external_id)
        .join(sm.invoice, sm.invoice.c.id == sm.invoice_file.c.invoice_id)
        .join(COUNTERPARTY_ROWS, cp.id == sm.invoice.c.counterparty_id)
    )
    async with host.db.reader() as s:
        found = dict(list(await s.execute(docs))) | dict(list(await s.execute(forms)))
    assert found
    return found


async def test_a_file_of_an_order_deleted_in_1c_ends_quietly_on_404(
    make_host: HostFactory, onec: OneCServer, generated: Generated
) -> None:
    host = await make_host(source='files_first_load = "ahead"')
    try:
        assert (await integration(host).run("onec")).state == "succeeded"
        # Deleted in 1C (the order with its file) before the queued fetch runs.
        gone = generated.files[0]
        onec.data.delete(ORDERS, generated.orders[0])
        onec.data.sets[FILES].pop(gone)
        onec.requests.clear()
        await host.jobs.drain()  # type: ignore[attr-defined]
        async with host.db.reader() as s:
            row = (await s.execute(m.file.select().where(m.file.c.ref == gone))).one()
        assert (row.state, row.attempts, row.last_error) == ("gone", 1, None)
        assert len([t for _m, t in onec.requests if gone in t]) == 1  # asked once, not 5 times
        # Neither retried by the schedule nor shown to staff as failing.
        assert await f.fetch_due(host) == 0
        everything = QuarantineScope(ALL, untied=True)  # as an administrator sees them
        assert gone not in {r.ref for r in await failing_files(host, everything)}
        assert await host.jobs.failed() == []
        orders_files = m.file.c.entity == "file"
        fetched = m.file.c.state == "fetched"
        assert await count(host, m.file, fetched, orders_files) == len(generated.files) - 1
    finally:
        await wipe(host)
