"""What every answer says about itself (issue 14, point 11), over HTTP on the whole portal.

- a download carries its real content type (PDF, XLSX, CSV), never ``application/json``;
- API answers and downloads carry ``Cache-Control: no-store``;
- under https (``base_url``, or ``X-Forwarded-Proto`` from a trusted proxy) every cookie
  is ``Secure``;
- CSV and XLSX exports neutralise formulas (``=``, ``+``, ``-``, ``@``, tab, CR);
- searches take ``%`` and ``_`` literally.
"""

from __future__ import annotations

import contextlib
import csv
import io
import itertools
import mimetypes
import re
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import httpx
import msgspec
import pytest
from litestar import Litestar

from kabinet.access import Permission
from kabinet.host import Host
from kabinet.identity.services import IDENTITY
from kabinet.pages import CSRF_COOKIE, cookie_name, serves_https
from kabinet.routematrix import ORG_A, RouteMatrix, routes_of
from kabinet.web import build_app
from kabinet_companies.services import COMPANIES
from kabinet_dictionaries.services import DICTIONARIES

pytestmark = pytest.mark.smoke

PASSWORD = "correct horse battery"
FORMULAS = ["=1+2", "+SUM(A1)", "-2+3", "@cmd", "\t=x", "\r=y", '=HYPERLINK("http://x")']
_orgs = itertools.count(940_001)


@contextlib.asynccontextmanager
async def portal(
    database_url: str, tmp_path: Path, extra: str = ""
) -> AsyncIterator[tuple[Host, Litestar, httpx.AsyncClient, RouteMatrix]]:
    settings = tmp_path / f"settings-{uuid.uuid4().hex[:6]}.toml"
    settings.write_text(
        f'[host]\nvar_dir = "var"\nsecret_key = "hygiene-secret"\n{extra}\n'
        "[integration]\nenabled = false\n"
    )
    host = await Host.create(settings, env={"KABINET__HOST__DATABASE_URL": database_url})
    app = await build_app(host)
    await host.startup()
    client = httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://127.0.0.1:8000"
    )
    try:
        yield host, app, client, RouteMatrix(host, app, client)
    finally:
        await client.aclose()
        await host.shutdown()


_FILENAME = re.compile(r"filename\*=UTF-8''(?P<star>[^;]+)|filename=\"?(?P<plain>[^\";]+)")


def file_name(disposition: str) -> str:
    found = _FILENAME.search(disposition)
    assert found, disposition
    return unquote(found["star"]) if found["star"] else found["plain"]


def expected_type(name: str) -> str:
    return {
        ".csv": "text/csv",
        ".xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        ".pdf": "application/pdf",
    }.get(Path(name).suffix, mimetypes.guess_type(name)[0] or "application/octet-stream")


def download_fault(where: str, answer: httpx.Response) -> str | None:
    """What is wrong with a download (``None``: nothing)."""
    name = file_name(answer.headers["content-disposition"])
    got = answer.headers.get("content-type", "").split(";")[0].strip()
    if got != expected_type(name):
        return f"{where}: {name} sent as {got!r}, expected {expected_type(name)!r}"
    if "no-store" not in answer.headers.get("cache-control", ""):
        return f"{where}: {name} without Cache-Control: no-store"
    return None


async def test_every_download_says_what_it_is_and_no_private_answer_is_stored(
    database_url: str, tmp_path: Path
) -> None:
    """Every GET route of the portal, as a person allowed to use it, on a sample object."""
    async with portal(database_url, tmp_path) as (_host, app, _client, matrix):
        await matrix.load_samples()
        faults: list[str] = []
        downloads: list[str] = []
        api_answers = 0
        for route in routes_of(app):
            rule = route.rule
            if route.method != "GET" or not isinstance(rule, Permission):
                continue
            if route.params and (route.path, "GET") not in matrix.samples:
                continue
            sample = await matrix._sample(route, ORG_A)
            org = ORG_A if rule.scope == "organization" else None
            session = await matrix.holder(rule.code, org)
            answer = await matrix.request(route, session=session, sample=sample)
            if answer.status_code >= 300:
                continue
            if "content-disposition" in answer.headers:
                downloads.append(route.path)
                fault = download_fault(str(route), answer)
                if fault:
                    faults.append(fault)
            elif route.api:
                api_answers += 1
                if "no-store" not in answer.headers.get("cache-control", ""):
                    faults.append(f"{route}: an API answer without Cache-Control: no-store")
        assert faults == [], "\n".join(faults)
        # the check saw the file routes of the apps (it cannot pass by seeing none)
        assert "/api/dictionaries/documents/{doc_id:int}/file" in downloads
        assert "/dictionaries/documents/{doc_id:int}/file" in downloads
        assert "/shipments/orders/{order_id:int}/documents/{document_id:int}" in downloads
        assert api_answers > 10
        # errors of the API too
        missing = await matrix.client.get("/api/shipments/orders/999999901")
        assert "no-store" in missing.headers.get("cache-control", "")


# -- exports: content type and formulas ----------------------------------------------------


