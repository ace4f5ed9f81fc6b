"""The web app: access rules, problem details, errors, headers, CSRF, health, logs, static."""

from __future__ import annotations

import io
import json
import re
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from litestar.testing import AsyncTestClient

from kabinet import logging as klogging
from kabinet.access import ALL, Principal
from kabinet.errors import PluginError
from kabinet.host import Host
from kabinet.testing import PluginFactory
from kabinet.web import build_app

pytestmark = pytest.mark.smoke

ROUTES = """
from typing import Any
import msgspec
from litestar import Request, Response, get, post
from litestar.enums import RequestEncodingType
from litestar.params import Body, JSONBody
from typing import Annotated
from kabinet.access import public, signed_in, permission, machine, Principal

class Item(msgspec.Struct):
    name: str
    count: int

class Note(msgspec.Struct):
    text: str

@get("/api/tp/ping", access=public, sync_to_thread=False)
def ping() -> dict[str, bool]:
    return {"ok": True}

@post("/api/tp/items", access=public, sync_to_thread=False)
def items(data: JSONBody[Item]) -> dict[str, int]:
    return {"count": data.count}

@get("/api/tp/boom", access=public, sync_to_thread=False)
def api_boom() -> None:
    raise RuntimeError("secret internals xyzzy")

@get("/tp/boom", access=public, sync_to_thread=False)
def page_boom() -> None:
    raise RuntimeError("secret internals xyzzy")

@post("/tp/note", access=public, sync_to_thread=False)
def note(data: Annotated[Note, Body(media_type=RequestEncodingType.URL_ENCODED)]) -> str:
    return "saved " + data.text

@get("/tp/mine", access=signed_in, sync_to_thread=False)
def mine() -> str:
    return "mine"

@get("/api/tp/mine", access=signed_in, sync_to_thread=False)
def api_mine() -> str:
    return "mine"

@get("/api/tp/admin", access=permission("tp.admin", scope="global"), sync_to_thread=False)
def admin() -> str:
    return "admin"

@get("/api/tp/orders", access=permission("tp.orders.view"), sync_to_thread=False)
def orders() -> str:
    return "orders"

@post("/api/tp/hook", access=machine("signature"), sync_to_thread=False)
def hook() -> str:
    return "hooked"

class As:
    '''Test middleware: the principal named by the X-Test-Person header.'''
    def __init__(self, app: Any) -> None:
        self.app = app
    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        for k, v in scope.get("headers", []):
            if k == b"x-test-person":
                scope["user"] = Principal(person_id=int(v), name="P", kind="person")
        await self.app(scope, receive, send)

@hookimpl
def routers(host):
    return [ping, items, api_boom, page_boom, note, mine, api_mine, admin, orders, hook]

@hookimpl
def middleware(host):
    return [As]

@hookimpl
def permissions():
    return [
        Permission(code="tp.admin", label={"ru": "a", "en": "a"}, scope="global"),
        Permission(code="tp.orders.view", label={"ru": "o", "en": "o"}),
    ]

@hookimpl
def static_dir():
    from pathlib import Path
    return Path(__file__).parent / "static"
"""


class FakeAccess:
    """Person 1 holds tp.admin globally, person 2 holds tp.orders.view in organization 7."""

    async def can(self, principal: Principal, code: str, organization: int | None = None) -> bool:
        return (principal.person_id, code) == (1, "tp.admin")

    async def organizations(self, principal: Principal, code: str) -> Any:
        if principal.person_id == 2 and code == "tp.orders.view":
            return frozenset({7})
        return ALL if principal.person_id == 1 and code == "tp.admin" else frozenset()

    async def people(self, code: str, organization: int | None = None) -> set[int]:
        return set()


Factory = Callable[..., Awaitable[Any]]


@pytest.fixture
async def make_host(
    plugin_factory: PluginFactory, database_url: str, tmp_path: Path
) -> AsyncIterator[Factory]:
    hosts: list[Host] = []

    async def make(body: str = ROUTES, **env: str) -> Host:
        if not plugin_factory.modules:
            plugin_factory.add("tp", body, files={"static/app.js": "console.log('tp');\n"})
        environ = {
            "KABINET__HOST__DATABASE_URL": database_url,
            "KABINET__HOST__VAR_DIR": str(tmp_path),
            **{f"KABINET__HOST__{k.upper()}": v for k, v in env.items()},
        }
        host = await Host.create(None, env=environ, candidates=plugin_factory.candidates())
        hosts.append(host)
        return host

    yield make
    for host in hosts:
        await host.db.dispose()


@pytest.fixture
async def client(make_host: Factory) -> AsyncIterator[AsyncTestClient[Any]]:
    host = await make_host()
    app = await build_app(host)
    async with AsyncTestClient(app) as c:
        host.access = FakeAccess()
        yield c


async def csrf(client: AsyncTestClient[Any]) -> str:
    """The token a page hands out (its form field), with the cookie set on the client."""
    page = await client.get("/")
    found = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert found, page.text
    return found.group(1)


