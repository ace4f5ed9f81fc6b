"""``kabinet integration sync [--source S] [--full] [--entity E …]``."""

from __future__ import annotations

from typing import Any

import click


@click.group("integration")
def group() -> None:
    """The 1C integration app."""


@group.command("sync")
@click.option("--source", default="", help="The source to sync (default: every pulling one).")
@click.option("--full", is_flag=True, help="Full reconciliation by DataVersion (finds deletions).")
@click.option("--entity", "entities", multiple=True, help="Only this entity (repeatable).")
@click.pass_context
def sync_command(ctx: click.Context, source: str, full: bool, entities: tuple[str, ...]) -> None:
    """Run a sync now, in this process, and print what it did."""
    from kabinet.cli import Failure, _build, run

    @run
    async def go() -> int:
        from kabinet_integration.locks import Busy
        from kabinet_integration.sync import SyncError, integration

        host: Any = await _build(ctx)
        failed = 0
        try:
            svc = integration(host)
            names = (
                [source]
                if source
                else [n for n, s in svc.settings.sources.items() if s.mode != "push"]
            )
            if not names:
                raise Failure("no sources in [integration.sources]")
            for name in names:
                try:
                    out = await svc.run(name, mode="full" if full else "delta", entities=entities)
                except Busy:
                    raise Failure(f"{name}: a run is going on") from None
                except SyncError as exc:
                    raise Failure(str(exc)) from None
                c = out.counts
                click.echo(
                    f"{name}: run {out.run_id} {out.state}: received {c.received}, applied "
                    f"{c.applied}, unchanged {c.unchanged}, quarantined {c.quarantined}"
                    + (f"; {out.error}" if out.error else "")
                )
                failed += out.state != "succeeded"
        finally:
            await host.shutdown()
        return failed

    if go():
        raise SystemExit(1)
