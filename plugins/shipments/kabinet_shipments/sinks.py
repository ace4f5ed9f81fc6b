"""Entity sinks: batches from the production system applied in bulk, idempotently.

Each ``apply_*`` runs in the caller's transaction (the integration app's, or the demo
generator's) and follows the same steps: read what is stored for the whole batch in a few
queries, compare each record's digest with the stored one (identical: nothing is written),
insert the new ones in one statement, update the changed ones in one ``executemany``,
diff their lines (services, vehicles, documents) so an unchanged line is not rewritten,
and publish the events of real changes only. A record marked ``deleted`` is hidden; a
record whose counterparty or contract is unknown is refused by key with the reason.

Every reference a sink writes stays inside one counterparty (the production system's data
can point across: an invoice of one client naming another client's order would show that
order's number to the wrong company). A record is refused by key, with a reason naming
both counterparties, when it refers to an object of another counterparty: an order's or
an invoice's contract, an invoice's order, an order's document file listed by an order of
another counterparty, an answer naming another 1C request than the one the portal's
request is. The integration app sets a refused record aside in quarantine while the rest
of the batch is applied, and tries it again at the end of the run and in every later run:

- what is referred to comes in the same page: the sinks run in dependency order
  (contracts, orders, invoices), so it is there when the record is checked;
- it comes later (another page or run): an invoice whose order is not received yet is
  refused as "unknown order" (like an unknown contract) rather than stored without its
  link, and goes through, checked, once the order is there;
- it later moves to another counterparty (1C changes an order's counterparty or a
  contract's owner): the move is applied (1C is the authority on its own object, and the
  old company must stop seeing it), and the records of other counterparties that linked
  to it lose the link in the same transaction (``order_id`` or ``contract_id`` set to
  NULL, their digest emptied); received again, they are checked again and refused while
  they still point across. Requests made on a moved order stay with it (history).

Balances name only their contract (the register is asked for by contract), so they have
nothing to cross.
"""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import uuid
from collections.abc import Iterable, Iterator, Sequence
from typing import TYPE_CHECKING, Any, TypeVar
from zoneinfo import ZoneInfo

import msgspec
from sqlalchemy import bindparam, delete, insert, select, text, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from kabinet.contrib import EntitySink, SinkResult
from kabinet.db import driver_connection
from kabinet_companies.models import counterparty
from kabinet_shipments import events as ev
from kabinet_shipments import models as m
from kabinet_shipments.invoice_files import apply_invoice_files, invoice_file_key
from kabinet_shipments.labels import ORDER_STATUS, REQUEST_STATUS
from kabinet_shipments.records import (
    BalanceRecord,
    ContractRecord,
    InvoiceFilesRecord,
    InvoiceRecord,
    OrderRecord,
    Record,
    RequestAnswerRecord,
)
from kabinet_shipments.services import file_key
from kabinet_shipments.settings import Settings

if TYPE_CHECKING:
    from sqlalchemy import Table

    from kabinet.host import Host

CHUNK = 2000
R = TypeVar("R", bound=Record)
T = TypeVar("T")


