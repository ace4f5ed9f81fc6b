"""Identity's tables match its migrations; the revisions apply and go back on both
databases (the suite runs on PostgreSQL and on SQLite, ``KABINET_TEST_DB``)."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import inspect, text

from kabinet.host import Host

pytestmark = pytest.mark.smoke

FIRST = "8eb8a33a974b"
"""The revision that made the tables, before the purge's index on ``identity_login.at``."""


async def test_models_match_migrations(empty_database_url: str) -> None:
    host = await Host.create(None, env={"KABINET__HOST__DATABASE_URL": empty_database_url})
    try:
        done = await host.migrations.upgrade("identity")
        assert done[-1] == "identity"
        assert await host.migrations.diff("identity") == []
    finally:
        await host.db.dispose()


async def _login_indexes(host: Host) -> dict[str, list[str]]:
    async with host.db.engine.connect() as conn:
        found = await conn.run_sync(lambda c: inspect(c).get_indexes("identity_login"))
    return {str(i["name"]): [str(c) for c in i["column_names"]] for i in found}


async def test_the_purge_of_sign_ins_has_an_index_on_their_time(empty_database_url: str) -> None:
    host = await Host.create(None, env={"KABINET__HOST__DATABASE_URL": empty_database_url})
    try:
        await host.migrations.upgrade("identity", FIRST)
        assert "ix_identity_login_at" not in await _login_indexes(host)
        now = dt.datetime(2026, 12, 7, tzinfo=dt.UTC)
        async with host.db.engine.begin() as conn:
            await conn.execute(
                text(
                    "INSERT INTO identity_account (id, full_name, email, status,"
                    " email_confirmed, phone_confirmed, language, timezone, version,"
                    " created_at) VALUES (1, 'Вход', 'a@example.test', 'active', true, false,"
                    " 'ru', 'Europe/Moscow', 1, :now)"
                ),
                {"now": now},
            )
            await conn.execute(
                text(
                    "INSERT INTO identity_login (account_id, at, success, address, user_agent)"
                    " VALUES (1, :old, false, '', ''), (1, :now, true, '', '')"
                ),
                {"old": now - dt.timedelta(days=400), "now": now},
            )

        await host.migrations.upgrade("identity")
        assert (await _login_indexes(host))["ix_identity_login_at"] == ["at"]
        assert await host.migrations.diff("identity") == []
        async with host.db.engine.begin() as conn:  # what the purge runs, on kept rows
            gone = await conn.execute(
                text("DELETE FROM identity_login WHERE at < :before"),
                {"before": now - dt.timedelta(days=365)},
            )
            assert gone.rowcount == 1
            assert await conn.scalar(text("SELECT count(*) FROM identity_login")) == 1

        await host.migrations.downgrade("identity", FIRST)
        assert "ix_identity_login_at" not in await _login_indexes(host)
        assert "ix_identity_login_account_at" in await _login_indexes(host)
    finally:
        await host.db.dispose()
