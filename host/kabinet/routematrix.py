"""The route matrix: every route of the assembled app, checked against its access rule.

The routes come from the app itself (``app.routes``), never from a list kept by hand, so
a new route is in the matrix the moment it exists. For each route, by its rule:

- no rule at all: a failure (the app refuses to start too);
- ``public``: an anonymous person gets an answer (not 401/403, not sent to sign in);
- ``signed_in``: anonymous is refused (401 on ``/api``, a redirect to sign in on pages);
  a signed-in person gets through;
- ``permission(code)``: anonymous is refused as above; a person without the permission gets
  403; for an organization-scoped permission, a person holding it in *another*
  organization who asks for this organization's object gets 404 (existence does not
  leak) and a person holding it in this organization gets 2xx/3xx; for a global one, a
  person holding it only in an organization gets 403 and a global holder gets through;
- ``machine``: a request without credentials or with a wrong token is refused.

Routes with path parameters or a request body are exercised with the samples plugins
return from the ``route_samples`` hook (:class:`RouteSample`): ``make(host, organization)``
creates an object in that organization and returns the request addressing it. Without a
sample the permitted person's check is only "not refused" (the object cannot exist), and
an organization-scoped route with path parameters is reported as lacking one.

Use it from a test (``tests/test_route_matrix.py`` runs it on the whole portal)::

    matrix = RouteMatrix(host, app, client)
    assert await matrix.run() == []
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import itertools
import re
import uuid
from collections.abc import Awaitable, Callable, Mapping
from typing import TYPE_CHECKING, Any

from kabinet.access import RULE_KEY, Machine, Permission, Public, Rule, SignedIn

if TYPE_CHECKING:
    from httpx import AsyncClient, Response
    from litestar import Litestar

    from kabinet.host import Host

ORG_A = 910_001
"""The organization whose objects the matrix asks for."""
ORG_B = 910_002
"""Another organization: its people must not see ORG_A's objects."""
SAFE = frozenset({"GET", "HEAD", "OPTIONS"})
_PARAM = re.compile(r"{(?P<name>\w+)(?::(?P<kind>\w+))?}")
_numbers = itertools.count(1)


@dataclasses.dataclass(frozen=True, kw_only=True)
class SampleRequest:
    """What to send to reach one object: path parameters, and a body for writes."""

    params: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    query: Mapping[str, str] = dataclasses.field(default_factory=dict)
    json: Any = None
    form: Mapping[str, str | list[str]] | None = None
    """Form fields; a list repeats the field (checkboxes)."""


@dataclasses.dataclass(frozen=True, kw_only=True)
class RouteSample:
    """How to exercise one route: make an object in an organization, and the request for it."""

    path: str
    """The route's path as the app shows it (``route.path``), e.g. ``/api/x/{item_id:int}``."""
    make: Callable[..., Awaitable[SampleRequest]]
    """Creates an object in the given organization; returns the request that addresses it.

    Called as ``make(host, organization)``, or ``make(host, organization, person_id)`` when
    ``owned``."""
    methods: tuple[str, ...] = ("GET",)
    owned: bool = False
    """The object belongs to a person (their own API token, say), not only to an
    organization: it is made for the permitted person of that organization, so anyone
    else, another organization's holder included, must get 404."""


@dataclasses.dataclass(frozen=True)
class Route:
    """One method of one path of the app, with the rule its handler declares."""

    path: str
    method: str
    rule: Rule | None
    handler: str

    @property
    def api(self) -> bool:
        return self.path.startswith("/api/")

    @property
    def params(self) -> list[tuple[str, str]]:
        return [(m["name"], m["kind"] or "str") for m in _PARAM.finditer(self.path)]

    def __str__(self) -> str:
        return f"{self.method} {self.path}"


def routes_of(app: Litestar) -> list[Route]:
    """Every (method, path) of the assembled app with its declared rule."""
    from kabinet.web import _is_auto_options, iter_handlers

    found = []
    for path, handler in iter_handlers(app):
        if _is_auto_options(handler):
            continue
        rule = handler.opt.get(RULE_KEY)
        name = getattr(getattr(handler, "fn", None), "__qualname__", repr(handler))
        methods = sorted(getattr(handler, "http_methods", None) or {"WEBSOCKET"})
        for method in methods:
            found.append(Route(path, method, rule if isinstance(rule, Rule) else None, name))
    return sorted(found, key=lambda r: (r.path, r.method))


def unguarded(app: Litestar) -> list[str]:
    """Routes that declare no access rule."""
    return [f"{r} ({r.handler}): declares no access rule" for r in routes_of(app) if r.rule is None]