def chunks(items: Sequence[T], size: int = CHUNK) -> Iterator[Sequence[T]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def source_zone(host: Host) -> ZoneInfo:
    return ZoneInfo(host.plugin_settings("shipments", Settings).source_timezone)


def utc(value: dt.datetime | None, zone: ZoneInfo) -> dt.datetime | None:
    """A production-system time (local when naive) in UTC."""
    if value is None:
        return None
    return _utc(value, zone)


@functools.lru_cache(maxsize=65536)
def _utc(value: dt.datetime, zone: ZoneInfo) -> dt.datetime:
    # Orders share their times (a day's loading hour): the zone's rules are looked up once.
    if value.tzinfo is None:
        value = value.replace(tzinfo=zone)
    return value.astimezone(dt.UTC)


def day_and_time(
    value: dt.datetime | None, zone: ZoneInfo
) -> tuple[dt.date | None, dt.datetime | None]:
    """A production-system date with its time of day as the day it is there and, where it
    has a time, the instant in UTC. 1C writes a date without a time as local midnight
    (``2026-12-01T00:00:00``): that is the day alone, no instant."""
    if value is None:
        return None, None
    local = value if value.tzinfo is None else value.astimezone(zone)
    if local.hour == local.minute == local.second == local.microsecond == 0:
        return local.date(), None
    return local.date(), _utc(value, zone)


def last_of(records: Iterable[R], key: str) -> list[R]:
    """One record per key (the last one received wins), in the order first seen."""
    found: dict[str, R] = {}
    for record in records:
        found[str(getattr(record, key))] = record
    return list(found.values())


async def _rows(
    conn: AsyncConnection, table: Table, column: str, keys: Sequence[Any], *cols: str
) -> dict[Any, Any]:
    """Stored rows of ``table`` whose ``column`` (unique) is in ``keys``, by that column."""
    found: dict[Any, Any] = {}
    wanted = [table.c[c] for c in cols] if cols else list(table.c)
    if column not in [c.name for c in wanted]:
        wanted.append(table.c[column])
    if conn.dialect.name == "postgresql":
        if keys:
            result = await conn.execute(_by_keys(table, column, tuple(wanted)), {"keys": keys})
            found = {row._mapping[column]: row for row in result}
        return found
    for part in chunks(list(keys)):
        result = await conn.execute(select(*wanted).where(table.c[column].in_(part)))
        for row in result:
            found[row._mapping[column]] = row
    return found


@functools.cache
def _by_keys(table: Table, column: str, wanted: tuple[Any, ...]) -> Any:
    """PostgreSQL: the rows of ``table`` by a unique ``column``, looked up key by key through
    its index (a LATERAL join): an ``IN`` list of a thousand keys looks like the whole table
    to a planner without statistics (a table just loaded), which then reads every row of it
    for every batch."""
    dialect = postgresql.dialect()  # type: ignore[no-untyped-call]
    kind = table.c[column].type.compile(dialect=dialect)
    cols = ", ".join(c.name for c in wanted)
    return text(
        f"SELECT t.* FROM unnest(CAST(:keys AS {kind}[])) AS k(key), "  # noqa: S608 - ours
        f"LATERAL (SELECT {cols} FROM {table.name} WHERE {column} = k.key LIMIT 1) AS t"
    ).columns(*wanted)


async def counterparties(conn: AsyncConnection, keys: Iterable[str]) -> dict[str, Any]:
    """Counterparties by ``external_id``: their id and organization."""
    return await _rows(
        conn,
        counterparty,
        "external_id",
        sorted(set(keys)),
        "external_id",
        "id",
        "organization_id",
    )


async def touch_feed(conn: AsyncConnection, entity: str, now: dt.datetime) -> None:
    """Remember when data of ``entity`` was last received (shown on the pages)."""
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    stmt = dialect.insert(m.feed).values(entity=entity, received_at=now)
    await conn.execute(
        stmt.on_conflict_do_update(index_elements=["entity"], set_={"received_at": now})
    )


# -- references across counterparties -------------------------------------------------------

Across = tuple[str, str, str, int, str]
"""A record refused for a reference across counterparties: (its key, what it refers to,
the reference, the owner's counterparty id, the record's counterparty)."""


async def across_reasons(conn: AsyncConnection, refused: Sequence[Across]) -> dict[str, str]:
    """Reasons for records that refer to another counterparty's object, naming both
    counterparties by external id (read in one query, only when there are any)."""
    if not refused:
        return {}
    owners = sorted({owner for *_rest, owner, _holder in refused})
    names = {
        row.id: row.external_id
        for row in await conn.execute(
            select(counterparty.c.id, counterparty.c.external_id).where(
                counterparty.c.id.in_(owners)
            )
        )
    }
    return {
        key: f"{what} {ref!r} belongs to another counterparty: {names.get(owner)!r}, not {holder!r}"
        for key, what, ref, owner, holder in refused
    }


async def _detach(
    conn: AsyncConnection, table: Table, column: str, moved: Sequence[tuple[int, int]]
) -> None:
    """Links of ``table`` to objects that moved to another counterparty (object id, new
    counterparty id) removed from the rows of other counterparties; their digest emptied,
    so the record is checked again when it comes again."""
    if moved:
        await conn.execute(
            update(table)
            .where(
                table.c[column] == bindparam("_target"),
                table.c.counterparty_id != bindparam("_owner"),
            )
            .values({column: None, "digest": ""}),
            [{"_target": target, "_owner": owner} for target, owner in moved],
        )


# -- contracts ---------------------------------------------------------------------------------


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
            rejected[r.external_id] = f"unknown counterparty {r.counterparty!r}"
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


def _update_by_id(table: Table, sample: dict[str, Any]) -> Any:
    """An ``executemany`` UPDATE by id: the SET clause is the keys of the parameters."""
    del sample
    return update(table).where(table.c.id == bindparam("_id"))


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
            rejected[r.contract] = f"unknown contract {r.contract!r}"
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


def _aware(value: dt.datetime) -> dt.datetime:
    """SQLite gives back naive UTC times."""
    return value if value.tzinfo is not None else value.replace(tzinfo=dt.UTC)


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
    cps = await counterparties(conn, (r.counterparty for r in batch))
    contracts = await _rows(
        conn,
        m.contract,
        "external_id",
        sorted({r.contract for r in batch if r.contract}),
        "id",
        "external_id",
        "counterparty_id",
    )
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
        cp = cps.get(r.counterparty)
        if cp is None:
            rejected[r.external_id] = f"unknown counterparty {r.counterparty!r}"
            continue
        contract_id = None
        if r.contract:
            found = contracts.get(r.contract)
            if found is None:
                rejected[r.external_id] = f"unknown contract {r.contract!r}"
                continue
            if found.counterparty_id != cp.id:
                across.append(
                    (r.external_id, "contract", r.contract, found.counterparty_id, r.counterparty)
                )
                continue
            contract_id = found.id
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


def _invoice_values(
    r: InvoiceRecord, cp_id: int, contract_id: int | None, order_id: int | None, now: dt.datetime
) -> dict[str, Any]:
    return {
        "external_id": r.external_id,
        "counterparty_id": cp_id,
        "contract_id": contract_id,
        "order_id": order_id,
        "number": r.number,
        "date": r.date,
        "amount": r.amount,
        "paid": r.paid,
        "currency": r.currency,
        "due_date": r.due_date,
        "payment_status": r.payment_status,
        "hidden": r.deleted,
        "digest": r.digest(),
        "updated_at": now,
    }


def invoice_event(
    row: Any, organization_id: int, *, notify: bool = True, changed_at: str = ""
) -> ev.InvoiceEvent:
    return ev.InvoiceEvent(
        invoice_id=row.id,
        number=row.number,
        organization_id=organization_id,
        amount=f"{row.amount:.2f}",
        debt=f"{row.amount - row.paid:.2f}",
        currency=row.currency,
        date=row.date.isoformat(),
        due_date=row.due_date.isoformat() if row.due_date else "",
        notify=notify,
        changed_at=changed_at,
    )


def _overdue(r: InvoiceRecord, today: dt.date) -> bool:
    """Unpaid past its due date (the overdue job's rule)."""
    return r.due_date is not None and r.due_date < today and r.paid < r.amount


async def apply_invoices(
    host: Host, session: AsyncSession, records: Sequence[InvoiceRecord], *, notify: bool = True
) -> SinkResult:
    conn = await session.connection()
    now = host.clock.now()
    today = now.astimezone(ZoneInfo(host.settings.host.timezone)).date()
    batch = last_of(records, "external_id")
    cps = await counterparties(conn, (r.counterparty for r in batch))
    contracts = await _rows(
        conn,
        m.contract,
        "external_id",
        sorted({r.contract for r in batch if r.contract}),
        "id",
        "external_id",
        "counterparty_id",
    )
    orders = await _rows(
        conn,
        m.order,
        "external_id",
        sorted({r.order for r in batch if r.order}),
        "id",
        "external_id",
        "counterparty_id",
    )
    stored = await _rows(
        conn,
        m.invoice,
        "external_id",
        [r.external_id for r in batch],
        "id",
        "external_id",
        "digest",
        "hidden",
    )
    new: list[dict[str, Any]] = []
    changed: list[dict[str, Any]] = []
    rejected: dict[str, str] = {}
    across: list[Across] = []
    unchanged = hidden = 0
    for r in batch:
        cp = cps.get(r.counterparty)
        if cp is None:
            rejected[r.external_id] = f"unknown counterparty {r.counterparty!r}"
            continue
        contract = contracts.get(r.contract) if r.contract else None
        if r.contract and contract is None:
            rejected[r.external_id] = f"unknown contract {r.contract!r}"
            continue
        if contract is not None and contract.counterparty_id != cp.id:
            across.append(
                (
                    r.external_id,
                    "contract",
                    str(r.contract),
                    contract.counterparty_id,
                    r.counterparty,
                )
            )
            continue
        order = orders.get(r.order) if r.order else None
        if r.order and order is None and not r.deleted:
            # Not received yet: set aside and tried again (linked, checked) once it is.
            rejected[r.external_id] = f"unknown order {r.order!r} (not received yet)"
            continue
        if order is not None and order.counterparty_id != cp.id:
            across.append(
                (r.external_id, "order", str(r.order), order.counterparty_id, r.counterparty)
            )
            continue
        values = _invoice_values(
            r, cp.id, contract.id if contract else None, order.id if order else None, now
        )
        row = stored.get(r.external_id)
        if row is None:
            if not r.deleted:
                # Overdue before a first load or backfill brought it: no reminder either.
                quiet = not notify and _overdue(r, today)
                new.append({**values, "created_at": now, "overdue_at": now if quiet else None})
        elif row.digest == values["digest"]:
            unchanged += 1
        else:
            hidden += int(r.deleted and not row.hidden)
            changed.append({"_id": row.id, **values})
    if new:
        org_of = {cp.id: cp.organization_id for cp in cps.values()}
        for part in chunks(new):
            result = await conn.execute(
                insert(m.invoice).returning(
                    m.invoice.c.id,
                    m.invoice.c.number,
                    m.invoice.c.amount,
                    m.invoice.c.paid,
                    m.invoice.c.currency,
                    m.invoice.c.date,
                    m.invoice.c.due_date,
                    m.invoice.c.counterparty_id,
                    sort_by_parameter_order=True,
                ),
                part,
            )
            for row in result.all():
                organization_id = org_of.get(row.counterparty_id)
                if organization_id is not None:
                    await host.events.publish(
                        session,
                        ev.INVOICE_CREATED,
                        invoice_event(row, organization_id, notify=notify),
                    )
    if changed:
        await conn.execute(_update_by_id(m.invoice, changed[0]), changed)
    rejected.update(await across_reasons(conn, across))
    await touch_feed(conn, "invoice", now)
    return SinkResult(
        created=len(new),
        updated=len(changed) - hidden,
        hidden=hidden,
        unchanged=unchanged,
        rejected=rejected,
    )


# -- answers to client requests ----------------------------------------------------------------


async def apply_answers(
    host: Host,
    session: AsyncSession,
    records: Sequence[RequestAnswerRecord],
    *,
    notify: bool = True,
) -> SinkResult:
    """The production system's answer to a request: recorded, shown, told to the client."""
    conn = await session.connection()
    now = host.clock.now()
    batch = last_of(records, "portal_id")
    keys = {r.portal_id: _portal_key(r.portal_id) for r in batch}
    rows = await _rows(conn, m.request, "portal_key", sorted({k for k in keys.values() if k}))
    ids = [int(r.portal_id) for r in batch if keys[r.portal_id] is None and r.portal_id.isdigit()]
    legacy = await _rows(conn, m.request, "id", sorted(ids))
    rejected: dict[str, str] = {}
    updated = unchanged = 0
    for r in batch:
        key = keys[r.portal_id]
        if key is not None:
            row = rows.get(key)
            if row is None:
                # Another portal's request on the same 1C (staging beside production), or
                # one this portal no longer holds: not this portal's business.
                unchanged += 1
                continue
        else:
            # A row id, the key before keys were UUIDs: every portal has a request "1", so
            # only the request 1C already linked to this very document takes the answer.
            row = legacy.get(int(r.portal_id)) if r.portal_id.isdigit() else None
            if row is None or not r.external_id or r.external_id != row.external_id:
                rejected[r.portal_id] = (
                    f"ИдентификаторПортала {r.portal_id!r} is not a request key of this portal"
                )
                continue
        if r.external_id and row.external_id and r.external_id != row.external_id:
            # The answer of one 1C request naming another one's portal request (of
            # another order, perhaps another company): not written on it.
            rejected[r.portal_id] = (
                f"answer of 1C request {r.external_id!r} names portal request "
                f"{r.portal_id!r}, which is 1C request {row.external_id!r}"
            )
            continue
        status = row.status if r.status == "new" else r.status
        if (status, r.answer, r.external_id or row.external_id) == (
            row.status,
            row.answer,
            row.external_id,
        ):
            unchanged += 1
            continue
        await conn.execute(
            update(m.request)
            .where(m.request.c.id == row.id)
            .values(
                status=status,
                answer=r.answer,
                external_id=r.external_id or row.external_id,
                updated_at=now,
            )
        )
        updated += 1
        if (status, r.answer) == (row.status, row.answer):
            continue  # only the production system's id arrived
        await conn.execute(
            insert(m.request_event).values(request_id=row.id, status=status, text=r.answer, at=now)
        )
        await _publish_answer(host, session, row, status, r.answer, notify=notify)
    await touch_feed(conn, "request", now)
    return SinkResult(updated=updated, unchanged=unchanged, rejected=rejected)


def _portal_key(value: str) -> str | None:
    """A request's portal key (a UUID, as written) from an answer; None if it is none."""
    try:
        return str(uuid.UUID(value))
    except ValueError:
        return None


async def _publish_answer(
    host: Host, session: AsyncSession, row: Any, status: str, answer: str, *, notify: bool = True
) -> None:
    conn = await session.connection()
    found = (
        await conn.execute(
            select(m.order.c.number, counterparty.c.organization_id)
            .join(counterparty, counterparty.c.id == m.order.c.counterparty_id)
            .where(m.order.c.id == row.order_id)
        )
    ).one()
    if found.organization_id is None:
        return
    await host.events.publish(
        session,
        ev.REQUEST_ANSWERED,
        ev.RequestAnswered(
            request_id=row.id,
            order_id=row.order_id,
            order_number=found.number,
            organization_id=found.organization_id,
            person_id=row.person_id,
            kind=row.kind,
            status=status,
            status_ru=REQUEST_STATUS[status]["ru"],
            status_en=REQUEST_STATUS[status]["en"],
            answer=answer,
            notify=notify,
        ),
    )


SINKS = (
    (
        "contract",
        ContractRecord,
        apply_contracts,
        "external_id",
        ("companies.counterparty",),
        {"ru": "Договоры", "en": "Contracts"},
    ),
    (
        "order",
        OrderRecord,
        apply_orders,
        "external_id",
        ("shipments.contract",),
        {"ru": "Заявки на перевозку", "en": "Orders"},
    ),
    (
        "invoice",
        InvoiceRecord,
        apply_invoices,
        "external_id",
        ("shipments.contract", "shipments.order"),
        {"ru": "Счета", "en": "Invoices"},
    ),
    (
        "invoice_files",
        InvoiceFilesRecord,
        apply_invoice_files,
        "invoice",
        ("shipments.invoice",),
        {"ru": "Файлы счетов (печатные формы)", "en": "Invoice files (print forms)"},
    ),
    (
        "balance",
        BalanceRecord,
        apply_balances,
        "contract",
        ("shipments.contract",),
        {"ru": "Сальдо по договорам", "en": "Contract balances"},
    ),
    (
        "request_answer",
        RequestAnswerRecord,
        apply_answers,
        "portal_id",
        ("shipments.order",),
        {"ru": "Ответы на запросы", "en": "Answers to requests"},
    ),
)


BALANCE_SINK = "shipments.balance"


def _contracts_owed(records: Sequence[Any]) -> dict[str, list[str]]:
    """A contract's balance is stale after the contract, or an order or invoice of it."""
    return {BALANCE_SINK: [str(r.external_id) for r in records]}


def _contracts_named(records: Sequence[Any]) -> dict[str, list[str]]:
    return {BALANCE_SINK: [str(r.contract) for r in records if r.contract]}


def _order_files(records: Sequence[OrderRecord]) -> list[str]:
    """The files an order's documents name (a hidden order's are not fetched)."""
    return [d.file for r in records if not r.deleted for d in r.documents if d.file]


def _invoice_files(records: Sequence[InvoiceFilesRecord]) -> list[str]:
    return [f.external_id for r in records for f in r.files if not f.deleted]


FOLLOW_UPS: dict[str, dict[str, Any]] = {
    "contract": {"refreshes": _contracts_owed},
    "order": {"refreshes": _contracts_named, "files": _order_files, "file_key": file_key},
    "invoice": {"refreshes": _contracts_named},
    "invoice_files": {"files": _invoice_files, "file_key": invoice_file_key},
}
"""What the integration does for a sink after its batches (:class:`EntitySink`'s
``refreshes``, ``files`` and ``file_key``): balances after contracts, orders and invoices;
orders' document files and invoices' print forms fetched into the file storage."""


def entity_sinks() -> list[EntitySink]:
    return [
        EntitySink(
            name=f"shipments.{name}",
            struct=struct,
            apply=apply,
            key=key,
            depends_on=depends,
            title=title,
            **FOLLOW_UPS.get(name, {}),
        )
        for name, struct, apply, key, depends, title in SINKS
    ]
