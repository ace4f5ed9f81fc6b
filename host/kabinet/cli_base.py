"""What every ``kabinet`` command shares: the settings of the command line, the host built
from them, and an async command run with a clean message (exit code 2) instead of a
traceback when the host refuses to start or the database cannot be reached."""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

import click

from kabinet.errors import StartupError

T = TypeVar("T")


class Failure(click.ClickException):
    """A fault shown as its message alone."""

    exit_code = 2


def settings_path(ctx: click.Context) -> str | None:
    """``kabinet --settings FILE``, or None (settings.toml / $KABINET_SETTINGS)."""
    root = ctx.find_root()
    value = root.params.get("settings")
    return str(value) if value else None


async def build(ctx: click.Context, **kwargs: Any) -> Any:
    """The host of the command line's settings (``kwargs`` as :meth:`Host.create` takes)."""
    from kabinet.host import Host

    return await Host.create(settings_path(ctx), **kwargs)


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
