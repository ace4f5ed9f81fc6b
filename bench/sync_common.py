"""Shared by bench/sync_delta.py and bench/sync_replay.py: a delta from the local 1C.

Builds a throwaway PostgreSQL database and a portal on it, and starts the local 1C server
(``kabinet_integration_testing``: real HTTP on 127.0.0.1, the real wire format) in a
**separate process** holding ``--orders`` generated orders (two services, a vehicle and a
document each) over ``--counterparties`` counterparties, so the portal's side is measured
and not the fake server sharing its event loop and core. Then, in one run:

- the first load (a full reconciliation: every object fetched), for reference, then
  ``VACUUM (ANALYZE)``: the portal at rest, as the next delta 20 minutes later finds it;
- the delta: every order changed in 1C (location, cost), read from the change register by
  keyset, fetched by ``Ref_Key`` in batches, decoded and applied through the shipments
  sink, end to end, with where the time goes;
- the replay: the cursor put back and the same delta run again: rows written to the entity
  tables (``pg_stat_user_tables`` after the pool is closed and a stats flush) and time;
- the raw baseline: the delta's GETs again, not decoded, plus asyncpg COPY of the changed
  values into a staging table and one ``UPDATE … FROM``.

Where the time goes: the delta reads pages ahead (the next page's register rows and
objects are fetched and decoded while the current page is written), so the parts overlap
and their sum exceeds the total. "fetch" is the wall time of the object requests (the 1C
server's time included), "decode" the CPU time of mapping 1C objects into the sinks'
structs, "apply" the wall time of each page's transaction (sinks, the run's bookkeeping,
commit). On two cores the portal, the 1C server and PostgreSQL share the CPU: the CPU
seconds each used during the delta are printed too (PostgreSQL's from /proc, every
postgres process), and the portal's garbage collector's time.

Settings of the source: pages of ``--page-size`` register rows (1,000), objects by
``Ref_Key`` in requests of ``--batch-size`` (100), four requests at once, no rate limit.
``--profile FILE`` profiles the delta (cProfile stats if FILE ends in ``.prof``, else
pyinstrument text; ``BENCH_ASYNC_MODE=disabled`` samples the thread, not the tasks;
``BENCH_PROFILE_FIRST=FILE`` writes a pyinstrument profile of the first load).
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import gc
import multiprocessing as mp
import os
import platform
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import asyncpg
import httpx

PG = "postgresql://postgres@127.0.0.1:5432"
ORDERS = "Document_ЗаявкаНаПеревозку"
ENTITY_TABLES = (
    "companies_counterparty",
    "shipments_contract",
    "shipments_order",
    "shipments_order_service",
    "shipments_vehicle",
    "shipments_document",
    "shipments_invoice",
)
SPENT: collections.Counter[str] = collections.Counter()


def other_apps() -> list[str]:
    """Every installed app but the three the sync needs: left out of the bench's portal."""
    from kabinet.plugins import entry_point_candidates

    needed = {"companies", "shipments", "integration"}
    return sorted({c.name for c in entry_point_candidates() if not c.builtin} - needed)


# -- the local 1C in its own process -------------------------------------------------------------


def _serve_onec(pipe: Connection, orders: int, counterparties: int) -> None:
    """The child: generate the infobase, serve it, and obey the parent's commands."""
    from kabinet_integration_testing import OneCData, OneCServer, generate

    data = OneCData()
    start = time.perf_counter()
    generate(data, counterparties=counterparties, orders=orders, invoices=0, seed=7)
    made = time.perf_counter() - start
    # The infobase lives as long as the process: keep the collector's passes off it, as a
    # real 1C's data lives in its database, not in a Python heap.
    gc.freeze()
    server = OneCServer(data).start()
    pipe.send((server.base_url, made))
    while True:
        command, *_args = pipe.recv()
        if command == "change":  # every order: moved and dearer
            data.tick(60)
            for obj in list(data.sets[ORDERS].values()):
                data.put(
                    ORDERS, {**obj, "Дислокация": "Тверь", "Стоимость": obj["Стоимость"] + 1000}
                )
            gc.collect()
            gc.freeze()
            pipe.send(len(data.sets[ORDERS]))
        elif command == "requests":  # (method, target) since the last call
            found = list(server.requests)
            server.requests.clear()
            pipe.send(found)
        elif command == "values":  # what the raw baseline writes
            pipe.send(
                [
                    (o["Ref_Key"], o["Дислокация"], float(o["Стоимость"]))
                    for o in data.sets[ORDERS].values()
                ]
            )
        elif command == "cpu":  # this process's CPU seconds so far
            pipe.send(time.process_time())
        elif command == "stop":
            server.stop()
            pipe.send(None)
            return


