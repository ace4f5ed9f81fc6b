"""Alembic migrations per plugin: each has its own revisions folder and version table.

Plugins migrate in dependency order (a foreign key may point only into a required
plugin's tables, so those exist first) and downgrade in reverse. Autogenerate compares a
plugin's ``MetaData`` with only that plugin's tables.
"""

from __future__ import annotations

import dataclasses
import functools
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, MetaData

from kabinet.db import Database
from kabinet.errors import StartupError
from kabinet.plugins import PluginInfo

if TYPE_CHECKING:
    from alembic.config import Config
    from alembic.script import ScriptDirectory

# Alembic (with Mako) is imported only when a migration command runs: web processes and
# workers never need it, and it costs about half a second of start-up.

SCRIPT_LOCATION = Path(__file__).parent / "alembic"


class MigrationError(StartupError):
    """A migration command cannot run; the message says why."""


@dataclasses.dataclass(frozen=True)
class PluginSchema:
    """A plugin's tables and where its revisions live."""

    plugin: PluginInfo
    metadata: MetaData
    folder: Path

    @property
    def name(self) -> str:
        return self.plugin.name

    @property
    def version_table(self) -> str:
        return f"{self.name}_alembic_version"

    @property
    def prefix(self) -> str:
        return f"{self.name}_"

    def config(self, connection: Connection | None = None) -> Config:
        from alembic.config import Config

        cfg = Config()
        cfg.set_main_option("script_location", str(SCRIPT_LOCATION))
        cfg.set_main_option("version_locations", str(self.folder))
        cfg.set_main_option("path_separator", "os")
        cfg.set_main_option("file_template", "%%(year)d%%(month).2d%%(day).2d_%%(rev)s_%%(slug)s")
        cfg.attributes.update(connection=connection, schema=self)
        return cfg

    def include_name(self, name: str | None, type_: str, _parents: Any) -> bool:
        """Autogenerate looks at this plugin's tables only, never at another plugin's."""
        if type_ == "table" and name is not None:
            return name in self.metadata.tables or (
                name.startswith(self.prefix) and name != self.version_table
            )
        return True

    def context_options(self, dialect: str) -> dict[str, Any]:
        return {
            "target_metadata": self.metadata,
            "version_table": self.version_table,
            "include_name": self.include_name,
            "render_as_batch": dialect == "sqlite",
            "compare_type": True,
        }

    def script(self) -> ScriptDirectory:
        from alembic.script import ScriptDirectory

        return ScriptDirectory.from_config(self.config())

    def head(self) -> str | None:
        return self.script().get_current_head()

    def chain(self) -> tuple[str, ...]:
        """Every revision, oldest first (read once per state of the folder: ``/ready``
        asks on every request)."""
        stamp = self.folder.stat().st_mtime_ns if self.folder.exists() else 0
        return _chain(str(self.folder), stamp)

    def unapplied(self, current: str | None) -> list[str] | None:
        """The revisions after ``current`` up to the head, oldest first; ``None`` when
        ``current`` is not one of this code's revisions (a newer release migrated)."""
        chain = self.chain()
        if current is None:
            return list(chain)
        if current not in chain:
            return None
        return list(chain[chain.index(current) + 1 :])


@functools.lru_cache(maxsize=64)
def _chain(folder: str, _mtime: int) -> tuple[str, ...]:
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    config = Config()
    config.set_main_option("script_location", str(SCRIPT_LOCATION))
    config.set_main_option("version_locations", folder)
    config.set_main_option("path_separator", "os")
    script = ScriptDirectory.from_config(config)
    return tuple(reversed([r.revision for r in script.walk_revisions()]))


