"""The nightly purge of confirmation codes, reset links and sessions deletes through an
index on the column it filters by (migration 5d2f8c1a7e93), on PostgreSQL and SQLite:
the indexes come with the migration and go with its downgrade, the tables keep their
rows, the database plans the purge's DELETE on the index, and the purge removes only
what is older than its period."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from sqlalchemy import inspect, text
from sqlalchemy.ext.asyncio import AsyncConnection

from kabinet.host import Host

pytestmark = pytest.mark.smoke

BEFORE = "3c9e5a7b1d42"
"""Identity's revision before the purge's indexes."""
PURGED = {
    # table: (index, column)
    "identity_code": ("ix_identity_code_created_at", "created_at"),
    "identity_reset_token": ("ix_identity_reset_token_created_at", "created_at"),
    "identity_session": ("ix_identity_session_last_seen_at", "last_seen_at"),
}
NOW = dt.datetime(2026, 12, 7, 3, 17, tzinfo=dt.UTC)
ROWS = 3000
"""Rows per table: enough that reading the whole table costs more than the index."""
OLD = 10
"""Of them, older than the purge's date."""


async def _indexes(host: Host, table: str) -> dict[str, list[str]]:
    async with host.db.engine.connect() as conn:
        found = await conn.run_sync(lambda c: inspect(c).get_indexes(table))
    return {str(i["name"]): [str(c) for c in i["column_names"]] for i in found}


def _at(i: int) -> dt.datetime:
    """The first ``OLD`` rows were made 400 days ago, the rest in the last hour."""
    if i < OLD:
        return NOW - dt.timedelta(days=400, seconds=i)
    return NOW - dt.timedelta(seconds=i)


async def _fill(conn: AsyncConnection) -> None:
    await conn.execute(
        text(
            "INSERT INTO identity_account (id, full_name, email, status, email_confirmed,"
            " phone_confirmed, language, timezone, version, created_at)"
            " VALUES (1, 'Чистка', 'purge@example.test', 'active', true, false, 'ru',"
            " 'Europe/Moscow', 1, :now)"
        ),
        {"now": NOW},
    )
    await conn.execute(
        text(
            "INSERT INTO identity_code (account_id, purpose, channel, target, code_hash,"
            " created_at, expires_at, resend_after, attempts)"
            " VALUES (1, 'confirm_email', 'email', 'purge@example.test', :hash, :at, :at,"
            " :at, 0)"
        ),
        [{"hash": f"{i:064x}", "at": _at(i)} for i in range(ROWS)],
    )
    await conn.execute(
        text(
            "INSERT INTO identity_reset_token (account_id, token_hash, created_at, expires_at)"
            " VALUES (1, :hash, :at, :at)"
        ),
        [{"hash": f"{i:064x}", "at": _at(i)} for i in range(ROWS)],
    )
    await conn.execute(
        text(
            "INSERT INTO identity_session (id, account_id, created_at, last_seen_at, address,"
            " user_agent) VALUES (:id, 1, :at, :at, '', '')"
        ),
        [{"id": f"{i:064x}", "at": _at(i)} for i in range(ROWS)],
    )


async def _plan(conn: AsyncConnection, table: str, column: str) -> str:
    """How the database would run the purge's DELETE (``kabinet.personal.delete_older``)."""
    before = NOW - dt.timedelta(days=30)
    query = f"DELETE FROM {table} WHERE {column} < :before"  # noqa: S608 - names are ours
    if conn.dialect.name == "postgresql":
        await conn.execute(text(f"ANALYZE {table}"))
        rows = await conn.execute(text(f"EXPLAIN {query}"), {"before": before})
    else:
        await conn.execute(text("ANALYZE"))
        rows = await conn.execute(text(f"EXPLAIN QUERY PLAN {query}"), {"before": before})
    return "\n".join(str(r[-1]) for r in rows)


async def test_the_purges_filter_through_an_index_that_the_migration_adds_and_takes_away(
    empty_database_url: str,
) -> None:
    host = await Host.create(None, env={"KABINET__HOST__DATABASE_URL": empty_database_url})
    try:
        await host.migrations.upgrade("identity", BEFORE)
        for table, (index, _column) in PURGED.items():
            assert index not in await _indexes(host, table)
        async with host.db.engine.begin() as conn:
            await _fill(conn)
            before = {t: await conn.scalar(text(f"SELECT count(*) FROM {t}")) for t in PURGED}  # noqa: S608

        await host.migrations.upgrade("identity")
        for table, (index, column) in PURGED.items():
            assert (await _indexes(host, table))[index] == [column]
        assert await host.migrations.diff("identity") == []
        async with host.db.engine.begin() as conn:
            for table, (index, column) in PURGED.items():
                count = await conn.scalar(text(f"SELECT count(*) FROM {table}"))  # noqa: S608
                assert count == before[table] == ROWS
                plan = await _plan(conn, table, column)
                assert index in plan, plan  # an index scan, not the whole table

        await host.migrations.downgrade("identity", BEFORE)
        for table, (index, _column) in PURGED.items():
            indexes = await _indexes(host, table)
            assert index not in indexes
            assert ["account_id"] in indexes.values()  # what was there before stays
        async with host.db.engine.begin() as conn:
            plan = await _plan(conn, "identity_code", "created_at")
            assert "ix_identity_code_created_at" not in plan
        await host.migrations.upgrade("identity")
        assert await host.migrations.diff("identity") == []
    finally:
        await host.db.dispose()


async def test_the_purge_removes_only_codes_links_and_sessions_past_their_period(
    empty_database_url: str,
) -> None:
    from kabinet.identity.personal import personal_data

    host = await Host.create(None, env={"KABINET__HOST__DATABASE_URL": empty_database_url})
    try:
        await host.migrations.upgrade("identity")
        async with host.db.engine.begin() as conn:
            await _fill(conn)
        kept: dict[str, Any] = {k.name: k for k in personal_data(host).kept}
        async with host.db.session() as s:
            codes = await kept["identity_code"].purge(
                s, NOW - kept["identity_code"].days * dt.timedelta(days=1)
            )
            sessions = await kept["identity_session"].purge(
                s, NOW - kept["identity_session"].days * dt.timedelta(days=1)
            )
            await s.commit()
        assert codes == 2 * OLD  # codes and reset links
        assert sessions == OLD
        async with host.db.engine.connect() as conn:
            for table, (_index, column) in PURGED.items():
                oldest = await conn.scalar(text(f"SELECT min({column}) FROM {table}"))  # noqa: S608
                left = await conn.scalar(text(f"SELECT count(*) FROM {table}"))  # noqa: S608
                assert left == ROWS - OLD
                assert _aware(oldest) > NOW - dt.timedelta(hours=1)
    finally:
        await host.db.dispose()


def _aware(value: Any) -> dt.datetime:
    """A timestamp as read back (SQLite gives text or a naive datetime, in UTC)."""
    if isinstance(value, str):
        value = dt.datetime.fromisoformat(value)
    assert isinstance(value, dt.datetime)
    return value if value.tzinfo else value.replace(tzinfo=dt.UTC)
