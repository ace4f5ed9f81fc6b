"""The host: settings, the enabled plugins and what they contribute, the database.

Web processes, workers, the scheduler and the CLI all build the host the same way,
:meth:`Host.create`, from the same settings, so a job never runs where its plugin is
missing. Everything plugins contribute is validated here, before anything starts.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, TypeVar, overload

import msgspec
from sqlalchemy import Table

from kabinet import i18n, warmup
from kabinet.access import AccessService, NobodyAccess
from kabinet.clock import Clock, SystemClock
from kabinet.contrib import (
    Actor,
    Database,
    EventType,
    HealthCheck,
    Permission,
    Schedule,
    Subscription,
)
from kabinet.db import Database as DB
from kabinet.db import parse_url
from kabinet.keys import Keys
from kabinet.migrations import Migrations, PluginSchema
from kabinet.plugins import (
    Candidate,
    PluginInfo,
    Plugins,
    collect_commands,
    load_plugins,
    require_unique,
)
from kabinet.services import ServiceKey, Services
from kabinet.settings import LOCAL_BASE_URL, HostSettings, Settings, check_base_url, load_raw

if TYPE_CHECKING:
    from kabinet.events import EventBus
    from kabinet.files import FileStorage
    from kabinet.jobs import Jobs

RESERVED_COMMANDS = frozenset(
    {"demo", "serve", "worker", "scheduler", "jobs", "events", "db", "plugins", "check", "help"}
)
"""The host's own command names, which no plugin command may take."""


S = TypeVar("S")


PROCESS: ServiceKey[str] = ServiceKey("host.process", str)
"""What this process is: ``web`` (the default), ``worker`` or ``scheduler``."""


