"""bench/registry: the order registry on a large PostgreSQL database.

Builds once, outside CI, a database ``kabinet_bench_registry_<size>`` (kept between runs,
``--rebuild`` to make it again; migrations written since are applied to it, then
``VACUUM ANALYZE``): ``--size`` orders (default 1,000,000) over ``--counterparties``
counterparties (default 2,000, one organization each), written with asyncpg COPY into the
migrated tables; organization 1 is a client's, with about 5,000 orders (0.5 % of the
size) with their services, vehicles, documents and status history; a manager is assigned
to 200 other organizations. Each run clones that database (``CREATE DATABASE …
TEMPLATE``) and measures, in one process, over the real app (``build_app``, every
middleware, sessions, access) through an in-process ASGI client, each line 16 requests at
a time and then (``--serial``) one at a time, which gives the service time per request:

- the registry page as the client and as the manager, 50 rows, a tab, a sort and a filter
  (period, route or text): p95 (target <= 50 ms); the page does not wait for the tab
  counts, which the tabs load once shown (``/shipments/counts``);
- the same table as htmx asks for it (``HX-Target: registry``) against a raw handler in the
  same run: a bare ASGI callable that runs the same SQL (scope, the page's statement from
  ``registry.order_page_statement``, the last update) with an asyncpg pool and renders the
  same template with the shell's Jinja environment: requests/s (target >= 0.5x raw); the
  same for the tab counts fragment (``registry.tab_counts_statement``);
- page 1,000 of the manager's registry against page 1 (target p95 <= 1.3x);
- the tab counts through the service (target p95 <= 15 ms), the order card (<= 30 ms);
- the first load of the registry page: bytes transferred (gzip) with its CSS, JS and the
  counts fragment (target <= 250 kB) and the JavaScript compressed (<= 50 kB).

    .venv/bin/python bench/registry.py [--size 1000000] [--requests 400] [--serial 100]
                                       [--rebuild]
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import gzip
import os
import platform
import random
import re
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from decimal import Decimal
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

import asyncpg
import httpx

from kabinet.clock import FrozenClock

PG = "postgresql://postgres@127.0.0.1:5432"
OTHERS = ("dictionaries", "notifications", "integration", "booking")
NOW = dt.datetime(2026, 11, 25, 9, tzinfo=dt.UTC)
CONCURRENCY = 16
MANAGED = 200
CLIENT_EMAIL = "bench-client@example.test"
MANAGER_EMAIL = "bench-manager@example.test"
STATUSES = ("done",) * 14 + ("in_progress",) * 3 + ("registered",) * 2 + ("cancelled",)
FALSE, TRUE = False, True


def settings_file(tmp: Path) -> Path:
    disabled = "".join(f"[{name}]\nenabled = false\n" for name in OTHERS)
    path = tmp / "settings.toml"
    path.write_text(
        f'[host]\nvar_dir = "{tmp}/var"\nsecret_key = "bench-registry"\n'
        f'access_log = false\nlog_level = "WARNING"\n{disabled}'
    )
    return path


async def make_host(tmp: Path, database: str) -> Any:
    from kabinet.host import Host

    env = {
        "KABINET__HOST__DATABASE_URL": f"postgresql+asyncpg://postgres@127.0.0.1:5432/{database}"
    }
    return await Host.create(settings_file(tmp), env=env, clock=FrozenClock(NOW))


# -- building the data (once) ------------------------------------------------------------------


def order_rows(size: int, counterparties: int, client_orders: int) -> Any:
    """Order tuples in COPY column order; counterparty 1 (the client's) gets ``client_orders``."""
    from kabinet_shipments.demo import CARGO, CITIES
    from kabinet_shipments.models import place_key

    rng = random.Random(7)
    start = NOW - dt.timedelta(days=3 * 365)
    span = int((NOW - start).total_seconds())
    for oid in range(1, size + 1):
        cp = 1 if oid % (size // client_orders) == 0 else rng.randint(2, counterparties)
        date = start + dt.timedelta(seconds=rng.randrange(span))
        status = rng.choice(STATUSES)
        origin, destination = rng.sample(CITIES, 2)
        cargo = rng.choice(CARGO)[0]
        number = f"ЗК-{oid:07d}"
        loading = date.date() + dt.timedelta(days=rng.randint(0, 5))
        planned = loading + dt.timedelta(days=rng.randint(1, 10))
        yield (
            oid, f"bench-o-{oid}", cp, cp, number, date, status, origin, destination,
            place_key(origin), place_key(destination),
            loading, planned, planned if status == "done" else None,
            f"{destination}, {rng.randint(1, 300)} км" if status == "in_progress" else "",
            date, Decimal(rng.randint(20, 400) * 500), "RUB", cargo,
            Decimal(rng.randint(500, 20000)), Decimal(rng.randint(5, 80)), rng.randint(1, 33),
            "ООО «Отправитель»", "ООО «Получатель»", "", f"{number} {cargo}".lower(),
            FALSE, f"{oid:032x}", date, date,
        )  # fmt: skip


async def build(name: str, size: int, counterparties: int) -> None:
    """Migrate a fresh database, COPY the data in, ANALYZE; rename it into place at the end."""
    admin = await asyncpg.connect(f"{PG}/postgres")
    building = f"{name}_building"
    await admin.execute(f'DROP DATABASE IF EXISTS "{building}" WITH (FORCE)')
    await admin.execute(f'CREATE DATABASE "{building}"')
    started = time.perf_counter()
    tmp = Path(tempfile.mkdtemp())
    host = await make_host(tmp, building)
    await host.migrations.upgrade()
    await host.startup()
    conn = await asyncpg.connect(f"{PG}/{building}")
    client_orders = max(1, size // 200)
    try:
        print(f"building {name}: {size:,} orders, {counterparties:,} counterparties …", flush=True)
        await conn.copy_records_to_table(
            "companies_organization",
            columns=["id", "name", "inn", "search", "created_at", "updated_at"],
            records=[
                (i, f"ООО «Грузы {i}»", None, f"ооо «грузы {i}»", NOW, NOW)
                for i in range(1, counterparties + 1)
            ],
        )
        await conn.copy_records_to_table(
            "companies_counterparty",
            columns=[
                "id", "organization_id", "external_id", "name", "full_name", "inn", "address",
                "phone", "email", "hidden", "source", "created_at", "updated_at",
            ],
            records=[
                (i, i, f"bench-cp-{i}", f"ООО «Грузы {i}»", "", f"{7700000000 + i}", "", "", "",
                 FALSE, "sync", NOW, NOW)
                for i in range(1, counterparties + 1)
            ],
        )  # fmt: skip
        await conn.copy_records_to_table(
            "shipments_contract",
            columns=[
                "id", "external_id", "counterparty_id", "number", "name", "date", "status",
                "currency", "credit_limit", "hidden", "digest", "updated_at",
            ],
            records=[
                (i, f"bench-k-{i}", i, f"Д-{i}", "", dt.date(2023, 1, 1), "active", "RUB",
                 Decimal(0), FALSE, "x", NOW)
                for i in range(1, counterparties + 1)
            ],
        )  # fmt: skip
        columns = [
            "id", "external_id", "counterparty_id", "contract_id", "number", "date", "status",
            "origin", "destination", "origin_key", "destination_key", "loading_date",
            "delivery_planned", "delivery_actual",
            "location", "location_at", "cost", "currency", "cargo_name", "cargo_weight",
            "cargo_volume", "cargo_places", "shipper", "consignee", "comment", "search",
            "hidden", "digest", "status_at", "updated_at",
        ]  # fmt: skip
        rows = order_rows(size, counterparties, client_orders)
        chunk: list[Any] = []
        for row in rows:
            chunk.append(row)
            if len(chunk) == 100_000:
                await conn.copy_records_to_table("shipments_order", columns=columns, records=chunk)
                chunk = []
                print(f"  {row[0]:,} orders", flush=True)
        if chunk:
            await conn.copy_records_to_table("shipments_order", columns=columns, records=chunk)
        client = await conn.fetch(
            "SELECT id, status, date FROM shipments_order WHERE counterparty_id = 1"
        )
        await conn.copy_records_to_table(
            "shipments_order_service",
            columns=["order_id", "line", "name", "quantity", "amount"],
            records=[
                (r["id"], n, name, Decimal(1), Decimal(1500))
                for r in client
                for n, name in ((1, "Погрузка"), (2, "Страхование груза"))
            ],
        )
        await conn.copy_records_to_table(
            "shipments_vehicle",
            columns=["order_id", "line", "kind", "plate", "driver", "driver_phone", "status"],
            records=[
                (r["id"], 1, "Тент 20 т", "А123ВС77", "Иванов Пётр", "+79160000000", "В пути")
                for r in client
            ],
        )
        await conn.copy_records_to_table(
            "shipments_document",
            columns=["order_id", "line", "kind", "number", "date", "file_ref", "file_name"],
            records=[
                (r["id"], n, kind, str(r["id"]), r["date"].date(), f"f-{r['id']}-{n}", "d.pdf")
                for r in client
                for n, kind in ((1, "Транспортная накладная"), (2, "Акт"))
            ],
        )
        await conn.copy_records_to_table(
            "shipments_status_change",
            columns=["order_id", "status", "previous", "received_at"],
            records=[
                (r["id"], s, p, r["date"] + dt.timedelta(hours=h))
                for r in client
                for s, p, h in (("registered", None, 0), (r["status"], "registered", 30))
            ],
        )
        for table in (
            "companies_organization", "companies_counterparty", "shipments_contract",
            "shipments_order", "shipments_order_service", "shipments_vehicle",
            "shipments_document", "shipments_status_change",
        ):  # fmt: skip
            await conn.execute(
                f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "  # noqa: S608
                f"(SELECT max(id) FROM {table}))"
            )
        await conn.execute(
            "INSERT INTO shipments_feed (entity, received_at) VALUES ('order', $1)", NOW
        )
        await people(host, counterparties)
        await conn.execute("VACUUM ANALYZE")
    finally:
        await conn.close()
        await host.shutdown()
    await admin.execute(f'ALTER DATABASE "{building}" RENAME TO "{name}"')
    await admin.close()
    print(f"built in {time.perf_counter() - started:.0f} s", flush=True)


async def people(host: Any, counterparties: int) -> None:
    """A client of organization 1; a manager of organizations 2 … 201 (through the services)."""
    from kabinet.identity.services import identity_service
    from kabinet_companies.services import companies

    identity = identity_service(host)
    svc = companies(host)
    client = await identity.create_account(full_name="Клиент Бенчев", email=CLIENT_EMAIL)
    await svc.roles.grant(client.id, "client", 1)
    manager = await identity.create_account(full_name="Менеджер Бенчев", email=MANAGER_EMAIL)
    await svc.roles.grant(manager.id, "manager")
    for org in range(2, min(counterparties, MANAGED + 1) + 1):
        await svc.assign_manager(None, org, manager.id)


# -- measuring ---------------------------------------------------------------------------------


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


class Result:
    def __init__(self, label: str, ms: list[float], seconds: float) -> None:
        self.label, self.ms, self.seconds = label, ms, seconds

    @property
    def p95(self) -> float:
        return pct(self.ms, 0.95)

    @property
    def p50(self) -> float:
        return statistics.median(self.ms)

    @property
    def rps(self) -> float:
        return len(self.ms) / self.seconds

    def line(self) -> str:
        return (
            f"{self.label:<46} p50 {statistics.median(self.ms):6.1f} ms  p95 {self.p95:6.1f} ms"
            f"  max {max(self.ms):6.1f} ms  {self.rps:7.1f} req/s"
        )


async def load(
    label: str, calls: list[Callable[[], Awaitable[None]]], concurrency: int = CONCURRENCY
) -> Result:
    """Run ``calls`` with ``concurrency`` at a time; latency of each, throughput of all."""
    queue = list(reversed(calls))
    ms: list[float] = []

    async def worker() -> None:
        while queue:
            call = queue.pop()
            started = time.perf_counter()
            await call()
            ms.append((time.perf_counter() - started) * 1000)

    for call in calls[: concurrency * 2]:  # warm caches and connection pools
        await call()
    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return Result(label, ms, time.perf_counter() - started)


def variants(rng: random.Random, n: int, text: bool) -> list[str]:
    """Registry URLs: 50 rows, a tab, a sort and a filter (period, route or text)."""
    from kabinet_shipments.demo import CARGO, CITIES

    tabs = ("in_progress", "done", "registered", "")
    sorts = ("-date", "date", "-cost", "cost", "number", "-number", "-delivery_planned")
    out = []
    for _ in range(n):
        kind = rng.choice(("period", "route", "text") if text else ("period", "route"))
        if kind == "period":
            start = NOW.date() - dt.timedelta(days=rng.randint(30, 700))
            flt = f"date_from={start}&date_to={start + dt.timedelta(days=rng.randint(30, 365))}"
        elif kind == "route":
            flt = f"origin={rng.choice(CITIES)}"
        else:
            flt = f"q={rng.choice(CARGO)[0].split()[0].lower()}"
        out.append(f"/shipments/?size=50&status={rng.choice(tabs)}&sort={rng.choice(sorts)}&{flt}")
    return out


class Raw:
    """The floor: the same SQL through an asyncpg pool, the same template, no framework.

    ``/raw/<person>?…`` is the table as htmx asks for it (scope, the page's statement, the
    time of the last update; the tabs without counts), ``/rawcounts/<person>?…`` the tabs
    with their counts (the same one counting statement); both render the app's templates.
    """

    def __init__(self, pool: asyncpg.Pool, env: Any, host: Any) -> None:
        from sqlalchemy.dialects.postgresql import asyncpg as pg_asyncpg

        self.pool, self.env, self.host = pool, env, host
        self.table = env.get_template("shipments/_orders.html")
        self.tabs = env.get_template("shipments/_counts.html")
        self.dialect = pg_asyncpg.dialect()  # type: ignore[no-untyped-call]

    def sql(self, stmt: Any) -> tuple[str, list[Any]]:
        compiled = stmt.compile(dialect=self.dialect, compile_kwargs={"render_postcompile": True})
        return compiled.string, [compiled.params[n] for n in compiled.positiontup]

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        from kabinet_shipments import labels
        from kabinet_shipments import models as m
        from kabinet_shipments.pages import count_label, link
        from kabinet_shipments.registry import (
            ORDER_SORTS,
            ORDER_TABS,
            is_late,
            order_filters,
            order_page_statement,
            page_of,
            tab_counts_of,
            tab_counts_statement,
        )
        from kabinet_shipments.services import ShipmentsService
        from kabinet_shipments.texts import texts

        svc: ShipmentsService = self.host.services["shipments"]
        params = dict(parse_qsl(scope["query_string"].decode()))
        query = svc.parse_orders(params)
        kind, person_text = scope["path"].strip("/").split("/")
        person = int(person_text)
        bound = svc.settings.count_bound
        context: dict[str, Any] = {
            "lang": "ru", "tz": "Europe/Moscow", "t": texts("ru"), "query": query,
            "params": params, "tabs": ORDER_TABS, "sorts": ORDER_SORTS,
            "sizes": svc.settings.page_sizes, "link": link,
            "status_label": lambda code: labels.label(labels.ORDER_STATUS, code, "ru"),
            "csrf_token": "raw", "csrf_field": "csrf_token", "counts": None,
            "today": svc.today(), "is_late": is_late,  # as pages._registry_context passes them
        }  # fmt: skip
        async with self.pool.acquire() as conn:
            orgs = [
                r["organization_id"]
                for r in await conn.fetch(
                    "SELECT organization_id FROM roles_grant WHERE person_id = $1 "
                    "AND organization_id IS NOT NULL UNION SELECT organization_id FROM "
                    "companies_manager WHERE person_id = $1",
                    person,
                )
            ]
            cps = [
                r["id"]
                for r in await conn.fetch(
                    "SELECT id FROM companies_counterparty WHERE organization_id = ANY($1::int[])",
                    orgs,
                )
            ]
            conds = order_filters(query, cps)
            if kind == "rawcounts":
                text, args = self.sql(tab_counts_statement(conds, bound))
                counts = tab_counts_of(await conn.fetch(text, *args), bound)
                context["counts"] = {k: count_label(v, bound) for k, v in counts.items()}
                template = self.tabs
            else:
                status = [m.order.c.status == query.status] if query.status else []
                stmt, window = order_page_statement(query, [*conds, *status], True)
                text, args = self.sql(stmt)
                rows = [_Row(r) for r in await conn.fetch(text, *args)]
                context["page"] = page_of(rows, window)
                context["many"] = len(orgs) > 1
                context["choices"] = None
                context["last_update"] = await conn.fetchval(
                    "SELECT max(received_at) FROM shipments_feed"
                )
                template = self.table
        body = (await template.render_async(context)).encode()
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-type", b"text/html; charset=utf-8")],
            }
        )
        await send({"type": "http.response.body", "body": body})


class _Row:
    """An asyncpg record read by attribute, as the template and the page cutter read rows."""

    __slots__ = ("_r",)

    def __init__(self, record: Any) -> None:
        self._r = record

    def __getattr__(self, name: str) -> Any:
        return self._r[name]


async def first_load(client: httpx.AsyncClient, url: str, cookie: str) -> tuple[int, int]:
    """Bytes of the registry page with its CSS, JS and the fragments it loads at once (the
    tab counts) as a browser gets them (gzip)."""
    headers = {"Cookie": cookie, "Accept-Encoding": "gzip"}

    async def size(path: str) -> tuple[int, bytes]:
        async with client.stream("GET", path, headers=headers) as r:
            raw = b"".join([chunk async for chunk in r.aiter_raw()])
            assert r.status_code == 200, (path, r.status_code)
            if r.headers.get("content-encoding") != "gzip":
                return len(gzip.compress(raw)), raw  # what a compressing proxy would send
            return len(raw), gzip.decompress(raw)

    total, html = await size(url)
    for fragment in re.findall(rb'hx-get="([^"]+)"\s+hx-trigger="load"', html):
        n, _ = await size(fragment.decode().replace("&amp;", "&"))  # the tab counts
        total += n
    js = 0
    assets = re.findall(rb'<script[^>]+src="([^"]+)"', html)
    styles = re.findall(rb'<link[^>]+rel="stylesheet"[^>]+href="([^"]+)"', html)
    styles += re.findall(rb'<link[^>]+href="([^"]+)"[^>]+rel="stylesheet"', html)
    for src in assets:
        n, _ = await size(src.decode())
        total += n
        js += n
    for href in set(styles):
        n, _ = await size(href.decode())
        total += n
    return total, js


async def measure(name: str, requests: int, serial: int) -> int:
    from kabinet.web import build_app
    from kabinet_shipments.registry import OrderQuery, encode_cursor
    from kabinet_shipments.services import ShipmentsService

    run = f"{name}_run_{os.getpid()}"
    admin = await asyncpg.connect(f"{PG}/postgres")
    await admin.execute(f'CREATE DATABASE "{run}" TEMPLATE "{name}"')
    tmp = Path(tempfile.mkdtemp())
    host = await make_host(tmp, run)
    failed: list[str] = []
    load_before = os.getloadavg()
    lines: list[Line] = []
    try:
        app = await build_app(host)
        await host.startup()
        from kabinet.pages import STATE_KEY
        from kabinet.routematrix import RouteMatrix

        transport = httpx.ASGITransport(app=app)
        client = httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1:8000")
        matrix = RouteMatrix(host, app, client)
        identity = host.services["identity"]
        client_id = (await identity.find_by_email(CLIENT_EMAIL)).id
        manager_id = (await identity.find_by_email(MANAGER_EMAIL)).id
        cookies = {
            "client": await matrix._session(client_id),
            "manager": await matrix._session(manager_id),
        }
        pool = await asyncpg.create_pool(f"{PG}/{run}", min_size=4, max_size=10)
        raw = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=Raw(pool, app.state[STATE_KEY].env, host)),
            base_url="http://127.0.0.1:8000",
        )
        rng = random.Random(11)

        def get(path: str, who: str, partial: bool = False) -> Callable[[], Awaitable[None]]:
            headers = {"Cookie": cookies[who]}
            if partial:
                headers |= {"HX-Request": "true", "HX-Target": "registry"}

            async def call() -> None:
                r = await client.get(path, headers=headers)
                if r.status_code != 200:
                    raise RuntimeError(f"{path}: {r.status_code} {r.text[:300]}")

            return call

        def raw_get(path: str, person: int, kind: str = "raw") -> Callable[[], Awaitable[None]]:
            target = path.replace("/shipments/", f"/{kind}/{person}")

            async def call() -> None:
                r = await raw.get(target)
                assert r.status_code == 200

            return call

        async def line(
            label: str, calls: list[Callable[[], Awaitable[None]]], target: float | None = None
        ) -> Line:
            busy = await load(label, calls)
            alone = await load(label, calls[:serial], concurrency=1) if serial else None
            found = Line(label, busy, alone, target)
            lines.append(found)
            print(found.row(), flush=True)
            return found

        client_urls = variants(rng, requests, text=True)
        manager_urls = variants(rng, requests, text=False)
        counts_urls = {
            who: [u.replace("/shipments/?", "/shipments/counts?") for u in urls]
            for who, urls in (("client", client_urls), ("manager", manager_urls))
        }
        print(f"{'line':<44} {'c=16 p50':>9} {'p95':>7} {'req/s':>6} | {'c=1 p50':>8} {'p95':>6}")
        await line("registry page, client", [get(u, "client") for u in client_urls], 50)
        await line("registry page, manager of 200", [get(u, "manager") for u in manager_urls], 50)
        partial = await line("table (htmx), client", [get(u, "client", True) for u in client_urls])
        floor = await line(
            "raw asyncpg + template, client", [raw_get(u, client_id) for u in client_urls]
        )
        mpartial = await line(
            "table (htmx), manager", [get(u, "manager", True) for u in manager_urls]
        )
        mfloor = await line(
            "raw asyncpg + template, manager", [raw_get(u, manager_id) for u in manager_urls]
        )
        tabs = await line(
            "tab counts fragment, client", [get(u, "client") for u in counts_urls["client"]]
        )
        tabs_floor = await line(
            "raw counts + template, client",
            [raw_get(u, client_id, "rawcounts") for u in client_urls],
        )
        mtabs = await line(
            "tab counts fragment, manager", [get(u, "manager") for u in counts_urls["manager"]]
        )
        mtabs_floor = await line(
            "raw counts + template, manager",
            [raw_get(u, manager_id, "rawcounts") for u in manager_urls],
        )

        # page 1 and page 1,000 of the manager's registry (done tab, newest first)
        svc: ShipmentsService = host.services["shipments"]
        principal = await matrix_principal(host, manager_id)
        base = "/shipments/?size=50&status=done&sort=-date"
        scope = await svc.scope(principal, "shipments.orders.view")
        conn = await asyncpg.connect(f"{PG}/{run}")
        deep = await conn.fetchrow(
            "SELECT date, id FROM shipments_order WHERE counterparty_id = ANY($1::int[]) "
            "AND status = 'done' AND NOT hidden ORDER BY date DESC, id DESC OFFSET $2 LIMIT 1",
            list(scope.counterparties or ()),
            999 * 50 - 1,
        )
        pages = [base] * requests
        first = await line(
            "page 1 (manager, done, newest)", [get(u, "manager", True) for u in pages]
        )
        if deep is None:
            failed.append("page 1,000: not enough orders at this size")
        else:
            cursor = encode_cursor(deep["date"], deep["id"])
            thousandth = await line(
                "page 1,000 (same view)",
                [get(f"{base}&after={cursor}", "manager", True) for _ in pages],
            )
            if thousandth.busy.p95 > 1.3 * first.busy.p95:
                failed.append("page 1,000 p95 > 1.3x page 1")

        # tab counts through the service, and the order card
        cprincipal = await matrix_principal(host, client_id)
        cqueries = [svc.parse_orders(dict(parse_qsl(u.split("?", 1)[1]))) for u in client_urls]
        mqueries = [svc.parse_orders(dict(parse_qsl(u.split("?", 1)[1]))) for u in manager_urls]

        def counts(p: Any, q: OrderQuery) -> Callable[[], Awaitable[None]]:
            async def call() -> None:
                await svc.tab_counts(p, q)

            return call

        await line("tab counts (service), client", [counts(cprincipal, q) for q in cqueries], 15)
        await line("tab counts (service), manager", [counts(principal, q) for q in mqueries], 15)
        ids = [
            r["id"]
            for r in await conn.fetch("SELECT id FROM shipments_order WHERE counterparty_id = 1")
        ]
        await conn.close()
        cards = [get(f"/shipments/orders/{rng.choice(ids)}", "client") for _ in range(requests)]
        await line("order card, client", cards, 30)

        total, js = await first_load(client, client_urls[0], cookies["client"])
        await client.aclose()
        await raw.aclose()
        await pool.close()
    finally:
        await host.shutdown()
        await admin.execute(f'DROP DATABASE IF EXISTS "{run}" WITH (FORCE)')
        await admin.close()

    load_after = os.getloadavg()
    print(
        f"machine: {os.cpu_count()} cores, {platform.processor() or platform.machine()}, "
        f"Python {platform.python_version()}; load average {load_before[0]:.1f} at the start, "
        f"{load_after[0]:.1f} at the end (1 min), {load_after[2]:.1f} (15 min); "
        f"{CONCURRENCY} requests at a time ({requests} per line), then one at a time "
        f"({serial} per line)"
    )
    for found in lines:
        if found.target is not None and found.busy.p95 > found.target:
            failed.append(found.label)
    for label, mine, base_ in (
        ("table, client", partial, floor),
        ("table, manager", mpartial, mfloor),
        ("counts, client", tabs, tabs_floor),
        ("counts, manager", mtabs, mtabs_floor),
    ):
        ratio = mine.busy.rps / base_.busy.rps
        alone = (
            f"; one at a time: {base_.alone.p50:.1f} vs {mine.alone.p50:.1f} ms median"
            if mine.alone and base_.alone
            else ""
        )
        print(f"requests/s vs raw, {label}: {ratio:.2f}x (target >= 0.5x){alone}")
        if ratio < 0.5 and label.startswith("table"):
            failed.append(f"ratio {label}")
    print(
        f"first load: {total / 1024:.1f} kB transferred (<= 250), "
        f"JS {js / 1024:.1f} kB gzip (<= 50)"
    )
    if total > 250 * 1024 or js > 50 * 1024:
        failed.append("first load")
    print("missed: " + ", ".join(failed) if failed else "all targets met")
    return 1 if failed else 0