async def test_route_without_rule_refuses_start_up(make_host: Factory) -> None:
    body = """
from litestar import get

@get("/api/tp/open", sync_to_thread=False)
def open_() -> str:
    return "no rule"

@hookimpl
def routers(host):
    return [open_]
"""
    host = await make_host(body)
    with pytest.raises(PluginError) as info:
        await build_app(host)
    message = str(info.value)
    assert "plugin 'tp'" in message
    assert "GET /api/tp/open" in message
    assert "no access rule" in message


async def test_malformed_json_is_400_naming_the_body(client: AsyncTestClient[Any]) -> None:
    response = await client.post(
        "/api/tp/items", content=b'{"name": "x", ', headers={"content-type": "application/json"}
    )
    assert response.status_code == 400
    assert response.headers["content-type"] == "application/problem+json"
    problem = response.json()
    assert problem["status"] == 400
    assert problem["instance"] == "/api/tp/items"
    assert problem["errors"][0]["field"] == "body"
    assert "not valid JSON" in problem["errors"][0]["message"]


async def test_wrong_typed_field_is_400_naming_the_field(client: AsyncTestClient[Any]) -> None:
    response = await client.post("/api/tp/items", json={"name": "x", "count": "many"})
    assert response.status_code == 400
    problem = response.json()
    assert problem["type"] == "urn:kabinet:problem:validation"
    assert problem["errors"] == [{"field": "count", "message": "Expected `int`, got `str`"}]
    assert "count" in problem["detail"]


async def test_missing_field_is_named(client: AsyncTestClient[Any]) -> None:
    response = await client.post("/api/tp/items", json={"name": "x"})
    assert response.status_code == 400
    assert [e["field"] for e in response.json()["errors"]] == ["count"]


async def test_unhandled_error_is_500_without_internals_and_logged_with_request_id(
    client: AsyncTestClient[Any], make_host: Factory
) -> None:
    buffer = io.StringIO()
    host = await make_host()
    klogging.configure(host.settings.host.__class__(log_format="json"), stream=buffer)
    api = await client.get("/api/tp/boom", headers={"X-Request-ID": "req-123"})
    page = await client.get("/tp/boom")
    assert api.status_code == 500
    assert api.headers["content-type"] == "application/problem+json"
    assert api.headers["x-request-id"] == "req-123"
    assert "xyzzy" not in api.text
    assert "Traceback" not in api.text
    assert api.json()["request_id"] == "req-123"
    assert page.status_code == 500
    assert "xyzzy" not in page.text
    assert "RuntimeError" not in page.text
    assert "Что-то пошло не так" in page.text
    assert page.headers["x-request-id"] in page.text
    lines = [json.loads(line) for line in buffer.getvalue().splitlines() if line.strip()]
    errors = [line for line in lines if line["event"] == "unhandled error"]
    assert errors[0]["request_id"] == "req-123"
    assert "xyzzy" in json.dumps(errors[0]["exception"])
    assert errors[1]["request_id"] == page.headers["x-request-id"]


async def test_security_headers_on_every_response(client: AsyncTestClient[Any]) -> None:
    for response in [
        await client.get("/"),
        await client.get("/api/tp/ping"),
        await client.get("/no/such/page"),
        await client.get("/api/tp/boom"),
    ]:
        csp = response.headers["content-security-policy"]
        assert "frame-ancestors 'none'" in csp
        assert "script-src 'self'" in csp
        assert "unsafe-inline" not in csp
        assert response.headers["x-content-type-options"] == "nosniff"
        assert response.headers["referrer-policy"]
        assert re.fullmatch(r"[0-9a-f]{32}", response.headers["x-request-id"])
        assert "strict-transport-security" not in response.headers


async def test_hsts_when_base_url_is_https(make_host: Factory) -> None:
    host = await make_host(base_url="https://portal.example")
    async with AsyncTestClient(await build_app(host)) as client:
        response = await client.get("/health")
    assert response.headers["strict-transport-security"].startswith("max-age=")


async def test_csrf_refuses_a_form_without_token_and_accepts_one_with_it(
    client: AsyncTestClient[Any],
) -> None:
    token = await csrf(client)
    refused = await client.post("/tp/note", data={"text": "hi"})
    assert refused.status_code == 403
    assert "text/html" in refused.headers["content-type"]
    forged = await client.post("/tp/note", data={"text": "hi", "csrf_token": token + "x"})
    assert forged.status_code == 403
    accepted = await client.post("/tp/note", data={"text": "hi", "csrf_token": token})
    assert accepted.status_code == 201
    assert accepted.text == "saved hi"
    by_header = await client.post(
        "/tp/note", data={"text": "htmx"}, headers={"X-CSRF-Token": token}
    )
    assert by_header.text == "saved htmx"


async def test_csrf_not_asked_of_machines_nor_token_api_calls(
    client: AsyncTestClient[Any],
) -> None:
    assert (await client.post("/api/tp/hook")).status_code == 201
    await csrf(client)  # the client now carries cookies, as a browser would
    assert (await client.post("/api/tp/hook")).status_code == 201
    with_token = await client.post(
        "/api/tp/items", json={"name": "x", "count": 1}, headers={"Authorization": "Bearer t"}
    )
    assert with_token.status_code == 201
    cookie_call = await client.post("/api/tp/items", json={"name": "x", "count": 1})
    assert cookie_call.status_code == 403
    assert cookie_call.headers["content-type"] == "application/problem+json"


