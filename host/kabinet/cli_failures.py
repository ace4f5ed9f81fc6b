"""``kabinet jobs failed|retry`` and ``kabinet events failed|retry``: what ran out of
attempts, and sending it again. Added to the ``kabinet`` group by :mod:`kabinet.cli`."""

from __future__ import annotations

import click

from kabinet.cli_base import Failure, build, run


@click.group()
def jobs() -> None:
    """Failed background jobs: list them, retry one."""


@jobs.command("failed")
@click.option("--all", "include_retried", is_flag=True, help="Include jobs already retried.")
@click.option("--limit", default=50, show_default=True, type=click.IntRange(1, 1000))
@click.pass_context
@run
async def jobs_failed(ctx: click.Context, include_retried: bool, limit: int) -> None:
    """List jobs that ran out of retries, newest first, with their last error."""
    host = await build(ctx)
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

    host = await build(ctx)
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


@click.group()
def events() -> None:
    """Event deliveries with errors: list them, retry one."""


@events.command("failed")
@click.option("--limit", default=50, show_default=True, type=click.IntRange(1, 1000))
@click.pass_context
@run
async def events_failed(ctx: click.Context, limit: int) -> None:
    """List subscribers' handlings of events that failed or are being retried."""
    host = await build(ctx)
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

    host = await build(ctx)
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
