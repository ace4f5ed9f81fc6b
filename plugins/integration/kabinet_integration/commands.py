"""``kabinet integration sync [--source S] [--full] [--entity E …]``."""

from __future__ import annotations

from typing import Any

import click

from kabinet.commands import Failure, host_command


@click.group("integration")
def group() -> None:
    """The 1C integration app."""


@group.command("sync")
@click.option("--source", default="", help="The source to sync (default: every pulling one).")
@click.option("--full", is_flag=True, help="Full reconciliation by DataVersion (finds deletions).")
@click.option("--entity", "entities", multiple=True, help="Only this entity (repeatable).")
@click.pass_context
@host_command()
async def sync_command(
    ctx: click.Context, host: Any, source: str, full: bool, entities: tuple[str, ...]
) -> None:
    """Run a sync now, in this process, and print what it did.

    It takes no unit of work: a run commits page by page, so its cursor moves with each
    committed page and a run stopped anywhere resumes there."""
    from kabinet_integration.locks import Busy
    from kabinet_integration.sync import SyncError, integration

    svc = integration(host)
    names = [source] if source else [n for n, s in svc.settings.sources.items() if s.mode != "push"]
    if not names:
        raise Failure("no sources in [integration.sources]")
    failed = 0
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
    if failed:
        raise SystemExit(1)
