"""The OpenAPI document tells the truth (issue 14, point 12).

The demo portal (every app's demo data) is fuzzed from its own
``/api/schema/openapi.json`` with schemathesis, the way the review did, over HTTP against
a served process: every operation, as a client's API token, as an administrator's API
token (organization-scoped: a token never carries staff permissions) and as the
administrator's browser session (the staff-wide operations), with

- valid data: the answer is documented (status, content type, headers, body schema,
  timestamps with their zone); data that fits the document is never refused as malformed
  (400): only by the app's rules (422), the object's state (409) or access (401/403/404);
- invalid data: refused with a 4xx, never accepted;

and no answer is ever a 5xx. Every path also answers ``OPTIONS`` with an ``Allow`` listing
exactly its documented methods, and a method it does not document with 405.

The run is bounded for CI (a few examples an operation, derandomized: the same requests
every run, no shrinking) and reports every fault at once, each named by persona and
operation with the first request that showed it.
"""

from __future__ import annotations

import datetime as dt
import os
import re
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.config import SchemathesisConfig
from schemathesis.core.failures import Failure, FailureGroup
from sqlalchemy import Column, DateTime, Integer, MetaData, Table, insert, select

from kabinet.db import create_engine, parse_url
from kabinet.host import Host
from kabinet.identity.common import TOKEN_PREFIX, digest
from kabinet.identity.models import Account, ApiToken
from kabinet.identity.services import IDENTITY
from kabinet.identity.sessions import SessionRecord, new_token, session_key
from kabinet.pages import CSRF_COOKIE, CSRF_HEADER, STATE_KEY
from kabinet.testing import drop_database, kabinet_server, migrated_database
from kabinet.web import build_app

POSITIVE_EXAMPLES = 3
"""Valid requests an operation and persona (the review ran 20; CI runs every commit)."""
NEGATIVE_EXAMPLES = 2
"""Invalid requests an operation and persona."""
CLIENT = "anna@demo.test"
"""The demo's client of two companies."""
ADMIN = "admin@demo.kabinet.example"
HTTP_METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")

CONFIG = SchemathesisConfig.from_dict(
    {
        "checks": {
            "positive_data_acceptance": {
                "expected-statuses": ["2xx", 401, 403, 404, 409, 413, 415, 422]
            }
        }
    }
)
"""Data that fits the document may be refused by an app's rules (422; a file's kind or size:
415, 413), by the object's state (409) or by access (401, 403, 404), never as malformed
(400): a 400 for a request that fits the document means the document does not say what
the app checks."""

RESPONSE_CHECKS = (
    "not_a_server_error",
    "status_code_conformance",
    "content_type_conformance",
    "response_schema_conformance",
    "response_headers_conformance",
)
MODES = (
    (GenerationMode.POSITIVE, POSITIVE_EXAMPLES, (*RESPONSE_CHECKS, "positive_data_acceptance")),
    (GenerationMode.NEGATIVE, NEGATIVE_EXAMPLES, (*RESPONSE_CHECKS, "negative_data_rejection")),
)


async def _token(host: Host, email: str, organizations: list[int]) -> str:
    """An API token of the account, written as the identity app stores tokens, carrying
    every organization-scoped permission (the access service limits it to what the person
    holds there; a token never carries a staff-wide one)."""
    token = f"{TOKEN_PREFIX}contract-{email.split('@')[0]}"
    scoped = [c for c, (_, p) in host.permissions.items() if p.scope == "organization"]
    async with host.db.session() as s:
        account = await s.scalar(select(Account).where(Account.email == email))
        assert account is not None, f"the demo has no {email}"
        s.add(
            ApiToken(
                account_id=account.id,
                name="contract",
                token_hash=digest(token),
                permissions=sorted(scoped),
                organizations=organizations,
                created_at=host.clock.now(),
            )
        )
    return token


