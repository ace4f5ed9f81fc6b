"""The companies app's settings: the ``[companies]`` section of settings.toml."""

from __future__ import annotations

import msgspec


class CompaniesSettings(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """The ``[companies]`` section."""

    organization_per_counterparty: bool = False
    """Create one organization for each new counterparty instead of leaving it unassigned."""
    invitation_days: int = 7
    """How long an invitation link works."""