class OneCProcess:
    """The local 1C server running in a child process."""

    def __init__(self, orders: int, counterparties: int) -> None:
        ctx = mp.get_context("spawn")
        self.pipe, child = ctx.Pipe()
        self.process = ctx.Process(
            target=_serve_onec, args=(child, orders, counterparties), daemon=True
        )
        self.process.start()
        self.base_url, self.made = self.pipe.recv()

    def call(self, command: str, *args: Any) -> Any:
        self.pipe.send((command, *args))
        return self.pipe.recv()

    def stop(self) -> None:
        if self.process.is_alive():
            self.call("stop")
            self.process.join(10)


# -- measuring -------------------------------------------------------------------------------------


def timed(name: str, fn: Any) -> Any:
    """``fn`` (a coroutine function) with its wall time added to SPENT[name]."""

    async def wrapper(*args: Any, **kwargs: Any) -> Any:
        start = time.perf_counter()
        try:
            return await fn(*args, **kwargs)
        finally:
            SPENT[name] += time.perf_counter() - start

    return wrapper


def timed_cpu(name: str, fn: Callable[..., Any]) -> Any:
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        start = time.perf_counter()
        try:
            return fn(*args, **kwargs)
        finally:
            SPENT[name] += time.perf_counter() - start

    return wrapper


