"""The portal of a test: a started host, its web app and clients acting as people.

The fixtures of :mod:`kabinet.testing` (``portal``, ``make_portal``) build it; use it
directly with :func:`start_portal` for a database or plugins of your own.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import hashlib
import json
import uuid
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import msgspec

from kabinet.access import Principal
from kabinet.clock import FrozenClock
from kabinet.identity.services import IDENTITY
from kabinet.plugins import Candidate, entry_point_candidates
from kabinet.roles.services import ROLES

if TYPE_CHECKING:
    from click.testing import Result

    from kabinet.host import Host
    from kabinet.scheduler import Scheduler

HOST = "127.0.0.1"
"""The host name test clients call the app by."""
SECRET = "kabinet-tests"  # noqa: S105 - a test portal's, known to all
"""The ``[host] secret_key`` of test portals."""


@dataclasses.dataclass(frozen=True)
class Person:
    """A person the harness made: their account id, name and e-mail address."""

    id: int
    name: str
    email: str

    @property
    def principal(self) -> Principal:
        """The person as services see them (``actor=``, ``principal=`` arguments)."""
        return Principal(person_id=self.id, name=self.name, kind="person")


def toml_value(value: Any) -> str:
    """``value`` (str, bool, int, float, list or dict of those) written as TOML."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str | Path):
        return json.dumps(str(value), ensure_ascii=False)
    if isinstance(value, list | tuple):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    if isinstance(value, Mapping):
        return "{" + ", ".join(f"{json.dumps(k)} = {toml_value(v)}" for k, v in value.items()) + "}"
    raise TypeError(f"cannot write {value!r} as TOML")


def settings_toml(sections: Mapping[str, Mapping[str, Any]]) -> str:
    """A settings.toml holding ``sections`` (``{"fuel": {"keep_days": 3}}``)."""
    return "".join(
        f"[{name}]\n" + "".join(f"{key} = {toml_value(v)}\n" for key, v in values.items())
        for name, values in sections.items()
    )


