"""The test harness of Kabinet: a pytest plugin for the host, the apps and plugin authors.

Load it with ``-p kabinet.testing`` (``addopts`` in your ``pyproject.toml``). What it gives,
documented in ``docs/plugins.md`` ("Testing your plugin"):

- ``portal``: a started host, its web app and an anonymous ``httpx`` client, on the test
  database; ``portal.person("client", organization=7)`` makes a person with roles,
  ``portal.signed_in(person)`` a client with a session (and the CSRF pair),
  ``portal.api_client(person, ...)`` one with an API token, ``portal.clock`` the frozen
  clock, ``portal.drain()`` runs the jobs and events due, ``portal.override(...)`` changes
  a plugin's settings; ``make_portal(...)`` builds more, with other settings or plugins;
- settings per test: ``@pytest.mark.kabinet_settings(fuel={"keep_days": 3})`` (or override
  the ``portal_settings`` fixture);
- ``clock``, ``database_url``, ``empty_database_url``, ``plugin_factory``, ``write_settings``.

The backend comes from ``KABINET_TEST_DB`` (``postgresql``, the default, or ``sqlite``);
the PostgreSQL server from ``KABINET_TEST_PG`` (default
``postgresql://postgres@127.0.0.1:5432``; a user who may create databases). On
PostgreSQL a template database is migrated once per set of migrations and each run
clones it, so a run starts from a fresh, migrated database in well under a second. On
SQLite tests marked ``postgres`` are skipped; the README's command runs the ``smoke``
subset there. The ini option ``kabinet_plugins`` (names) narrows the test portal and its
database to those plugins and the built-ins (default: every installed plugin).

Browser tests start a real server with :func:`kabinet_server` and drive Debian's
chromium through Playwright with :func:`chromium`.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import socket
import subprocess
import sys
import textwrap
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from importlib import metadata
from pathlib import Path
from typing import Any

import pytest

from kabinet.clock import FrozenClock
from kabinet.plugins import Candidate, builtin_candidates, entry_point_candidates
from kabinet.testkit import Person, Portal, start_portal

__all__ = [
    "CHROMIUM",
    "PG_SERVER",
    "Person",
    "PluginFactory",
    "Portal",
    "PortalFactory",
    "backend",
    "chromium",
    "create_empty_database",
    "disabled_env",
    "drop_database",
    "free_port",
    "kabinet_server",
    "migrated_database",
    "pg_url",
    "require_chromium",
    "start_portal",
]

PG_SERVER = os.environ.get("KABINET_TEST_PG", "postgresql://postgres@127.0.0.1:5432").rstrip("/")
"""The PostgreSQL server tests make their databases on (``KABINET_TEST_PG``), no database."""
CHROMIUM = "/usr/bin/chromium"  # Debian's; Playwright's own browsers are never downloaded


def backend() -> str:
    """The database tests run on: ``KABINET_TEST_DB``, ``postgresql`` (default) or ``sqlite``."""
    value = os.environ.get("KABINET_TEST_DB", "postgresql")
    if value not in {"postgresql", "sqlite"}:
        raise pytest.UsageError(f"KABINET_TEST_DB={value!r}: expected postgresql or sqlite")
    return value


def pg_url(database: str) -> str:
    """The SQLAlchemy URL of ``database`` on the test server (:data:`PG_SERVER`)."""
    return f"postgresql+asyncpg://{PG_SERVER.partition('://')[2]}/{database}"


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addini(
        "kabinet_plugins",
        "plugins (besides the built-ins) the test portal and database enable; default: all",
        type="linelist",
        default=[],
    )


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "kabinet_settings(**sections): settings of the test's portal, "
        'e.g. kabinet_settings(fuel={"keep_days": 3})',
    )


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if backend() == "sqlite":
        skip = pytest.mark.skip(reason="needs PostgreSQL (KABINET_TEST_DB=sqlite)")
        for item in items:
            if "postgres" in item.keywords:
                item.add_marker(skip)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    """With ``KABINET_REQUIRE_BROWSER=1`` (the test command sets it) a browser test that
    skips because chromium is missing fails instead: CI must not pass without the pages."""
    outcome = yield
    report = outcome.get_result()
    if (
        report.skipped
        and os.environ.get("KABINET_REQUIRE_BROWSER") == "1"
        and "chromium is not installed" in str(report.longrepr)
    ):
        report.outcome = "failed"
        report.longrepr = "chromium is required (KABINET_REQUIRE_BROWSER=1) but not installed"


def pytest_report_header(config: pytest.Config) -> str:
    return f"kabinet test database: {backend()}"


async def _pg_admin(sql: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(f"{PG_SERVER}/postgres")
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


async def _pg_exists(name: str) -> bool:
    import asyncpg

    conn = await asyncpg.connect(f"{PG_SERVER}/postgres")
    try:
        return bool(await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", name))
    finally:
        await conn.close()


async def create_empty_database(tmp: Path) -> str:
    """A new empty database; returns its SQLAlchemy URL."""
    if backend() == "sqlite":
        return f"sqlite+aiosqlite:///{tmp / f'db-{uuid.uuid4().hex[:8]}.sqlite3'}"
    name = f"kt_{uuid.uuid4().hex[:12]}"
    await _pg_admin(f'CREATE DATABASE "{name}" TEMPLATE template0')
    return pg_url(name)


async def drop_database(url: str) -> None:
    if url.startswith("postgresql"):
        name = url.rsplit("/", 1)[1]
        await _pg_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def disabled_env(plugins: Sequence[str] | None) -> dict[str, str]:
    """Settings (as environment) turning off every installed plugin not in ``plugins``
    (``None``: none turned off)."""
    if plugins is None:
        return {}
    keep = set(plugins)
    names = {c.name for c in entry_point_candidates()}
    return {f"KABINET__{n.upper()}__ENABLED": "false" for n in sorted(names - keep)}


def _migrations_fingerprint(plugins: Sequence[str] | None = None) -> str:
    """Changes whenever the migrations of the host or any installed plugin change."""
    digest = hashlib.sha256(repr(sorted(plugins) if plugins is not None else None).encode())
    packages = {"kabinet"}
    for cand in entry_point_candidates():
        if plugins is None or cand.name in plugins:
            packages.add(cand.entry_point.split("=")[1].strip().split(".")[0].split(":")[0])
    for package in sorted(packages):
        spec = importlib.util.find_spec(package)
        for location in (spec.submodule_search_locations or []) if spec else []:
            for path in sorted(Path(location).rglob("migrations/*.py")):
                digest.update(path.name.encode() + path.read_bytes())
    return digest.hexdigest()[:12]


async def migrated_database(tmp: Path, plugins: Sequence[str] | None = None) -> str:
    """A database with every installed plugin's migrations applied (``plugins``: only
    those and the built-ins)."""
    from kabinet.host import Host

    async def migrate(url: str) -> None:
        env = {"KABINET__HOST__DATABASE_URL": url, **disabled_env(plugins)}
        host = await Host.create(None, env=env)
        try:
            await host.migrations.upgrade()
        finally:
            await host.db.dispose()

    if backend() == "sqlite":
        url = await create_empty_database(tmp)
        await migrate(url)
        return url
    template = f"kt_template_{_migrations_fingerprint(plugins)}"
    if not await _pg_exists(template):
        building = f"{template}_{uuid.uuid4().hex[:6]}"
        await _pg_admin(f'CREATE DATABASE "{building}" TEMPLATE template0')
        await migrate(pg_url(building))
        try:
            await _pg_admin(f'ALTER DATABASE "{building}" RENAME TO "{template}"')
        except Exception:  # another run built it first; ours is surplus
            await _pg_admin(f'DROP DATABASE IF EXISTS "{building}" WITH (FORCE)')
    name = f"kt_run_{uuid.uuid4().hex[:12]}"
    await _pg_admin(f'CREATE DATABASE "{name}" TEMPLATE "{template}"')
    return pg_url(name)


def _ini_plugins(config: pytest.Config) -> list[str] | None:
    names = [str(n) for n in config.getini("kabinet_plugins")]
    return names or None


@pytest.fixture
def clock() -> FrozenClock:
    """A clock that moves only when the test says so."""
    return FrozenClock()


@pytest.fixture
async def empty_database_url(tmp_path: Path) -> AsyncIterator[str]:
    """A fresh empty database on the backend under test."""
    url = await create_empty_database(tmp_path)
    yield url
    await drop_database(url)


@pytest.fixture(scope="session")
async def database_url(
    tmp_path_factory: pytest.TempPathFactory, pytestconfig: pytest.Config
) -> AsyncIterator[str]:
    """One migrated database for the run (cloned from a template on PostgreSQL)."""
    plugins = _ini_plugins(pytestconfig)
    url = await migrated_database(tmp_path_factory.mktemp("db"), plugins)
    yield url
    await drop_database(url)


class PluginFactory:
    """Writes throwaway plugin distributions (with real entry points) into a folder."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.site = root / "site"
        self.site.mkdir(parents=True, exist_ok=True)
        self.prefix = f"tp_{uuid.uuid4().hex[:8]}"
        self.modules: list[str] = []

    def add(
        self,
        name: str,
        body: str = "",
        *,
        requires: tuple[str, ...] = (),
        requires_host: str = ">=0",
        manifest: bool = True,
        entry_name: str | None = None,
        files: dict[str, str] | None = None,
    ) -> str:
        """Add plugin ``name`` whose module holds ``body``; returns the module's name."""
        module = f"{self.prefix}_{name}"
        header = textwrap.dedent(
            """\
            from kabinet.contrib import *  # noqa: F403
            from kabinet.hookspecs import hookimpl
            """
        )
        if manifest:
            header += textwrap.dedent(
                f"""
                @hookimpl
                def manifest():
                    return Manifest(
                        name={name!r}, version="1.0", title={{"ru": {name!r}, "en": {name!r}}},
                        requires={requires!r}, requires_host={requires_host!r},
                    )
                """
            )
        pkg = self.site / module
        pkg.mkdir()
        (pkg / "__init__.py").write_text(header + "\n" + textwrap.dedent(body))
        for rel, text in (files or {}).items():
            target = pkg / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(textwrap.dedent(text))
        dist = self.site / f"{module}-1.0.dist-info"
        dist.mkdir()
        (dist / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {module}\nVersion: 1.0\n")
        (dist / "entry_points.txt").write_text(
            f"[kabinet.plugins]\n{entry_name or name} = {module}\n"
        )
        self.modules.append(module)
        return module

    def candidates(self, *, builtins: bool = True) -> list[Candidate]:
        """Built-in plugins plus the throwaway ones, found through their entry points."""
        found = entry_point_candidates(metadata.distributions(path=[str(self.site)]))
        return [*(builtin_candidates() if builtins else []), *found]

    def cleanup(self) -> None:
        for module in self.modules:
            for key in [k for k in sys.modules if k == module or k.startswith(module + ".")]:
                del sys.modules[key]


@pytest.fixture
def plugin_factory(tmp_path: Path) -> Iterator[PluginFactory]:
    """Make throwaway plugins: ``plugin_factory.add("x", body)``, then ``.candidates()``."""
    factory = PluginFactory(tmp_path)
    sys.path.insert(0, str(factory.site))
    try:
        yield factory
    finally:
        sys.path.remove(str(factory.site))
        factory.cleanup()


@pytest.fixture
def write_settings(tmp_path: Path) -> Callable[..., Path]:
    """Write a settings.toml in the test's folder and return its path."""

    def write(text: str = "", **sections: Any) -> Path:
        path = tmp_path / "settings.toml"
        path.write_text(textwrap.dedent(text))
        return path

    return write


PortalFactory = Callable[..., Awaitable[Portal]]


@pytest.fixture
def portal_settings(request: pytest.FixtureRequest) -> dict[str, dict[str, Any]]:
    """Settings sections of the test's portal: from ``kabinet_settings`` markers (the
    nearest wins); override this fixture to compute them."""
    merged: dict[str, dict[str, Any]] = {}
    for marker in reversed(list(request.node.iter_markers("kabinet_settings"))):
        for name, values in marker.kwargs.items():
            merged[name] = {**merged.get(name, {}), **values}
    return merged


@pytest.fixture
async def make_portal(
    database_url: str, clock: FrozenClock, tmp_path: Path, pytestconfig: pytest.Config
) -> AsyncIterator[PortalFactory]:
    """Make portals: ``await make_portal(settings={...}, plugins=[...])`` (see
    :func:`start_portal`; the run's database, the test's clock, ``kabinet_plugins``)."""
    started: list[Portal] = []

    async def make(**kwargs: Any) -> Portal:
        kwargs.setdefault("clock", clock)
        kwargs.setdefault("plugins", _ini_plugins(pytestconfig))
        url = kwargs.pop("database_url", database_url)
        found = await start_portal(tmp_path / f"portal-{len(started)}", url, **kwargs)
        started.append(found)
        return found

    yield make
    for found in reversed(started):
        await found.aclose()


@pytest.fixture
async def portal(make_portal: PortalFactory, portal_settings: dict[str, Any]) -> Portal:
    """A started portal on the run's database with the test's settings and clock."""
    return await make_portal(settings=portal_settings)


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def kabinet_server(
    folder: Path,
    *args: str,
    port: int | None = None,
    env: Mapping[str, str] | None = None,
    timeout: float = 120.0,
) -> Iterator[str]:
    """Run ``kabinet <args> --port <port>`` (the venv's command) in ``folder``; yield its URL.

    ``args`` end with the command that listens (``demo`` or ``serve``); ``port`` is a free
    one unless given; ``env`` is the process's whole environment (this one's if ``None``).
    Output goes to ``folder/server.log``. The URL is yielded once ``/health`` answers 200;
    if the process exits first, or does not answer within ``timeout`` seconds, the test
    fails with the command and the end of the log. At the end the server is terminated
    (killed if it does not stop).
    """
    import httpx

    port = free_port() if port is None else port
    command = [str(Path(sys.executable).parent / "kabinet"), *args, "--port", str(port)]
    shown = " ".join(["kabinet", *command[1:]])
    url = f"http://127.0.0.1:{port}"
    log_path = folder / "server.log"

    def failure(what: str) -> str:
        return f"{shown} {what}; the end of {log_path}:\n{log_path.read_text()[-3000:]}"

    with log_path.open("w") as log:
        proc = subprocess.Popen(  # noqa: S603 - the venv's own kabinet, the test's arguments
            command,
            cwd=folder,
            env=dict(os.environ if env is None else env),
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            deadline = time.monotonic() + timeout
            while True:
                if (code := proc.poll()) is not None:
                    pytest.fail(failure(f"exited with {code}"))
                try:
                    if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                if time.monotonic() > deadline:
                    pytest.fail(failure(f"did not answer /health within {timeout:g} s"))
                time.sleep(0.2)  # polling a starting process, not waiting for time to pass
            yield url
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def require_chromium() -> None:
    """Skip the test when Debian's chromium is missing (with ``KABINET_REQUIRE_BROWSER=1``
    the skip becomes a failure: see ``pytest_runtest_makereport``)."""
    if not Path(CHROMIUM).exists():
        pytest.skip("Debian chromium is not installed")


@contextmanager
def chromium() -> Iterator[Any]:
    """Start Playwright and a headless Debian chromium; yield the browser, close both after.

    Skips (see :func:`require_chromium`) when chromium is missing.
    """
    require_chromium()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(
            executable_path=CHROMIUM, args=["--headless", "--no-sandbox", "--disable-gpu"]
        )
        try:
            yield browser
        finally:
            browser.close()
