"""Hook implementations of the shipments app."""

from __future__ import annotations

from pathlib import Path

import msgspec

from kabinet.contrib import Database, Manifest
from kabinet.hookspecs import hookimpl
from kabinet_shipments import __version__
from kabinet_shipments.models import metadata


class Settings(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """The ``[shipments]`` section."""

    page_size: int = 25


@hookimpl
def manifest() -> Manifest:
    return Manifest(
        name="shipments",
        version=__version__,
        title={"ru": "Перевозки", "en": "Shipments"},
        requires_host=">=0.1,<1",
        requires=("companies",),
        settings=Settings,
    )


@hookimpl
def database() -> Database:
    return Database(metadata=metadata, migrations=Path(__file__).parent / "migrations")
