"""The revision that gives outbound client requests and file fetches their counterparty
fills it in for the rows already there (a request: the counterparty its changed fields
name, else the one its order was applied with; a file: its order's or invoice's
counterparty) and goes back, on PostgreSQL and on SQLite."""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import insert, inspect, select, text

from kabinet.host import Host
from kabinet_companies import models as cm
from kabinet_integration import models as m
from kabinet_shipments import models as sm

pytestmark = pytest.mark.smoke

BEFORE = "d7a3c5e1f902"
EMPTY = "00000000-0000-0000-0000-000000000000"
NOW = dt.datetime(2026, 12, 7, tzinfo=dt.UTC)


def _body(changes: dict[str, Any] | None, order: str = EMPTY) -> dict[str, Any]:
    body: dict[str, Any] = {"Заявка_Key": order, "ИдентификаторПортала": "x"}
    if changes is not None:
        body["ИзмененныеПоля"] = json.dumps(changes, ensure_ascii=False)
    return body


REQUESTS = {
    # portal id: (body, the counterparty it must get)
    "new-a": (_body({"Контрагент_Key": "cp-a", "Откуда": "Москва"}), "cp-a"),
    "edit-b": (_body({"Откуда": "Тверь"}, order="ord-b"), "cp-b"),  # its order's
    "cancel-x": (_body(None, order="ord-unknown"), None),  # an order never applied
    "empty": ({}, None),  # never written in 1C's names
    "empty-cp": (_body({"Контрагент_Key": EMPTY}), None),
}
FILES = {"doc-b": "cp-b", "form-a": "cp-a", "lost": None}


async def _columns(host: Host, table: str) -> set[str]:
    async with host.db.engine.connect() as conn:
        found = await conn.run_sync(lambda c: inspect(c).get_columns(table))
    return {str(c["name"]) for c in found}


async def _fill(host: Host) -> None:
    """Counterparties of two organizations, B's order with a document, A's invoice with
    a print form, the order known to the sync, and the rows of the two queues."""
    async with host.db.engine.begin() as conn:
        ids = {}
        for n, name in enumerate(("cp-a", "cp-b"), start=1):
            await conn.execute(
                insert(cm.organization).values(
                    id=790_000 + n, name=name, created_at=NOW, updated_at=NOW
                )
            )
            ids[name] = await conn.scalar(
                insert(cm.counterparty)
                .values(
                    organization_id=790_000 + n,
                    external_id=name,
                    name=name,
                    inn=f"77000000{n}",
                    created_at=NOW,
                    updated_at=NOW,
                )
                .returning(cm.counterparty.c.id)
            )
        order = await conn.scalar(
            insert(sm.order)
            .values(
                external_id="ord-b",
                counterparty_id=ids["cp-b"],
                number="1",
                date=NOW,
                status="registered",
                origin="Москва",
                destination="Казань",
                cost=Decimal(1),
                currency="RUB",
                digest="d",
                status_at=NOW,
                updated_at=NOW,
            )
            .returning(sm.order.c.id)
        )
        await conn.execute(
            insert(sm.document).values(order_id=order, line=1, kind="ТН", file_ref="doc-b")
        )
        invoice = await conn.scalar(
            insert(sm.invoice)
            .values(
                external_id="inv-a",
                counterparty_id=ids["cp-a"],
                number="1",
                date=NOW.date(),
                amount=Decimal(1),
                paid=Decimal(0),
                currency="RUB",
                payment_status="unpaid",
                digest="d",
                created_at=NOW,
                updated_at=NOW,
            )
            .returning(sm.invoice.c.id)
        )
        await conn.execute(insert(sm.invoice_file).values(invoice_id=invoice, file_ref="form-a"))
        await conn.execute(
            insert(m.known).values(
                source="onec",
                entity="order",
                ref="ord-b",
                version="v",
                identity={"external_id": "ord-b", "counterparty": "cp-b"},
                deleted=0,
            )
        )
        for portal_id, (body, _) in REQUESTS.items():
            await conn.execute(
                text(
                    "INSERT INTO integration_outbound (source, portal_id, body, state,"
                    " attempts, created_at, updated_at) VALUES ('onec', :portal_id, :body,"
                    " 'failed', 1, :now, :now)"
                ),
                {"portal_id": portal_id, "body": json.dumps(body), "now": NOW},
            )
        for ref in FILES:
            await conn.execute(
                text(
                    "INSERT INTO integration_file (source, ref, key, entity, state, attempts,"
                    " last_error, updated_at) VALUES ('onec', :ref, :ref, 'file', 'failed', 5,"
                    " 'gone', :now)"
                ),
                {"ref": ref, "now": NOW},
            )


async def test_the_revision_ties_requests_and_files_and_goes_back(
    empty_database_url: str,
) -> None:
    host = await Host.create(None, env={"KABINET__HOST__DATABASE_URL": empty_database_url})
    try:
        await host.migrations.upgrade("companies")
        await host.migrations.upgrade("shipments")
        await host.migrations.upgrade("integration", BEFORE)
        assert "counterparty" not in await _columns(host, "integration_outbound")
        assert "counterparty" not in await _columns(host, "integration_file")
        await _fill(host)

        await host.migrations.upgrade("integration")
        assert await host.migrations.diff("integration") == []
        async with host.db.engine.connect() as conn:
            rows = await conn.execute(select(m.outbound.c.portal_id, m.outbound.c.counterparty))
            requests = {str(r.portal_id): r.counterparty for r in rows}
            rows = await conn.execute(select(m.file.c.ref, m.file.c.counterparty))
            files = {str(r.ref): r.counterparty for r in rows}
        assert requests == {key: want for key, (_, want) in REQUESTS.items()}
        assert files == FILES

        await host.migrations.downgrade("integration", BEFORE)
        assert "counterparty" not in await _columns(host, "integration_outbound")
        assert "counterparty" not in await _columns(host, "integration_file")
    finally:
        await host.db.dispose()
