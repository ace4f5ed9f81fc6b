"""Helpers of the integration tests: counting what the sinks' tables hold."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select

from kabinet.host import Host


async def count(host: Host, table: Any, *where: Any) -> int:
    async with host.db.sessionmaker() as s:
        return int(
            (await s.execute(select(func.count()).select_from(table).where(*where))).scalar_one()
        )


async def snapshot(host: Host) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of the entity tables, for comparing two states."""
    from kabinet_companies.models import counterparty
    from kabinet_shipments import models as sm

    out = {}
    async with host.db.sessionmaker() as s:
        for table in (
            counterparty,
            sm.contract,
            sm.order,
            sm.invoice,
            sm.order_service,
            sm.vehicle,
            sm.document,
        ):
            cols = [
                c
                for c in table.c
                if c.name not in ("id", "order_id", "updated_at", "created_at", "status_at")
            ]
            rows = await s.execute(select(*cols).order_by(*cols[:2]))
            out[table.name] = sorted(tuple(map(str, r)) for r in rows)
    return out
