"""bench/first_load: the first load of a portal from the local 1C, with 1C changing meanwhile.

The local 1C server (``kabinet_integration_testing``: real HTTP on 127.0.0.1, the
real wire format) runs in its **own process** holding ``--orders`` orders (two services, a
vehicle and a document each), ``--invoices`` invoices (0.8 per order by default) over
``--counterparties`` counterparties with a contract each. A fresh PostgreSQL database and a
portal on it (settings as an operator would write them: pages of 1,000 register rows,
objects by ``Ref_Key`` in requests of 100, four requests at once, no rate limit, files of the
first load on demand, the default). Then, in one run:

- the first load (``kabinet integration sync``'s run: the register's position taken, every
  entity set read by keyset over ``Ref_Key``, every object fetched, decoded, applied
  through the sinks, balances), while 1C changes: every ``--churn-every`` seconds an order
  is moved (location, cost) and one in five times an invoice is paid, each a second later
  in 1C's clock, as people at work would;
- the next delta, and the mismatches against 1C's data after it (target 0): every order's
  location, cost and comment and every invoice's paid amount, and the rows of each table
  against 1C's counts;
- the raw baseline: the same objects fetched by the same keyset with plain httpx (decoded
  as JSON) and written with asyncpg ``COPY`` into bare tables of the same columns (no
  mapping, no checks, no references resolved, no indexes but the keys): the floor of
  moving these bytes into PostgreSQL on this machine.

Target: 100,000 orders, 80,000 invoices and 2,000 counterparties in under 10 minutes, and
linear in size (run it at 50,000 too).

    .venv/bin/python bench/first_load.py [--orders 100000] [--invoices N] [--counterparties 2000]
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import multiprocessing as mp
import os
import sys
import tempfile
import threading
import time
import uuid
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import asyncpg
import httpx
from sync_common import PG, load, machine, postgres_cpu

ORDERS = "Document_ЗаявкаНаПеревозку"
INVOICES = "Document_СчетНаОплатуПокупателю"
COUNTERPARTIES = "Catalog_Контрагенты"
CONTRACTS = "Catalog_ДоговорыКонтрагентов"
TARGET = 600.0
TABLES = {
    "companies_counterparty": "counterparties",
    "shipments_contract": "contracts",
    "shipments_order": "orders",
    "shipments_order_service": "services",
    "shipments_vehicle": "vehicles",
    "shipments_document": "documents",
    "shipments_invoice": "invoices",
}


def other_apps() -> list[str]:
    """Every installed app but the three the sync needs: left out of the bench's portal."""
    from kabinet.plugins import entry_point_candidates

    needed = {"companies", "shipments", "integration"}
    return sorted({c.name for c in entry_point_candidates() if not c.builtin} - needed)


# -- the local 1C in its own process -------------------------------------------------------------


