"""No secret reaches the log, whatever breaks (issue 14, point 5).

The whole portal (every app, plus a plugin with a job and an event handler) runs under
each log format. A person signs in with a password (session cookie, CSRF token), holds an
API token and a confirmation code; then an error is forced on every kind of route (a
page, the JSON API, an htmx request, form posts, the anonymous 1C inbox), in a job and in
an event handler, with those secrets in the frames, the headers, the bodies and the
exceptions' messages. The captured output is scanned for every one of them.
"""

from __future__ import annotations

import asyncio
import io
import json
import re
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from kabinet import logging as klogging
from kabinet.host import Host
from kabinet.identity.services import IdentityPrincipal, IdentityService, identity_service
from kabinet.testing import PluginFactory
from kabinet.web import build_app

pytestmark = pytest.mark.smoke

PASSWORD = "Tr0ub4dor&3-horse-staple"  # the test's own secrets, looked for below
CODE = 493817
SECRET_KEY = "log-secrets-signing-key-0123456789"
INBOX_TOKEN = "onec-inbox-token-Zq9xW2vR7tK4"
ORG = 930_001
LOG = io.StringIO()

NOISY = """
import msgspec

class Noted(msgspec.Struct):
    note: str

@hookimpl
def event_types():
    return [EventType(name="tp.secret.noted", payload=Noted)]

async def on_noted(event):
    raise RuntimeError(f"the partner refused: Authorization: Bearer {event.payload.note}")

@hookimpl
def subscriptions(host):
    return [Subscription(event="tp.secret.noted", name="tp.on_noted", handler=on_noted)]

async def call_partner(token: str, password: str) -> None:
    headers = {"Authorization": f"Bearer {token}", "X-Password": password}
    raise RuntimeError(
        f"GET https://erp.example/api?token={token} failed; retried with password={password!r}"
    )

@hookimpl
def actors(host):
    return [Actor(name="tp.call_partner", fn=call_partner, max_retries=0)]
"""


class Boom(RuntimeError):
    """The fault forced into a route."""


def boom(*_: Any, **__: Any) -> Any:
    raise Boom("forced by the test")


async def _host(database_url: str, tmp_path: Path, fmt: str) -> Host:
    settings = tmp_path / "settings.toml"
    settings.write_text(
        f'[host]\nvar_dir = "var"\nsecret_key = "{SECRET_KEY}"\nlog_format = "{fmt}"\n'
        'log_level = "DEBUG"\n\n[integration.sources.onec]\nmode = "push"\n'
        f'inbox_token = "{INBOX_TOKEN}"\n'
    )
    # the installed apps, and the test's plugin (its folder is on the path now)
    return await Host.create(settings, env={"KABINET__HOST__DATABASE_URL": database_url})


@pytest.fixture
async def portal(
    database_url: str,
    tmp_path: Path,
    plugin_factory: PluginFactory,
    request: pytest.FixtureRequest,
) -> AsyncIterator[tuple[Host, httpx.AsyncClient]]:
    plugin_factory.add("tp", NOISY)
    host = await _host(database_url, tmp_path, request.param)
    app = await build_app(host)
    # the same configuration, written into a buffer the test reads
    klogging.configure(host.settings.host, stream=LOG)
    app._log = klogging.get_logger("kabinet.web")
    await host.startup()
    try:
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app, raise_app_exceptions=False),
            base_url="http://127.0.0.1:8000",
        ) as client:
            yield host, client
    finally:
        await host.shutdown()


CSRF_RE = re.compile(r'name="csrf_token" value="([^"]+)"')


async def _csrf(client: httpx.AsyncClient, path: str) -> str:
    page = await client.get(path)
    found = CSRF_RE.search(page.text)
    assert found, page.text[:500]
    return found.group(1)


