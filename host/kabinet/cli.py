"""The ``kabinet`` command.

Every command builds the host from the same settings. A fault the host refuses to start
with (a bad setting, a broken plugin) is printed as its one-line message with exit code
2, never as a traceback. Plugins add commands through the ``cli_commands`` hook; they
are loaded only when a name is not one of the host's own, so a broken plugin never hides
``kabinet check``.
"""

from __future__ import annotations

import asyncio
import functools
import os
import shutil
import sys
from collections.abc import Awaitable, Callable, Coroutine
from pathlib import Path
from typing import Any, TypeVar

import click

from kabinet.errors import StartupError

T = TypeVar("T")


class Failure(click.ClickException):
    """A fault shown as its message alone."""

    exit_code = 2


def _settings(ctx: click.Context) -> str | None:
    root = ctx.find_root()
    value = root.params.get("settings")
    return str(value) if value else None


async def _build(ctx: click.Context, **kwargs: Any) -> Any:
    from kabinet.host import Host

    return await Host.create(_settings(ctx), **kwargs)


def run(coro_fn: Callable[..., Coroutine[Any, Any, T]]) -> Callable[..., T]:
    """Run an async command; a refusal to start becomes a clean message."""

    @functools.wraps(coro_fn)
    def wrapper(*args: Any, **kwargs: Any) -> T:
        from sqlalchemy.exc import SQLAlchemyError

        try:
            return asyncio.run(coro_fn(*args, **kwargs))
        except StartupError as exc:
            raise Failure(str(exc)) from None
        except SQLAlchemyError as exc:  # e.g. the database is unreachable: say so, no traceback
            cause = str(getattr(exc, "orig", None) or exc).strip()
            first = cause.splitlines()[0] if cause else type(exc).__name__
            raise Failure(f"database error: {first}") from None
        except ConnectionError as exc:
            raise Failure(f"cannot connect to the database: {exc}") from None
        except OSError as exc:
            raise Failure(f"{type(exc).__name__}: {exc}") from None

    return wrapper


class KabinetGroup(click.Group):
    """The host's commands, plus those plugins contribute (loaded on demand)."""

    def _plugin_commands(self, ctx: click.Context) -> dict[str, click.Command]:
        meta = ctx.find_root().meta
        if "kabinet.plugin_commands" not in meta:
            from kabinet.host import RESERVED_COMMANDS
            from kabinet.plugins import collect_commands, load_plugins
            from kabinet.settings import load_raw

            plugins = load_plugins(load_raw(_settings(ctx)))
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
    host = await _build(ctx)
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

    host = await _build(ctx)
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
    host = await _build(ctx)
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
    host = await _build(ctx)
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
    host = await _build(ctx)
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
    host = await _build(ctx)
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


def _warn_base_url(host: Any) -> None:
    """A process that makes messages says when their links cannot be right."""
    missing = host.base_url_missing()
    if missing:
        click.echo(f"Warning: {missing}", err=True)


def _serve(host: Any, bind: str, port: int, ready: Callable[[], None] | None = None) -> None:
    """Serve ``host`` until stopped; ``ready`` is called once the portal answers."""
    import uvicorn

    from kabinet.web import build_app

    class Server(uvicorn.Server):
        async def startup(self, sockets: Any = None) -> None:
            await super().startup(sockets=sockets)
            if self.started and ready is not None:
                ready()

    app = run(build_app)(host)
    server = Server(uvicorn.Config(app, host=bind, port=port, log_level="warning", log_config=None))
    server.run()
    if not server.started:
        sys.exit(3)  # uvicorn's STARTUP_FAILURE, as uvicorn.run exits


@cli.command()
@click.option(
    "--host", "bind", default="127.0.0.1", show_default=True, help="Address to listen on."
)
@click.option("--port", default=8000, show_default=True, type=click.IntRange(1, 65535))
@click.pass_context
def serve(ctx: click.Context, bind: str, port: int) -> None:
    """Serve the portal (one process; run several behind a load balancer)."""
    host = run(_build)(ctx)
    _warn_base_url(host)
    click.echo(f"Kabinet is serving on http://{bind}:{port}/")
    _serve(host, bind, port)


def _reachable(bind: str) -> str:
    """The host part of a URL that opens a server listening on ``bind``."""
    if bind in ("", "0.0.0.0", "::"):  # noqa: S104 - naming them, not binding to them
        return "127.0.0.1"
    return f"[{bind}]" if ":" in bind else bind