def _serve(pipe: Connection, orders: int, invoices: int, counterparties: int) -> None:
    from kabinet_integration_testing import OneCData, OneCServer, generate

    data = OneCData()
    start = time.perf_counter()
    generate(data, counterparties=counterparties, orders=orders, invoices=invoices, seed=11)
    made = time.perf_counter() - start
    gc.freeze()  # the infobase lives as long as the process
    server = OneCServer(data).start()
    pipe.send((server.base_url, made))
    stop = threading.Event()
    churned: list[int] = [0, 0]
    worker: threading.Thread | None = None

    def churn(every: float) -> None:
        """People at work in 1C: an order moved every ``every`` seconds, an invoice paid
        one time in five, each a second later in 1C's clock."""
        order_refs = list(data.sets[ORDERS])
        invoice_refs = list(data.sets[INVOICES])
        n = 0
        while not stop.wait(every):
            with data.lock:
                data.tick(1)
                ref = order_refs[(n * 7919) % len(order_refs)]
                obj = data.sets[ORDERS][ref]
                data.put(
                    ORDERS,
                    {**obj, "Дислокация": f"Тверь-{n}", "Стоимость": obj["Стоимость"] + 100},
                )
                churned[0] += 1
                if invoice_refs and n % 5 == 0:
                    inv = data.sets[INVOICES][invoice_refs[(n * 104729) % len(invoice_refs)]]
                    data.put(INVOICES, {**inv, "СуммаОплаты": inv["СуммаОплаты"] + 1.0})
                    churned[1] += 1
            n += 1

    while True:
        command, *args = pipe.recv()
        if command == "churn":
            stop.clear()
            worker = threading.Thread(target=churn, args=(float(args[0]),), daemon=True)
            worker.start()
            pipe.send(None)
        elif command == "calm":
            stop.set()
            if worker is not None:
                worker.join()
            pipe.send(tuple(churned))
        elif command == "values":  # what the portal must hold after the next delta
            with data.lock:
                pipe.send(
                    {
                        "orders": {
                            r: (o["Дислокация"], float(o["Стоимость"]), o["Комментарий"])
                            for r, o in data.sets[ORDERS].items()
                        },
                        "invoices": {
                            r: float(i["СуммаОплаты"]) for r, i in data.sets[INVOICES].items()
                        },
                        "counts": {
                            "counterparties": len(data.sets[COUNTERPARTIES]),
                            "contracts": len(data.sets[CONTRACTS]),
                            "orders": len(data.sets[ORDERS]),
                            "services": sum(len(o["Услуги"]) for o in data.sets[ORDERS].values()),
                            "vehicles": sum(
                                len(o["ТранспортныеСредства"]) for o in data.sets[ORDERS].values()
                            ),
                            "documents": sum(
                                len(o["Документы"]) for o in data.sets[ORDERS].values()
                            ),
                            "invoices": len(data.sets[INVOICES]),
                        },
                    }
                )
        elif command == "requests":
            found = list(server.requests)
            server.requests.clear()
            pipe.send(found)
        elif command == "cpu":
            pipe.send(time.process_time())
        elif command == "stop":
            stop.set()
            server.stop()
            pipe.send(None)
            return