async def _browser(host: Host, email: str) -> dict[str, str]:
    """The headers of a signed-in browser of the account: its session and CSRF pair."""
    identity = host.services.of(IDENTITY)
    account = await identity.find_by_email(email)
    assert account is not None, f"the demo has no {email}"
    token, key = new_token()
    now = host.clock.now()
    await identity.sessions.create(
        SessionRecord(key=key, account_id=account.id, created_at=now, last_seen_at=now)
    )
    shell = (await build_app(host)).state[STATE_KEY]
    csrf = shell.csrf.issue(session_key(token))
    cookie = f"{identity.settings.cookie_name}={token}; {CSRF_COOKIE}={csrf}"
    return {"Cookie": cookie, CSRF_HEADER: csrf}


@pytest.fixture
async def demo(tmp_path: Path) -> AsyncIterator[tuple[str, dict[str, dict[str, str]]]]:
    """A fresh demo database (every app's demo data) and the personas' headers."""
    url = await migrated_database(tmp_path)
    settings_file = tmp_path / "settings.toml"
    settings_file.write_text(
        '[host]\nvar_dir = "var"\nsecret_key = "contract-secret"\nopenapi_public = true\n'
        "access_log = false\n"
    )
    host = await Host.create(settings_file, env={"KABINET__HOST__DATABASE_URL": url})
    await host.startup()
    try:
        await host.plugins.acall("demo_data", host=host)
        from kabinet_companies import models as companies

        async with host.db.reader() as s:
            orgs = sorted((await s.scalars(select(companies.organization.c.id))).all())
        personas = {
            "client token": {"Authorization": f"Bearer {await _token(host, CLIENT, orgs)}"},
            "admin token": {"Authorization": f"Bearer {await _token(host, ADMIN, orgs)}"},
            "admin session": await _browser(host, ADMIN),
        }
    finally:
        await host.shutdown()
        await host.db.dispose()
    yield url, personas
    await drop_database(url)


class Faults:
    """What the run found: each fault once, with the first request that showed it."""

    def __init__(self) -> None:
        self.found: dict[str, str] = {}

    def add(self, where: str, what: str, response: Any = None) -> None:
        example = ""
        if response is not None:
            sent = response.request
            body = sent.body or ""
            text = body.decode(errors="replace") if isinstance(body, bytes) else str(body)
            example = f"{sent.method} {sent.url} {text[:200]}".rstrip()
            kind = response.headers.get("content-type") or ""
            if "application/problem+json" in str(kind):
                example += f"\n    answered {response.status_code}: {response.text[:300]}"
        self.found.setdefault(f"{where}: {what}", example)

    def failure(self, where: str, failure: Failure, response: Any) -> None:
        lines = failure.message.strip().splitlines()
        what = f"{failure.title} ({response.status_code}): {lines[0] if lines else ''}"
        self.add(where, what[:300], response)

    def report(self) -> list[str]:
        return [f"{fault}\n    e.g. {example}" for fault, example in sorted(self.found.items())]


def _checker(
    where: str,
    names: tuple[str, ...],
    base: str,
    session: requests.Session,
    headers: dict[str, str],
    faults: Faults,
) -> Callable[[Any], None]:
    """Send one generated case and record what the checks find (nothing is raised, so
    Hypothesis neither shrinks nor stops: the request is reported as it was sent)."""
    checks = [getattr(schemathesis.checks, name) for name in names]

    def check(case: Any) -> None:
        response = case.call(base_url=base, session=session, headers=headers)
        try:
            case.validate_response(response, checks=checks, headers=headers)
        except FailureGroup as group:
            for failure in group.exceptions:
                faults.failure(where, failure, response)
        except Failure as failure:
            faults.failure(where, failure, response)

    return check


