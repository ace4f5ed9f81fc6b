"""Fixtures of the dictionaries tests: a started host on the run's migrated database."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from kabinet.clock import FrozenClock
from kabinet.host import Host
from kabinet_dictionaries.services import Dictionaries

OTHERS = ("companies", "integration", "notifications", "shipments")


@pytest.fixture
async def host(database_url: str, clock: FrozenClock, tmp_path: Path) -> AsyncIterator[Host]:
    settings = tmp_path / "settings.toml"
    settings.write_text(
        f'[host]\nvar_dir = "{tmp_path / "var"}"\nsecret_key = "dictionaries-tests"\n'
        "[dictionaries]\nmax_file_size_mb = 1\n"
        # Only this app (and the built-ins): other apps' work in progress cannot break it.
        + "".join(f"[{name}]\nenabled = false\n" for name in OTHERS)
    )
    host = await Host.create(
        settings, env={"KABINET__HOST__DATABASE_URL": database_url}, clock=clock
    )
    await host.startup()
    yield host
    await host.shutdown()


@pytest.fixture
def svc(host: Host) -> Dictionaries:
    found: Dictionaries = host.services["dictionaries"]
    return found
