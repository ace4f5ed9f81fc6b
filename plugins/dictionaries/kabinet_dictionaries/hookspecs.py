"""Hooks the dictionaries app publishes for other apps to implement.

An app that reads a dictionary (a shipments form offering a choice from "Виды услуг")
declares it here so it exists on every portal, then reads it through
``host.services.of(DICTIONARIES)`` (:mod:`kabinet_dictionaries.services`). It implements
the hook with ``@hookimpl(optionalhook=True)`` and may return plain dicts of the
:class:`~kabinet_dictionaries.structure.TypeSpec` shape, so it need not import this app.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from kabinet.hookspecs import hookspec

if TYPE_CHECKING:
    from kabinet.host import Host
    from kabinet_dictionaries.structure import TypeSpec


@hookspec
def dictionaries_types(host: Host) -> list[TypeSpec | Mapping[str, Any]]:  # type: ignore[empty-body,unused-ignore]
    """Called at start-up; returns the dictionaries the app reads, created when missing."""
