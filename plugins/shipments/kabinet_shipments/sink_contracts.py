"""The contracts sink and the balances sink (a register's balance, by contract)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from sqlalchemy import insert
from sqlalchemy.ext.asyncio import AsyncSession

from kabinet.contrib import Rejection, SinkResult
from kabinet_shipments import models as m
from kabinet_shipments.records import (
    BalanceRecord,
    ContractRecord,
)

if TYPE_CHECKING:
    from kabinet.host import Host

from kabinet_shipments.sink_common import (
    _aware,
    _detach,
    _rows,
    _update_by_id,
    counterparties,
    last_of,
    source_zone,
    touch_feed,
    utc,
)


def _contract_values(r: ContractRecord, cp_id: int, now: dt.datetime) -> dict[str, Any]:
    return {
        "external_id": r.external_id,
        "counterparty_id": cp_id,
        "number": r.number,
        "name": r.name,
        "date": r.date,
        "start_date": r.start_date,
        "end_date": r.end_date,
        "status": r.status,
        "currency": r.currency,
        "credit_limit": r.credit_limit,
        "hidden": r.deleted,
        "digest": r.digest(),
        "updated_at": now,
    }


async def apply_contracts(
    host: Host, session: AsyncSession, records: Sequence[ContractRecord], *, notify: bool = True
) -> SinkResult:
    conn = await session.connection()
    now = host.clock.now()
    batch = last_of(records, "external_id")
    cps = await counterparties(conn, (r.counterparty for r in batch))
    stored = await _rows(
        conn,
        m.contract,
        "external_id",
        [r.external_id for r in batch],
        "id",
        "external_id",
        "digest",
        "hidden",
        "counterparty_id",
    )
    new: list[dict[str, Any]] = []
    changed: list[dict[str, Any]] = []
    moved: list[tuple[int, int]] = []
    rejected: dict[str, str] = {}
    unchanged = hidden = 0
    for r in batch:
        cp = cps.get(r.counterparty)
        if cp is None:
            rejected[r.external_id] = Rejection(
                f"unknown counterparty {r.counterparty!r}",
                "unknown_counterparty",
                value=r.counterparty,
            )
            continue
        row = stored.get(r.external_id)
        values = _contract_values(r, cp.id, now)
        if row is None:
            if not r.deleted:
                new.append(values)
        elif row.digest == values["digest"]:
            unchanged += 1
        else:
            hidden += int(r.deleted and not row.hidden)
            changed.append({"_id": row.id, **values})
            if row.counterparty_id != cp.id:
                moved.append((row.id, cp.id))
    if new:
        await conn.execute(insert(m.contract), new)
    if changed:
        await conn.execute(_update_by_id(m.contract, changed[0]), changed)
    await _detach(conn, m.order, "contract_id", moved)
    await _detach(conn, m.invoice, "contract_id", moved)
    await touch_feed(conn, "contract", now)
    return SinkResult(
        created=len(new),
        updated=len(changed) - hidden,
        hidden=hidden,
        unchanged=unchanged,
        rejected=rejected,
    )


async def apply_balances(
    host: Host, session: AsyncSession, records: Sequence[BalanceRecord], *, notify: bool = True
) -> SinkResult:
    """The operational balance of each contract, with the time it was computed."""
    conn = await session.connection()
    now = host.clock.now()
    zone = source_zone(host)
    batch = last_of(records, "contract")
    stored = await _rows(
        conn,
        m.contract,
        "external_id",
        [r.contract for r in batch],
        "id",
        "external_id",
        "balance",
        "balance_at",
    )
    changed: list[dict[str, Any]] = []
    rejected: dict[str, str] = {}
    unchanged = 0
    for r in batch:
        row = stored.get(r.contract)
        if row is None:
            rejected[r.contract] = Rejection(
                f"unknown contract {r.contract!r}", "unknown_contract", value=r.contract
            )
            continue
        at = utc(r.at, zone) or now
        same_at = r.at is None or (row.balance_at is not None and _aware(row.balance_at) == at)
        if row.balance is not None and row.balance == r.balance and same_at:
            unchanged += 1
            continue
        changed.append({"_id": row.id, "balance": r.balance, "balance_at": at})
    if changed:
        await conn.execute(_update_by_id(m.contract, changed[0]), changed)
    await touch_feed(conn, "balance", now)
    return SinkResult(updated=len(changed), unchanged=unchanged, rejected=rejected)