async def _demo(ctx: click.Context, var: Path, address: str) -> tuple[Any, str]:
    """Prepare the demo database; returns the host and the table of demo accounts.

    The set-up is quiet: only warnings are logged, what the apps' demos print is dropped
    (the accounts table says what a newcomer needs, once the portal answers), and every
    event it published is delivered before it stops, so the served portal has nothing
    to re-send.
    """
    import contextlib
    import io

    import msgspec

    from kabinet import logging as klogging
    from kabinet.identity.commands import demo_table
    from kabinet.jobs import settle_embedded, stop_embedded
    from kabinet.settings import load_raw

    overrides = {
        "database_url": f"sqlite+aiosqlite:///{var / 'demo.sqlite3'}",
        "debug": True,
        "openapi_public": True,
        "access_log": False,  # a quiet console: the newcomer reads the accounts table
    }
    if not load_raw(_settings(ctx), os.environ).section("host").get("base_url"):
        overrides["base_url"] = address  # links in its messages lead to where it serves
    host = await _build(ctx, overrides=overrides)
    quiet = msgspec.structs.replace(host.settings.host, log_level="WARNING")
    klogging.configure(
        quiet, sys.stdout, secrets=klogging.settings_secrets(host.settings.raw.sections)
    )
    await host.migrations.upgrade()
    # Demo data uses the services plugins install at start-up (roles grants the demo roles).
    # The jobs and the event relay do not run beside it (SQLite takes one writer at a time:
    # a relay that waits too long logs "database is locked"); they run to the end after it.
    await host.startup()
    await stop_embedded(host)
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            await host.plugins.acall("demo_data", host=host)
        await settle_embedded(host)
        table = await demo_table(host)
    finally:
        await host.shutdown()
    return host, table


@cli.command()
@click.option(
    "--host", "bind", default="127.0.0.1", show_default=True, help="Address to listen on."
)
@click.option("--port", default=8000, show_default=True, type=click.IntRange(1, 65535))
@click.option(
    "--keep", is_flag=True, help="Keep the previous demo database instead of a fresh one."
)
@click.option("--no-serve", is_flag=True, help="Prepare the demo database and stop.")
@click.pass_context
def demo(ctx: click.Context, bind: str, port: int, keep: bool, no_serve: bool) -> None:
    """Start the portal with demo data on a fresh SQLite database."""
    var = Path(os.environ.get("KABINET_DEMO_DIR", "var")).resolve()
    if not keep and var.exists():
        for name in ("demo.sqlite3", "demo.sqlite3-wal", "demo.sqlite3-shm"):
            (var / name).unlink(missing_ok=True)
        shutil.rmtree(var / "messages", ignore_errors=True)
    var.mkdir(parents=True, exist_ok=True)
    click.echo("Preparing the demo database (a minute)…")
    host, table = run(_demo)(ctx, var, f"http://{_reachable(bind)}:{port}")
    click.echo(f"Demo database ready: {var / 'demo.sqlite3'}")
    if no_serve:
        click.echo(table)
        return

    def ready() -> None:
        click.echo(f"\nThe portal is ready: open {host.base_url}/  (Ctrl+C stops it)\n")
        click.echo(table + "\n")

    _serve(host, bind, port, ready)


async def _background(
    ctx: click.Context, role: str, body: Callable[[Any, asyncio.Event], Awaitable[None]]
) -> None:
    """Build the host as a ``role`` process and run ``body`` until SIGINT or SIGTERM."""
    import signal

    from kabinet import logging as klogging
    from kabinet.events import EventError
    from kabinet.host import PROCESS
    from kabinet.jobs import JobError

    host = await _build(ctx)
    _warn_base_url(host)
    host.services.provide(PROCESS, role)
    klogging.configure_host(host)  # the web's log: JSON or console lines, no secrets
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await host.startup()
    try:
        await body(host, stop)
    except (JobError, EventError) as exc:
        raise Failure(str(exc)) from None
    finally:
        await host.shutdown()


@cli.command()
@click.option(
    "--threads", default=8, show_default=True, type=click.IntRange(1, 256), help="Jobs at once."
)
@click.option(
    "--queue",
    "queues",
    multiple=True,
    help="Consume only this queue (repeatable; default: every actor's queue).",
)
@click.pass_context
@run
async def worker(ctx: click.Context, threads: int, queues: tuple[str, ...]) -> None:
    """Run background jobs and event deliveries from Redis (production).

    Needs [host] redis_url. Start any number of workers on any machines with the same
    settings; each also relays committed events from the outbox. SIGTERM lets running
    jobs finish. Without redis_url the web process runs jobs itself.
    """
    from kabinet.jobs import run_worker

    async def body(host: Any, stop: asyncio.Event) -> None:
        click.echo(f"kabinet worker: {len(host.actors)} actors, {threads} threads", err=True)
        await run_worker(host, stop, threads=threads, queues=queues)

    await _background(ctx, "worker", body)


