"""The keycloak plugin's migration agrees with its tables, and goes down and up again."""

from __future__ import annotations

import pytest
from sqlalchemy import inspect

from kabinet.host import Host

pytestmark = pytest.mark.smoke


async def test_models_match_migration_and_round_trip(empty_database_url: str) -> None:
    host = await Host.create(None, env={"KABINET__HOST__DATABASE_URL": empty_database_url})
    try:
        done = await host.migrations.upgrade("keycloak")
        assert done[-1] == "keycloak"
        assert {"identity", "roles"} <= set(done)
        assert await host.migrations.diff("keycloak") == []
        await host.migrations.downgrade("keycloak", "base")
        async with host.db.engine.connect() as conn:
            tables = set(await conn.run_sync(lambda c: inspect(c).get_table_names()))
        assert not {"keycloak_login", "keycloak_session", "keycloak_erased"} & tables
        await host.migrations.upgrade("keycloak")
        assert await host.migrations.diff("keycloak") == []
    finally:
        await host.db.dispose()
