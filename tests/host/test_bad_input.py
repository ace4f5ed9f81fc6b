"""No input makes the portal answer 5xx: bad input is a 4xx naming the field, everywhere.

Every route of the assembled app (read from the app, as the route matrix does) gets each
kind of bad input an attacker sends, as an administrator and as a client, with CSRF
handled: JSON nested 1,000 levels deep, a 20-digit number and a number beyond the
database's ``integer`` in every whole-number path parameter and in the query, damaged
keyset cursors, a CSV upload with a 200,000-character cell, and, where a plugin says how
to reach a route's object (``route_samples``), each field of its request replaced by a
100,000-character text, a 20-digit number and an organization that does not exist.

Nothing may answer 5xx. An API answer is problem details; when it refuses the input
(400/409/422) its ``errors`` name the field that was bad; a 100,000-character text is
refused (no column holds one).
"""

from __future__ import annotations

import base64
import dataclasses
import json
import os
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import msgspec
from litestar import Litestar

from kabinet.access import Permission, SignedIn
from kabinet.host import Host
from kabinet.inputs import INT_MAX
from kabinet.pages import CSRF_COOKIE, CSRF_HEADER
from kabinet.problems import PROBLEM_JSON
from kabinet.roles.services import ROLES
from kabinet.routematrix import _PARAM, ORG_A, SAFE, Route, RouteMatrix, SampleRequest, routes_of
from kabinet.web import build_app, iter_handlers

HUGE = "99999999999999999999"
"""Beyond any integer a database column holds (OverflowError in the driver)."""
BEYOND = str(INT_MAX + 1)
"""Beyond PostgreSQL's ``integer`` (most ids): the driver refuses it too."""
MISSING_ORG = str(INT_MAX)
"""An organization id in range that names no organization (a foreign-key error)."""
NO_ROW = "0"
"""The other whole-number path parameters of a request probing one: an id no row has
(rows are numbered from 1, and a body's :data:`kabinet.inputs.Id` refuses 0, so no test
makes one). Not ``1``: the run's tests share one database, so whether row 1 exists (an
organization, a person, who the admin is) depends on which tests ran before, and so did
the answer (a DELETE of member 1 of organization 1 was refused with 422 naming
``organization_id`` when person 1 was not the admin and organization 1 did not exist, a
403 when person 1 was the admin)."""
VERBOSE = bool(os.environ.get("KABINET_BAD_INPUT_VERBOSE"))
LONG = "x" * 100_000
DEEP_OBJECT = b'{"x": ' + b"[" * 1000 + b"]" * 1000 + b"}"
DEEP_ARRAY = b"[" * 1000 + b"]" * 1000
BIG_CELL = ("code;name\n1;" + "x" * 200_000 + "\n").encode()
QUERY_INTS = ("offset", "limit", "page", "page_no", "size", "version", "organization", "manager")
"""Whole-number query parameters some handlers read by hand (the typed ones are read from
the handlers' signatures)."""


def _cursor(value: Any) -> str:
    return base64.urlsafe_b64encode(json.dumps(value).encode()).decode().rstrip("=")


CURSORS = (
    ("after", "garbage"),
    ("before", "%%%"),
    ("after", _cursor({"a": 1})),
    ("after", _cursor(["2026-01-01T00:00:00", int(HUGE)])),
    ("before", _cursor(["1", int(HUGE)])),
)
"""Damaged keyset cursors: not base64 JSON, the wrong shape, an id beyond any row."""


@dataclasses.dataclass(frozen=True)
class Sent:
    """One bad request: what was sent and which field an API refusal must name."""

    route: Route
    who: str
    what: str
    field: str
    must_refuse: bool = False


async def _host(database_url: str, tmp_path: Path) -> Host:
    settings = tmp_path / "settings.toml"
    settings.write_text('[host]\nvar_dir = "var"\nsecret_key = "bad-input-secret"\n')
    return await Host.create(settings, env={"KABINET__HOST__DATABASE_URL": database_url})


