"""The ``kabinet`` command.

Every command builds the host from the same settings. A fault the host refuses to start
with (a bad setting, a broken plugin) is printed as its one-line message with exit code
2, never as a traceback. Plugins add commands through the ``cli_commands`` hook; they
are loaded only when a name is not one of the host's own, so a broken plugin never hides
``kabinet check``.
"""

from __future__ import annotations

import sys
from pathlib import Path

import click

from kabinet import cli_failures, cli_run
from kabinet.cli_base import Failure, build, run, settings_path
from kabinet.errors import StartupError


class KabinetGroup(click.Group):
    """The host's commands, plus those plugins contribute (loaded on demand)."""

    def _plugin_commands(self, ctx: click.Context) -> dict[str, click.Command]:
        meta = ctx.find_root().meta
        if "kabinet.plugin_commands" not in meta:
            from kabinet.host import RESERVED_COMMANDS
            from kabinet.plugins import collect_commands, load_plugins
            from kabinet.settings import load_raw

            plugins = load_plugins(load_raw(settings_path(ctx)))
            found = collect_commands(
                plugins, plugins.call("cli_commands"), RESERVED_COMMANDS | set(self.commands)
            )
            meta["kabinet.plugin_commands"] = {name: cmd for name, (_, cmd) in found.items()}
        return dict(meta["kabinet.plugin_commands"])

    def list_commands(self, ctx: click.Context) -> list[str]:
        names = set(self.commands)
        try:
            names.update(self._plugin_commands(ctx))
        except StartupError as exc:
            ctx.meta["kabinet.plugin_error"] = str(exc)
        return sorted(names)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name in self.commands:
            return self.commands[cmd_name]
        try:
            return self._plugin_commands(ctx).get(cmd_name)
        except StartupError as exc:
            raise Failure(str(exc)) from None

    def format_epilog(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        super().format_epilog(ctx, formatter)
        error = ctx.meta.get("kabinet.plugin_error")
        if error:
            formatter.write_paragraph()
            formatter.write_text(f"Plugin commands are unavailable: {error}")


@click.group(cls=KabinetGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--settings",
    type=click.Path(dir_okay=False, path_type=Path),
    envvar="KABINET_SETTINGS",
    is_eager=True,  # read before --help, which lists the enabled plugins' commands
    help="The settings file (default: ./settings.toml, or $KABINET_SETTINGS).",
)
@click.version_option(package_name="kabinet", prog_name="kabinet")
def cli(settings: Path | None) -> None:
    """Kabinet: a customer portal for freight and logistics companies.

    Start with `kabinet demo`. Settings come from settings.toml; any key can be
    overridden by an environment variable KABINET__<SECTION>__<KEY>.
    """


@cli.command()
@click.pass_context
@run
async def plugins(ctx: click.Context) -> None:
    """List installed plugins: version, enabled, requirements and hooks."""
    host = await build(ctx)
    try:
        rows = [("NAME", "VERSION", "ENABLED", "REQUIRES", "HOOKS")]
        for p in host.plugins.installed:
            hooks = host.plugins.hooks_of(p) if p.enabled else []
            rows.append(
                (
                    p.name,
                    p.version,
                    "yes" if p.enabled else "no",
                    ", ".join(p.manifest.requires) or "-",
                    ", ".join(hooks) or (f"(cannot load: {p.problem})" if p.problem else "-"),
                )
            )
        widths = [max(len(r[i]) for r in rows) for i in range(4)]
        for row in rows:
            click.echo(
                "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=False)) + "  " + row[4]
            )
    finally:
        await host.db.dispose()


@cli.command()
@click.pass_context
@run
async def check(ctx: click.Context) -> None:
    """Validate settings, plugins, the database connection and its migrations.

    Exits non-zero when the portal could not serve (a readiness check fails). Pending
    migrations are named per plugin with their revisions (``kabinet db upgrade`` applies
    them), and checks that read those plugins' tables wait for them; alerts about outside
    systems (the 1C sync) are shown, but do not fail the check."""
    from kabinet.health import MIGRATIONS, behind, run_checks
    from kabinet.web import collect_routes

    host = await build(ctx)
    try:
        await collect_routes(host)
        click.echo(f"settings: ok ({host.settings.raw.path or 'defaults, no settings.toml'})")
        click.echo(f"plugins: ok ({', '.join(p.name for p in host.plugins)})")
        missing = host.base_url_missing()
        click.echo(f"host.base_url: {'ALERT: ' + missing if missing else 'ok ' + host.base_url}")
        failed = False
        for result in await run_checks(host):
            if result.name == MIGRATIONS:
                continue  # below, plugin by plugin
            if result.fault is None:
                state = "ok"
            elif not result.ran:
                state = f"not run: {result.fault}"
            elif not result.readiness:
                state = f"ALERT: {result.fault}"
            else:
                state = f"FAILED: {result.fault}"
                failed = True
            click.echo(f"{result.name}: {state}")
        if not failed:
            pending = await behind(host) or {}
            heads = {s.name: s.head() for s in host.migrations.schemas}
            current = await host.migrations.current() if pending else {}
            for name, revisions in pending.items():
                click.echo(
                    f"migrations: {name} is at {current.get(name) or 'base'}, head is "
                    f"{heads[name]}; pending: {', '.join(revisions)}"
                )
            if pending:
                click.echo("migrations: run `kabinet db upgrade` to apply them")
            else:
                click.echo("migrations: up to date")
        if failed:
            raise Failure("the portal is not ready (see above)")
    finally:
        await host.db.dispose()


@cli.group()
def db() -> None:
    """Database migrations, per plugin."""


@db.command("upgrade")
@click.argument("plugin", required=False)
@click.option("--revision", default="head", show_default=True, help="Target revision of PLUGIN.")
@click.pass_context
@run
async def db_upgrade(ctx: click.Context, plugin: str | None, revision: str) -> None:
    """Apply migrations of every plugin, or of PLUGIN and what it requires."""
    host = await build(ctx)
    try:
        done = await host.migrations.upgrade(plugin, revision)
        current = await host.migrations.current()
        for name in done:
            click.echo(f"{name}: {current[name] or 'base'}")
    finally:
        await host.db.dispose()


@db.command("downgrade")
@click.argument("plugin")
@click.argument("revision")
@click.pass_context
@run
async def db_downgrade(ctx: click.Context, plugin: str, revision: str) -> None:
    """Downgrade PLUGIN to REVISION (`base` removes its tables)."""
    host = await build(ctx)
    try:
        await host.migrations.downgrade(plugin, revision)
        current = await host.migrations.current()
        click.echo(f"{plugin}: {current[plugin] or 'base'}")
    finally:
        await host.db.dispose()


@db.command("current")
@click.pass_context
@run
async def db_current(ctx: click.Context) -> None:
    """Show the applied revision of each plugin."""
    host = await build(ctx)
    try:
        current = await host.migrations.current()
        for schema in host.migrations.schemas:
            head = schema.head()
            cur = current[schema.name]
            state = "up to date" if cur == head else f"head is {head}"
            click.echo(f"{schema.name}: {cur or 'base'} ({state})")
    finally:
        await host.db.dispose()


@db.command("revision")
@click.argument("plugin")
@click.option("-m", "--message", required=True, help="What the revision changes.")
@click.option("--empty", is_flag=True, help="Write an empty revision instead of autogenerating.")
@click.pass_context
@run
async def db_revision(ctx: click.Context, plugin: str, message: str, empty: bool) -> None:
    """Write a new revision for PLUGIN, autogenerated from its tables only."""
    host = await build(ctx)
    try:
        for path in await host.migrations.revision(plugin, message, autogenerate=not empty):
            click.echo(f"wrote {path}")
    finally:
        await host.db.dispose()


@cli.group("plugin")
def plugin_group() -> None:
    """Write a new plugin (docs/plugins.md, "A plugin from nothing")."""


@plugin_group.command("new")
@click.argument("name")
@click.option(
    "--dir",
    "parent",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("."),
    show_default=True,
    help="The folder to create kabinet-NAME/ in.",
)
@click.option("--title-ru", help="The plugin's title in Russian (default: from NAME).")
@click.option("--title-en", help="The plugin's title in English (default: from NAME).")
def plugin_new(name: str, parent: Path, title_ru: str | None, title_en: str | None) -> None:
    """Create the plugin NAME: a distribution that works as soon as it is installed."""
    from kabinet.scaffold import ScaffoldError, create

    try:
        target = create(name, parent, title_ru=title_ru, title_en=title_en)
    except ScaffoldError as exc:
        hint = {"name": "NAME", "dir": "--dir"}.get(exc.field, f"--{exc.field}-ru/-en")
        raise click.BadParameter(str(exc), param_hint=hint) from None
    click.echo(f"wrote {target}")
    click.echo(f"next: pip install -e {target} && kabinet db upgrade {name} && kabinet check")


# The host's other commands, in modules of their own.
for _command in (
    cli_run.serve,
    cli_run.demo,
    cli_run.worker,
    cli_run.scheduler,
    cli_failures.jobs,
    cli_failures.events,
):
    cli.add_command(_command)


def main() -> None:
    """Entry point of the ``kabinet`` script."""
    from kabinet import warmup

    warmup.pause()  # until the host has started (kabinet.warmup)
    try:
        cli.main(prog_name="kabinet")
    except StartupError as exc:
        click.echo(f"Error: {exc}", err=True)
        sys.exit(2)
    finally:
        warmup.resume()
