"""The roles plugin's settings: the ``[roles]`` section of settings.toml."""

from __future__ import annotations

import msgspec


class Settings(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """The ``[roles]`` section."""

    recheck_seconds: float = 2.0
    """How long a process trusts a person's cached access view before checking its version."""
    recheck_seconds_redis: float = 30.0
    """The same while listening to Redis, which announces every change at once."""