async def _served(host: Host) -> AsyncIterator[tuple[Litestar, httpx.AsyncClient]]:
    app = await build_app(host)
    await host.startup()
    transport = httpx.ASGITransport(app=app)
    try:
        async with httpx.AsyncClient(
            transport=transport, base_url="http://127.0.0.1:8000"
        ) as client:
            yield app, client
    finally:
        await host.shutdown()


class Prober:
    """Sends bad input to every route and collects what a user must never see."""

    def __init__(self, host: Host, app: Litestar, client: httpx.AsyncClient) -> None:
        self.host = host
        self.app = app
        self.client = client
        self.matrix = RouteMatrix(host, app, client)
        self.faults: list[str] = []
        self.sent = 0

    async def persona(self, role: str, organization: int | None) -> str:
        roles = self.host.services.of(ROLES)
        person = await self.matrix.person(role)
        await roles.grant(person, role, organization)
        return await self.matrix.session(person)

    def _path(self, route: Route, params: dict[str, Any]) -> str:
        def one(m: Any) -> str:
            if m["name"] in params:
                return str(params[m["name"]])
            return NO_ROW if (m["kind"] or "str") == "int" else "missing"

        return _PARAM.sub(one, route.path)

    async def send(
        self,
        sent: Sent,
        session: str,
        *,
        params: dict[str, Any] | None = None,
        query: dict[str, str] | None = None,
        content: bytes | None = None,
        content_type: str | None = None,
        json_body: Any = None,
        form: dict[str, Any] | None = None,
        files: dict[str, Any] | None = None,
    ) -> None:
        route = sent.route
        headers: dict[str, str] = {}
        cookies = [session]
        if route.method not in SAFE:
            token = await self.matrix.csrf(session)
            cookies.append(f"{CSRF_COOKIE}={token}")
            headers[CSRF_HEADER] = token
        headers["Cookie"] = "; ".join(cookies)
        if content_type:
            headers["Content-Type"] = content_type
        kwargs: dict[str, Any] = {"headers": headers, "follow_redirects": False}
        if query:
            kwargs["params"] = query
        if content is not None:
            kwargs["content"] = content
        elif json_body is not None:
            kwargs["content"] = msgspec.json.encode(json_body)
            headers["Content-Type"] = "application/json"
        elif form is not None or files is not None:
            kwargs["data"] = form or {}
            if files:
                kwargs["files"] = files
        self.client.cookies.clear()
        self.sent += 1
        path = self._path(route, params or {})
        try:
            response = await self.client.request(route.method, path, **kwargs)
        except Exception as exc:  # the app itself raised: as bad as a 500
            self.faults.append(f"{route} {sent.who} {sent.what}: raised {exc!r}")
            return
        self.judge(sent, response)

    def judge(self, sent: Sent, response: httpx.Response) -> None:
        where = f"{sent.route} as {sent.who}, {sent.what}"
        code = response.status_code
        if VERBOSE:
            print(code, where[:200], response.text[:300] if code >= 400 else "", flush=True)
        if code >= 500:
            self.faults.append(f"{where}: {code}")
            return
        if not sent.route.api or sent.route.path.startswith("/api/schema"):
            return  # pages: no 5xx is the check; the OpenAPI document is not the API
        if code >= 400 and not response.headers.get("content-type", "").startswith(PROBLEM_JSON):
            self.faults.append(f"{where}: {code} without problem details")
            return
        if sent.must_refuse and code < 400:
            self.faults.append(f"{where}: accepted ({code})")
            return
        if code in (400, 409, 422):
            errors = response.json().get("errors") or []
            named = {str(e.get("field", "")) for e in errors}
            fields = sent.field.split("|")
            if not any(n == f or n.startswith((f + ".", f + "[")) for n in named for f in fields):
                self.faults.append(f"{where}: {code} names {sorted(named)}, not {sent.field!r}")

    # -- the kinds of bad input ---------------------------------------------------------

    def typed_query_ints(self, route: Route) -> list[str]:
        names = []
        for path, handler in iter_handlers(self.app):
            if path != route.path or route.method not in (getattr(handler, "http_methods", ())):
                continue
            for name, field in handler.parsed_fn_signature.parameters.items():
                is_int = field.is_subclass_of(int) and not field.is_subclass_of(bool)
                if is_int and name not in {n for n, _ in route.params}:
                    names.append(name)
        return names

    async def probe(self, route: Route, who: str, session: str) -> None:
        for name, kind in route.params:
            if kind == "int":
                sent = Sent(route, who, f"{name}={HUGE} in the path", name)
                await self.send(sent, session, params={name: HUGE})
        if route.method in SAFE:
            for name in self.typed_query_ints(route):
                for number in (HUGE, BEYOND):
                    sent = Sent(route, who, f"?{name}={number}", name)
                    await self.send(sent, session, query={name: number})
            # Those read by hand, all at once: a refusal names one of them.
            for number in (HUGE, BEYOND):
                sent = Sent(route, who, f"?{'&'.join(QUERY_INTS)}={number}", "|".join(QUERY_INTS))
                await self.send(sent, session, query=dict.fromkeys(QUERY_INTS, number))
            for name, cursor in CURSORS:
                sent = Sent(route, who, f"?{name}={cursor}", name)
                await self.send(sent, session, query={name: cursor})
            return
        for label, body in (("an object", DEEP_OBJECT), ("an array", DEEP_ARRAY)):
            sent = Sent(route, who, f"JSON {label} nested 1,000 deep", "body")
            await self.send(sent, session, content=body, content_type="application/json")
        sent = Sent(route, who, "a CSV with a 200,000-character cell", "file|data|body")
        # under each name an upload has: documents' "file", a table import's "data"
        files = dict.fromkeys(("file", "data"), ("big.csv", BIG_CELL, "text/csv"))
        await self.send(sent, session, files=files, form={"title": "CSV"})

    async def probe_fields(self, route: Route, who: str, session: str) -> None:
        """Each field of the sample's request replaced by bad values, one at a time."""
        found = self.matrix.samples.get((route.path, route.method))
        if found is None or route.method in SAFE:
            return
        first = await self._make(found, route)
        if first is None:
            return
        body: dict[str, Any] | None = None
        if isinstance(first.json, dict):
            body = first.json
        elif first.form is not None:
            body = dict(first.form)
        if not body:
            return
        for name in body:
            numeric = _numeric(body[name])
            for label, value in (
                ("100,000 characters", LONG),
                ("a 20-digit number", HUGE if numeric else ""),
                ("an organization that does not exist", MISSING_ORG if numeric else ""),
            ):
                if not value:
                    continue
                sample = await self._make(found, route)
                if sample is None:
                    return
                writes = route.method in ("POST", "PUT", "PATCH")  # a DELETE reads no body
                sent = Sent(
                    route, who, f"{name}: {label}", name, must_refuse=writes and value is LONG
                )
                kwargs: dict[str, Any] = {"params": dict(sample.params)}
                if sample.query:
                    kwargs["query"] = dict(sample.query)
                if isinstance(sample.json, dict):
                    kwargs["json_body"] = {**sample.json, name: _like(sample.json[name], value)}
                elif sample.form is not None:
                    kwargs["form"] = {**dict(sample.form), name: value}
                await self.send(sent, session, **kwargs)

    async def _make(self, found: Any, route: Route) -> SampleRequest | None:
        if found.owned:
            return None  # made for one person of the matrix; covered by the kinds above
        made: SampleRequest = await found.make(self.host, ORG_A)
        return made


