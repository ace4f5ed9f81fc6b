"""The orders sink: orders with their lines (services, vehicles, documents), the files their
documents name, the status transitions they publish."""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

import msgspec
from sqlalchemy import delete, insert, select, text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from kabinet.contrib import SinkResult
from kabinet.db import driver_connection
from kabinet_shipments import events as ev
from kabinet_shipments import models as m
from kabinet_shipments.labels import ORDER_STATUS
from kabinet_shipments.records import (
    OrderRecord,
)

if TYPE_CHECKING:
    from sqlalchemy import Table

    from kabinet.host import Host

from kabinet_shipments.sink_common import (
    Across,
    _detach,
    _rows,
    _update_by_id,
    across_reasons,
    chunks,
    day_and_time,
    last_of,
    references,
    source_zone,
    touch_feed,
    utc,
)

# -- orders ------------------------------------------------------------------------------------


def _search(r: OrderRecord) -> str:
    return f"{r.number} {r.cargo_name}".lower()[:600]


def order_digest(r: OrderRecord) -> str:
    """The digest of an order's own fields (16 hex digits) followed by that of its lines
    (services, vehicles, documents; 16 more): an order whose lines did not change has
    them neither rewritten nor compared."""
    head = msgspec.structs.replace(r, services=(), vehicles=(), documents=())
    lines = msgspec.msgpack.encode((r.services, r.vehicles, r.documents))
    return (
        hashlib.blake2b(msgspec.msgpack.encode(head), digest_size=8).hexdigest()
        + hashlib.blake2b(lines, digest_size=8).hexdigest()
    )


def _same_lines(stored: str, new: str) -> bool:
    return len(stored) == len(new) == 32 and stored[16:] == new[16:]


def _order_values(
    r: OrderRecord, cp_id: int, contract_id: int | None, zone: ZoneInfo, now: dt.datetime
) -> dict[str, Any]:
    loading_date, loading_at = day_and_time(r.loading_date, zone)
    delivery_planned, delivery_planned_at = day_and_time(r.delivery_planned, zone)
    delivery_actual, delivery_actual_at = day_and_time(r.delivery_actual, zone)
    return {
        "external_id": r.external_id,
        "counterparty_id": cp_id,
        "contract_id": contract_id,
        "number": r.number,
        "date": utc(r.date, zone),
        "status": r.status,
        "origin": r.origin,
        "destination": r.destination,
        "origin_key": m.place_key(r.origin),
        "destination_key": m.place_key(r.destination),
        "loading_date": loading_date,
        "loading_at": loading_at,
        "delivery_planned": delivery_planned,
        "delivery_planned_at": delivery_planned_at,
        "delivery_actual": delivery_actual,
        "delivery_actual_at": delivery_actual_at,
        "location": r.location,
        "location_at": utc(r.location_at, zone),
        "cost": r.cost,
        "currency": r.currency,
        "cargo_name": r.cargo_name,
        "cargo_weight": r.cargo_weight,
        "cargo_volume": r.cargo_volume,
        "cargo_places": r.cargo_places,
        "shipper": r.shipper,
        "consignee": r.consignee,
        "comment": r.comment,
        "search": _search(r),
        "hidden": r.deleted,
        "digest": order_digest(r),
        "updated_at": now,
    }


LINES: tuple[tuple[str, Table, tuple[str, ...]], ...] = (
    ("services", m.order_service, ("name", "quantity", "amount")),
    ("vehicles", m.vehicle, ("kind", "plate", "driver", "driver_phone", "status")),
    ("documents", m.document, ("kind", "number", "date", "file_ref", "file_name")),
)


def _line_values(attr: str, line: Any) -> dict[str, Any]:
    data = msgspec.structs.asdict(line)
    if attr == "documents":
        data["file_ref"] = data.pop("file")
    return data


