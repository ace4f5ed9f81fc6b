"""The revision that gives quarantined records their counterparty fills it in for the
records already there (by the reference configuration's names) and goes back, on
PostgreSQL and on SQLite."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from sqlalchemy import inspect, text

from kabinet.host import Host

pytestmark = pytest.mark.smoke

BEFORE = "a41c7d2e9b55"
EMPTY = "00000000-0000-0000-0000-000000000000"
RECORDS = {
    # ref: (entity, payload, the counterparty it must get)
    "cp-1": ("counterparty", {"Ref_Key": "cp-1", "ИНН": "123"}, "cp-1"),
    "k-1": ("contract", {"Ref_Key": "k-1", "Owner_Key": "cp-2"}, "cp-2"),
    "o-1": ("order", {"Ref_Key": "o-1", "Контрагент_Key": "cp-3"}, "cp-3"),
    "i-1": ("invoice", {"Ref_Key": "i-1", "Контрагент_Key": "cp-4"}, "cp-4"),
    "o-2": ("order", {"Ref_Key": "o-2"}, None),  # names none
    "o-3": ("order", {"Ref_Key": "o-3", "Контрагент_Key": EMPTY}, None),
    "a-1": ("answer", {"Ref_Key": "a-1", "Контрагент_Key": "cp-5"}, None),
    "o-4": ("order", None, None),  # no object kept
}


async def _columns(host: Host) -> set[str]:
    async with host.db.engine.connect() as conn:
        found = await conn.run_sync(lambda c: inspect(c).get_columns("integration_quarantine"))
    return {str(c["name"]) for c in found}


async def test_the_revision_fills_in_the_counterparty_and_goes_back(
    empty_database_url: str,
) -> None:
    host = await Host.create(None, env={"KABINET__HOST__DATABASE_URL": empty_database_url})
    try:
        await host.migrations.upgrade("companies")
        await host.migrations.upgrade("shipments")
        await host.migrations.upgrade("integration", BEFORE)
        assert "counterparty" not in await _columns(host)
        now = dt.datetime(2026, 12, 7, tzinfo=dt.UTC)
        async with host.db.engine.begin() as conn:
            for ref, (entity, payload, _) in RECORDS.items():
                await conn.execute(
                    text(
                        "INSERT INTO integration_quarantine (source, entity, ref, payload,"
                        " reason, state, attempts, created_at, updated_at) VALUES ('onec',"
                        " :entity, :ref, :payload, 'refused', 'open', 1, :now, :now)"
                    ),
                    {
                        "entity": entity,
                        "ref": ref,
                        "payload": json.dumps(payload) if payload is not None else None,
                        "now": now,
                    },
                )

        await host.migrations.upgrade("integration")
        assert await host.migrations.diff("integration") == []
        async with host.db.engine.connect() as conn:
            rows = await conn.execute(text("SELECT ref, counterparty FROM integration_quarantine"))
            got = {str(r.ref): r.counterparty for r in rows}
        assert got == {ref: want for ref, (_, _, want) in RECORDS.items()}

        await host.migrations.downgrade("integration", BEFORE)
        assert "counterparty" not in await _columns(host)
    finally:
        await host.db.dispose()