@pytest.mark.parametrize("portal", ["json", "console"], indirect=True)
async def test_forced_errors_on_every_kind_of_route_log_no_secret(
    portal: tuple[Host, httpx.AsyncClient],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    host, client = portal
    service = identity_service(host)
    person = await service.create_account(
        full_name="Секретов Пётр",
        email=f"secrets-{uuid.uuid4().hex[:8]}@example.com",
        password=PASSWORD,
    )
    await host.services["roles"].grant(person.id, "client", ORG)
    me = IdentityPrincipal(person_id=person.id, name=person.full_name, kind="person")
    api_token = (await service.create_token(me, "ERP", ["identity.tokens.manage"], [ORG])).token

    signed_in = await client.post(
        "/login",
        data={
            "login": person.email,
            "password": PASSWORD,
            "csrf_token": await _csrf(client, "/login"),
        },
    )
    assert signed_in.status_code == 303, signed_in.text[:300]
    session = client.cookies["kabinet_session"]
    csrf = await _csrf(client, "/identity/profile")
    assert csrf == client.cookies["kabinet_csrf"]

    # a real confirmation code, whose value the test knows
    import kabinet.identity.services as services_module

    class KnownCode:
        @staticmethod
        def randbelow(_: int) -> int:
            return CODE

        token_urlsafe = staticmethod(__import__("secrets").token_urlsafe)

    monkeypatch.setattr(services_module, "secrets", KnownCode)
    await service.send_code(person.id, "confirm_email")
    code = f"{CODE:06d}"

    secrets = {
        "session cookie": session,
        "CSRF token": csrf,
        "CSRF nonce": csrf.partition(".")[0],
        "API token": api_token,
        "API token body": api_token.removeprefix("kbt_"),
        "password": PASSWORD,
        "confirmation code": code,
        "inbox token": INBOX_TOKEN,
        "secret key": SECRET_KEY,
    }
    LOG.seek(0)
    LOG.truncate()  # what came before the faults is not this test's subject

    bare = httpx.AsyncClient(transport=client._transport, base_url="http://127.0.0.1:8000")
    # a page, with the session cookie
    with monkeypatch.context() as m:
        m.setattr(IdentityService, "get_account", boom)
        page = await client.get("/identity/profile", headers={"Referer": f"/x?token={api_token}"})
    # the JSON API, with the API token
    with monkeypatch.context() as m:
        m.setattr("kabinet.identity.api.principal_of", boom)
        api = await bare.get("/api/identity/me", headers={"Authorization": f"Bearer {api_token}"})
    # htmx: the CSRF token in a header
    with monkeypatch.context() as m:
        m.setattr(IdentityService, "logout_others", boom)
        htmx = await client.post(
            "/identity/profile/logout-others",
            headers={"HX-Request": "true", "X-CSRF-Token": csrf},
        )
    # form posts: a code, a password
    with monkeypatch.context() as m:
        m.setattr(IdentityService, "check_code", boom)
        code_form = await client.post(
            "/identity/profile/codes/check",
            data={"purpose": "confirm_email", "code": code, "csrf_token": csrf},
        )
    with monkeypatch.context() as m:
        m.setattr(IdentityService, "login", boom)
        login_form = await client.post(
            "/login", data={"login": person.email, "password": PASSWORD, "csrf_token": csrf}
        )
    # the anonymous 1C inbox
    with monkeypatch.context() as m:
        m.setattr("kabinet_integration.api.check_token", boom)
        inbox = await bare.post(
            "/api/integration/inbox/onec",
            headers={"Authorization": f"Bearer {INBOX_TOKEN}", "Content-Type": "application/json"},
            content=json.dumps({"batch_id": "b-1", "changes": []}),
        )
    await bare.aclose()
    answers = {
        "page": page,
        "api": api,
        "htmx": htmx,
        "code form": code_form,
        "login form": login_form,
        "inbox": inbox,
    }
    assert {k: a.status_code for k, a in answers.items()} == dict.fromkeys(answers, 500)

    # a job and an event handler, failing with secrets in their arguments and messages
    await host.jobs.send("tp.call_partner", token=api_token, password=PASSWORD)
    async with host.db.session() as s:
        await host.events.publish(s, "tp.secret.noted", {"note": api_token})
    await host.events.relay()
    drain = getattr(host.jobs, "drain", None)
    for _ in range(100):
        if drain is not None:
            await drain()
        logged = LOG.getvalue()
        if "tp.call_partner" in logged and "tp.on_noted" in logged:
            break
        await asyncio.sleep(0.05)
    assert "tp.call_partner" in logged
    assert "tp.on_noted" in logged
    assert logged.count("unhandled error") >= len(answers), logged[-3000:]
    assert "Boom" in logged  # the fault is there to diagnose, its secrets are not
    leaked = sorted(name for name, value in secrets.items() if value in logged)
    assert leaked == [], f"{leaked} in the log:\n{logged[:20000]}"


def test_redaction_of_what_a_line_may_carry() -> None:
    """The processor alone: keys by name, values by shape, the registered secrets."""
    klogging.add_secret("registered-secret-value-42")
    event = {
        "event": "GET /x?code=704215&page=2 Cookie: kabinet_session=abc",
        "password": "hunter22",
        "status_code": 500,
        "headers": [(b"authorization", b"Bearer kbt_abcdefghijklmnop"), (b"accept", b"*/*")],
        "nested": {"csrf_token": "nonce.sig", "note": "uses registered-secret-value-42"},
        "url": "postgresql://kabinet:pa55word@db/kabinet",
        "session": "Zx" + "aB3" * 15,
        "request_id": "0123456789abcdef0123456789abcdef",
    }
    out = klogging.redact(None, "info", event)
    text = repr(out)
    for secret in ("hunter22", "704215", "kbt_abcdefghijklmnop", "nonce.sig", "pa55word"):
        assert secret not in text
    assert "registered-secret-value-42" not in text
    assert "kabinet_session=abc" not in text
    assert "aB3aB3aB3" not in text
    assert out["status_code"] == 500
    assert out["request_id"] == "0123456789abcdef0123456789abcdef"
    assert "page=2" in out["event"]
    assert (b"accept", b"*/*") in out["headers"] or ("accept", "*/*") in out["headers"]
