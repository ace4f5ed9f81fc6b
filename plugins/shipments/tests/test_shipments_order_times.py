"""The times 1C gives with an order's dates: the sink stores the 1C-local day and the UTC
instant (none for a date only), and the revision that added the instants goes up and down
on both databases keeping the orders, their dates and the registry's indexes."""

from __future__ import annotations

import datetime as dt
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import insert, inspect, text

from kabinet.host import Host
from kabinet_companies.models import counterparty
from kabinet_shipments.sinks import day_and_time

pytestmark = pytest.mark.smoke

MOSCOW = ZoneInfo("Europe/Moscow")
BEFORE = "65c579926122"  # the revision before the instants
TIMES = ("loading_at", "delivery_planned_at", "delivery_actual_at")
DIGESTS = "SELECT digest FROM shipments_order ORDER BY id"
SELECT_TIMES = "SELECT loading_at, delivery_planned_at, delivery_actual_at FROM shipments_order"


def test_a_time_of_day_is_kept_and_midnight_is_a_date_only() -> None:
    assert day_and_time(dt.datetime(2026, 12, 1, 14, 30), MOSCOW) == (
        dt.date(2026, 12, 1),
        dt.datetime(2026, 12, 1, 11, 30, tzinfo=dt.UTC),
    )
    # Just after midnight in Moscow: the day is Moscow's, the instant the day before in UTC.
    assert day_and_time(dt.datetime(2026, 12, 4, 1, 15), MOSCOW) == (
        dt.date(2026, 12, 4),
        dt.datetime(2026, 12, 3, 22, 15, tzinfo=dt.UTC),
    )
    assert day_and_time(dt.datetime(2026, 12, 3), MOSCOW) == (dt.date(2026, 12, 3), None)
    assert day_and_time(None, MOSCOW) == (None, None)
    # A time that comes with its zone: the day is the one it is in 1C's zone.
    aware = dt.datetime(2026, 12, 1, 22, 0, tzinfo=dt.UTC)
    assert day_and_time(aware, MOSCOW) == (dt.date(2026, 12, 2), aware)
    assert day_and_time(dt.datetime(2026, 12, 1, 21, 0, tzinfo=dt.UTC), MOSCOW) == (
        dt.date(2026, 12, 2),
        None,
    )


async def _indexes(host: Host) -> dict[str, Any]:
    """The order table's index definitions as the database holds them."""
    async with host.db.engine.connect() as conn:
        if conn.dialect.name == "postgresql":
            rows = await conn.execute(
                text(
                    "SELECT indexname, indexdef FROM pg_indexes WHERE tablename = 'shipments_order'"
                )
            )
        else:
            rows = await conn.execute(
                text(
                    "SELECT name, sql FROM sqlite_master WHERE type = 'index'"
                    " AND tbl_name = 'shipments_order' AND sql IS NOT NULL"
                )
            )
        return {r[0]: r[1] for r in rows}


async def _columns(host: Host) -> set[str]:
    async with host.db.engine.connect() as conn:
        return {
            c["name"]
            for c in await conn.run_sync(lambda c: inspect(c).get_columns("shipments_order"))
        }


async def _orders(host: Host) -> list[tuple[Any, ...]]:
    async with host.db.engine.connect() as conn:
        rows = await conn.execute(
            text(
                "SELECT id, loading_date, delivery_planned, delivery_actual FROM shipments_order"
                " ORDER BY id"
            )
        )
        return [tuple(str(v) for v in r) for r in rows]


async def test_the_revision_adds_the_instants_and_goes_back(empty_database_url: str) -> None:
    env = {
        "KABINET__HOST__DATABASE_URL": empty_database_url,
        "KABINET__INTEGRATION__ENABLED": "false",
    }
    host = await Host.create(None, env=env)
    try:
        await host.migrations.upgrade("companies")
        await host.migrations.upgrade("shipments", BEFORE)
        now = dt.datetime(2026, 12, 7, tzinfo=dt.UTC)
        async with host.db.engine.begin() as conn:
            await conn.execute(
                insert(counterparty).values(
                    id=1, name="ООО «Груз»", inn="7700000001", created_at=now, updated_at=now
                )
            )
            for k, (loading, actual) in enumerate(
                (("2026-12-01", "2026-12-04"), (None, None), ("2026-11-30", None))
            ):
                await conn.execute(
                    text(
                        "INSERT INTO shipments_order (id, external_id, counterparty_id, number,"
                        " date, status, origin, destination, origin_key, destination_key,"
                        " loading_date, delivery_planned, delivery_actual, location, cost,"
                        " currency, cargo_name, shipper, consignee, comment, search, hidden,"
                        " digest, status_at, updated_at) VALUES (:id, :ext, 1, :ext, :now,"
                        " 'done', 'Москва', 'Казань', 'москва', 'казань', :loading, :loading,"
                        " :actual, '', 1, 'RUB', '', '', '', '', '', false, :digest, :now, :now)"
                    ),
                    {
                        "id": k + 1,
                        "ext": f"o{k}",
                        "now": now,
                        "digest": "a" * 32,
                        "loading": dt.date.fromisoformat(loading) if loading else None,
                        "actual": dt.date.fromisoformat(actual) if actual else None,
                    },
                )
        orders = await _orders(host)
        indexes = await _indexes(host)
        assert not set(TIMES) & await _columns(host)

        await host.migrations.upgrade("shipments")
        assert set(TIMES) <= await _columns(host)
        assert await host.migrations.diff("shipments") == []
        # No time was known for what was stored: the dates stay, the instants are empty.
        assert await _orders(host) == orders
        async with host.db.engine.connect() as conn:
            times = (await conn.execute(text(SELECT_TIMES))).all()
        assert {tuple(t) for t in times} == {(None, None, None)}
        # Received again, an order with dates is rewritten (its own digest no longer
        # matches; its lines' does); one without has nothing to gain.
        async with host.db.engine.connect() as conn:
            digests = (await conn.execute(text(DIGESTS))).scalars().all()
        assert digests == ["0" * 16 + "a" * 16, "a" * 32, "0" * 16 + "a" * 16]
        assert await _indexes(host) == indexes  # filters, sorts and indexes as they were

        await host.migrations.downgrade("shipments", BEFORE)
        assert not set(TIMES) & await _columns(host)
        assert await _orders(host) == orders
        assert await _indexes(host) == indexes
        await host.migrations.upgrade("shipments")
        assert await host.migrations.diff("shipments") == []
    finally:
        await host.db.dispose()