class OneCProcess:
    def __init__(self, orders: int, invoices: int, counterparties: int) -> None:
        ctx = mp.get_context("spawn")
        self.pipe, child = ctx.Pipe()
        self.process = ctx.Process(
            target=_serve, args=(child, orders, invoices, counterparties), daemon=True
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


# -- the portal ----------------------------------------------------------------------------------


async def mismatches(conn: asyncpg.Connection, want: dict[str, Any]) -> dict[str, int]:
    """What differs from 1C: orders' location, cost and comment, invoices' paid amount,
    and the rows of each table."""
    out: dict[str, int] = {}
    held = {
        r["external_id"]: (r["location"], float(r["cost"]), r["comment"])
        for r in await conn.fetch(
            "SELECT external_id, location, cost, comment FROM shipments_order WHERE NOT hidden"
        )
    }
    out["orders"] = sum(held.get(ref) != v for ref, v in want["orders"].items())
    paid = {
        r["external_id"]: float(r["paid"])
        for r in await conn.fetch("SELECT external_id, paid FROM shipments_invoice")
    }
    out["invoices"] = sum(paid.get(ref) != v for ref, v in want["invoices"].items())
    for table, name in TABLES.items():
        rows = await conn.fetchval(f"SELECT count(*) FROM {table}")  # noqa: S608 - ours
        out[f"rows of {name}"] = abs(int(rows) - want["counts"][name])
    return out


async def rows_of(conn: asyncpg.Connection) -> dict[str, int]:
    return {
        name: int(await conn.fetchval(f"SELECT count(*) FROM {table}"))  # noqa: S608 - ours
        for table, name in TABLES.items()
    }


# -- the raw baseline ------------------------------------------------------------------------------


RAW_TABLES = (
    "CREATE TABLE raw_counterparty (external_id text PRIMARY KEY, code text, name text, "
    "full_name text, inn text, kpp text, address text, phone text, email text, data_version text)",
    "CREATE TABLE raw_contract (external_id text PRIMARY KEY, owner text, number text, "
    "name text, date text, start_date text, end_date text, status text, currency text, "
    "credit_limit numeric, data_version text)",
    "CREATE TABLE raw_order (external_id text PRIMARY KEY, number text, date text, "
    "counterparty text, contract text, status text, origin text, destination text, "
    "loading_date text, delivery_plan text, delivery_fact text, location text, "
    "location_at text, cost numeric, currency text, cargo_name text, cargo_weight numeric, "
    "cargo_volume numeric, cargo_places text, shipper text, consignee text, comment text, "
    "data_version text)",
    "CREATE TABLE raw_service (order_ref text, line int, name text, quantity numeric, "
    "amount numeric)",
    "CREATE TABLE raw_vehicle (order_ref text, line int, kind text, plate text, driver text, "
    "phone text, status text)",
    "CREATE TABLE raw_document (order_ref text, line int, kind text, number text, date text, "
    "file_ref text)",
    "CREATE TABLE raw_invoice (external_id text PRIMARY KEY, number text, date text, "
    "counterparty text, contract text, order_ref text, amount numeric, currency text, "
    "due_date text, paid numeric, payment_status text, data_version text)",
)


def _raw_records(name: str, rows: list[dict[str, Any]]) -> dict[str, list[tuple[Any, ...]]]:
    """Rows of 1C objects as records of the bare tables (no mapping, no checks)."""
    out: dict[str, list[tuple[Any, ...]]] = {}
    if name == COUNTERPARTIES:
        out["raw_counterparty"] = [
            (
                o["Ref_Key"],
                o["Code"],
                o["Description"],
                o["НаименованиеПолное"],
                o["ИНН"],
                o["КПП"],
                o["ЮридическийАдрес"],
                o["Телефон"],
                o["ЭлектроннаяПочта"],
                o["DataVersion"],
            )
            for o in rows
        ]
    elif name == CONTRACTS:
        out["raw_contract"] = [
            (
                o["Ref_Key"],
                o["Owner_Key"],
                o["Номер"],
                o["Description"],
                o["Дата"],
                o["ДатаНачала"],
                o["ДатаОкончания"],
                o["Статус"],
                o["ВалютаВзаиморасчетов"],
                o["ЛимитЗадолженности"],
                o["DataVersion"],
            )
            for o in rows
        ]
    elif name == ORDERS:
        out["raw_order"] = [
            (
                o["Ref_Key"],
                o["Number"],
                o["Date"],
                o["Контрагент_Key"],
                o["Договор_Key"],
                o["Статус"],
                o["ПунктОтправления"],
                o["ПунктНазначения"],
                o["ДатаПогрузки"],
                o["ДатаДоставкиПлан"],
                o["ДатаДоставкиФакт"],
                o["Дислокация"],
                o["ДислокацияДата"],
                o["Стоимость"],
                o["Валюта"],
                o["ГрузНаименование"],
                o["ГрузВес"],
                o["ГрузОбъем"],
                o["ГрузМест"],
                o["Грузоотправитель"],
                o["Грузополучатель"],
                o["Комментарий"],
                o["DataVersion"],
            )
            for o in rows
        ]
        out["raw_service"] = [
            (o["Ref_Key"], int(s["LineNumber"]), s["Услуга"], s["Количество"], s["Сумма"])
            for o in rows
            for s in o["Услуги"]
        ]
        out["raw_vehicle"] = [
            (
                o["Ref_Key"],
                int(v["LineNumber"]),
                v["ТипТС"],
                v["ГосНомер"],
                v["Водитель"],
                v["ТелефонВодителя"],
                v["Статус"],
            )
            for o in rows
            for v in o["ТранспортныеСредства"]
        ]
        out["raw_document"] = [
            (
                o["Ref_Key"],
                int(d["LineNumber"]),
                d["ВидДокумента"],
                d["НомерДокумента"],
                d["ДатаДокумента"],
                d["Файл_Key"],
            )
            for o in rows
            for d in o["Документы"]
        ]
    elif name == INVOICES:
        out["raw_invoice"] = [
            (
                o["Ref_Key"],
                o["Number"],
                o["Date"],
                o["Контрагент_Key"],
                o["Договор_Key"],
                o["Заявка_Key"],
                o["СуммаДокумента"],
                o["Валюта"],
                o["СрокОплаты"],
                o["СуммаОплаты"],
                o["СтатусОплаты"],
                o["DataVersion"],
            )
            for o in rows
        ]
    return out


async def raw_baseline(base_url: str, url: str, page_size: int) -> tuple[float, int]:
    """Every object of the four sets by keyset over ``Ref_Key`` (plain httpx, JSON decoded,
    four sets at once), written with COPY into bare tables in one transaction."""
    conn = await asyncpg.connect(url)
    root = f"{base_url}/odata/standard.odata/"
    written = 0
    start = time.perf_counter()
    try:
        async with (
            httpx.AsyncClient(auth=("portal", "пароль"), timeout=600) as client,
            conn.transaction(),
        ):
            for ddl in RAW_TABLES:
                await conn.execute(ddl)
            lock = asyncio.Lock()

            async def one(name: str) -> int:
                last, count = "", 0
                while True:
                    params = {
                        "$format": "json",
                        "$orderby": "Ref_Key",
                        "$top": str(page_size),
                    }
                    if last:
                        params["$filter"] = f"Ref_Key gt guid'{last}'"
                    query = "&".join(f"{k}={v}" for k, v in params.items())
                    answer = await client.get(root + name + "?" + query.replace(" ", "%20"))
                    rows = json.loads(answer.content)["value"]
                    if not rows:
                        return count
                    async with lock:  # one connection: one COPY at a time
                        for table, records in _raw_records(name, rows).items():
                            await conn.copy_records_to_table(table, records=records)
                            count += len(records)
                    last = rows[-1]["Ref_Key"]
                    if len(rows) < page_size:
                        return count

            counts = await asyncio.gather(
                *(one(n) for n in (COUNTERPARTIES, CONTRACTS, ORDERS, INVOICES))
            )
            written = sum(counts)
    finally:
        await conn.close()
    return time.perf_counter() - start, written


# -- the run -----------------------------------------------------------------------------------


def arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--orders", type=int, default=100_000)
    parser.add_argument("--invoices", type=int, help="default: 0.8 per order")
    parser.add_argument("--counterparties", type=int, default=2_000)
    parser.add_argument("--page-size", type=int, default=1000, help="register rows per page")
    parser.add_argument("--batch-size", type=int, default=100, help="objects per request")
    parser.add_argument(
        "--churn-every", type=float, default=1.0, help="seconds between two changes in 1C"
    )
    return parser.parse_args()


async def measure(args: argparse.Namespace) -> dict[str, Any]:
    from kabinet.host import Host
    from kabinet.jobs import stop_embedded
    from kabinet_integration.sync import integration

    invoices = args.invoices if args.invoices is not None else args.orders * 4 // 5
    out: dict[str, Any] = {"orders": args.orders, "invoices": invoices}
    name = f"bench_first_{uuid.uuid4().hex[:8]}"
    admin = await asyncpg.connect(f"{PG}/postgres")
    await admin.execute(f'CREATE DATABASE "{name}"')
    url = f"{PG}/{name}"
    raw_name = f"{name}_raw"
    await admin.execute(f'CREATE DATABASE "{raw_name}"')
    tmp = Path(tempfile.mkdtemp(prefix="bench-first-"))
    onec = OneCProcess(args.orders, invoices, args.counterparties)
    out["made"] = onec.made
    disabled = "".join(f"[{p}]\nenabled = false\n" for p in other_apps())
    (tmp / "settings.toml").write_text(
        f'[host]\nvar_dir = "var"\nsecret_key = "bench"\n{disabled}'
        f'[integration.sources.onec]\nbase_url = "{onec.base_url}"\nusername = "portal"\n'
        f'password = "пароль"\npage_size = {args.page_size}\nbatch_size = {args.batch_size}\n'
        f"max_concurrency = 4\nrate_per_second = 0\ntimeout_seconds = 600\n"
    )
    env = {"KABINET__HOST__DATABASE_URL": url.replace("postgresql:", "postgresql+asyncpg:")}
    host = await Host.create(tmp / "settings.toml", env=env)
    stats = await asyncpg.connect(url)
    try:
        await host.migrations.upgrade()
        await host.startup()
        await stop_embedded(host)  # no scheduler or relay competing with the run
        svc = integration(host)
        onec.call("requests")
        out["load_first"] = load()
        cpu, server_cpu, pg_cpu = time.process_time(), onec.call("cpu"), postgres_cpu()
        onec.call("churn", args.churn_every)
        start = time.perf_counter()
        first = await svc.run("onec")
        out["first"] = time.perf_counter() - start
        out["churned"] = onec.call("calm")
        out["first_cpu"] = time.process_time() - cpu
        out["server_cpu"] = onec.call("cpu") - server_cpu
        out["pg_cpu"] = postgres_cpu() - pg_cpu
        assert first.state == "succeeded", first.error
        out["first_applied"] = first.counts.applied
        out["requests"] = len(onec.call("requests"))
        out["rows"] = await rows_of(stats)
        want = onec.call("values")
        out["before_delta"] = await mismatches(stats, want)
        start = time.perf_counter()
        delta = await svc.run("onec")
        out["delta"] = time.perf_counter() - start
        assert delta.state == "succeeded", delta.error
        out["delta_applied"] = delta.counts.applied
        out["after_delta"] = await mismatches(stats, want)
        out["load_baseline"] = load()
        out["raw"], out["raw_rows"] = await raw_baseline(
            onec.base_url, f"{PG}/{raw_name}", args.page_size
        )
    finally:
        await stats.close()
        await host.shutdown()
        await host.db.dispose()
        onec.stop()
        for db in (name, raw_name):
            await admin.execute(f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)')
        await admin.close()
    return out


def report(out: dict[str, Any]) -> bool:
    n, total = out["orders"], out["first"]
    rows = out["rows"]
    print(
        f"generated in 1C (its own process) {n:,} orders, {out['invoices']:,} invoices, "
        f"{rows['counterparties']:,} counterparties in {out['made']:.1f} s"
    )
    moved, paid = out["churned"]
    print(
        f"first load: {total:.1f} s ({total / 60:.1f} min; {n / total:,.0f} orders/s), "
        f"{out['first_applied']:,} objects applied, {out['requests']:,} requests; "
        f"1C changed meanwhile: {moved} orders moved, {paid} invoices paid; "
        f"{out['load_first']} before"
    )
    print("  rows: " + ", ".join(f"{k} {v:,}" for k, v in rows.items()))
    print(
        f"  CPU used: the portal {out['first_cpu']:.1f} s, the 1C server "
        f"{out['server_cpu']:.1f} s, PostgreSQL {out['pg_cpu']:.1f} s (all processes)"
    )
    before = sum(out["before_delta"].values())
    after = sum(out["after_delta"].values())
    print(
        f"next delta: {out['delta']:.1f} s, {out['delta_applied']:,} applied; mismatches "
        f"against 1C: {before} after the load (what changed during it), {after} after the "
        f"delta (target 0)" + ("" if not after else f": {out['after_delta']}")
    )
    print(f"  target {TARGET:.0f} s: {'met' if total <= TARGET else 'NOT met'}")
    raw = out["raw"]
    print(
        f"raw baseline ({out['load_baseline']} before): the same objects by keyset with "
        f"httpx and COPY of {out['raw_rows']:,} rows into bare tables: {raw:.1f} s; the "
        f"first load takes {total / raw:.1f}x"
    )
    return bool(total <= TARGET and after == 0)


def main() -> int:
    args = arguments()
    os.environ.setdefault("PYTHONHASHSEED", "0")
    out = asyncio.run(measure(args))
    print(machine())
    return 0 if report(out) else 1


if __name__ == "__main__":
    sys.exit(main())
