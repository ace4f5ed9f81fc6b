"""``kabinet serve``, ``demo``, ``worker`` and ``scheduler``: the commands that run a process
of the portal (the web app, the demo on SQLite, a Redis worker, a scheduler) until it is
stopped. Added to the ``kabinet`` group by :mod:`kabinet.cli`."""

from __future__ import annotations

import asyncio
import os
import shutil
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import click

from kabinet.cli_base import Failure, build, run, settings_path


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


@click.command()
@click.option(
    "--host", "bind", default="127.0.0.1", show_default=True, help="Address to listen on."
)
@click.option("--port", default=8000, show_default=True, type=click.IntRange(1, 65535))
@click.pass_context
def serve(ctx: click.Context, bind: str, port: int) -> None:
    """Serve the portal (one process; run several behind a load balancer)."""
    host = run(build)(ctx)
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
    from kabinet.identity.demo import demo_table
    from kabinet.jobs import settle_embedded, stop_embedded
    from kabinet.settings import load_raw

    overrides = {
        "database_url": f"sqlite+aiosqlite:///{var / 'demo.sqlite3'}",
        "debug": True,
        "openapi_public": True,
        "access_log": False,  # a quiet console: the newcomer reads the accounts table
    }
    if not load_raw(settings_path(ctx), os.environ).section("host").get("base_url"):
        overrides["base_url"] = address  # links in its messages lead to where it serves
    host = await build(ctx, overrides=overrides)
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


@click.command()
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

    host = await build(ctx)
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


@click.command()
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
    from kabinet.jobs_redis import run_worker

    async def body(host: Any, stop: asyncio.Event) -> None:
        click.echo(f"kabinet worker: {len(host.actors)} actors, {threads} threads", err=True)
        await run_worker(host, stop, threads=threads, queues=queues)

    await _background(ctx, "worker", body)


@click.command()
@click.option("-v", "--verbose", is_flag=True, help="Print each tick: fired here or elsewhere.")
@click.pass_context
@run
async def scheduler(ctx: click.Context, verbose: bool) -> None:
    """Send plugins' periodic jobs when they fall due (production).

    Needs [host] redis_url. Run one or more (for redundancy): a short lease in Redis
    lets one scheduler send each tick, another takes the tick over if that one dies
    before it has sent it, and workers run one job per tick. Without redis_url the web
    process runs the schedules itself.
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
