"""What every shipments sink shares: batches in slices, the source's time zone, the
look-ups by key, the counterparties of a batch and the checks that no reference crosses
from one counterparty to another (see :mod:`kabinet_shipments.sinks`)."""

from __future__ import annotations

import dataclasses
import datetime as dt
import functools
from collections.abc import Iterable, Iterator, Sequence
from typing import TYPE_CHECKING, Any, Protocol, TypeVar
from zoneinfo import ZoneInfo

from sqlalchemy import Table, bindparam, select, text, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection

from kabinet.contrib import Rejection
from kabinet_companies.services import COUNTERPARTY_ROWS
from kabinet_shipments import models as m
from kabinet_shipments.records import (
    Record,
)
from kabinet_shipments.settings import Settings

if TYPE_CHECKING:
    from sqlalchemy import Subquery

    from kabinet.host import Host


CHUNK = 2000
R = TypeVar("R", bound=Record)
T = TypeVar("T")


class Referring(Protocol):
    """A record that names its counterparty and maybe a contract (orders, invoices)."""

    @property
    def counterparty(self) -> str: ...

    @property
    def contract(self) -> str | None: ...


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
    conn: AsyncConnection, table: Table | Subquery, column: str, keys: Sequence[Any], *cols: str
) -> dict[Any, Any]:
    """Stored rows of ``table`` (one of ours, or another app's public selectable) whose
    ``column`` (unique) is in ``keys``, by that column."""
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
def _by_keys(table: Table | Subquery, column: str, wanted: tuple[Any, ...]) -> Any:
    """PostgreSQL: the rows of ``table`` by a unique ``column``, looked up key by key through
    its index (a LATERAL join): an ``IN`` list of a thousand keys looks like the whole table
    to a planner without statistics (a table just loaded), which then reads every row of it
    for every batch."""
    dialect = postgresql.dialect()  # type: ignore[no-untyped-call]
    kind = table.c[column].type.compile(dialect=dialect)
    cols = ", ".join(c.name for c in wanted)
    # Another app's public selectable (a plain projection of its table) is written out as
    # a derived table; PostgreSQL pulls it up, so the look-up stays one index probe a key.
    source = (
        table.name
        if isinstance(table, Table)
        else f"({table.element.compile(dialect=dialect)}) AS {table.name}"
    )
    return text(
        f"SELECT t.* FROM unnest(CAST(:keys AS {kind}[])) AS k(key), "  # noqa: S608 - ours
        f"LATERAL (SELECT {cols} FROM {source} WHERE {column} = k.key LIMIT 1) AS t"
    ).columns(*wanted)


async def counterparties(conn: AsyncConnection, keys: Iterable[str]) -> dict[str, Any]:
    """Counterparties by ``external_id``: their id and organization."""
    return await _rows(
        conn,
        COUNTERPARTY_ROWS,
        "external_id",
        sorted(set(keys)),
        "external_id",
        "id",
        "organization_id",
    )


@dataclasses.dataclass(frozen=True)
class References:
    """The counterparties and contracts a batch of orders or invoices names, by external id
    (read once per batch: :func:`references`)."""

    counterparties: dict[str, Any]
    contracts: dict[str, Any]

    def resolve(
        self,
        key: str,
        counterparty: str,
        contract: str | None,
        rejected: dict[str, str],
        across: list[Across],
    ) -> tuple[Any, Any] | None:
        """The counterparty row and the contract row (None without a contract) of the record
        ``key``; None when the record is refused: an unknown counterparty or contract noted
        in ``rejected``, another counterparty's contract in ``across``."""
        cp = self.counterparties.get(counterparty)
        if cp is None:
            rejected[key] = Rejection(
                f"unknown counterparty {counterparty!r}", "unknown_counterparty", value=counterparty
            )
            return None
        if not contract:
            return cp, None
        found = self.contracts.get(contract)
        if found is None:
            rejected[key] = Rejection(
                f"unknown contract {contract!r}", "unknown_contract", value=contract
            )
            return None
        if found.counterparty_id != cp.id:
            across.append((key, "contract", contract, found.counterparty_id, counterparty))
            return None
        return cp, found


async def references(conn: AsyncConnection, batch: Iterable[Referring]) -> References:
    """The counterparties and contracts ``batch`` refers to (two look-ups by key)."""
    records = list(batch)
    cps = await counterparties(conn, (r.counterparty for r in records))
    contracts = await _rows(
        conn,
        m.contract,
        "external_id",
        sorted({r.contract for r in records if r.contract}),
        "id",
        "external_id",
        "counterparty_id",
    )
    return References(cps, contracts)


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
            select(COUNTERPARTY_ROWS.c.id, COUNTERPARTY_ROWS.c.external_id).where(
                COUNTERPARTY_ROWS.c.id.in_(owners)
            )
        )
    }
    return {
        key: Rejection(
            f"{what} {ref!r} belongs to another counterparty: {names.get(owner)!r}, not {holder!r}",
            "foreign_reference",
            kind=what,
            value=ref,
            owner=str(names.get(owner)),
            holder=holder,
        )
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


def _update_by_id(table: Table, sample: dict[str, Any]) -> Any:
    """An ``executemany`` UPDATE by id: the SET clause is the keys of the parameters."""
    del sample
    return update(table).where(table.c.id == bindparam("_id"))


def _aware(value: dt.datetime) -> dt.datetime:
    """SQLite gives back naive UTC times."""
    return value if value.tzinfo is not None else value.replace(tzinfo=dt.UTC)
