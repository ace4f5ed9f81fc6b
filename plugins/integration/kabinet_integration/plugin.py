"""Hook implementations of the integration app."""

from __future__ import annotations

from pathlib import Path

import msgspec

from kabinet.contrib import Database, Manifest
from kabinet.hookspecs import hookimpl
from kabinet_integration import __version__
from kabinet_integration.models import metadata


class Settings(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """The ``[integration]`` section."""

    interval_minutes: int = 20
    """How often the delta exchange runs."""


@hookimpl
def manifest() -> Manifest:
    return Manifest(
        name="integration",
        version=__version__,
        title={"ru": "Интеграция с 1С", "en": "1C integration"},
        requires_host=">=0.1,<1",
        requires=("companies", "shipments"),
        settings=Settings,
    )


@hookimpl
def database() -> Database:
    return Database(metadata=metadata, migrations=Path(__file__).parent / "migrations")