class Line:
    """One measured line: at 16 requests at a time, and (service time) one at a time."""

    def __init__(
        self, label: str, busy: Result, alone: Result | None, target: float | None
    ) -> None:
        self.label, self.busy, self.alone, self.target = label, busy, alone, target

    def row(self) -> str:
        b = self.busy
        text = f"{self.label:<44} {statistics.median(b.ms):9.1f} {b.p95:7.1f} {b.rps:6.1f}"
        if self.alone is not None:
            text += f" | {self.alone.p50:8.1f} {self.alone.p95:6.1f}"
        if self.target is not None:
            text += " ok" if b.p95 <= self.target else f" MISSED (p95 <= {self.target:g})"
        return text


async def matrix_principal(host: Any, person_id: int) -> Any:
    from kabinet.access import Principal

    return Principal(person_id=person_id, name="bench", kind="person")


async def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--size", type=int, default=1_000_000)
    parser.add_argument("--counterparties", type=int, default=2_000)
    parser.add_argument("--requests", type=int, default=400)
    parser.add_argument(
        "--serial", type=int, default=100, help="requests per line one at a time (0: none)"
    )
    parser.add_argument("--rebuild", action="store_true")
    parser.add_argument("--build-only", action="store_true")
    args = parser.parse_args()
    name = f"kabinet_bench_registry_{args.size}"
    admin = await asyncpg.connect(f"{PG}/postgres")
    exists = await admin.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", name)
    if exists and args.rebuild:
        await admin.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
    await admin.close()
    if not exists or args.rebuild:
        await build(name, args.size, args.counterparties)
    else:
        await up_to_date(name)
    if args.build_only:
        return 0
    return await measure(name, args.requests, args.serial)


async def up_to_date(name: str) -> None:
    """Apply the migrations written since the database was built (new indexes, say)."""
    tmp = Path(tempfile.mkdtemp())
    host = await make_host(tmp, name)
    try:
        before = await host.migrations.current()
        await host.migrations.upgrade()
        after = await host.migrations.current()
    finally:
        await host.db.dispose()
    changed = {k: v for k, v in after.items() if before.get(k) != v}
    if changed:
        print(f"migrated {name}: {changed}; VACUUM ANALYZE", flush=True)
        conn = await asyncpg.connect(f"{PG}/{name}")
        try:
            await conn.execute("VACUUM ANALYZE")
        finally:
            await conn.close()


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
