"""Fixtures of the notifications tests: a host with a small app that declares a notification."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
from notif_support import DEPOT, forget_edits, make_host

from kabinet.clock import FrozenClock
from kabinet.host import Host
from kabinet.testing import PluginFactory


@pytest.fixture
async def host(
    plugin_factory: PluginFactory, database_url: str, tmp_path: Path, clock: FrozenClock
) -> AsyncIterator[Host]:
    plugin_factory.add("depot", DEPOT)
    h = await make_host(plugin_factory, database_url, tmp_path, clock)
    try:
        yield h
    finally:
        await forget_edits(h)
        await h.shutdown()


@pytest.fixture
def settings_text() -> Callable[..., str]:
    def text(**notifications: Any) -> str:
        lines = ["[host]", 'var_dir = "var"', 'secret_key = "test-secret"', "[notifications]"]
        notifications.setdefault("digest_minutes", 0)
        for key, value in notifications.items():
            lines.append(
                f"{key} = {value!r}".replace("'", '"')
                if isinstance(value, str)
                else f"{key} = {str(value).lower() if isinstance(value, bool) else value}"
            )
        return "\n".join(lines) + "\n"

    return text