async def test_access_rules(client: AsyncTestClient[Any]) -> None:
    assert (await client.get("/api/tp/mine")).status_code == 401
    assert (await client.get("/api/tp/mine")).json()["status"] == 401
    page = await client.get("/tp/mine?x=1", follow_redirects=False)
    assert page.status_code == 303
    assert page.headers["location"] == "/login?next=%2Ftp%2Fmine%3Fx%3D1"
    person = {"X-Test-Person": "3"}
    assert (await client.get("/tp/mine", headers=person)).text == "mine"
    assert (await client.get("/api/tp/admin", headers=person)).status_code == 403
    assert (await client.get("/api/tp/orders", headers=person)).status_code == 403
    assert (await client.get("/api/tp/admin", headers={"X-Test-Person": "1"})).text == "admin"
    assert (await client.get("/api/tp/orders", headers={"X-Test-Person": "2"})).text == "orders"
    assert (await client.get("/api/tp/admin", headers={"X-Test-Person": "2"})).status_code == 403


async def test_health_and_ready(client: AsyncTestClient[Any]) -> None:
    assert (await client.get("/health")).json() == {"status": "ok"}
    ready = await client.get("/ready")
    assert ready.status_code == 200
    body = ready.json()
    assert body["status"] == "ready"
    assert body["checks"]["host.database"] == {"state": "ok"}


async def test_ready_is_503_when_a_check_fails(make_host: Factory) -> None:
    host = await make_host(redis_url="redis://127.0.0.1:1/0")
    async with AsyncTestClient(await build_app(host)) as client:
        ready = await client.get("/ready")
    assert ready.status_code == 503
    body = ready.json()
    assert body["status"] == "not ready"
    assert body["checks"]["shell.redis"]["state"] == "failed"
    assert body["checks"]["shell.redis"]["error"]
    assert body["checks"]["host.database"] == {"state": "ok"}


async def test_openapi_schema_off_to_anonymous_unless_public(
    client: AsyncTestClient[Any], make_host: Factory
) -> None:
    assert (await client.get("/api/schema")).status_code == 401
    signed = await client.get("/api/schema", headers={"X-Test-Person": "3"})
    assert signed.status_code == 200
    assert "/api/tp/items" in signed.json()["paths"]
    host = await make_host(openapi_public="true")
    async with AsyncTestClient(await build_app(host)) as public:
        assert (await public.get("/api/schema")).status_code == 200
    host = await make_host(openapi="false")
    async with AsyncTestClient(await build_app(host)) as off:
        assert (await off.get("/api/schema", headers={"X-Test-Person": "3"})).status_code == 404


async def test_static_files_have_hashed_urls_with_long_cache(client: AsyncTestClient[Any]) -> None:
    home = await client.get("/")
    css = re.search(r'href="(/static/shell/kabinet\.([0-9a-f]{12})\.css)"', home.text)
    assert css, home.text
    hashed = await client.get(css.group(1))
    assert hashed.status_code == 200
    assert hashed.headers["content-type"].startswith("text/css")
    assert "immutable" in hashed.headers["cache-control"]
    assert "max-age=31536000" in hashed.headers["cache-control"]
    plain = await client.get("/static/shell/kabinet.css")
    assert plain.text == hashed.text
    assert plain.headers["cache-control"] == "no-cache"
    stale = await client.get("/static/shell/kabinet.000000000000.css")
    assert stale.headers["cache-control"] == "no-cache"
    htmx = re.search(r'src="(/static/shell/vendor/htmx-2\.0\.4\.min\.[0-9a-f]{12}\.js)"', home.text)
    assert htmx
    assert (await client.get(htmx.group(1))).status_code == 200
    plugin_file = await client.get("/static/tp/app.js")
    assert plugin_file.text == "console.log('tp');\n"
    assert (await client.get("/static/tp/../__init__.py")).status_code == 404
    assert (await client.get("/static/nobody/app.js")).status_code == 404


async def test_request_id_is_echoed_and_on_the_log_line(make_host: Factory) -> None:
    host = await make_host(log_format="json")
    buffer = io.StringIO()
    app = await build_app(host)
    klogging.configure(host.settings.host, stream=buffer)
    app._log = klogging.get_logger("kabinet.web")
    async with AsyncTestClient(app) as client:
        response = await client.get("/api/tp/ping", headers={"X-Request-ID": "abc-1"})
    assert response.headers["x-request-id"] == "abc-1"
    lines = [json.loads(line) for line in buffer.getvalue().splitlines() if line.strip()]
    request_lines = [line for line in lines if line["event"] == "request"]
    assert request_lines[-1]["request_id"] == "abc-1"
    assert request_lines[-1]["status"] == 200
    assert request_lines[-1]["path"] == "/api/tp/ping"