def write_settings_file(folder: Path, sections: Mapping[str, Mapping[str, Any]]) -> Path:
    """Write ``sections`` to a new settings file in ``folder``; returns its path."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"settings-{uuid.uuid4().hex[:6]}.toml"
    path.write_text(settings_toml(sections), encoding="utf-8")
    return path


class Portal:
    """A started host with its web app, served in the test's event loop.

    ``client`` is anonymous; :meth:`signed_in` and :meth:`api_client` give clients acting
    as a person. Every client carries a CSRF pair, so forms post as from the portal's pages.
    A portal started with ``web=False`` has no app (``app`` is ``None``) and no clients: the
    host alone, for tests of services and jobs (it starts in a fraction of the time).
    """

    def __init__(
        self, host: Host, app: Any, clock: FrozenClock, settings_path: Path, database_url: str
    ) -> None:
        self.host = host
        self.app = app
        self.clock = clock
        self.settings_path = settings_path
        """The settings file the host was built from (``kabinet --settings`` takes it too)."""
        self.database_url = database_url
        self._clients: list[httpx.AsyncClient] = []
        self._anonymous: httpx.AsyncClient | None = None

    @property
    def client(self) -> httpx.AsyncClient:
        """An anonymous client of the app."""
        if self._anonymous is None:
            self._anonymous = self._client({}, {})
        return self._anonymous

    def browser(self, *, follow_redirects: bool = True) -> httpx.AsyncClient:
        """A client as a browser arriving at the portal: no cookies and no CSRF token of
        its own; it keeps what the pages it reads set (for tests of signing in and of the
        CSRF check themselves: a form posts the token the page handed out, or none); it
        follows redirects, as a browser does, unless told not to (to read a redirect)."""
        found = self._client({}, {}, bare=True)
        found.follow_redirects = follow_redirects
        return found

    def _client(
        self, cookies: dict[str, str], headers: dict[str, str], *, bare: bool = False
    ) -> httpx.AsyncClient:
        from kabinet.identity.sessions import session_key
        from kabinet.pages import CSRF_HEADER, STATE_KEY

        if self.app is None:
            raise RuntimeError("this portal serves no app: it was started with web=False")
        session = cookies.get(self.host.services.of(IDENTITY).cookie_name)
        hooks: list[Any] = []
        csrf_cookie = self.app.state[STATE_KEY].csrf.cookie_name
        if not bare and "authorization" not in {k.lower() for k in headers}:
            csrf = self.app.state[STATE_KEY].csrf.issue(session_key(session) if session else "")
            cookies, headers = {**cookies, csrf_cookie: csrf}, {**headers, CSRF_HEADER: csrf}

            async def follow_csrf(request: httpx.Request) -> None:
                # As the portal's pages do: the token sent is the CSRF cookie's current
                # value, so a client that signs in through a page posts with the token the
                # portal issued to its new session (a token the test sends itself stays).
                token = client.cookies.get(csrf_cookie, domain=HOST)
                if token and request.headers.get(CSRF_HEADER) == client.headers[CSRF_HEADER]:
                    request.headers[CSRF_HEADER] = token

            hooks.append(follow_csrf)
        client = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=self.app),
            base_url=f"http://{HOST}:8000",
            headers=headers,
            event_hooks={"request": hooks},
        )
        for name, value in cookies.items():  # as if the portal had set them: it may replace them
            client.cookies.set(name, value, domain=HOST)
        self._clients.append(client)
        return client

    # -- people ---------------------------------------------------------------------------

    def organization_id(self) -> int:
        """An organization id no other test uses (the database is shared by the run)."""
        return 100_000_000 + uuid.uuid4().int % 1_900_000_000

    async def role(self, *permissions: str, assigned_only: bool = False) -> str:
        """The code of a role holding exactly ``permissions`` (made once per database)."""
        from kabinet.roles.services import Conflict

        unknown = sorted(set(permissions) - set(self.host.permissions))
        if unknown:
            raise ValueError(f"no plugin of this portal declares {', '.join(unknown)}")
        joined = " ".join(sorted(permissions))
        code = ("tm_" if assigned_only else "t_") + hashlib.sha256(joined.encode()).hexdigest()[:20]
        with contextlib.suppress(Conflict):  # an earlier test made it, with these permissions
            await self.host.services.of(ROLES).create_role(
                code=code,
                name_ru=f"Тест: {joined}"[:100],
                name_en=f"Test: {joined}"[:100],
                permissions=list(permissions),
                assigned_only=assigned_only,
            )
        return code

    async def grant(self, person: Person, role: str, organization: int | None = None) -> None:
        """Give ``role`` to ``person`` in ``organization`` (``None``: globally)."""
        await self.host.services.of(ROLES).grant(person.id, role, organization)

    async def person(
        self,
        *roles: str,
        organization: int | None = None,
        permissions: Sequence[str] = (),
        name: str | None = None,
        password: str | None = None,
        language: str | None = None,
        timezone: str | None = None,
        phone: str | None = None,
    ) -> Person:
        """A new person holding ``roles`` (codes: ``client``, ``manager``, ``admin`` or
        yours) and a role of exactly ``permissions``, in ``organization`` (``None``:
        globally). With no roles and no permissions: a person who may do nothing.
        ``phone``: their (unconfirmed) phone number, for messages by SMS."""
        n = uuid.uuid4().hex[:10]
        email = f"person-{n}@example.test"
        account = await self.host.services.of(IDENTITY).create_account(
            full_name=name or f"Person {n}",
            email=email,
            password=password,
            language=language,
            timezone=timezone,
            phone=phone,
            email_confirmed=True,
        )
        made = Person(id=int(account.id), name=account.full_name, email=email)
        for role in roles:
            await self.grant(made, role, organization)
        if permissions:
            await self.grant(made, await self.role(*permissions), organization)
        return made

    # -- clients ----------------------------------------------------------------------------

    async def session(self, person: Person | int) -> str:
        """A new signed-in session of ``person`` (or of an account id: someone the app made,
        by registration say): the session cookie's value."""
        from kabinet.identity.sessions import SessionRecord, new_token

        token, key = new_token()
        now = self.clock.now()
        account_id = person if isinstance(person, int) else person.id
        await self.host.services.of(IDENTITY).sessions.create(
            SessionRecord(key=key, account_id=account_id, created_at=now, last_seen_at=now)
        )
        return token

    async def signed_in(
        self, person: Person | int, *, language: str | None = None
    ) -> httpx.AsyncClient:
        """A client signed in as ``person`` (a session cookie and its CSRF pair); an account
        id signs in someone the harness did not make; ``language`` sets the language
        cookie (``en``)."""
        from kabinet.i18n import LANG_COOKIE

        cookies = {self.host.services.of(IDENTITY).cookie_name: await self.session(person)}
        if language:
            cookies[LANG_COOKIE] = language
        return self._client(cookies, {})

    async def api_client(
        self, person: Person, permissions: Sequence[str], organizations: Sequence[int]
    ) -> httpx.AsyncClient:
        """A client calling the API with a token of ``person`` limited to ``permissions``
        in ``organizations`` (the person must hold them there; the right to make tokens
        is given to them where they lack it)."""
        from kabinet.routematrix import TOKENS

        principal = person.principal
        for org in organizations:
            if not await self.host.access.can(principal, TOKENS, org):
                await self.grant(person, await self.role(TOKENS), org)
        made = await self.host.services.of(IDENTITY).create_token(
            principal, "test", list(permissions), list(organizations)
        )
        return self._client({}, {"Authorization": f"Bearer {made.token}"})

    # -- settings, jobs, routes -----------------------------------------------------------

    def settings(self, plugin: str) -> Any:
        """The validated settings struct of ``plugin``."""
        return self.host.plugin_settings(plugin)

    def override(self, plugin: str, **values: Any) -> Any:
        """Change ``plugin``'s settings for the rest of the test (checked like the file);
        code reading them when it runs sees the change. For what is read when the app is
        built (a router's settings), use the ``kabinet_settings`` marker instead."""
        current = self.host.plugin_settings(plugin)
        changed = msgspec.convert(
            {**msgspec.structs.asdict(current), **values}, type(current), strict=False
        )
        plugins = {**self.host.settings.plugins, plugin: changed}
        self.host.settings = dataclasses.replace(self.host.settings, plugins=plugins)
        return changed

    async def drain(self) -> int:
        """Run every job and event delivery due now (by the clock); returns how many ran."""
        from kabinet.jobs import settle_embedded

        return await settle_embedded(self.host)

    def scheduler(self) -> Scheduler:
        """A scheduler started now: move ``clock`` on, then ``await scheduler.tick()``
        sends what fell due (and :meth:`drain` runs it)."""
        from kabinet.scheduler import MemoryTickLock, Scheduler

        found = Scheduler(self.host, MemoryTickLock())
        found.start()
        return found

    async def command(self, *args: str) -> Result:
        """Run ``kabinet --settings <this portal's settings> ARGS`` as a shell would (in a
        thread, with its own event loop); returns click's result (``exit_code``,
        ``output``)."""
        from click.testing import CliRunner

        from kabinet.cli import cli

        runner = CliRunner()
        argv = ["--settings", str(self.settings_path), *args]
        return await asyncio.to_thread(runner.invoke, cli, argv, catch_exceptions=True)

    async def route_faults(self, prefix: str) -> list[str]:
        """The route matrix (kabinet.routematrix) on the routes under ``prefix``: each
        route's access rule asked of anonymous, unpermitted and permitted people."""
        from kabinet.routematrix import RouteMatrix, routes_of

        matrix = RouteMatrix(self.host, self.app, self._client({}, {}))
        await matrix.load_samples()
        faults: list[str] = []
        for route in routes_of(self.app):
            if route.path.startswith(prefix):
                faults.extend(await matrix.check(route))
        return faults

    async def aclose(self) -> None:
        for client in self._clients:
            await client.aclose()
        await self.host.shutdown()


