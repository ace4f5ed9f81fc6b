"""bench/sink_apply: changed orders with services, vehicles and documents through the sink.

On PostgreSQL (a throwaway database), loads ``--orders`` generated orders over
``--counterparties`` counterparties through the sinks, then measures, in the same run:

- the sink: the same orders changed (location, cost, a vehicle's status) applied with
  ``apply_orders`` in batches of ``--batch`` (one transaction each), as a sync run
  applies them (the heap that existed before set aside from the garbage collector),
  rows per second;
- the raw baseline: the same kind of change written into the same tables by asyncpg COPY
  into staging tables plus one ``INSERT … ON CONFLICT DO UPDATE … WHERE … IS DISTINCT FROM``
  per table;
- the same changed batch applied again through the sink: rows written to the four tables
  (from ``pg_stat_user_tables``), which must be 0.

Target (issue 7): sink rows/s >= 0.5x the baseline's.

    .venv/bin/python bench/sink_apply.py [--orders 100000] [--counterparties 2000]
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import os
import platform
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import asyncpg

from kabinet.clock import FrozenClock
from kabinet.host import Host
from kabinet_integration.store import heap_set_aside
from kabinet_shipments.demo import changed, generate
from kabinet_shipments.samples import ensure_counterparty
from kabinet_shipments.sinks import apply_contracts, apply_orders, order_digest

PG = "postgresql://postgres@127.0.0.1:5432"
TABLES = ("shipments_order", "shipments_order_service", "shipments_vehicle", "shipments_document")
TARGET = 0.5


async def writes(conn: asyncpg.Connection) -> int:
    await conn.execute("SELECT pg_stat_force_next_flush()")
    rows = await conn.fetch(
        "SELECT sum(n_tup_ins + n_tup_upd + n_tup_del) AS n FROM pg_stat_user_tables "
        "WHERE relname = ANY($1::text[])",
        list(TABLES),
    )
    return int(rows[0]["n"] or 0)


async def baseline(url: str, orders: list[Any], ids: dict[str, int]) -> tuple[int, float]:
    """asyncpg COPY into staging tables + one upsert per table; returns (rows, seconds)."""
    conn = await asyncpg.connect(url)
    order_rows = [(ids[o.external_id], o.location, o.cost, order_digest(o)) for o in orders]
    vehicle_rows = [
        (ids[o.external_id], n, v.kind, v.plate, v.driver, v.driver_phone, v.status)
        for o in orders
        for n, v in enumerate(o.vehicles, start=1)
    ]
    service_rows = [
        (ids[o.external_id], n, s.name, s.quantity, s.amount)
        for o in orders
        for n, s in enumerate(o.services, start=1)
    ]
    doc_rows = [
        (ids[o.external_id], n, d.kind, d.number, d.date, d.file, d.file_name)
        for o in orders
        for n, d in enumerate(o.documents, start=1)
    ]
    started = time.perf_counter()
    async with conn.transaction():
        await conn.execute(
            "CREATE TEMP TABLE s_order (id int, location text, cost numeric, digest text) "
            "ON COMMIT DROP;"
            "CREATE TEMP TABLE s_vehicle (order_id int, line int, kind text, plate text, "
            "driver text, driver_phone text, status text) ON COMMIT DROP;"
            "CREATE TEMP TABLE s_service (order_id int, line int, name text, quantity numeric, "
            "amount numeric) ON COMMIT DROP;"
            "CREATE TEMP TABLE s_document (order_id int, line int, kind text, number text, "
            "date date, file_ref text, file_name text) ON COMMIT DROP;"
        )
        await conn.copy_records_to_table("s_order", records=order_rows)
        await conn.copy_records_to_table("s_vehicle", records=vehicle_rows)
        await conn.copy_records_to_table("s_service", records=service_rows)
        await conn.copy_records_to_table("s_document", records=doc_rows)
        await conn.execute(
            "UPDATE shipments_order o SET location = s.location, cost = s.cost, "
            "digest = s.digest FROM s_order s WHERE o.id = s.id AND "
            "(o.location, o.cost, o.digest) IS DISTINCT FROM (s.location, s.cost, s.digest)"
        )
        await conn.execute(
            "INSERT INTO shipments_vehicle (order_id, line, kind, plate, driver, driver_phone, "
            "status) SELECT * FROM s_vehicle ON CONFLICT (order_id, line) DO UPDATE SET "
            "kind = excluded.kind, plate = excluded.plate, driver = excluded.driver, "
            "driver_phone = excluded.driver_phone, status = excluded.status WHERE "
            "(shipments_vehicle.kind, shipments_vehicle.plate, shipments_vehicle.driver, "
            "shipments_vehicle.driver_phone, shipments_vehicle.status) IS DISTINCT FROM "
            "(excluded.kind, excluded.plate, excluded.driver, excluded.driver_phone, "
            "excluded.status)"
        )
        await conn.execute(
            "INSERT INTO shipments_order_service (order_id, line, name, quantity, amount) "
            "SELECT * FROM s_service ON CONFLICT (order_id, line) DO UPDATE SET "
            "name = excluded.name, quantity = excluded.quantity, amount = excluded.amount "
            "WHERE (shipments_order_service.name, shipments_order_service.quantity, "
            "shipments_order_service.amount) IS DISTINCT FROM "
            "(excluded.name, excluded.quantity, excluded.amount)"
        )
        await conn.execute(
            "INSERT INTO shipments_document (order_id, line, kind, number, date, file_ref, "
            "file_name) SELECT * FROM s_document ON CONFLICT (order_id, line) DO UPDATE SET "
            "kind = excluded.kind, number = excluded.number, date = excluded.date, "
            "file_ref = excluded.file_ref, file_name = excluded.file_name WHERE "
            "(shipments_document.kind, shipments_document.number, shipments_document.date, "
            "shipments_document.file_ref, shipments_document.file_name) IS DISTINCT FROM "
            "(excluded.kind, excluded.number, excluded.date, excluded.file_ref, "
            "excluded.file_name)"
        )
    elapsed = time.perf_counter() - started
    await conn.close()
    rows = len(order_rows) + len(vehicle_rows) + len(service_rows) + len(doc_rows)
    return rows, elapsed


async def sink(host: Host, orders: list[Any], batch: int) -> float:
    """The sink as a sync run drives it: batches of ``batch`` in one transaction each,
    with the heap that existed before set aside from the garbage collector while they go
    (``heap_set_aside``, what every run of the integration app does)."""
    started = time.perf_counter()
    with heap_set_aside():
        for start in range(0, len(orders), batch):
            async with host.db.session() as s:
                await apply_orders(host, s, orders[start : start + batch])
    return time.perf_counter() - started


async def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--orders", type=int, default=100_000)
    parser.add_argument("--counterparties", type=int, default=2_000)
    parser.add_argument("--batch", type=int, default=5_000)
    args = parser.parse_args()
    name = f"bench_sink_{uuid.uuid4().hex[:8]}"
    admin = await asyncpg.connect(f"{PG}/postgres")
    await admin.execute(f'CREATE DATABASE "{name}"')
    url = f"{PG}/{name}"
    tmp = Path(tempfile.mkdtemp())
    (tmp / "settings.toml").write_text('[host]\nvar_dir = "var"\nsecret_key = "bench"\n')
    clock = FrozenClock(dt.datetime(2026, 11, 25, 9, tzinfo=dt.UTC))
    env = {"KABINET__HOST__DATABASE_URL": url.replace("postgresql://", "postgresql+asyncpg://")}
    host = await Host.create(tmp / "settings.toml", env=env, clock=clock)
    try:
        await host.migrations.upgrade()
        await host.startup()
        per = max(1, args.orders // args.counterparties)
        cps = [await ensure_counterparty(host, 100_000 + i) for i in range(args.counterparties)]
        data = generate(cps, per, clock.now().date(), seed=1)
        async with host.db.session() as s:
            await apply_contracts(host, s, data.contracts)
        print(f"loading {len(data.orders):,} orders …", flush=True)
        await sink(host, data.orders, args.batch)
        conn = await asyncpg.connect(url)
        # As after a real first load (and as bench/sync_delta.py does): the tables get their
        # statistics and the load's dead rows are gone before either side is timed, so
        # neither pays for autovacuum waking up during its run.
        await conn.execute("VACUUM (ANALYZE)")
        ids = {
            r["external_id"]: r["id"]
            for r in await conn.fetch("SELECT id, external_id FROM shipments_order")
        }

        first = list(changed(data.orders, seed=2))
        before = await writes(conn)
        took = await sink(host, first, args.batch)
        sink_rows = await writes(conn) - before
        second = list(changed(data.orders, seed=3))
        base_rows, base_took = await baseline(url, second, ids)

        before = await writes(conn)
        await sink(host, second, args.batch)  # what the baseline already wrote: nothing new
        await sink(host, second, args.batch)
        again = await writes(conn) - before
        await conn.close()
    finally:
        await host.shutdown()
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()
    orders_s = len(first) / took
    base_s = len(second) / base_took
    print(
        f"machine: {os.cpu_count()} cores, {platform.processor() or platform.machine()}, "
        f"Python {platform.python_version()}, load {os.getloadavg()[0]:.1f}"
    )
    print(
        f"sink:     {len(first):,} changed orders in {took:.2f} s = {orders_s:,.0f} orders/s "
        f"({sink_rows:,} rows written)"
    )
    print(
        f"baseline: {len(second):,} changed orders in {base_took:.2f} s = {base_s:,.0f} orders/s "
        f"({base_rows:,} staged rows)"
    )
    print(
        f"ratio {orders_s / base_s:.2f}x (target >= {TARGET}x); "
        f"same batch again wrote {again} rows (target 0)"
    )
    return 0 if orders_s / base_s >= TARGET and again == 0 else 1


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
