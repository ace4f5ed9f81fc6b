"""The files attached to orders with their versions (revision d8a3f6b2c914): a new table,
empty after the upgrade (each order's files are listed with their versions when the order
is next read; a first listing never makes the portal fetch a file again), with its order
and unique file id; the revision goes down and up again with orders and documents in
place. Both databases."""

from __future__ import annotations

import datetime as dt

import pytest
import sqlalchemy as sa
from sqlalchemy import insert, text

from kabinet.host import Host
from kabinet_companies.models import counterparty
from kabinet_shipments import models as sm

pytestmark = pytest.mark.smoke

BEFORE = "c5d2f8a1e607"  # the shipments revision before the orders' files


async def test_the_order_files_table_comes_and_goes_with_orders_in_place(
    empty_database_url: str,
) -> None:
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
            # The tables of orders and documents are as at BEFORE: the models write them.
            await conn.execute(
                insert(sm.order).values(
                    id=1,
                    external_id="o1",
                    counterparty_id=1,
                    number="ЗП-1",
                    date=now,
                    status="registered",
                    origin="Москва",
                    destination="Казань",
                    cost=10,
                    currency="RUB",
                    digest="x",
                    status_at=now,
                    updated_at=now,
                )
            )
            await conn.execute(
                insert(sm.document).values(
                    id=1, order_id=1, line=1, kind="ТТН", file_ref="f1", file_name="ТТН-1.pdf"
                )
            )
        await host.migrations.upgrade("shipments")

        async with host.db.engine.begin() as conn:
            assert (
                await conn.execute(text("SELECT count(*) FROM shipments_order_file"))
            ).scalar() == 0
            await conn.execute(
                text(
                    "INSERT INTO shipments_order_file (id, order_id, file_ref, file_name)"
                    " VALUES (1, 1, 'f1', 'ТТН-1.pdf')"
                )
            )
            rows = await conn.execute(
                text("SELECT file_ref, file_name, file_version FROM shipments_order_file")
            )
            assert [tuple(r) for r in rows] == [("f1", "ТТН-1.pdf", "")]  # no version yet
        with pytest.raises(sa.exc.IntegrityError):  # one owner per file
            async with host.db.engine.begin() as conn:
                await conn.execute(
                    text(
                        "INSERT INTO shipments_order_file (id, order_id, file_ref, file_name)"
                        " VALUES (2, 1, 'f1', 'again.pdf')"
                    )
                )
        await host.migrations.downgrade("shipments", BEFORE)
        async with host.db.engine.connect() as conn:
            tables = await conn.run_sync(lambda c: sa.inspect(c).get_table_names())
            assert "shipments_order_file" not in tables
            rows = await conn.execute(text("SELECT file_ref FROM shipments_document"))
            assert [r[0] for r in rows] == ["f1"]
        await host.migrations.upgrade("shipments")
        async with host.db.engine.connect() as conn:
            assert (
                await conn.execute(text("SELECT count(*) FROM shipments_order_file"))
            ).scalar() == 0
    finally:
        await host.db.dispose()