def _placeholder(kind: str) -> str:
    if kind == "int":
        return "999999901"
    if kind == "uuid":
        return str(uuid.UUID(int=1))
    return "missing"


class RouteMatrix:
    """Runs every route of ``app`` through the checks of its rule, with real sessions."""

    def __init__(self, host: Host, app: Litestar, client: AsyncClient) -> None:
        self.host = host
        self.app = app
        self.client = client
        self._roles: dict[str, str] = {}
        self._people: dict[tuple[str, int | None], tuple[int, str]] = {}
        self._nobody: str | None = None
        self._csrf: str | None = None
        self.samples: dict[tuple[str, str], RouteSample] = {}

    # -- set-up -------------------------------------------------------------------------

    async def load_samples(self) -> None:
        results = await self.host.plugins.acall("route_samples", host=self.host)
        for _plugin, sample in self.host.plugins.flat(results):
            for method in sample.methods:
                self.samples[(sample.path, method.upper())] = sample

    async def _session(self, person_id: int) -> str:
        """A signed-in session of ``person_id``: the Cookie header value."""
        from kabinet.identity.sessions import SessionRecord, new_token

        identity = self.host.services["identity"]
        token, key = new_token()
        now = self.host.clock.now()
        await identity.sessions.create(
            SessionRecord(key=key, account_id=person_id, created_at=now, last_seen_at=now)
        )
        return f"{identity.settings.cookie_name}={token}"

    async def _person(self, name: str) -> int:
        identity = self.host.services["identity"]
        n = next(_numbers)
        account = await identity.create_account(
            full_name=f"Matrix {name} {n}", email=f"matrix-{uuid.uuid4().hex[:12]}@example.test"
        )
        return int(account.id)

    async def nobody(self) -> str:
        """A signed-in person holding no grant at all."""
        if self._nobody is None:
            self._nobody = await self._session(await self._person("nobody"))
        return self._nobody

    async def holder(self, code: str, organization: int | None) -> str:
        """A signed-in person holding only ``code``, in ``organization`` (``None``: globally)."""
        return (await self._holder(code, organization))[1]

    async def _holder(self, code: str, organization: int | None) -> tuple[int, str]:
        key = (code, organization)
        if key not in self._people:
            roles = self.host.services["roles"]
            role = self._roles.get(code)
            if role is None:
                from kabinet.roles.services import Conflict

                role = "rm_" + hashlib.sha256(code.encode()).hexdigest()[:20]
                # An earlier run on this database may have made it, for the same permission.
                with contextlib.suppress(Conflict):
                    await roles.create_role(
                        code=role,
                        name_ru=f"Матрица {code}",
                        name_en=f"Matrix {code}",
                        permissions=[code],
                    )
                self._roles[code] = role
            person = await self._person(code)
            await roles.grant(person, role, organization)
            self._people[key] = (person, await self._session(person))
        return self._people[key]

    async def csrf(self) -> str:
        """A CSRF token (double submit: cookie and header carry the same signed value)."""
        if self._csrf is None:
            from kabinet.pages import CSRF_COOKIE, STATE_KEY

            shell = self.app.state[STATE_KEY]
            nonce = uuid.uuid4().hex
            self._csrf = f"{nonce}.{shell.csrf._sign(nonce)}"
            assert shell.csrf.valid(self._csrf), CSRF_COOKIE
        return self._csrf

    # -- requests -------------------------------------------------------------------------

    async def request(
        self,
        route: Route,
        *,
        session: str | None,
        sample: SampleRequest | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> Response:
        from kabinet.pages import CSRF_COOKIE, CSRF_HEADER

        params = dict(sample.params) if sample else {}
        path = _PARAM.sub(
            lambda m: str(params.get(m["name"], _placeholder(m["kind"] or "str"))), route.path
        )
        cookies = [session] if session else []
        sent = dict(headers or {})
        if route.method not in SAFE and not isinstance(route.rule, Machine):
            token = await self.csrf()
            cookies.append(f"{CSRF_COOKIE}={token}")
            sent[CSRF_HEADER] = token
        if cookies:
            sent["Cookie"] = "; ".join(cookies)
        self.client.cookies.clear()
        kwargs: dict[str, Any] = {"headers": sent, "follow_redirects": False}
        if sample is not None:
            if sample.query:
                kwargs["params"] = dict(sample.query)
            if sample.json is not None:
                kwargs["json"] = sample.json
            elif sample.form is not None:
                kwargs["data"] = dict(sample.form)
        return await self.client.request(route.method, path, **kwargs)

    async def _sample(self, route: Route, organization: int) -> SampleRequest | None:
        found = self.samples.get((route.path, route.method))
        if found is None:
            return None
        if found.owned and isinstance(route.rule, Permission):
            person, _ = await self._holder(route.rule.code, organization)
            return await found.make(self.host, organization, person)
        return await found.make(self.host, organization)

    # -- checks ---------------------------------------------------------------------------

    @staticmethod
    def _to_login(response: Response) -> bool:
        """Sent to sign in (``/login?next=…``), not just redirected there (after logout)."""
        return response.status_code in (302, 303, 307) and response.headers.get(
            "location", ""
        ).startswith("/login?next=")

    def _fault(self, route: Route, who: str, expected: str, response: Response) -> str:
        where = response.headers.get("location", "")
        got = f"{response.status_code}" + (f" -> {where}" if where else "")
        return f"{route}: {who}: expected {expected}, got {got}"

    async def _refused_anonymous(self, route: Route) -> list[str]:
        response = await self.request(route, session=None)
        if route.api and response.status_code != 401:
            return [self._fault(route, "anonymous", "401", response)]
        if not route.api and not self._to_login(response):
            return [self._fault(route, "anonymous", "a redirect to /login?next=", response)]
        return []

    async def _permitted(
        self, route: Route, session: str, who: str, sample: SampleRequest | None
    ) -> list[str]:
        response = await self.request(route, session=session, sample=sample)
        code = response.status_code
        if code >= 500:
            return [self._fault(route, who, "an answer, not a server error", response)]
        if code in (401, 403) or self._to_login(response):
            return [self._fault(route, who, "to be let through", response)]
        if sample is not None and not 200 <= code < 400:
            return [self._fault(route, who, "2xx (or a redirect after a write)", response)]
        return []

    async def check(self, route: Route) -> list[str]:
        """The faults of one route (empty: it keeps its rule)."""
        rule = route.rule
        if rule is None:
            return [f"{route} ({route.handler}): declares no access rule"]
        if route.method == "WEBSOCKET":
            return []
        if isinstance(rule, Public):
            response = await self.request(route, session=None)
            if response.status_code >= 500 or response.status_code in (401, 403):
                return [self._fault(route, "anonymous on a public route", "an answer", response)]
            if self._to_login(response):
                return [self._fault(route, "anonymous on a public route", "no sign-in", response)]
            return []
        if isinstance(rule, Machine):
            faults = []
            for who, headers in (
                ("no credentials", {}),
                ("a wrong token", {"Authorization": "Bearer wrong-token"}),
            ):
                response = await self.request(route, session=None, headers=headers)
                if response.status_code not in (400, 401, 403):
                    faults.append(self._fault(route, who, "400, 401 or 403", response))
            return faults
        faults = await self._refused_anonymous(route)
        sample = await self._sample(route, ORG_A)
        if isinstance(rule, SignedIn):
            return faults + await self._permitted(route, await self.nobody(), "signed in", sample)
        if not isinstance(rule, Permission):
            return [*faults, f"{route}: rule {rule!r} is not understood by the matrix"]
        response = await self.request(route, session=await self.nobody(), sample=sample)
        if response.status_code != 403:
            faults.append(self._fault(route, "without the permission", "403", response))
        if rule.scope == "global":
            in_org = await self.holder(rule.code, ORG_A)
            response = await self.request(route, session=in_org, sample=sample)
            if response.status_code != 403:
                who = "holding it in an organization only"
                faults.append(self._fault(route, who, "403", response))
            holder = await self.holder(rule.code, None)
            return faults + await self._permitted(route, holder, "a global holder", sample)
        if route.params:
            if sample is None:
                faults.append(
                    f"{route}: an organization's object route has no sample "
                    "(its plugin's route_samples hook must say how to make one)"
                )
            else:
                other = await self.holder(rule.code, ORG_B)
                response = await self.request(route, session=other, sample=sample)
                if response.status_code != 404:
                    who = "a person of another organization"
                    faults.append(self._fault(route, who, "404", response))
        holder = await self.holder(rule.code, ORG_A)
        return faults + await self._permitted(route, holder, "a permitted person", sample)

    async def run(self) -> list[str]:
        """Every route's faults; an empty list means every route keeps its rule."""
        await self.load_samples()
        known = {(r.path, r.method) for r in routes_of(self.app)}
        faults = [
            f"route_samples: no route {method} {path} in the app"
            for path, method in sorted(self.samples)
            if (path, method) not in known
        ]
        for route in routes_of(self.app):
            faults.extend(await self.check(route))
        return faults
