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

Besides people with sessions, every organization-scoped API route is asked with API
tokens, whose owner holds the permission in both organizations: a token limited to the
*other* organization gets 404 for this organization's object (and a token limited to this
one gets through a read); a token limited to another permission gets 403. And "a manager
of other organizations" (the permission in a role marked ``assigned_only``, held
globally, assigned to the other organization) gets 404 for this organization's object,
on organization-scoped routes and on staff-wide (global) ones alike, unless the sample
says its object is addressed to no organization (``addressed=False``: a role, a
template); a manager assigned to this organization gets through a read. Managers are
assigned through the :class:`ManagerSample` the plugin implementing the
``managed_organizations`` hook returns from ``route_samples``.

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
from kabinet.identity.services import IDENTITY
from kabinet.roles.services import ROLES

if TYPE_CHECKING:
    from httpx import AsyncClient, Response
    from litestar import Litestar

    from kabinet.host import Host

ORG_A = 910_001
"""The organization whose objects the matrix asks for."""
ORG_B = 910_002
"""Another organization: its people must not see ORG_A's objects."""
SAFE = frozenset({"GET", "HEAD", "OPTIONS"})
TOKENS = "identity.tokens.manage"
"""What a person must hold in an organization to make API tokens for it."""
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
    addressed: bool = True
    """The object is addressed to the organization it was made in, so staff whose right
    does not reach that organization (a manager of others) must get 404, on a staff-wide
    route too. ``False`` for objects of no organization (roles, templates)."""