def postgres_cpu() -> float:
    """CPU seconds of every PostgreSQL process so far (from /proc; 0 where unreadable)."""
    total = 0
    tick = os.sysconf("SC_CLK_TCK")
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open(f"/proc/{pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            with open(f"/proc/{pid}/comm") as f:
                name = f.read().strip()
        except OSError:
            continue
        if name.startswith("postgres"):
            total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / tick


def load() -> str:
    one, five, fifteen = os.getloadavg()
    return f"load average {one:.1f} {five:.1f} {fifteen:.1f}"


async def writes(conn: asyncpg.Connection, host: Any) -> int:
    """Rows inserted, updated or deleted in the entity tables so far."""
    # A backend reports its table statistics when it ends (or idles): close the pool's.
    await host.db.engine.dispose()
    await conn.execute("SELECT pg_stat_force_next_flush()")
    row = await conn.fetchrow(
        "SELECT sum(n_tup_ins + n_tup_upd + n_tup_del) AS n FROM pg_stat_user_tables "
        "WHERE relname = ANY($1::text[])",
        list(ENTITY_TABLES),
    )
    return int(row["n"] or 0) if row else 0


async def raw_baseline(
    onec: OneCProcess, url: str, requests: list[tuple[str, str]]
) -> tuple[float, float]:
    """The same GETs without decoding (the fetch floor), and a COPY + UPDATE of the values."""
    base = onec.base_url.rsplit("/", 1)[0]
    start = time.perf_counter()
    async with httpx.AsyncClient(auth=("portal", "пароль"), timeout=600) as client:
        gate = asyncio.Semaphore(4)

        async def get(target: str) -> int:
            async with gate:
                return len((await client.get(base + target)).content)

        await asyncio.gather(*(get(t) for _m, t in requests))
    fetch = time.perf_counter() - start
    rows = onec.call("values")
    conn = await asyncpg.connect(url)
    try:
        start = time.perf_counter()
        async with conn.transaction():
            await conn.execute(
                "CREATE TEMP TABLE staging (external_id text, location text, cost numeric) "
                "ON COMMIT DROP"
            )
            await conn.copy_records_to_table("staging", records=rows)
            await conn.execute(
                "UPDATE shipments_order o SET location = s.location || ' (raw)', cost = s.cost "
                "FROM staging s WHERE o.external_id = s.external_id"
            )
        write = time.perf_counter() - start
    finally:
        await conn.close()
    return fetch, write


def arguments(doc: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=doc.splitlines()[0])
    parser.add_argument("--orders", type=int, default=10_000)
    parser.add_argument("--counterparties", type=int, default=100)
    parser.add_argument("--page-size", type=int, default=1000, help="register rows per page")
    parser.add_argument("--batch-size", type=int, default=100, help="objects per request")
    parser.add_argument(
        "--profile",
        metavar="FILE",
        help="profile the delta: cProfile stats if FILE ends in .prof, else pyinstrument text",
    )
    return parser.parse_args()


async def measure(args: argparse.Namespace) -> dict[str, Any]:
    """Set up, load, change every order, run the delta and its replay, the raw baseline."""
    from sqlalchemy import update

    from kabinet.host import Host
    from kabinet.jobs import stop_embedded
    from kabinet_integration import followups
    from kabinet_integration import models as m
    from kabinet_integration import writer as sync_module  # where a page is decoded
    from kabinet_integration.connectors import OneC
    from kabinet_integration.sync import SyncService, integration

    out: dict[str, Any] = {"orders": args.orders}
    name = f"bench_sync_{uuid.uuid4().hex[:8]}"
    admin = await asyncpg.connect(f"{PG}/postgres")
    await admin.execute(f'CREATE DATABASE "{name}"')
    url = f"{PG}/{name}"
    tmp = Path(tempfile.mkdtemp(prefix="bench-sync-"))
    onec = OneCProcess(args.orders, args.counterparties)
    out["made"] = onec.made
    disabled = "".join(f"[{p}]\nenabled = false\n" for p in other_apps())
    (tmp / "settings.toml").write_text(
        f'[host]\nvar_dir = "var"\nsecret_key = "bench"\n{disabled}'
        f'[integration.sources.onec]\nbase_url = "{onec.base_url}"\nusername = "portal"\n'
        f'password = "пароль"\npage_size = {args.page_size}\nbatch_size = {args.batch_size}\n'
        f"max_concurrency = 4\nrate_per_second = 0\ntimeout_seconds = 600\n"
        f"files_ahead = false\n"
    )
    env = {"KABINET__HOST__DATABASE_URL": url.replace("postgresql:", "postgresql+asyncpg:")}
    host = await Host.create(tmp / "settings.toml", env=env)
    stats = await asyncpg.connect(url)
    try:
        await host.migrations.upgrade()
        await host.startup()
        await stop_embedded(host)  # no scheduler or relay competing with the run
        svc = integration(host)
        start = time.perf_counter()
        if os.environ.get("BENCH_PROFILE_FIRST"):
            import pyinstrument

            first_profiler = pyinstrument.Profiler(async_mode="enabled")
            first_profiler.start()
        first = await svc.run("onec")
        if os.environ.get("BENCH_PROFILE_FIRST"):
            first_profiler.stop()
            out["first_profile"] = first_profiler.output_text(unicode=False)
        out["first_load"] = time.perf_counter() - start
        out["first_applied"] = first.counts.applied
        assert first.state == "succeeded", first.error

        # The portal at rest before the delta, as 20 minutes after a load it would be: the
        # load's dead rows vacuumed and its tables' statistics taken (not autovacuum's
        # work competing with the delta for the two cores).
        start = time.perf_counter()
        await stats.execute("VACUUM (ANALYZE)")
        out["vacuum"] = time.perf_counter() - start
        onec.call("change")
        onec.call("requests")
        before = await svc.cursor("onec")
        OneC.fetch_raw = timed("fetch", OneC.fetch_raw)  # type: ignore[method-assign]
        for name in ("decode_objects", "finish", "decode"):  # JSON to the sinks' structs
            setattr(sync_module, name, timed_cpu("decode", getattr(sync_module, name)))
        SyncService._commit = timed("apply", SyncService._commit)  # type: ignore[method-assign]
        followups.refresh = timed("balances", followups.refresh)
        SPENT.clear()
        out["load_delta"] = load()
        profiler: Any = None
        if args.profile and args.profile.endswith(".prof"):
            import cProfile

            profiler = cProfile.Profile()
            profiler.enable()
        elif args.profile:
            import pyinstrument

            mode = os.environ.get("BENCH_ASYNC_MODE", "enabled")
            profiler = pyinstrument.Profiler(async_mode=mode, interval=0.0005)
            profiler.start()
        gc_spent = collections.Counter[int]()
        gc_started: list[float] = []

        def gc_timer(phase: str, info: dict[str, int]) -> None:
            if phase == "start":
                gc_started[:] = [time.perf_counter()]
            elif gc_started:
                gc_spent[info["generation"]] += time.perf_counter() - gc_started[0]
                gc_spent[info["generation"] + 10] += 1  # passes

        gc.callbacks.append(gc_timer)
        cpu, server_cpu, pg_cpu = time.process_time(), onec.call("cpu"), postgres_cpu()
        start = time.perf_counter()
        delta = await svc.run("onec")
        out["delta"] = time.perf_counter() - start
        out["delta_cpu"] = time.process_time() - cpu
        out["server_cpu"] = onec.call("cpu") - server_cpu
        out["pg_cpu"] = postgres_cpu() - pg_cpu
        gc.callbacks.remove(gc_timer)
        out["gc"] = {g: t for g, t in gc_spent.items() if g < 10}
        out["gc_passes"] = [gc_spent[g + 10] for g in range(3)]
        if isinstance(profiler, cProfile_type()):
            profiler.disable()
            profiler.dump_stats(args.profile)
        elif profiler is not None:
            profiler.stop()
            out["profile"] = profiler.output_text(
                unicode=False, show_all=bool(os.environ.get("BENCH_SHOW_ALL"))
            )
        assert delta.state == "succeeded", delta.error
        out["applied"] = delta.counts.applied
        out["spent"] = dict(SPENT)
        requests = onec.call("requests")
        out["requests"] = len(requests)

        async with host.db.session() as s:
            await s.execute(update(m.cursor).values(position=before))
        written = await writes(stats, host)
        out["load_replay"] = load()
        start = time.perf_counter()
        replay = await svc.run("onec")
        out["replay"] = time.perf_counter() - start
        out["replay_writes"] = await writes(stats, host) - written
        out["replay_unchanged"] = replay.counts.unchanged
        out["load_baseline"] = load()
        out["raw_fetch"], out["raw_write"] = await raw_baseline(onec, url, requests)
    finally:
        await stats.close()
        await host.shutdown()
        await host.db.dispose()
        onec.stop()
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()
    return out


def cProfile_type() -> type:
    import cProfile

    return cProfile.Profile


def machine() -> str:
    return (
        f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
        f"Python {sys.version.split()[0]}"
    )


def target(n: int) -> float:
    """Issue 8: 100,000 orders in 15 s, 10,000 in 2 s (in proportion between)."""
    return 15.0 * n / 100_000 if n >= 100_000 else 2.0 * n / 10_000


def report_delta(out: dict[str, Any], profile: str | None = None) -> None:
    if os.environ.get("BENCH_PROFILE_FIRST"):
        Path(os.environ["BENCH_PROFILE_FIRST"]).write_text(out["first_profile"])
    if profile and out.get("profile"):
        Path(profile).write_text(out["profile"])
    n, total, spent = out["orders"], out["delta"], out["spent"]
    print(
        f"generated {n:,} orders in 1C (its own process) in {out['made']:.1f} s; "
        f"first load {out['first_load']:.1f} s ({out['first_applied']:,} applied), then "
        f"VACUUM (ANALYZE) {out['vacuum']:.1f} s"
    )
    print(
        f"delta of {n:,} changed orders: {total:.2f} s ({n / total:,.0f} orders/s), "
        f"applied {out['applied']:,}, {out['requests']} requests; {out['load_delta']} before"
    )
    print(
        f"  CPU used meanwhile: the portal {out['delta_cpu']:.2f} s, the 1C server "
        f"{out['server_cpu']:.2f} s, PostgreSQL {out['pg_cpu']:.2f} s (all processes); "
        f"the portal's garbage collector {sum(out['gc'].values()):.2f} s "
        f"({'/'.join(map(str, out['gc_passes']))} passes of generations 0/1/2)"
    )
    print(
        f"  where the time goes (overlapping: pages are read ahead): fetch of objects "
        f"{spent.get('fetch', 0):.2f} s (incl. the 1C server), decode "
        f"{spent.get('decode', 0):.2f} s, apply (page transactions: sinks, bookkeeping, "
        f"commit) {spent.get('apply', 0):.2f} s; then the balances of the contracts touched "
        f"{spent.get('balances', 0):.2f} s"
    )
    goal = target(n)
    print(f"  target {goal:.1f} s: {'met' if total <= goal else 'NOT met'}")
    raw = out["raw_fetch"] + out["raw_write"]
    print(
        f"raw baseline ({out['load_baseline']} before): the same {out['requests']} GETs "
        f"undecoded {out['raw_fetch']:.2f} s + COPY and UPDATE of {n:,} orders "
        f"{out['raw_write']:.2f} s = {raw:.2f} s; the delta takes {total / raw:.1f}x"
    )


def report_replay(out: dict[str, Any]) -> None:
    print(
        f"replay of the same delta: {out['replay']:.2f} s, {out['replay_writes']} rows written "
        f"to the entity tables ({out['replay_unchanged']:,} unchanged; "
        f"{out['load_replay']} before)"
    )
