"""Hook implementations of the dictionaries app."""

from __future__ import annotations

from pathlib import Path

import msgspec

from kabinet.contrib import Database, Manifest
from kabinet.hookspecs import hookimpl
from kabinet_dictionaries import __version__
from kabinet_dictionaries.models import metadata


class Settings(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """The ``[dictionaries]`` section."""

    max_file_size_mb: int = 20


@hookimpl
def manifest() -> Manifest:
    return Manifest(
        name="dictionaries",
        version=__version__,
        title={"ru": "Справочники", "en": "Dictionaries"},
        requires_host=">=0.1,<1",
        requires=(),
        settings=Settings,
    )


@hookimpl
def database() -> Database:
    return Database(metadata=metadata, migrations=Path(__file__).parent / "migrations")