def _numeric(value: Any) -> bool:
    if isinstance(value, list):
        return bool(value) and _numeric(value[0])
    return not isinstance(value, bool) and (isinstance(value, int) or str(value).isdigit())


def _like(old: Any, value: str) -> Any:
    """The bad value in the shape of the field: a number where a number was."""
    if isinstance(old, bool):
        return value
    if isinstance(old, int) and value.isdigit():
        return int(value)
    if isinstance(old, list):
        return [_like(old[0], value)] if old else [value]
    return value


async def test_no_input_makes_any_route_answer_5xx(database_url: str, tmp_path: Path) -> None:
    host = await _host(database_url, tmp_path)
    async for app, client in _served(host):
        prober = Prober(host, app, client)
        await prober.matrix.load_samples()
        admin = await prober.persona("admin", None)
        client_session = await prober.persona("client", ORG_A)
        routes = [r for r in routes_of(app) if r.method != "WEBSOCKET"]
        assert any(r.path.startswith("/api/shipments/orders/") for r in routes)
        for route in routes:
            await prober.probe(route, "admin", admin)
            if isinstance(route.rule, SignedIn) or (
                isinstance(route.rule, Permission) and route.rule.scope != "global"
            ):
                await prober.probe(route, "a client", client_session)
            await prober.probe_fields(route, "admin", admin)
        assert prober.sent > 500
        assert prober.faults == [], f"{len(prober.faults)} faults:\n" + "\n".join(prober.faults)


