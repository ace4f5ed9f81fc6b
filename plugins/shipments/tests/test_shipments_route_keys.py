"""The route keys: orders stored before the revision that added them get them, the same
on both databases as the sink writes them, and the registry's from/to filters find them."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import insert, text

from kabinet.host import Host
from kabinet_companies.models import counterparty
from kabinet_shipments.models import place_key

pytestmark = pytest.mark.smoke

BEFORE = "f69020fce05f"  # the revision before the route keys
PLACES = ("Москва", "  г. Ёлкино ", "город Нижний Новгород", "Г ТВЕРЬ", "Санкт-Петербург")


def test_place_key() -> None:
    assert [place_key(p) for p in PLACES] == [
        "москва",
        "елкино",
        "нижний новгород",
        "тверь",
        "санкт-петербург",
    ]
    assert place_key("Гомель") == "гомель"  # "г" alone is the start of a name


async def test_orders_stored_before_the_keys_get_them(empty_database_url: str) -> None:
    env = {
        "KABINET__HOST__DATABASE_URL": empty_database_url,
        "KABINET__INTEGRATION__ENABLED": "false",
    }
    host = await Host.create(None, env=env)
    try:
        await host.migrations.upgrade("companies")
        await host.migrations.upgrade("shipments", BEFORE)
        now = dt.datetime(2026, 11, 25, tzinfo=dt.UTC)
        async with host.db.engine.begin() as conn:
            await conn.execute(
                insert(counterparty).values(
                    id=1, name="ООО «Груз»", inn="7700000001", created_at=now, updated_at=now
                )
            )
            for k, place in enumerate(PLACES):
                await conn.execute(
                    text(
                        "INSERT INTO shipments_order (id, external_id, counterparty_id, number,"
                        " date, status, origin, destination, location, cost, currency,"
                        " cargo_name, shipper, consignee, comment, search, hidden, digest,"
                        " status_at, updated_at) VALUES (:id, :ext, 1, :ext, :now, 'done',"
                        " :place, 'Казань', '', 1, 'RUB', '', '', '', '', '', false, 'x',"
                        " :now, :now)"
                    ),
                    {"id": k + 1, "ext": f"o{k}", "place": place, "now": now},
                )
        await host.migrations.upgrade("shipments")
        async with host.db.engine.connect() as conn:
            rows = (
                await conn.execute(
                    text(
                        "SELECT origin, origin_key, destination_key FROM shipments_order"
                        " ORDER BY id"
                    )
                )
            ).all()
        assert [(r[0], r[1], r[2]) for r in rows] == [(p, place_key(p), "казань") for p in PLACES]
    finally:
        await host.db.dispose()