async def start_portal(
    folder: Path,
    database_url: str,
    *,
    clock: FrozenClock | None = None,
    settings: Mapping[str, Mapping[str, Any]] | None = None,
    plugins: Sequence[str] | None = None,
    candidates: Sequence[Candidate] | None = None,
    background: bool = False,
    web: bool = True,
) -> Portal:
    """Build, start and serve a host on ``database_url`` (already migrated).

    ``settings``: sections of settings.toml; ``plugins``: only these (and the built-ins)
    enabled; ``candidates``: where plugins are found (default: installed entry points);
    ``background``: keep the in-process job runner and scheduler running (by default
    jobs run when the test calls :meth:`Portal.drain`); ``web=False``: no app is built (the
    host alone, no clients). Close it with :meth:`Portal.aclose`.
    """
    from kabinet.host import Host
    from kabinet.jobs import stop_embedded
    from kabinet.web import build_app

    sections: dict[str, dict[str, Any]] = {
        "host": {"database_url": database_url, "var_dir": str(folder / "var"), "secret_key": SECRET}
    }
    if plugins is not None:
        found = candidates if candidates is not None else entry_point_candidates()
        for name in sorted({c.name for c in found if not c.builtin} - set(plugins)):
            sections[name] = {"enabled": False}
    for name, values in (settings or {}).items():
        sections[name] = {**sections.get(name, {}), **values}
    path = write_settings_file(folder, sections)
    clock = clock or FrozenClock()
    host = await Host.create(path, env={}, candidates=candidates, clock=clock)
    app = await build_app(host) if web else None
    await host.startup()
    if not background:
        await stop_embedded(host)
    return Portal(host, app, clock, path, database_url)
