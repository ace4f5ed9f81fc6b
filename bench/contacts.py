"""bench/contacts: the staff contacts table searched by part of a name, on PostgreSQL.

Builds (once, outside CI; kept between runs) a database ``kabinet_bench_contacts`` with
100,000 contacts in 10,000 organizations (every tenth contact in two), migrated with the
host and the companies app, then measures in the same run:

- Kabinet: ``CompaniesService.contacts(q=…)`` as staff see it (search, total count, first
  page of 50 by name, each row's memberships and roles), through the service;
- raw: one hand-written asyncpg query with the same ``LIKE`` on the same trigram index
  and ``LIMIT 50`` (no count, no memberships): the floor for this search.

Search terms are random 3-5 letter parts of the generated names. Target (issue 6):
p95 <= 50 ms.

    .venv/bin/python bench/contacts.py [--queries 300] [--rebuild]
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import tempfile
import time
from pathlib import Path

import asyncpg

ADMIN_DSN = "postgresql://postgres@127.0.0.1:5432/postgres"
NAME = "kabinet_bench_contacts"
URL = f"postgresql+asyncpg://postgres@127.0.0.1:5432/{NAME}"
DSN = f"postgresql://postgres@127.0.0.1:5432/{NAME}"
CONTACTS = 100_000
ORGS = 10_000
TARGET_MS = 50.0
OTHERS = ("dictionaries", "notifications", "integration", "shipments", "booking")

FIRST = [
    "Александр", "Мария", "Иван", "Ольга", "Дмитрий", "Анна", "Сергей", "Елена", "Андрей",
    "Наталья", "Алексей", "Татьяна", "Михаил", "Ирина", "Николай", "Светлана", "Павел",
    "Юлия", "Виктор", "Екатерина",
]  # fmt: skip
LAST = [
    "Иванов", "Смирнов", "Кузнецов", "Попов", "Васильев", "Петров", "Соколов", "Михайлов",
    "Новиков", "Фёдоров", "Морозов", "Волков", "Алексеев", "Лебедев", "Семёнов", "Егоров",
    "Павлов", "Козлов", "Степанов", "Николаев", "Орлов", "Андреев", "Макаров", "Никитин",
    "Захаров", "Зайцев", "Соловьёв", "Борисов", "Яковлев", "Григорьев",
]  # fmt: skip


def person_name(i: int, rng: random.Random) -> str:
    return f"{rng.choice(LAST)}{rng.choice(['', 'а'])} {rng.choice(FIRST)} {i}"


async def host_for(tmp: Path):  # type: ignore[no-untyped-def]
    from kabinet.host import Host

    settings = tmp / "settings.toml"
    disabled = "".join(f"[{name}]\nenabled = false\n" for name in OTHERS)
    settings.write_text(f'[host]\nvar_dir = "{tmp}"\n{disabled}')
    return await Host.create(settings, env={"KABINET__HOST__DATABASE_URL": URL})


async def build(tmp: Path, rebuild: bool) -> None:
    admin = await asyncpg.connect(ADMIN_DSN)
    try:
        exists = await admin.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", NAME)
        if exists and not rebuild:
            return
        await admin.execute(f'DROP DATABASE IF EXISTS "{NAME}" WITH (FORCE)')
        await admin.execute(f'CREATE DATABASE "{NAME}"')
    finally:
        await admin.close()
    host = await host_for(tmp)
    await host.migrations.upgrade()
    await host.db.dispose()
    rng = random.Random(6)
    started = time.perf_counter()
    conn = await asyncpg.connect(DSN)
    try:
        now = await conn.fetchval("SELECT now()")
        await conn.copy_records_to_table(
            "companies_organization",
            records=[
                (i, f"ООО Организация {i}", None, None, f"ооо организация {i}", now, now)
                for i in range(1, ORGS + 1)
            ],
            columns=["id", "name", "inn", "kpp", "search", "created_at", "updated_at"],
        )
        people = []
        for i in range(1, CONTACTS + 1):
            name = person_name(i, rng)
            people.append((i, name, f"c{i}@example.test", f"+7916{i:07d}"))
        await conn.copy_records_to_table(
            "identity_account",
            records=[
                (i, n, e, p, "active", True, True, "ru", "Europe/Moscow", 1, now)
                for i, n, e, p in people
            ],
            columns=[
                "id", "full_name", "email", "phone", "status", "email_confirmed",
                "phone_confirmed", "language", "timezone", "version", "created_at",
            ],
        )  # fmt: skip
        await conn.copy_records_to_table(
            "companies_contact",
            records=[(i, n, e, p, f"{n} {e} {p}".lower(), now) for i, n, e, p in people],
            columns=["person_id", "full_name", "email", "phone", "search", "created_at"],
        )
        members = [(i, 1 + (i - 1) % ORGS, i, now) for i in range(1, CONTACTS + 1)]
        members += [(CONTACTS + i, 1 + (i * 7) % ORGS, i, now) for i in range(10, CONTACTS + 1, 10)]
        await conn.copy_records_to_table(
            "companies_membership",
            records=members,
            columns=["id", "organization_id", "person_id", "created_at"],
        )
        for table in ("identity_account", "companies_organization", "companies_membership"):
            await conn.execute(
                f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "  # noqa: S608 - constant names
                f"(SELECT max(id) FROM {table}))"
            )
        await conn.execute("ANALYZE")
    finally:
        await conn.close()
    print(f"built {CONTACTS:,} contacts in {ORGS:,} organizations in "
          f"{time.perf_counter() - started:.1f} s")  # fmt: skip


def terms(n: int) -> list[str]:
    rng = random.Random(7)
    found = []
    for _ in range(n):
        word = rng.choice(LAST + FIRST).lower()
        size = rng.randint(3, 5)
        start = rng.randint(0, max(0, len(word) - size))
        found.append(word[start : start + size])
    return found


def summary(label: str, ms: list[float]) -> str:
    ms = sorted(ms)
    p95 = ms[int(len(ms) * 0.95) - 1]
    return (f"| {label} | {statistics.median(ms):.1f} ms | {p95:.1f} ms | {ms[-1]:.1f} ms |",
            p95)  # type: ignore[return-value]  # fmt: skip


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--queries", type=int, default=300)
    parser.add_argument("--rebuild", action="store_true")
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="bench-contacts-"))
    await build(tmp, args.rebuild)
    words = terms(args.queries)

    conn = await asyncpg.connect(DSN)
    raw: list[float] = []
    try:
        sql = (
            "SELECT person_id, full_name, email, phone FROM companies_contact "
            "WHERE search LIKE $1 ORDER BY full_name, person_id LIMIT 50"
        )
        for word in words[:20]:
            await conn.fetch(sql, f"%{word}%")
        for word in words:
            started = time.perf_counter()
            await conn.fetch(sql, f"%{word}%")
            raw.append((time.perf_counter() - started) * 1000)
        plan = await conn.fetch("EXPLAIN " + sql.replace("$1", "'%иван%'"))
    finally:
        await conn.close()

    from kabinet_companies.services import SYSTEM, companies

    host = await host_for(tmp)
    svc = companies(host)
    ours: list[float] = []
    totals = []
    try:
        for word in words[:20]:
            await svc.contacts(SYSTEM, q=word, limit=50)
        for word in words:
            started = time.perf_counter()
            page = await svc.contacts(SYSTEM, q=word, limit=50)
            ours.append((time.perf_counter() - started) * 1000)
            totals.append(page.total)
    finally:
        await host.db.dispose()

    raw_line, _ = summary("raw asyncpg: LIKE on the trigram index, LIMIT 50", raw)
    ours_line, p95 = summary("Kabinet: contacts(q) with count, page and roles", ours)
    print(f"{CONTACTS:,} contacts, {ORGS:,} organizations, {len(words)} searches "
          f"(matches per search: median {statistics.median(totals):,.0f}, "
          f"max {max(totals):,})")  # fmt: skip
    print("| path | p50 | p95 | max |\n| --- | --- | --- | --- |")
    print(raw_line)
    print(ours_line)
    print("plan:", " / ".join(r[0].strip() for r in plan[:4]))
    print(f"target p95 <= {TARGET_MS:.0f} ms: {'met' if p95 <= TARGET_MS else 'NOT met'}")


if __name__ == "__main__":
    asyncio.run(main())
