"""bench/dictionary: a 10-field dictionary with 100,000 entries on PostgreSQL, filtered by
two fields and sorted by a third (target p95 <= 50 ms), next to a raw SQL baseline.

The data lives in its own database (``kabinet_bench_dictionary``), built once on the first
run (about a minute; ``--rebuild`` builds it again), never in CI. Each run measures, in
the same process and order:

- the service: ``Dictionaries.entries(code, Query(filters=[vehicle = tent, price between
  20,000 and 40,000], sort=weight))``: the type definition cached in the process, then one
  statement (the count through the filters' (field, value) indexes, the walk along the
  sort field's index with key probes, the page's values, the type's revision), rendered;
- the baseline: the same question in hand-written SQL on a plain table with one column per
  field and an index on each (what a developer-made table would have), rows of the page.

    .venv/bin/python bench/dictionary.py [--count 200] [--rebuild]
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import os
import platform
import random
import statistics
import sys
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

SERVER = os.environ.get("KABINET_BENCH_PG", "postgresql://postgres@127.0.0.1:5432")
DATABASE = "kabinet_bench_dictionary"
URL = f"{SERVER.replace('postgresql://', 'postgresql+asyncpg://')}/{DATABASE}"
ENTRIES = 100_000
TARGET_P95_S = 0.050
CODE = "bench_tariffs"
VEHICLES = ["tent", "ref", "van", "flat", "tank"]
OTHERS = ("companies", "integration", "notifications", "shipments", "booking")


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


def summary(values: list[float]) -> str:
    return (
        f"median {statistics.median(values) * 1000:.1f} ms, "
        f"p95 {percentile(values, 95) * 1000:.1f} ms, n={len(values)}"
    )


async def admin(sql: str) -> Any:
    import asyncpg

    conn = await asyncpg.connect(f"{SERVER}/postgres")
    try:
        return await conn.fetchval(sql)
    finally:
        await conn.close()


def settings_file() -> Path:
    path = Path("/tmp/kabinet-bench-dictionary.toml")  # noqa: S108 (a bench's scratch file)
    path.write_text("".join(f"[{n}]\nenabled = false\n" for n in OTHERS))
    return path


async def host(*, migrate: bool = False) -> Any:
    from kabinet.host import Host

    found = await Host.create(settings_file(), env={"KABINET__HOST__DATABASE_URL": URL})
    if migrate:
        await found.migrations.upgrade()
    await found.startup()
    return found


def fields() -> list[Any]:
    from kabinet_dictionaries.kinds import Choice, FieldDef

    def f(code: str, kind: str, **kw: Any) -> FieldDef:
        return FieldDef(code=code, name_ru=code, name_en=code, kind=kind, **kw)  # type: ignore[arg-type]

    return [
        f("number", "text", unique=True),
        f("route", "text"),
        f("vehicle", "choice", choices=[Choice(code=v, ru=v, en=v) for v in VEHICLES]),
        f("price", "money"),
        f("weight", "number", precision=1),
        f("since", "date"),
        f("until", "date"),
        f("active", "bool"),
        f("note", "text"),
        f("checked_at", "datetime"),
    ]


def rows(rng: random.Random) -> list[dict[str, Any]]:
    start = dt.date(2025, 1, 1)
    moment = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    out = []
    for i in range(ENTRIES):
        since = start + dt.timedelta(days=rng.randrange(365))
        out.append(
            {
                "number": f"T-{i:06d}",
                "route": f"Город {rng.randrange(50)} — Город {rng.randrange(50)}",
                "vehicle": rng.choice(VEHICLES),
                "price": Decimal(rng.randrange(5_000, 100_000)),
                "weight": Decimal(rng.randrange(10, 250)) / 10,
                "since": since,
                "until": since + dt.timedelta(days=rng.randrange(30, 400)),
                "active": rng.random() < 0.8,
                "note": f"примечание {rng.randrange(1000)}",
                "checked_at": moment + dt.timedelta(minutes=rng.randrange(500_000)),
            }
        )
    return out


async def build() -> None:
    """Migrate, define the type, and insert the entries and values in bulk (no history)."""
    from sqlalchemy import insert, text

    from kabinet_dictionaries import kinds, models

    if await admin(f"SELECT 1 FROM pg_database WHERE datname = '{DATABASE}'"):  # noqa: S608 (a constant name)
        await admin(f'DROP DATABASE "{DATABASE}" WITH (FORCE)')
    await admin(f'CREATE DATABASE "{DATABASE}"')
    portal = await host(migrate=True)
    try:
        svc = portal.services["dictionaries"]
        found = await svc.create_type(
            code=CODE, name_ru="Тарифы", name_en="Tariffs", fields=fields()
        )
        data = rows(random.Random(7))
        now = dt.datetime.now(dt.UTC)
        async with portal.db.session() as session:
            ids = list(
                await session.scalars(
                    insert(models.entry).returning(models.entry.c.id),
                    [
                        {
                            "type_id": found.id,
                            "published": True,
                            "version": 1,
                            "search": r["route"].lower(),
                            "created_at": now,
                            "updated_at": now,
                        }
                        for r in data
                    ],
                )
            )
            for field in found.fields:
                table = kinds.TABLES[field.kind]
                values = [
                    {"entry_id": e, "field_id": field.id, "value": r[field.code]}
                    for e, r in zip(ids, data, strict=True)
                ]
                for start in range(0, len(values), 20_000):
                    await session.execute(insert(table), values[start : start + 20_000])
            # The baseline: one column per field, an index on each.
            await session.execute(
                text(
                    "CREATE TABLE bench_flat (id int primary key, number text, route text, "
                    "vehicle text, price numeric(24,6), weight numeric(24,6), since date, "
                    "until date, active bool, note text, checked_at timestamptz)"
                )
            )
            await session.execute(
                text(
                    "INSERT INTO bench_flat SELECT :id, :number, :route, :vehicle, :price, "
                    ":weight, :since, :until, :active, :note, :checked_at"
                ),
                [{"id": e, **r} for e, r in zip(ids, data, strict=True)],
            )
            for column in ("number", "route", "vehicle", "price", "weight", "since", "until"):
                await session.execute(
                    text(f"CREATE INDEX bench_flat_{column} ON bench_flat ({column})")
                )
        async with portal.db.engine.connect() as conn:
            await conn.execution_options(isolation_level="AUTOCOMMIT")
            await conn.execute(text("VACUUM ANALYZE"))
    finally:
        await portal.shutdown()


async def measure(count: int) -> bool:
    from sqlalchemy import text

    from kabinet_dictionaries.queries import Filter, Query

    portal = await host()
    try:
        svc = portal.services["dictionaries"]

        def query() -> Query:
            return Query(
                filters=[
                    Filter(field="vehicle", value="tent"),
                    Filter(field="price", op="ge", value="20000"),
                    Filter(field="price", op="le", value="40000"),
                ],
                sort="weight",
                per_page=50,
            )

        baseline_sql = text(
            "SELECT * FROM bench_flat WHERE vehicle = 'tent' AND price BETWEEN 20000 AND 40000 "
            "ORDER BY weight NULLS LAST, id LIMIT 50"
        )
        count_sql = text(
            "SELECT count(*) FROM bench_flat WHERE vehicle = 'tent' "
            "AND price BETWEEN 20000 AND 40000"
        )

        async def baseline() -> int:
            async with portal.db.session() as session:
                total = await session.scalar(count_sql)
                page = (await session.execute(baseline_sql)).all()
            assert page
            return int(total or 0)

        first = await svc.entries(CODE, query())
        expected = await baseline()
        assert first.total == expected, (first.total, expected)
        for _ in range(10):  # warm-up
            await svc.entries(CODE, query())
            await baseline()
        service_times, baseline_times = [], []
        for _ in range(count):
            started = time.perf_counter()
            await svc.entries(CODE, query())
            service_times.append(time.perf_counter() - started)
            started = time.perf_counter()
            await baseline()
            baseline_times.append(time.perf_counter() - started)
        print(f"matching entries: {first.total} of {ENTRIES}; page of 50 sorted by weight")
        print(f"raw SQL on a plain table (count + page): {summary(baseline_times)}")
        print(f"service on typed value tables (count + page + values): {summary(service_times)}")
        p95 = percentile(service_times, 95)
        ok = p95 <= TARGET_P95_S
        print(f"target p95 <= {TARGET_P95_S * 1000:.0f} ms: {'met' if ok else 'MISSED'}")
        return ok
    finally:
        await portal.shutdown()


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--count", type=int, default=200)
    parser.add_argument("--rebuild", action="store_true")
    args = parser.parse_args()
    print(
        f"machine: {os.cpu_count()} cores, Python {platform.python_version()}, "
        f"load average {os.getloadavg()[0]:.1f}"
    )
    exists = await admin(f"SELECT 1 FROM pg_database WHERE datname = '{DATABASE}'")  # noqa: S608 (a constant name)
    if args.rebuild or not exists:
        started = time.perf_counter()
        await build()
        print(f"built {ENTRIES} entries in {time.perf_counter() - started:.0f} s")
    sys.exit(0 if await measure(args.count) else 1)


if __name__ == "__main__":
    asyncio.run(main())