def _csv_cells(content: bytes) -> list[list[str]]:
    return list(csv.reader(io.StringIO(content.decode("utf-8-sig")), delimiter=";"))


def _xlsx_cells(content: bytes) -> list[list[Any]]:
    from openpyxl import load_workbook

    sheet = load_workbook(io.BytesIO(content), read_only=True).active
    assert sheet is not None
    return [list(r) for r in sheet.iter_rows(values_only=True)]


def formula_faults(where: str, rows: list[list[Any]]) -> list[str]:
    """Cells that a spreadsheet would take for a formula; and formulas lost."""
    cells = [c for row in rows for c in row if isinstance(c, str)]
    dangerous = [c for c in cells if c[:1] in ("=", "+", "-", "@", "\t", "\r")]
    # (apps strip the blanks around a value; a workbook keeps CR as a line break)
    neutral = {c[1:].strip() for c in cells if c.startswith("'")}
    lost = [f for f in FORMULAS if f.strip() not in neutral]
    return [f"{where}: a formula cell {c!r}" for c in dangerous] + [
        f"{where}: {f!r} is not shown as text" for f in lost
    ]


async def _orders_with_formulas(host: Host, org: int) -> None:
    from kabinet_shipments.demo import generate
    from kabinet_shipments.samples import ensure_counterparty
    from kabinet_shipments.sinks import apply_contracts, apply_orders

    cp = await ensure_counterparty(host, org)
    batch = generate([cp], len(FORMULAS), host.clock.now().date(), seed=org, prefix=f"F{org}")
    orders = [
        msgspec.structs.replace(o, cargo_name=f, origin=f, location=f)
        for o, f in zip(batch.orders, FORMULAS, strict=True)
    ]
    async with host.db.session() as s:
        await apply_contracts(host, s, batch.contracts)
        await apply_orders(host, s, orders)


async def test_exports_carry_their_type_and_show_formulas_as_text(
    database_url: str, tmp_path: Path
) -> None:
    async with portal(database_url, tmp_path, "[shipments]\nexport_limit = 3") as (
        host,
        _app,
        client,
        matrix,
    ):
        org = next(_orgs)
        await _orders_with_formulas(host, org)
        session = await matrix.holder("shipments.orders.view", org)
        faults: list[str] = []

        async def post(path: str, form: dict[str, str]) -> httpx.Response:
            token = await matrix.csrf(session)
            client.cookies.clear()
            headers = {"Cookie": f"{session}; kabinet_csrf={token}", "X-CSRF-Token": token}
            return await client.post(path, data=form, headers=headers)

        async def get(path: str) -> httpx.Response:
            client.cookies.clear()
            return await client.get(path, headers={"Cookie": session})

        for fmt, cells in (("csv", _csv_cells), ("xlsx", _xlsx_cells)):
            # a view larger than the limit: a background job, then its file
            started = await post("/shipments/exports", {"format": fmt})
            assert started.status_code == 303, started.text[:300]
            export_id = started.headers["location"].rsplit("/", 1)[-1]
            await host.jobs.drain()  # type: ignore[attr-defined]
            file = await get(f"/shipments/exports/{export_id}/file")
            assert file.status_code == 200
            faults += [download_fault(f"export job {fmt}", file) or ""]
            faults += formula_faults(f"export job {fmt}", cells(file.content))
            # a small view at once
            one = await post("/shipments/exports", {"format": fmt, "q": f"F{org}"})
            if one.status_code == 200:
                faults += [download_fault(f"small export {fmt}", one) or ""]
                faults += formula_faults(f"small export {fmt}", cells(one.content))

        # a dictionary's table, on its page and in the API
        dictionaries = host.services.of(DICTIONARIES)
        from kabinet_dictionaries.kinds import FieldDef

        code = f"formulas_{uuid.uuid4().hex[:8]}"
        await dictionaries.create_type(
            code=code,
            name_ru="Формулы",
            name_en="Formulas",
            fields=[FieldDef(code="note", name_ru="Текст", name_en="Text", kind="text")],
        )
        for value in FORMULAS:
            await dictionaries.create_entry(code, {"note": value})
        editor = await matrix.holder("dictionaries.entries.edit", None)
        for path in (f"/dictionaries/{code}/export", f"/api/dictionaries/types/{code}/export"):
            for fmt, cells in (("csv", _csv_cells), ("xlsx", _xlsx_cells)):
                client.cookies.clear()
                table = await client.get(f"{path}?format={fmt}", headers={"Cookie": editor})
                assert table.status_code == 200, (path, table.text[:300])
                faults += [download_fault(f"{path} {fmt}", table) or ""]
                faults += formula_faults(f"{path} {fmt}", cells(table.content))
        faults = [f for f in faults if f]
        assert faults == [], "\n".join(faults)


# -- cookies under https ---------------------------------------------------------------------


