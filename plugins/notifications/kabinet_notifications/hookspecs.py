"""Hooks the notifications app publishes for other apps to implement.

An app that declares notifications implements them with
``@hookimpl(optionalhook=True)`` so it still loads without this app; the dataclasses it
returns live in :mod:`kabinet.contrib`, so it never imports this package.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from kabinet.hookspecs import hookspec

if TYPE_CHECKING:
    from kabinet.contrib import NotificationType
    from kabinet.host import Host


@hookspec
def notifications_types(host: Host) -> list[NotificationType]:
    """Called at start-up; returns the notifications the app sends when its events are published."""
