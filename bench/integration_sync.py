"""bench/integration_sync: a delta of changed orders from the local 1C into PostgreSQL.

On a throwaway PostgreSQL database, with the local 1C server (real HTTP on 127.0.0.1)
holding ``--orders`` generated orders (services, vehicles, a document each) over
``--counterparties`` counterparties, measures in one run:

- the first load (a full reconciliation: every object fetched), for reference;
- the delta: every order changed in 1C (location, cost), read from the change register
  by keyset, fetched by ``Ref_Key`` in batches, decoded, applied through the shipments
  sink, end to end, with where the time goes (fetch incl. the server, decode, apply);
- the replay: the cursor put back and the same delta run again: rows written to the
  entity tables (``pg_stat_user_tables`` after a stats flush), which must be 0, and time;
- the raw baseline: the same HTTP requests without decoding, plus asyncpg COPY of the
  changed values into a staging table and one ``UPDATE … FROM``.

Targets (issue 8): 100,000 orders <= 15 s, 10,000 <= 2 s.

    .venv/bin/python bench/integration_sync.py [--orders 10000] [--counterparties 100]
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import os
import platform
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import asyncpg
import httpx

from kabinet.host import Host
from kabinet.jobs import stop_embedded
from kabinet_integration import sync as sync_module
from kabinet_integration.connectors import OneC
from kabinet_integration.onec_server import OneCData, OneCServer, generate
from kabinet_integration.sync import SyncService, integration

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


def timed(name: str, fn: Any) -> Any:
    async def wrapper(*args: Any, **kwargs: Any) -> Any:
        start = time.perf_counter()
        try:
            return await fn(*args, **kwargs)
        finally:
            SPENT[name] += time.perf_counter() - start

    return wrapper


def timed_sync(name: str, fn: Any) -> Any:
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        start = time.perf_counter()
        try:
            return fn(*args, **kwargs)
        finally:
            SPENT[name] += time.perf_counter() - start

    return wrapper


async def writes(conn: asyncpg.Connection, host: Host) -> int:
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
    server: OneCServer, url: str, requests: list[tuple[str, str]], data: OneCData
) -> tuple[float, float]:
    """The same GETs without decoding (fetch floor), and a COPY + UPDATE of the values."""
    base = server.base_url.rsplit("/", 1)[0]
    start = time.perf_counter()
    async with httpx.AsyncClient(auth=("portal", "пароль"), timeout=300) as client:
        gate = asyncio.Semaphore(4)

        async def get(target: str) -> int:
            async with gate:
                return len((await client.get(base + target)).content)

        await asyncio.gather(*(get(t) for _m, t in requests))
    fetch = time.perf_counter() - start
    rows = [
        (o["Ref_Key"], o["Дислокация"], float(o["Стоимость"])) for o in data.sets[ORDERS].values()
    ]
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


async def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--orders", type=int, default=10_000)
    parser.add_argument("--counterparties", type=int, default=100)
    args = parser.parse_args()
    n = args.orders
    name = f"bench_integration_{uuid.uuid4().hex[:8]}"
    admin = await asyncpg.connect(f"{PG}/postgres")
    await admin.execute(f'CREATE DATABASE "{name}"')
    url = f"{PG}/{name}"
    tmp = Path(tempfile.mkdtemp(prefix="bench-integration-"))
    data = OneCData()
    start = time.perf_counter()
    generate(data, counterparties=args.counterparties, orders=n, invoices=0, seed=7)
    made = time.perf_counter() - start
    server = OneCServer(data).start()
    disabled = "".join(f"[{p}]\nenabled = false\n" for p in ("dictionaries", "notifications"))
    (tmp / "settings.toml").write_text(
        f'[host]\nvar_dir = "var"\nsecret_key = "bench"\n{disabled}'
        f'[integration.sources.onec]\nbase_url = "{server.base_url}"\nusername = "portal"\n'
        f'password = "пароль"\npage_size = 1000\nbatch_size = 100\nmax_concurrency = 4\n'
        f"rate_per_second = 0\ntimeout_seconds = 600\nfiles_ahead = false\n"
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
        first = await svc.run("onec")
        load = time.perf_counter() - start
        assert first.state == "succeeded", first.error

        data.tick(60)
        for obj in list(data.sets[ORDERS].values()):
            data.put(ORDERS, {**obj, "Дислокация": "Тверь", "Стоимость": obj["Стоимость"] + 1000})
        before = await svc.cursor("onec")
        OneC.fetch = timed("fetch", OneC.fetch)  # type: ignore[method-assign]
        sync_module.decode = timed_sync("decode", sync_module.decode)
        SyncService._sink = timed("apply", SyncService._sink)  # type: ignore[method-assign]
        SPENT.clear()
        server.requests.clear()
        start = time.perf_counter()
        delta = await svc.run("onec")
        total = time.perf_counter() - start
        assert delta.state == "succeeded", delta.error
        requests = list(server.requests)
        spent = dict(SPENT)

        async with host.db.session() as s:
            from sqlalchemy import update

            from kabinet_integration import models as m

            await s.execute(update(m.cursor).values(position=before))
        written = await writes(stats, host)
        start = time.perf_counter()
        replay = await svc.run("onec")
        replay_time = time.perf_counter() - start
        replay_writes = await writes(stats, host) - written
        fetch_raw, write_raw = await raw_baseline(server, url, requests, data)
    finally:
        await stats.close()
        await host.shutdown()
        await host.db.dispose()
        server.stop()
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()

    load1, load5, load15 = os.getloadavg()
    print(
        f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
        f"Python {sys.version.split()[0]}, load average {load1:.1f} {load5:.1f} {load15:.1f}"
    )
    print(
        f"generated {n:,} orders in 1C in {made:.1f} s; first load {load:.1f} s "
        f"({first.counts.applied:,} applied)"
    )
    other = total - spent.get("fetch", 0) - spent.get("decode", 0) - spent.get("apply", 0)
    print(
        f"delta of {n:,} changed orders: {total:.2f} s ({n / total:,.0f} orders/s), "
        f"applied {delta.counts.applied:,}, {len(requests)} requests; "
        f"fetch of objects {spent.get('fetch', 0):.2f} s (incl. the 1C server), "
        f"decode {spent.get('decode', 0):.2f} s, apply {spent.get('apply', 0):.2f} s, "
        f"register pages and bookkeeping {other:.2f} s"
    )
    target = 15.0 * n / 100_000 if n >= 100_000 else 2.0 * n / 10_000
    print(f"  target {target:.1f} s: {'met' if total <= target else 'NOT met'}")
    print(
        f"replay of the same delta: {replay_time:.2f} s, {replay_writes} rows written to the "
        f"entity tables ({replay.counts.unchanged:,} unchanged)"
    )
    print(
        f"raw baseline: the same {len(requests)} GETs undecoded {fetch_raw:.2f} s + COPY and "
        f"UPDATE of {n:,} orders {write_raw:.2f} s = {fetch_raw + write_raw:.2f} s"
    )
    return 0 if replay_writes == 0 else 1


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
