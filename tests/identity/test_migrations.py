"""Identity's tables match its migrations."""

from __future__ import annotations

import pytest

from kabinet.host import Host

pytestmark = pytest.mark.smoke


async def test_models_match_migrations(empty_database_url: str) -> None:
    host = await Host.create(None, env={"KABINET__HOST__DATABASE_URL": empty_database_url})
    try:
        done = await host.migrations.upgrade("identity")
        assert done[-1] == "identity"
        assert await host.migrations.diff("identity") == []
    finally:
        await host.db.dispose()