class Host:
    """One portal process's view of the installation. Build it with :meth:`create`."""

    def __init__(self, settings: Settings, plugins: Plugins, *, clock: Clock | None = None) -> None:
        self.settings = settings
        self.plugins = plugins
        self.clock: Clock = clock or SystemClock()
        self.db = DB(
            parse_url(settings.host.database_url, settings.var_dir),
            echo=settings.host.database_echo,
        )
        self.schemas: list[PluginSchema] = []
        self.permissions: dict[str, tuple[PluginInfo, Permission]] = {}
        self.event_types: dict[str, tuple[PluginInfo, EventType]] = {}
        self.actors: dict[str, tuple[PluginInfo, Actor]] = {}
        self.schedules: dict[str, tuple[PluginInfo, Schedule]] = {}
        self.subscriptions: dict[str, tuple[PluginInfo, Subscription]] = {}
        self.health_checks: list[tuple[PluginInfo, HealthCheck]] = []
        self.commands: dict[str, tuple[PluginInfo, Any]] = {}
        """CLI commands plugins contribute, by name."""
        self.access: AccessService = NobodyAccess()
        """The one access check; the identity plugin installs the real one at start-up."""
        self.services = Services()
        """Services plugins publish for others, by typed key (``kabinet.services``):
        ``host.services.of(COMPANIES)``."""
        self._files: FileStorage | None = None

    @classmethod
    async def create(
        cls,
        settings_path: str | os.PathLike[str] | None = None,
        *,
        env: Mapping[str, str] | None = None,
        candidates: Sequence[Candidate] | None = None,
        clock: Clock | None = None,
        overrides: Mapping[str, Any] | None = None,
    ) -> Host:
        """Read settings, load and validate plugins and their contributions."""
        raw = load_raw(settings_path, env)
        if overrides:
            merged = {k: dict(v) for k, v in raw.sections.items()}
            for key, value in overrides.items():
                merged.setdefault("host", {})[key] = value
            raw = type(raw)(path=raw.path, sections=merged, from_env=raw.from_env)
        host_settings = raw.validate("host", HostSettings)
        check_base_url(raw, host_settings.base_url)
        plugins = load_plugins(raw, candidates)
        raw.check_sections([p.name for p in plugins.installed])
        validated: dict[str, msgspec.Struct] = {}
        for plugin in plugins:
            if plugin.name != "host":
                validated[plugin.name] = raw.validate(plugin.name, plugin.manifest.settings)
        settings = Settings(raw=raw, host=host_settings, plugins=validated)
        from kabinet.files import check_settings

        check_settings(settings)
        host = cls(settings, plugins, clock=clock)
        await host._collect()
        return host

    @functools.cached_property
    def jobs(self) -> Jobs:
        """Background jobs: Redis when ``[host] redis_url`` is set, else in this process."""
        from kabinet.jobs import create_jobs

        return create_jobs(self)

    @functools.cached_property
    def events(self) -> EventBus:
        """The event bus: ``await host.events.publish(session, type, payload)``."""
        from kabinet.events import EventBus

        return EventBus(self)

    @functools.cached_property
    def keys(self) -> Keys:
        """Every key of the portal, derived from its one secret (``kabinet.keys``)."""
        return Keys(self.settings.host, self.settings.var_dir)

    @property
    def base_url(self) -> str:
        """The address people open the portal at, without a trailing ``/``: ``[host]
        base_url``, or :data:`~kabinet.settings.LOCAL_BASE_URL` while it is not set."""
        return (self.settings.host.base_url or LOCAL_BASE_URL).rstrip("/")

    def absolute_url(self, path: str) -> str:
        """``path`` (``/shipments/orders/318``, with its query) as a link that works
        wherever it is read: ``https://portal.example.com/shipments/orders/318``. Every
        message (e-mail, SMS, Telegram, push) makes its links with this."""
        if not path.startswith("/") or path.startswith("//"):
            raise ValueError(f"not a path on this portal: {path!r}")
        return self.base_url + path

    def base_url_missing(self) -> str | None:
        """Why links in messages may be wrong (``[host] base_url`` not set), or ``None``."""
        if self.settings.host.base_url:
            return None
        return (
            "[host] base_url is not set: links in e-mails, SMS, Telegram and push messages "
            f"point to {LOCAL_BASE_URL}; set it to the address people open the portal at "
            '(base_url = "https://portal.example.com" or KABINET__HOST__BASE_URL)'
        )

    @overload
    def plugin_settings(self, name: str) -> Any: ...
    @overload
    def plugin_settings(self, name: str, struct: type[S]) -> S: ...
    def plugin_settings(self, name: str, struct: type[S] | None = None) -> Any:
        """The validated settings struct of plugin ``name``; typed when its ``struct`` is
        given (``host.plugin_settings("fuel", FuelSettings)``), which new code does."""
        value = self.settings.plugins[name]
        if struct is not None and not isinstance(value, struct):
            raise TypeError(
                f"the settings of {name!r} are a {type(value).__name__}, not {struct.__name__}"
            )
        return value

    async def _collect(self) -> None:
        p = self.plugins
        for result in await p.acall("database"):
            self.schemas.append(self._schema(result.plugin, result.value))
        self._check_foreign_keys()
        perms = p.flat(await p.acall("permissions"))
        require_unique("permission", [(pl, perm.code) for pl, perm in perms])
        for plugin, perm in perms:
            _prefixed(plugin, "permission", perm.code)
        self.permissions = {perm.code: (pl, perm) for pl, perm in perms}
        events = p.flat(await p.acall("event_types"))
        require_unique("event type", [(pl, ev.name) for pl, ev in events])
        for plugin, ev in events:
            _prefixed(plugin, "event type", ev.name)
        self.event_types = {ev.name: (pl, ev) for pl, ev in events}
        actors = p.flat(await p.acall("actors", host=self))
        require_unique("actor", [(pl, a.name) for pl, a in actors])
        self.actors = {a.name: (pl, a) for pl, a in actors}
        schedules = p.flat(await p.acall("schedules", host=self))
        require_unique("schedule", [(pl, s.name) for pl, s in schedules])
        for plugin, sched in schedules:
            if sched.actor not in self.actors:
                raise plugin.fail(f"schedule {sched.name!r} sends unknown actor {sched.actor!r}")
        self.schedules = {s.name: (pl, s) for pl, s in schedules}
        subs = p.flat(await p.acall("subscriptions", host=self))
        require_unique("subscriber", [(pl, s.name) for pl, s in subs])
        for plugin, sub in subs:
            if sub.event not in self.event_types:
                raise plugin.fail(
                    f"subscriber {sub.name!r} listens to {sub.event!r}, "
                    "which no plugin's event_types hook declares"
                )
        self.subscriptions = {s.name: (pl, s) for pl, s in subs}
        self.commands = collect_commands(p, await p.acall("cli_commands"), RESERVED_COMMANDS)
        self.health_checks = p.flat(await p.acall("health_checks", host=self))
        for _, folder in await p.afolders("locale_dir"):
            i18n.add_catalogs(folder)

    def _schema(self, plugin: PluginInfo, value: Database) -> PluginSchema:
        if not isinstance(value, Database):
            raise plugin.fail(f"database hook returned {value!r}, not a kabinet.contrib.Database")
        for table in value.metadata.tables.values():
            _prefixed(plugin, "table", table.name, sep="_")
        if not value.migrations.is_dir():
            raise plugin.fail(f"migrations folder {value.migrations} does not exist")
        return PluginSchema(plugin=plugin, metadata=value.metadata, folder=value.migrations)

    def _check_foreign_keys(self) -> None:
        owner = {t: s.plugin for s in self.schemas for t in s.metadata.tables}
        for schema in self.schemas:
            allowed = {schema.name, *self.requirements(schema.name)}
            for table in schema.metadata.tables.values():
                for fk in _foreign_keys(table):
                    target = fk.split(".")[0]
                    other = owner.get(target)
                    if other is None or other.name not in allowed:
                        raise schema.plugin.fail(
                            f"table {table.name} has a foreign key to {fk}, which is not "
                            "in this plugin's tables nor in those of a plugin it requires"
                        )

    def requirements(self, name: str) -> set[str]:
        """Every plugin ``name`` requires, directly or not."""
        seen: set[str] = set()
        todo = list(self.plugins.by_name[name].manifest.requires)
        while todo:
            req = todo.pop()
            if req not in seen:
                seen.add(req)
                todo.extend(self.plugins.by_name[req].manifest.requires)
        return seen

    @property
    def files(self) -> FileStorage:
        """The one file storage (kabinet.files), built on first use: no S3 client before."""
        if self._files is None:
            from kabinet.files import create_storage

            self._files = create_storage(self.settings)
        return self._files

    @property
    def migrations(self) -> Migrations:
        required_by = {
            s.name: [p.name for p in self.plugins if s.name in p.manifest.requires]
            for s in self.schemas
        }
        return Migrations(self.db, self.schemas, required_by)

    async def startup(self) -> None:
        """Run every plugin's ``startup`` hook, in order; then the garbage collector runs
        again if the ``kabinet`` command paused it for the start (:mod:`kabinet.warmup`)."""
        try:
            await self.plugins.acall("startup", host=self)
        finally:
            warmup.resume()

    async def shutdown(self) -> None:
        """Run ``shutdown`` hooks in reverse order, then close the database."""
        try:
            await self.plugins.acall("shutdown", host=self, reverse=True)
        finally:
            if self._files is not None:
                await self._files.close()
            await self.db.dispose()


def _foreign_keys(table: Table) -> list[str]:
    return [fk.target_fullname for fk in table.foreign_keys]


def _prefixed(plugin: PluginInfo, kind: str, key: str, sep: str = ".") -> None:
    if not key.startswith(plugin.name + sep):
        raise plugin.fail(f"{kind} {key!r} must start with {plugin.name + sep!r}")