async def _cookies_of_a_visit(host: Host, client: httpx.AsyncClient, **headers: str) -> list[str]:
    """Every Set-Cookie of a visit: the sign-in page, signing in, switching the language.

    The test carries the cookies itself: a browser would send Secure ones only over https,
    and the portal behind a proxy is spoken to in plain http."""
    identity = host.services.of(IDENTITY)
    email = f"cookies-{uuid.uuid4().hex[:8]}@example.test"
    await identity.create_account(full_name="Куки Печенькин", email=email, password=PASSWORD)
    jar: dict[str, str] = {}
    seen: list[str] = []

    async def visit(method: str, path: str, **kwargs: Any) -> httpx.Response:
        client.cookies.clear()
        sent = dict(headers)
        if jar:
            sent["Cookie"] = "; ".join(f"{k}={v}" for k, v in jar.items())
        answer = await client.request(method, path, headers=sent, **kwargs)
        for cookie in answer.headers.get_list("set-cookie"):
            seen.append(cookie)
            name, _, rest = cookie.partition("=")
            jar[name] = rest.split(";", 1)[0]
        return answer

    page = await visit("GET", "/login")
    token = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert token, page.text[:300]
    form = {"login": email, "password": PASSWORD, "csrf_token": token[1]}
    signed = await visit("POST", "/login", data=form)
    assert signed.status_code == 303
    profile = await visit("GET", "/identity/profile")
    token = re.search(r'name="csrf_token" value="([^"]+)"', profile.text)
    assert token, profile.text[:300]
    form = {"lang": "en", "next": "/", "csrf_token": token[1]}
    switched = await visit("POST", "/shell/language", data=form)
    assert switched.status_code == 303
    names = {c.split("=", 1)[0] for c in seen}
    # named __Host-… when base_url is https (test_cookie_prefix.py)
    csrf = cookie_name(CSRF_COOKIE, https=serves_https(host.settings.host.base_url))
    assert {identity.cookie_name, csrf, "kabinet_lang"} <= names, names
    return seen


def _insecure(cookies: list[str]) -> list[str]:
    return [c for c in cookies if "secure" not in [p.strip().lower() for p in c.split(";")[1:]]]


async def test_every_cookie_is_secure_under_https(database_url: str, tmp_path: Path) -> None:
    https = 'base_url = "https://portal.example"'
    async with portal(database_url, tmp_path, https) as (host, _app, client, _matrix):
        assert _insecure(await _cookies_of_a_visit(host, client)) == []

    proxy = '[identity]\ntrusted_proxies = ["127.0.0.1"]'
    async with portal(database_url, tmp_path, proxy) as (host, _app, client, _matrix):
        behind = await _cookies_of_a_visit(host, client, **{"X-Forwarded-Proto": "https"})
        assert _insecure(behind) == []
        plain = await _cookies_of_a_visit(host, client)
        assert _insecure(plain) != []  # plain http: a Secure cookie would never come back

    async with portal(database_url, tmp_path) as (host, _app, client, _matrix):
        # X-Forwarded-Proto from anyone but a trusted proxy changes nothing
        spoofed = await _cookies_of_a_visit(host, client, **{"X-Forwarded-Proto": "https"})
        assert _insecure(spoofed) != []


# -- searches take % and _ literally -----------------------------------------------------------


async def test_searches_take_percent_and_underscore_literally(
    database_url: str, tmp_path: Path
) -> None:
    async with portal(database_url, tmp_path) as (host, _app, client, matrix):
        from kabinet_companies.services import SYSTEM
        from kabinet_companies.validation import make_inn

        companies = host.services.of(COMPANIES)
        org = next(_orgs)
        await companies.ensure_organization(org, f"Проценты {org}")
        inn = make_inn(org)
        await companies.create_counterparty(
            SYSTEM, name="ООО Ромашка", inn=inn, organization_id=org, external_id=f"pct-{org}"
        )
        admin = await matrix.holder("companies.organizations.view", None)

        async def found(path: str, q: str) -> int:
            client.cookies.clear()
            answer = await client.get(path, params={"q": q}, headers={"Cookie": admin})
            assert answer.status_code == 200, answer.text[:300]
            return int(answer.json()["total"])

        for path in ("/api/companies/counterparties", "/api/companies/organizations"):
            assert await found(path, inn) == 1, path  # the search works
            assert await found(path, inn[:4]) >= 1, path  # by prefix
            for wild in ("%", "_", inn[:2] + "%", inn[:2] + "_" * 8, "%" + inn[-4:]):
                assert await found(path, wild) == 0, (path, wild)

        identity = host.services.of(IDENTITY)
        tag = uuid.uuid4().hex[:6]
        await identity.create_account(
            full_name=f"Ivan Underscore {tag}", email=f"under-{tag}@example.test"
        )
        _rows, total = await identity.list_accounts(search=f"Underscore {tag}")
        assert total == 1
        for wild in ("%", f"Underscore%{tag}", f"Underscore_{tag}", f"___{tag}"):
            rows, total = await identity.list_accounts(search=wild, limit=None)
            # only accounts holding the very characters (other tests may have made some)
            texts = [f"{r.full_name} {r.email} {r.phone}".lower() for r in rows]
            assert all(wild.lower() in t for t in texts), wild
            assert tag not in " ".join(texts), wild
            assert total == len(rows)