@cli.command()
@click.option("-v", "--verbose", is_flag=True, help="Print each tick: fired here or elsewhere.")
@click.pass_context
@run
async def scheduler(ctx: click.Context, verbose: bool) -> None:
    """Send plugins' periodic jobs when they fall due (production).

    Needs [host] redis_url. Run one or more (for redundancy): a lock in Redis lets
    exactly one scheduler send each tick. Without redis_url the web process runs the
    schedules itself.
    """
    from kabinet.jobs import JobError
    from kabinet.scheduler import Scheduler, Tick

    def show(tick: Tick) -> None:
        state = "fired" if tick.fired else "skipped"
        click.echo(f"{state} {tick.schedule} {tick.at.isoformat()}")

    async def body(host: Any, stop: asyncio.Event) -> None:
        if not host.settings.host.redis_url:
            raise JobError(
                "kabinet scheduler needs [host] redis_url; "
                "without it the web process runs the schedules itself"
            )
        names = ", ".join(host.schedules) or "none"
        click.echo(f"kabinet scheduler: schedules {names}", err=True)
        await Scheduler(host).run(stop, on_tick=show if verbose else None)

    await _background(ctx, "scheduler", body)


@cli.group()
def jobs() -> None:
    """Failed background jobs: list them, retry one."""


@jobs.command("failed")
@click.option("--all", "include_retried", is_flag=True, help="Include jobs already retried.")
@click.option("--limit", default=50, show_default=True, type=click.IntRange(1, 1000))
@click.pass_context
@run
async def jobs_failed(ctx: click.Context, include_retried: bool, limit: int) -> None:
    """List jobs that ran out of retries, newest first, with their last error."""
    host = await _build(ctx)
    try:
        rows = await host.jobs.failed(include_retried=include_retried, limit=limit)
        for row in rows:
            last = row.error.strip().splitlines()[-1] if row.error.strip() else ""
            click.echo(
                f"{row.id}  {row.failed_at}  {row.actor}  attempts={row.attempts}  "
                f"{row.state}  {last}"
            )
        if not rows:
            click.echo("no failed jobs")
    finally:
        await host.db.dispose()


@jobs.command("retry")
@click.argument("failed_id", type=int)
@click.pass_context
@run
async def jobs_retry(ctx: click.Context, failed_id: int) -> None:
    """Send failed job FAILED_ID again (embedded default: run it here and now)."""
    from kabinet.jobs import EmbeddedJobs, JobError

    host = await _build(ctx)
    try:
        message_id = await host.jobs.retry(failed_id)
        click.echo(f"sent again as message {message_id}")
        if isinstance(host.jobs, EmbeddedJobs):
            await host.jobs.drain()
    except JobError as exc:
        raise Failure(str(exc)) from None
    finally:
        await host.jobs.close()
        await host.db.dispose()


@cli.group()
def events() -> None:
    """Event deliveries with errors: list them, retry one."""


@events.command("failed")
@click.option("--limit", default=50, show_default=True, type=click.IntRange(1, 1000))
@click.pass_context
@run
async def events_failed(ctx: click.Context, limit: int) -> None:
    """List subscribers' handlings of events that failed or are being retried."""
    host = await _build(ctx)
    try:
        rows = await host.events.with_errors(limit=limit)
        for row in rows:
            last = (row.last_error or "").strip().splitlines()[-1:] or [""]
            click.echo(
                f"{row.event_id}  {row.event_type}  {row.subscriber}  {row.state}  "
                f"attempts={row.attempts}  {last[0]}"
            )
        if not rows:
            click.echo("no event deliveries with errors")
    finally:
        await host.db.dispose()


@events.command("retry")
@click.argument("event_id", type=int)
@click.argument("subscriber")
@click.pass_context
@run
async def events_retry(ctx: click.Context, event_id: int, subscriber: str) -> None:
    """Deliver event EVENT_ID to SUBSCRIBER again after it failed."""
    from kabinet.events import EventError
    from kabinet.jobs import EmbeddedJobs

    host = await _build(ctx)
    try:
        await host.events.retry(event_id, subscriber)
        click.echo(f"event {event_id} sent again to {subscriber}")
        if isinstance(host.jobs, EmbeddedJobs):
            await host.jobs.drain()
    except EventError as exc:
        raise Failure(str(exc)) from None
    finally:
        await host.jobs.close()
        await host.db.dispose()


def main() -> None:
    """Entry point of the ``kabinet`` script."""
    try:
        cli.main(prog_name="kabinet")
    except StartupError as exc:
        click.echo(f"Error: {exc}", err=True)
        sys.exit(2)
