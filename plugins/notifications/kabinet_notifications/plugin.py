"""Hook implementations of the notifications app."""

from __future__ import annotations

from pathlib import Path
from types import ModuleType

import msgspec

from kabinet.contrib import Database, Manifest
from kabinet.hookspecs import hookimpl
from kabinet_notifications import __version__
from kabinet_notifications.models import metadata


class Settings(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """The ``[notifications]`` section."""

    sender_name: str = "Kabinet"


@hookimpl
def manifest() -> Manifest:
    return Manifest(
        name="notifications",
        version=__version__,
        title={"ru": "Уведомления", "en": "Notifications"},
        requires_host=">=0.1,<1",
        requires=(),
        settings=Settings,
    )


@hookimpl
def database() -> Database:
    return Database(metadata=metadata, migrations=Path(__file__).parent / "migrations")


@hookimpl
def hookspecs() -> ModuleType:
    from kabinet_notifications import hookspecs as specs

    return specs