async def _write_lines(
    conn: AsyncConnection, batch: dict[int, OrderRecord], known: set[int]
) -> int:
    """Make each order's lines what its record says; ``known``: orders that had lines.

    Returns the number of line rows written (inserted, updated or deleted).
    """
    writes = 0
    for attr, table, fields in LINES:
        stored: dict[tuple[int, int], Any] = {}
        for part in chunks(sorted(known)):
            result = await conn.execute(
                select(
                    table.c.id, table.c.order_id, table.c.line, *[table.c[f] for f in fields]
                ).where(table.c.order_id.in_(part))
            )
            for found in result:
                stored[(found.order_id, found.line)] = found
        inserts: list[dict[str, Any]] = []
        updates: list[dict[str, Any]] = []
        wanted: set[tuple[int, int]] = set()
        for order_id, record in batch.items():
            for number, line in enumerate(getattr(record, attr), start=1):
                values = _line_values(attr, line)
                wanted.add((order_id, number))
                old = stored.get((order_id, number))
                if old is None:
                    inserts.append({"order_id": order_id, "line": number, **values})
                elif any(_differs(old._mapping[f], values[f]) for f in fields):
                    updates.append({"_id": old.id, **values})
        gone = [old.id for key, old in stored.items() if key not in wanted]
        if inserts:
            await conn.execute(insert(table), inserts)
        if updates:
            await conn.execute(_update_by_id(table, updates[0]), updates)
        for part in chunks(gone):
            await conn.execute(delete(table).where(table.c.id.in_(part)))
        writes += len(inserts) + len(updates) + len(gone)
    return writes


def _differs(stored: Any, new: Any) -> bool:
    return bool(stored != new)


# -- the PostgreSQL bulk path ------------------------------------------------------------------
# The batch goes as one JSON array (encoded by msgspec; asyncpg's binary protocol, the
# caller's transaction) into one set-based statement per table,
# ``… FROM json_populate_recordset(NULL::<table>, $1)``: the same work as a hand-written
# loader, without a staging table created, filled by COPY and dropped per batch (round trips
# and catalog rows), nor arrays whose every element asyncpg inspects in Python.

ORDER_COLUMNS = tuple(c.name for c in m.order.c if c.name != "id")


def _rows_of(table: Table) -> str:
    """The rows of a JSON array (``$1``) as rows of ``table`` (its columns by name)."""
    return f"json_populate_recordset(NULL::{table.name}, $1::text::json) AS s"


def _json(rows: Sequence[Any]) -> str:
    return msgspec.json.encode(rows).decode()


def _count(status: str) -> int:
    """Rows from a command status (``UPDATE 12``, ``INSERT 0 3``)."""
    return int(status.rsplit(" ", 1)[-1])


async def _orders_pg(
    conn: AsyncConnection, new: list[dict[str, Any]], changed: list[dict[str, Any]]
) -> dict[str, int]:
    """Insert the new orders and update the changed ones; returns new ids by external id."""
    created: dict[str, int] = {}
    driver = await driver_connection(conn)
    cols = ", ".join(ORDER_COLUMNS)
    if new:
        rows = await driver.fetch(
            f"INSERT INTO shipments_order ({cols}) SELECT {cols} "  # noqa: S608 - names are ours
            f"FROM {_rows_of(m.order)} RETURNING id, external_id",
            _json(new),
        )
        created = {r["external_id"]: r["id"] for r in rows}
    if changed:
        sets = ", ".join(
            f"{c} = s.{c}" if c != "status_at" else "status_at = coalesce(s.status_at, o.status_at)"
            for c in ORDER_COLUMNS
        )
        await driver.execute(
            f"UPDATE shipments_order o SET {sets} FROM {_rows_of(m.order)} "  # noqa: S608
            "WHERE o.id = s.id",
            _json([{"id": v["_id"], **v} for v in changed]),
        )
    return created