def _fuzz(schema: Any, base: str, persona: str, headers: dict[str, str], faults: Faults) -> None:
    session = requests.Session()
    for result in schema.get_all_operations():
        operation = result.ok()
        where = f"{persona} {operation.method.upper()} {operation.path}"
        for mode, examples, checks in MODES:
            run = settings(
                max_examples=examples,
                derandomize=True,
                database=None,
                deadline=None,
                phases=[Phase.explicit, Phase.generate],
                suppress_health_check=list(HealthCheck),
            )(
                given(case=operation.as_strategy(generation_mode=mode))(
                    _checker(where, checks, base, session, headers, faults)
                )
            )
            try:
                run()
            except Unsatisfiable:  # nothing of this operation can be made invalid
                assert mode is GenerationMode.NEGATIVE, where


def _methods(base: str, document: dict[str, Any], headers: dict[str, str], faults: Faults) -> None:
    """``OPTIONS`` lists exactly the documented methods; an undocumented one is a 405."""
    for path, item in document["paths"].items():
        documented = {m.upper() for m in item if m.upper() in HTTP_METHODS}
        url = base + re.sub(r"{[^}]+}", "1", path)
        options = requests.options(url, headers=headers, timeout=30)
        allowed = {m.strip() for m in options.headers.get("allow", "").split(",") if m.strip()}
        if allowed - {"OPTIONS", "HEAD"} != documented:
            shown = ", ".join(sorted(allowed))
            faults.add(
                f"OPTIONS {path}", f"Allow: {shown}; documented: {sorted(documented)}", options
            )
        other = next(m for m in HTTP_METHODS if m not in documented)
        refused = requests.request(other, url, headers=headers, timeout=30)
        if refused.status_code != 405 or not refused.headers.get("allow"):
            faults.add(f"{other} {path}", f"an undocumented method: {refused.status_code}", refused)


@pytest.mark.slow
@pytest.mark.smoke  # on SQLite too: the demo's database, where timestamps lost their zone
async def test_the_openapi_document_tells_the_truth(
    demo: tuple[str, dict[str, dict[str, str]]], tmp_path: Path
) -> None:
    url, personas = demo
    env = {**os.environ, "KABINET__HOST__DATABASE_URL": url}
    faults = Faults()
    with kabinet_server(tmp_path, "serve", env=env) as base:
        schema = schemathesis.openapi.from_url(f"{base}/api/schema/openapi.json", config=CONFIG)
        assert len(list(schema.get_all_operations())) >= 70  # every app's API is documented
        for persona, headers in personas.items():
            _fuzz(schema, base, persona, headers, faults)
        _methods(base, schema.raw_schema, personas["admin token"], faults)
    report = faults.report()
    assert report == [], f"{len(report)} faults:\n" + "\n".join(report)


@pytest.mark.smoke
async def test_timestamps_come_back_from_sqlite_with_their_zone(tmp_path: Path) -> None:
    """SQLite keeps no zone: a ``DateTime(timezone=True)`` is stored in UTC and read back
    aware, as PostgreSQL answers it (the API showed the demo's timestamps without one)."""
    table = Table(
        "t", MetaData(), Column("id", Integer, primary_key=True), Column("at", DateTime(True))
    )
    engine = create_engine(parse_url(f"sqlite+aiosqlite:///{tmp_path / 'at.sqlite3'}", tmp_path))
    moscow = dt.timezone(dt.timedelta(hours=3))
    try:
        async with engine.begin() as conn:
            await conn.run_sync(table.metadata.create_all)
            await conn.execute(insert(table).values(at=dt.datetime(2026, 1, 1, 12, tzinfo=moscow)))
            read = await conn.scalar(select(table.c.at))
            stored = (await conn.exec_driver_sql("SELECT at FROM t")).scalar()
    finally:
        await engine.dispose()
    assert read == dt.datetime(2026, 1, 1, 9, tzinfo=dt.UTC)
    assert read.utcoffset() == dt.timedelta(0)
    assert stored == "2026-01-01 09:00:00.000000"  # in UTC, so text order is time order