@dataclasses.dataclass(frozen=True, kw_only=True)
class ManagerSample:
    """How to make a person a manager of an organization, for the matrix's "manager of
    other organizations": returned from ``route_samples`` by the plugin implementing the
    ``managed_organizations`` hook. ``assign(host, person_id, organization)``."""

    assign: Callable[..., Awaitable[None]]


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
        self._csrf: dict[str, str] = {}
        self._managers: dict[tuple[str, int], str] = {}
        self._tokens: dict[tuple[str, tuple[int, ...], str], str] = {}
        self.samples: dict[tuple[str, str], RouteSample] = {}
        self.assigner: ManagerSample | None = None

    # -- set-up -------------------------------------------------------------------------

    async def load_samples(self) -> None:
        results = await self.host.plugins.acall("route_samples", host=self.host)
        for _plugin, sample in self.host.plugins.flat(results):
            if isinstance(sample, ManagerSample):
                self.assigner = sample
                continue
            for method in sample.methods:
                self.samples[(sample.path, method.upper())] = sample

    async def session(self, person_id: int) -> str:
        """A signed-in session of ``person_id``: the Cookie header value."""
        from kabinet.identity.sessions import SessionRecord, new_token

        identity = self.host.services.of(IDENTITY)
        token, key = new_token()
        now = self.host.clock.now()
        await identity.sessions.create(
            SessionRecord(key=key, account_id=person_id, created_at=now, last_seen_at=now)
        )
        return f"{identity.cookie_name}={token}"

    async def _session(self, person_id: int) -> str:
        """The same as :meth:`session` (the apps' tests call it by this name)."""
        return await self.session(person_id)

    async def person(self, name: str) -> int:
        """A new account (no grant)."""
        return await self._person(name)

    async def _person(self, name: str) -> int:
        identity = self.host.services.of(IDENTITY)
        n = next(_numbers)
        account = await identity.create_account(
            full_name=f"Matrix {name} {n}", email=f"matrix-{uuid.uuid4().hex[:12]}@example.test"
        )
        return int(account.id)

    async def nobody(self) -> str:
        """A signed-in person holding no grant at all."""
        if self._nobody is None:
            self._nobody = await self.session(await self._person("nobody"))
        return self._nobody

    async def holder(self, code: str, organization: int | None) -> str:
        """A signed-in person holding only ``code``, in ``organization`` (``None``: globally)."""
        return (await self._holder(code, organization))[1]

    async def _role(self, codes: tuple[str, ...], *, assigned_only: bool = False) -> str:
        """A role holding exactly ``codes`` (made once per database)."""
        name = ("rmm_" if assigned_only else "rm_") + hashlib.sha256(
            " ".join(codes).encode()
        ).hexdigest()[:20]
        if name not in self._roles:
            from kabinet.roles.services import Conflict

            # An earlier run on this database may have made it, for the same permissions.
            with contextlib.suppress(Conflict):
                await self.host.services.of(ROLES).create_role(
                    code=name,
                    name_ru=f"Матрица {' '.join(codes)}",
                    name_en=f"Matrix {' '.join(codes)}",
                    permissions=list(codes),
                    assigned_only=assigned_only,
                )
            self._roles[name] = name
        return name

    async def _holder(self, code: str, organization: int | None) -> tuple[int, str]:
        key = (code, organization)
        if key not in self._people:
            role = await self._role((code,))
            person = await self._person(code)
            await self.host.services.of(ROLES).grant(person, role, organization)
            self._people[key] = (person, await self.session(person))
        return self._people[key]

    async def manager(self, code: str, organization: int) -> str | None:
        """A signed-in manager (``code`` in an ``assigned_only`` role held globally)
        assigned to ``organization`` only; ``None`` when no plugin assigns managers."""
        if self.assigner is None:
            return None
        key = (code, organization)
        if key not in self._managers:
            role = await self._role((code,), assigned_only=True)
            person = await self._person(f"manager {code}")
            await self.host.services.of(ROLES).grant(person, role)
            await self.assigner.assign(self.host, person, organization)
            self._managers[key] = await self.session(person)
        return self._managers[key]

    async def token(self, code: str, limit: str, organization: int) -> str | None:
        """An API token (the ``Authorization`` header's value) of a person holding ``code``
        (and the right to make tokens) in both organizations, limited to ``organization``
        and to the permission ``limit``; ``None`` when tokens cannot carry it."""
        if TOKENS not in self.host.permissions or "identity" not in self.host.services:
            return None
        key = (code, (ORG_A, ORG_B), f"{limit}@{organization}")
        if key not in self._tokens:
            from kabinet.access import Principal

            role = await self._role(tuple(sorted({code, TOKENS})))
            person = await self._person(f"token {code}")
            for org in (ORG_A, ORG_B):
                await self.host.services.of(ROLES).grant(person, role, org)
            made = await self.host.services.of(IDENTITY).create_token(
                Principal(person_id=person, kind="person"), "matrix", [limit], [organization]
            )
            self._tokens[key] = f"Bearer {made.token}"
        return self._tokens[key]

    async def csrf(self, session: str | None = None) -> str:
        """A CSRF token for ``session`` (its Cookie header value; ``None``: signed out).

        Double submit: cookie and header carry the same value, signed for that session's
        key as the portal signs it (a token of another session is refused)."""
        key = session or ""
        if key not in self._csrf:
            from kabinet.identity.sessions import session_key
            from kabinet.pages import STATE_KEY

            shell = self.app.state[STATE_KEY]
            name = self.host.services.of(IDENTITY).cookie_name + "="
            tokens = [p.strip()[len(name) :] for p in key.split(";") if p.strip().startswith(name)]
            binding = session_key(tokens[0]) if tokens else ""
            self._csrf[key] = shell.csrf.issue(binding)
            assert shell.csrf.valid(self._csrf[key], binding), shell.csrf.cookie_name
        return self._csrf[key]

    # -- requests -------------------------------------------------------------------------

    async def request(
        self,
        route: Route,
        *,
        session: str | None,
        sample: SampleRequest | None = None,
        headers: Mapping[str, str] | None = None,
        token: str | None = None,
    ) -> Response:
        """``token``: an ``Authorization`` value instead of a session (and no CSRF pair:
        a token is no browser's)."""
        from kabinet.pages import CSRF_HEADER, STATE_KEY

        params = dict(sample.params) if sample else {}
        path = _PARAM.sub(
            lambda m: str(params.get(m["name"], _placeholder(m["kind"] or "str"))), route.path
        )
        cookies = [session] if session else []
        sent = dict(headers or {})
        if token is not None:
            sent["Authorization"] = token
        elif route.method not in SAFE and not isinstance(route.rule, Machine):
            token = await self.csrf(session)
            cookies.append(f"{self.app.state[STATE_KEY].csrf.cookie_name}={token}")
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
        self,
        route: Route,
        session: str | None,
        who: str,
        sample: SampleRequest | None,
        token: str | None = None,
    ) -> list[str]:
        response = await self.request(route, session=session, sample=sample, token=token)
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
            found = self.samples.get((route.path, route.method))
            if found is not None and found.addressed:
                faults += await self._manager_checks(route, rule, sample)
            holder = await self.holder(rule.code, None)
            return faults + await self._permitted(route, holder, "a global holder", sample)
        faults += await self._tokens_of(route, rule, sample)
        if route.params and sample is not None:
            faults += await self._manager_checks(route, rule, sample)
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

    async def _manager_checks(
        self, route: Route, rule: Permission, sample: SampleRequest | None
    ) -> list[str]:
        """A manager of the other organization: 404; of this one: let through a read."""
        other = await self.manager(rule.code, ORG_B)
        if other is None:
            return []
        faults = []
        response = await self.request(route, session=other, sample=sample)
        if response.status_code != 404:
            faults.append(self._fault(route, "a manager of other organizations", "404", response))
        found = self.samples.get((route.path, route.method))
        if route.method in SAFE and not (found is not None and found.owned):
            mine = await self.manager(rule.code, ORG_A)
            faults += await self._permitted(route, mine, "a manager of this organization", sample)
        return faults

    async def _tokens_of(
        self, route: Route, rule: Permission, sample: SampleRequest | None
    ) -> list[str]:
        """Tokens of a person holding the permission in both organizations: limited to the
        other one (404 for this one's object), to this one (a read gets through), to
        another permission (403)."""
        if not route.api:
            return []
        faults = []
        if route.params and sample is not None:
            other = await self.token(rule.code, rule.code, ORG_B)
            if other is not None:
                response = await self.request(route, session=None, sample=sample, token=other)
                if response.status_code != 404:
                    who = "a token limited to another organization"
                    faults.append(self._fault(route, who, "404", response))
        if rule.code != TOKENS:
            narrow = await self.token(rule.code, TOKENS, ORG_A)
            if narrow is not None:
                response = await self.request(route, session=None, sample=sample, token=narrow)
                if response.status_code != 403:
                    who = "a token limited to another permission"
                    faults.append(self._fault(route, who, "403", response))
        if route.method in SAFE:
            mine = await self.token(rule.code, rule.code, ORG_A)
            if mine is not None:
                who = "a token limited to this organization"
                faults += await self._permitted(route, None, who, sample, token=mine)
        return faults

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
