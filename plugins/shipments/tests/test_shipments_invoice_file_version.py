"""The version of an invoice's attached file (revision c5d2f8a1e607): rows stored before
it get an empty version, which never makes the portal fetch a file again by itself; the
revision goes down and up again with such rows in place. Both databases."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import insert, text

from kabinet.host import Host
from kabinet_companies.models import counterparty

pytestmark = pytest.mark.smoke

BEFORE = "b3e8d1f0a6c4"  # the shipments revision before the file's version


async def test_files_stored_before_the_version_get_an_empty_one(empty_database_url: str) -> None:
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
            await conn.execute(
                text(
                    "INSERT INTO shipments_invoice (id, external_id, counterparty_id, number,"
                    " date, amount, paid, currency, payment_status, hidden, digest,"
                    " created_at, updated_at) VALUES (1, 'i1', 1, 'СЧ-1', :day, 10, 0, 'RUB',"
                    " 'unpaid', false, 'x', :now, :now)"
                ),
                {"day": now.date(), "now": now},
            )
            await conn.execute(
                text(
                    "INSERT INTO shipments_invoice_file (id, invoice_id, file_ref, file_name)"
                    " VALUES (1, 1, 'f1', 'Счет.pdf')"
                )
            )
        await host.migrations.upgrade("shipments")

        async def files() -> list[tuple[str, ...]]:
            async with host.db.engine.connect() as conn:
                rows = await conn.execute(
                    text("SELECT file_ref, file_name, file_version FROM shipments_invoice_file")
                )
                return [tuple(r) for r in rows]

        assert await files() == [("f1", "Счет.pdf", "")]
        await host.migrations.downgrade("shipments", BEFORE)
        async with host.db.engine.connect() as conn:
            rows = await conn.execute(text("SELECT file_ref FROM shipments_invoice_file"))
            assert [r[0] for r in rows] == ["f1"]
        await host.migrations.upgrade("shipments")
        assert await files() == [("f1", "Счет.pdf", "")]
    finally:
        await host.db.dispose()