async def _write_lines_pg(
    conn: AsyncConnection, batch: dict[int, OrderRecord], known: set[int]
) -> int:
    """The lines of ``batch`` made what the records say, set-based: one upsert that skips
    identical rows, one delete of the lines no longer sent."""
    writes = 0
    driver = await driver_connection(conn)
    for attr, table, fields in LINES:
        columns = ("order_id", "line", *fields)
        rows = []
        for order_id, record in batch.items():
            for number, line in enumerate(getattr(record, attr), start=1):
                rows.append({"order_id": order_id, "line": number, **_line_values(attr, line)})
        cols = ", ".join(columns)
        sets = ", ".join(f"{f} = excluded.{f}" for f in fields)
        mine = ", ".join(f"t.{f}" for f in fields)
        theirs = ", ".join(f"excluded.{f}" for f in fields)
        if rows:
            writes += _count(
                await driver.execute(
                    f"INSERT INTO {table.name} AS t ({cols}) SELECT {cols} "  # noqa: S608
                    f"FROM {_rows_of(table)} "
                    f"ON CONFLICT (order_id, line) DO UPDATE SET {sets} "
                    f"WHERE ({mine}) IS DISTINCT FROM ({theirs})",
                    _json(rows),
                )
            )
        if known:
            # Lines are numbered from 1: an order's lines past the number sent are gone
            # (each order's lines read through the index, see _by_keys).
            ids = sorted(known)
            sent_per_order = [len(getattr(batch[i], attr)) for i in ids]
            writes += _count(
                await driver.execute(
                    f"DELETE FROM {table.name} WHERE id IN (SELECT x.id "  # noqa: S608
                    "FROM unnest($1::int[], $2::int[]) AS o(id, n), LATERAL (SELECT id "
                    f"FROM {table.name} WHERE order_id = o.id AND line > o.n) AS x)",
                    ids,
                    sent_per_order,
                )
            )
    return writes


async def _foreign_files(
    conn: AsyncConnection,
    checked: Sequence[tuple[OrderRecord, Any, dict[str, Any]]],
    stored: dict[Any, Any],
) -> list[tuple[OrderRecord, str, int]]:
    """Orders whose documents name a file that an order of another counterparty lists
    (stored, or in this batch), with that file and its holder's counterparty id.

    A document's file is stored and downloaded by its id: listed by two companies' orders,
    it would be readable by both. Only the orders whose lines are written now (new, lines
    changed, moved to another counterparty) are checked; the others' were checked when
    they were written. Two counterparties claiming one new file in one batch: neither
    gets it."""
    candidates: list[tuple[OrderRecord, int, int, set[str]]] = []
    for r, cp, values in checked:
        if not r.documents:
            continue
        row = stored.get(r.external_id)
        if (
            row is None
            or row.counterparty_id != cp.id
            or not _same_lines(row.digest, values["digest"])
        ):
            files = {d.file for d in r.documents if d.file}
            if files:
                candidates.append((r, cp.id, row.id if row is not None else 0, files))
    if not candidates:
        return []
    wanted = set().union(*(files for *_rest, files in candidates))
    claims: dict[str, list[tuple[str, int]]] = {}
    for r, cp, _values in checked:
        for d in r.documents:
            if d.file in wanted:
                claims.setdefault(d.file, []).append((r.external_id, cp.id))
    held = await _file_holders(
        conn, sorted({(f, own) for _r, _cp, own, files in candidates for f in files})
    )
    found = []
    for r, cp_id, _own, files in candidates:
        for file in sorted(files):
            other = next(
                (
                    owner
                    for order, owner in (*held.get(file, ()), *claims[file])
                    if order != r.external_id and owner != cp_id
                ),
                None,
            )
            if other is not None:
                found.append((r, file, other))
                break
    return found