class Migrations:
    """Runs each plugin's migrations against the portal's database."""

    def __init__(
        self, db: Database, schemas: list[PluginSchema], required_by: dict[str, list[str]]
    ) -> None:
        self.db = db
        self.schemas = schemas
        self.by_name = {s.name: s for s in schemas}
        self.required_by = required_by
        """For each plugin, the enabled plugins that require it."""

    def _schema(self, name: str) -> PluginSchema:
        schema = self.by_name.get(name)
        if schema is None:
            known = ", ".join(self.by_name) or "none"
            raise MigrationError(
                f"plugin {name!r} has no migrations here (plugins with migrations: {known})"
            )
        return schema

    def _with_requirements(self, name: str) -> list[PluginSchema]:
        """``name`` and the plugins it requires (transitively), in dependency order."""
        needed = {name}
        for schema in reversed(self.schemas):
            if schema.name in needed:
                needed.update(schema.plugin.manifest.requires)
        return [s for s in self.schemas if s.name in needed]

    async def _run(self, schema: PluginSchema, fn: Any, *args: Any, **kwargs: Any) -> Any:
        async with self.db.engine.connect() as conn:

            def go(sync: Connection) -> Any:
                return fn(schema.config(sync), *args, **kwargs)

            result = await conn.run_sync(go)
            await conn.commit()
            return result

    async def upgrade(self, plugin: str | None = None, revision: str = "head") -> list[str]:
        """Upgrade one plugin (after what it requires) or all; returns the plugins migrated."""
        from alembic import command

        if plugin is None:
            targets = self.schemas
        else:
            self._schema(plugin)
            targets = self._with_requirements(plugin)
        for schema in targets:
            rev = revision if schema.name == plugin else "head"
            await self._run(schema, command.upgrade, rev)
        return [s.name for s in targets]

    async def downgrade(self, plugin: str, revision: str) -> None:
        """Downgrade one plugin; to ``base`` only when no enabled plugin requires it."""
        from alembic import command

        schema = self._schema(plugin)
        if revision == "base":
            users = self.required_by.get(plugin, [])
            if users:
                raise MigrationError(
                    f"cannot remove the tables of {plugin!r}: enabled plugins require it "
                    f"({', '.join(users)}); downgrade or disable them first"
                )
        await self._run(schema, command.downgrade, revision)

    async def current(self) -> dict[str, str | None]:
        """The applied revision of each plugin (``None``: not migrated)."""
        from alembic.runtime.migration import MigrationContext

        result: dict[str, str | None] = {}
        async with self.db.engine.connect() as conn:
            for schema in self.schemas:

                def read(sync: Connection, schema: PluginSchema = schema) -> str | None:
                    ctx = MigrationContext.configure(
                        sync, opts={"version_table": schema.version_table}
                    )
                    return ctx.get_current_revision()

                result[schema.name] = await conn.run_sync(read)
        return result

    async def pending(self) -> dict[str, tuple[str | None, str | None]]:
        """Plugins whose applied revision differs from their head: (current, head)."""
        current = await self.current()
        return {
            s.name: (current[s.name], s.head()) for s in self.schemas if current[s.name] != s.head()
        }

    async def behind(self) -> dict[str, list[str]]:
        """Plugins whose tables are behind their code: the revisions ``kabinet db upgrade``
        would apply, oldest first. A database ahead of the code (a newer release migrated
        while this one still runs) is not behind."""
        current = await self.current()
        out: dict[str, list[str]] = {}
        for schema in self.schemas:
            missing = schema.unapplied(current[schema.name])
            if missing:
                out[schema.name] = missing
        return out

    async def revision(self, plugin: str, message: str, *, autogenerate: bool = True) -> list[Path]:
        """Write a new revision for ``plugin``; autogenerate compares only its tables."""
        from alembic import command

        schema = self._schema(plugin)
        schema.folder.mkdir(parents=True, exist_ok=True)
        if autogenerate:
            behind = await self.pending()
            if plugin in behind:
                cur, head = behind[plugin]
                raise MigrationError(
                    f"{plugin!r} is at {cur or 'base'}, not at its head {head}: "
                    f"run `kabinet db upgrade {plugin}` first"
                )
        scripts = await self._run(
            schema,
            command.revision,
            message=message,
            autogenerate=autogenerate,
            version_path=str(schema.folder),
        )
        items = scripts if isinstance(scripts, list) else [scripts]
        return [Path(s.path) for s in items if s is not None]

    async def diff(self, plugin: str) -> list[Any]:
        """What autogenerate would change for ``plugin`` (empty when models and tables agree)."""
        from alembic.autogenerate import compare_metadata
        from alembic.runtime.migration import MigrationContext

        schema = self._schema(plugin)
        async with self.db.engine.connect() as conn:

            def compare(sync: Connection) -> list[Any]:
                opts = schema.context_options(sync.dialect.name)
                ctx = MigrationContext.configure(sync, opts=opts)
                return list(compare_metadata(ctx, schema.metadata))

            return await conn.run_sync(compare)
