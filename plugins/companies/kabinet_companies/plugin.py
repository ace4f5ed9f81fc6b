"""Hook implementations of the companies app."""

from __future__ import annotations

from pathlib import Path

import msgspec

from kabinet.contrib import Database, Manifest
from kabinet.hookspecs import hookimpl
from kabinet_companies import __version__
from kabinet_companies.models import metadata


class Settings(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """The ``[companies]`` section."""

    organization_per_counterparty: bool = False
    """Create one organization for each new counterparty instead of leaving it unassigned."""
    invitation_days: int = 7
    """How long an invitation link works."""


@hookimpl
def manifest() -> Manifest:
    return Manifest(
        name="companies",
        version=__version__,
        title={"ru": "Компании и контакты", "en": "Companies & contacts"},
        requires_host=">=0.1,<1",
        requires=("identity", "roles"),
        settings=Settings,
    )


@hookimpl
def database() -> Database:
    return Database(metadata=metadata, migrations=Path(__file__).parent / "migrations")