async def _file_holders(
    conn: AsyncConnection, wanted: Sequence[tuple[str, int]]
) -> dict[str, list[tuple[str, int]]]:
    """For each (file, order id): the other stored orders listing that file, as (external
    id, counterparty id). Few or none: an order's own documents are not read back."""
    found: dict[str, list[tuple[str, int]]] = {}
    if conn.dialect.name == "postgresql":
        result = await conn.execute(
            _HOLDERS, {"files": [f for f, _o in wanted], "own": [o for _f, o in wanted]}
        )
        for row in result:
            found.setdefault(row.file, []).append((row.external_id, row.counterparty_id))
        return found
    own: dict[str, set[int]] = {}
    for file, order_id in wanted:
        own.setdefault(file, set()).add(order_id)
    for part in chunks(sorted(own)):
        result = await conn.execute(
            select(
                m.document.c.file_ref,
                m.document.c.order_id,
                m.order.c.external_id,
                m.order.c.counterparty_id,
            )
            .join(m.order, m.order.c.id == m.document.c.order_id)
            .where(m.document.c.file_ref.in_(part))
        )
        for row in result:
            if own[row.file_ref] != {row.order_id}:
                found.setdefault(row.file_ref, []).append((row.external_id, row.counterparty_id))
    return found


_HOLDERS = text(
    # Each file through the index (see _by_keys: an IN list looks like the whole table to a
    # planner without statistics); only other orders' documents come back, and are joined.
    "SELECT k.file, o.external_id, o.counterparty_id "
    "FROM unnest(CAST(:files AS varchar[]), CAST(:own AS integer[])) AS k(file, own), "
    "LATERAL (SELECT order_id FROM shipments_document "
    "WHERE file_ref = k.file AND order_id <> k.own) AS d "
    "JOIN shipments_order o ON o.id = d.order_id"
)


async def apply_orders(
    host: Host, session: AsyncSession, records: Sequence[OrderRecord], *, notify: bool = True
) -> SinkResult:
    conn = await session.connection()
    now = host.clock.now()
    zone = source_zone(host)
    batch = last_of(records, "external_id")
    refs = await references(conn, batch)
    stored = await _rows(
        conn,
        m.order,
        "external_id",
        [r.external_id for r in batch],
        "id",
        "external_id",
        "digest",
        "status",
        "hidden",
        "counterparty_id",
    )
    new: list[tuple[OrderRecord, dict[str, Any]]] = []
    changed: list[dict[str, Any]] = []
    changed_records: dict[int, OrderRecord] = {}
    transitions: list[tuple[int, OrderRecord, str | None, int | None]] = []
    moved: list[tuple[int, int]] = []
    rejected: dict[str, str] = {}
    across: list[Across] = []
    checked: list[tuple[OrderRecord, Any, dict[str, Any]]] = []
    unchanged = hidden = 0
    for r in batch:
        resolved = refs.resolve(r.external_id, r.counterparty, r.contract, rejected, across)
        if resolved is None:
            continue
        cp, contract = resolved
        contract_id = contract.id if contract is not None else None
        checked.append((r, cp, _order_values(r, cp.id, contract_id, zone, now)))
    for r, file, owner in await _foreign_files(conn, checked, stored):
        across.append((r.external_id, "document file", file, owner, r.counterparty))
    refused = {key for key, *_rest in across}
    for r, cp, values in checked:
        if r.external_id in refused:
            continue
        row = stored.get(r.external_id)
        if row is None:
            if not r.deleted:
                new.append((r, {**values, "status_at": now}))
            continue
        if row.digest == values["digest"]:
            unchanged += 1
            continue
        if row.status != r.status:
            values["status_at"] = now
            transitions.append((row.id, r, row.status, cp.organization_id))
        else:
            values["status_at"] = None  # keep: filled below
        hidden += int(r.deleted and not row.hidden)
        changed.append({"_id": row.id, **values})
        if not _same_lines(row.digest, values["digest"]):
            changed_records[row.id] = r  # its lines are written too
        if row.counterparty_id != cp.id:
            moved.append((row.id, cp.id))
    created: dict[int, OrderRecord] = {}
    if conn.dialect.name == "postgresql":
        ids = await _orders_pg(conn, [values for _, values in new], changed)
        created = {ids[r.external_id]: r for r, _ in new}
        if created:
            await conn.execute(
                insert(m.status_change),
                [
                    {"order_id": oid, "status": r.status, "previous": None, "received_at": now}
                    for oid, r in created.items()
                ],
            )
        if created or changed_records:
            await _write_lines_pg(conn, {**created, **changed_records}, set(changed_records))
    else:
        created = await _orders_generic(conn, new, changed, changed_records, now)
    if transitions:
        await conn.execute(
            insert(m.status_change),
            [
                {"order_id": oid, "status": r.status, "previous": prev, "received_at": now}
                for oid, r, prev, _ in transitions
            ],
        )
        await _publish_transitions(host, session, transitions, notify=notify)
    await _detach(conn, m.invoice, "order_id", moved)
    rejected.update(await across_reasons(conn, across))
    await touch_feed(conn, "order", now)
    return SinkResult(
        created=len(created),
        updated=len(changed) - hidden,
        hidden=hidden,
        unchanged=unchanged,
        rejected=rejected,
    )


