"""A plugin's CLI command: the host built from the command line's settings, one unit of
work, a clean message instead of a traceback.

::

    @click.command("fuel-price")
    @click.argument("region")
    @click.pass_context
    @host_command()
    async def fuel_price(ctx: click.Context, host: Host, region: str, *, session: AsyncSession):
        await services.record(session, region, host.clock.now().date())

The function gets the host (``--settings`` of ``kabinet`` honoured) and, when it takes a
``session`` parameter, the session of one unit of work: everything the command writes
commits when it returns, nothing when it raises. A command that must commit as it goes
(a sync run, page by page) takes no ``session``; each ``host.db.session()`` block is then
its own transaction. ``started=True`` runs the host's start-up first (services that need
the plugins' start-up hooks: identity, roles). A refusal to start, an unreachable
database and :class:`Failure` end the command with their message and exit code 2.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, TypeVar

import click

from kabinet.cli_base import Failure, run

if TYPE_CHECKING:
    from kabinet.host import Host

__all__ = ["Failure", "host_command"]

T = TypeVar("T")


def host_command(
    *, started: bool = False
) -> Callable[[Callable[..., Awaitable[T]]], Callable[..., T]]:
    """Decorate ``async def command(ctx, host, [session,] **params)`` (under
    ``@click.pass_context``)."""

    def decorate(fn: Callable[..., Awaitable[T]]) -> Callable[..., T]:
        wants_session = "session" in inspect.signature(fn).parameters

        @functools.wraps(fn)
        def command(ctx: click.Context, /, *args: Any, **kwargs: Any) -> T:
            @run
            async def go() -> T:
                host = await build_host(ctx)
                try:
                    if started:
                        await host.startup()
                    if not wants_session:
                        return await fn(ctx, host, *args, **kwargs)
                    async with host.db.unit(), host.db.session() as session:
                        return await fn(ctx, host, *args, session=session, **kwargs)
                finally:
                    await host.shutdown()  # the plugins' shutdown hooks, then the database

            return go()

        return command

    return decorate


async def build_host(ctx: click.Context) -> Host:
    """The host of ``kabinet --settings FILE …`` (or settings.toml / the environment)."""
    from kabinet.host import Host

    value = ctx.find_root().params.get("settings")
    return await Host.create(str(value) if value else None)
