"""The retention purge deletes the deliveries made before a date through an index on
``created_at`` (migration c41d7e9a2b60), on SQLite and PostgreSQL alike."""

from __future__ import annotations

import datetime as dt

import pytest
from notif_support import deliveries, publish, run
from sqlalchemy import inspect

from kabinet.clock import FrozenClock
from kabinet.host import Host
from kabinet.testing import Portal

pytestmark = pytest.mark.smoke

INDEX = "ix_notifications_delivery_created_at"


async def _indexes(host: Host) -> dict[str, list[str]]:
    async with host.db.engine.connect() as conn:
        found = await conn.run_sync(lambda c: inspect(c).get_indexes("notifications_delivery"))
    return {str(i["name"]): [str(c) for c in i["column_names"]] for i in found}


async def test_the_migration_adds_the_created_at_index_and_takes_it_away(
    empty_database_url: str,
) -> None:
    host = await Host.create(None, env={"KABINET__HOST__DATABASE_URL": empty_database_url})
    try:
        await host.migrations.upgrade("notifications")
        assert (await _indexes(host))[INDEX] == ["created_at"]
        await host.migrations.downgrade("notifications", "5b7e2d9c4a13")
        assert INDEX not in await _indexes(host)
        await host.migrations.upgrade("notifications")
        assert (await _indexes(host))[INDEX] == ["created_at"]
        assert await host.migrations.diff("notifications") == []
    finally:
        await host.db.dispose()


async def test_the_purge_removes_the_deliveries_made_before_the_kept_days(
    portal: Portal, host: Host, clock: FrozenClock
) -> None:
    from kabinet_notifications.personal import personal_data

    ivan = await portal.person()
    await publish(
        host, "depot.parcel.arrived", {"account_id": ivan.id, "parcel": "O", "depot": "X"}
    )
    await run(host)
    clock.advance(2 * 86400)
    await publish(
        host, "depot.parcel.arrived", {"account_id": ivan.id, "parcel": "N", "depot": "X"}
    )
    await run(host)
    [old, new] = await deliveries(host, person_id=ivan.id)
    [kept] = personal_data(host).kept
    async with host.db.session() as s:
        removed = await kept.purge(s, clock.now() - dt.timedelta(days=1))
    assert removed >= 1
    assert [r["id"] for r in await deliveries(host, person_id=ivan.id)] == [new["id"]]
    assert old["created_at"] < new["created_at"]