async def _orders_generic(
    conn: AsyncConnection,
    new: list[tuple[OrderRecord, dict[str, Any]]],
    changed: list[dict[str, Any]],
    changed_records: dict[int, OrderRecord],
    now: dt.datetime,
) -> dict[int, OrderRecord]:
    """SQLite (and any other database): multi-row INSERT, executemany UPDATE, lines diffed
    in Python. Returns the created orders by id."""
    created: dict[int, OrderRecord] = {}
    if new:
        for part in chunks(new):
            result = await conn.execute(
                insert(m.order).returning(
                    m.order.c.id, m.order.c.external_id, sort_by_parameter_order=True
                ),
                [values for _, values in part],
            )
            for (record, _), row in zip(part, result, strict=True):
                created[row.id] = record
        await conn.execute(
            insert(m.status_change),
            [
                {"order_id": oid, "status": r.status, "previous": None, "received_at": now}
                for oid, r in created.items()
            ],
        )
    if changed:
        with_status = [c for c in changed if c["status_at"] is not None]
        without = [
            {k: v for k, v in c.items() if k != "status_at"}
            for c in changed
            if c["status_at"] is None
        ]
        for group in (with_status, without):
            if group:
                await conn.execute(_update_by_id(m.order, group[0]), group)
    lines = {**created, **changed_records}
    if lines:
        await _write_lines(conn, lines, set(changed_records))
    return created


async def _publish_transitions(
    host: Host,
    session: AsyncSession,
    transitions: list[tuple[int, OrderRecord, str | None, int | None]],
    *,
    notify: bool = True,
) -> None:
    """One event per real status change (and "delivered" when it became done); with
    ``notify`` False (a first load, a backfill) the events say nobody is to be told."""
    zone = source_zone(host)
    for order_id, r, previous, organization_id in transitions:
        if organization_id is None or r.deleted:
            continue  # nobody to tell yet: the counterparty is not linked to an organization
        await host.events.publish(
            session,
            ev.STATUS_CHANGED,
            ev.OrderStatusChanged(
                order_id=order_id,
                number=r.number,
                organization_id=organization_id,
                status=r.status,
                previous=previous,
                status_ru=ORDER_STATUS[r.status]["ru"],
                status_en=ORDER_STATUS[r.status]["en"],
                origin=r.origin,
                destination=r.destination,
                notify=notify,
            ),
        )
        if r.status == "done":
            await host.events.publish(
                session,
                ev.DELIVERED,
                ev.OrderDelivered(
                    order_id=order_id,
                    number=r.number,
                    organization_id=organization_id,
                    origin=r.origin,
                    destination=r.destination,
                    delivered_on=(
                        day_and_time(r.delivery_actual, zone)[0] or host.clock.now().date()
                    ).isoformat(),
                    notify=notify,
                ),
            )


# -- invoices ----------------------------------------------------------------------------------