def _unbounded(kind: Any, where: str, seen: set[Any]) -> list[str]:
    """The fields of a request body's type a request could make as long or large as it
    likes: texts without ``max_length`` (or a pattern), numbers without both bounds."""
    mi = msgspec.inspect
    if isinstance(kind, mi.StructType | mi.DataclassType | mi.TypedDictType):
        if kind.cls in seen:
            return []
        seen.add(kind.cls)
        return [
            fault
            for f in kind.fields
            for fault in _unbounded(f.type, f"{kind.cls.__name__}.{f.name}", seen)
        ]
    if isinstance(kind, mi.UnionType):
        return [fault for t in kind.types for fault in _unbounded(t, where, seen)]
    if isinstance(kind, mi.StrType) and kind.max_length is None and not kind.pattern:
        return [f"{where}: a text without max_length"]
    if isinstance(kind, mi.IntType) and (
        (kind.ge is None and kind.gt is None) or (kind.le is None and kind.lt is None)
    ):
        return [f"{where}: a whole number without ge and le"]
    if isinstance(kind, mi.ListType | mi.SetType | mi.FrozenSetType | mi.VarTupleType):
        return _unbounded(kind.item_type, f"{where}[]", seen)  # as long as the body allows
    if isinstance(kind, mi.DictType):
        return _unbounded(kind.key_type, f"{where} key", seen) + _unbounded(
            kind.value_type, f"{where} value", seen
        )
    return []


async def test_every_request_body_is_bounded_by_its_type(database_url: str, tmp_path: Path) -> None:
    """Each field of every body the assembled app decodes declares its bound (so a text
    longer than its column, a number beyond its column, or a list of a million items is a
    400 naming the field before any service sees it)."""
    host = await _host(database_url, tmp_path)
    app = await build_app(host)
    try:
        faults: list[str] = []
        seen: set[Any] = set()
        bodies = 0
        for path, handler in iter_handlers(app):
            if not path.startswith("/api/"):
                continue  # a page's form is read field by field by its handler
            data = getattr(handler, "parsed_fn_signature", None)
            field = data.parameters.get("data") if data else None
            if field is None:
                continue
            bodies += 1
            try:
                info = msgspec.inspect.type_info(field.annotation)
            except (TypeError, ValueError):
                continue  # not a msgspec type (an upload): bounded by the body size
            faults.extend(f"{path}: {f}" for f in _unbounded(info, "data", seen))
        assert bodies > 10
        assert faults == [], "\n".join(sorted(set(faults)))
    finally:
        await host.db.dispose()
