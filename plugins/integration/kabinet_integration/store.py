"""What the sync stores of its own: what was applied of each object (``integration_known``),
read and written in bulk, and the helpers every step of a run shares."""

from __future__ import annotations

import contextlib
import gc
from collections.abc import Iterable, Iterator, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

import msgspec
from sqlalchemy import delete, insert, select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from kabinet.db import driver_connection
from kabinet_integration import models as m
from kabinet_integration.connectors import Row
from kabinet_integration.mapping import Wire
from kabinet_integration.state import Context, Known

if TYPE_CHECKING:
    from kabinet.host import Host

CHUNK = 1000
"""Items per statement of a list that grows with the run (``IN`` lists, bulk writes): far
below asyncpg's 32,767 parameters of one statement."""
T = TypeVar("T")


def batches(items: Sequence[T], size: int) -> Iterator[Sequence[T]]:
    """``items`` in slices of ``size`` (at least 1)."""
    size = max(1, size)
    for start in range(0, len(items), size):
        yield items[start : start + size]


def failure(exc: BaseException) -> str:
    """A run's error as staff read it: the database's (or driver's) own message, not the
    statement and its thousands of parameters; one line, at most 500 characters."""
    orig = getattr(exc, "orig", None)  # SQLAlchemy's wrapper of a driver's error
    cause = orig if isinstance(orig, BaseException) else exc
    text = str(cause).strip().splitlines()
    line = f"{type(cause).__name__}: {text[0] if text else ''}".rstrip(": ")
    return line if len(line) <= 500 else line[:499] + "…"


def decode_objects(
    wire: Wire, key: str, raws: Iterable[msgspec.Raw]
) -> dict[str, tuple[Any, msgspec.Raw] | dict[str, Any]]:
    """Objects by id: decoded straight into the sink's fields with their JSON, or (where
    that cannot be done) as 1C sent them."""
    found: dict[str, tuple[Any, msgspec.Raw] | dict[str, Any]] = {}
    ref = wire.ref
    assert ref is not None
    decode_wire = wire.decoder.decode
    for raw in raws:
        try:
            obj = decode_wire(raw)
        except (msgspec.ValidationError, msgspec.DecodeError):
            plain = msgspec.json.decode(raw)
            found[str(plain.get(key))] = plain
        else:
            found[getattr(obj, ref)] = (obj, raw)
    return found


_RUNNING = 0
"""Runs going on in this process (the heap is set aside while one is)."""


@contextlib.contextmanager
def heap_set_aside() -> Iterator[None]:
    """While runs go, the objects that existed before them are left out of the garbage
    collector's passes (``gc.freeze``; ``gc.unfreeze`` when the last run ends).

    A run makes hundreds of thousands of short-lived objects per 100,000 records, and every
    full pass of the collector would otherwise walk the whole portal's heap (a quarter of a
    delta's CPU time). Nothing is lost: what was set aside goes back to the collector after.
    """
    global _RUNNING
    if _RUNNING == 0:
        gc.freeze()
    _RUNNING += 1
    try:
        yield
    finally:
        _RUNNING -= 1
        if _RUNNING == 0:
            gc.unfreeze()


def latest_of(ctx: Context, rows: Sequence[Row]) -> list[Row]:
    """The last row of each object, of the entities this source applies."""
    latest: dict[tuple[str, str], Row] = {}
    for row in rows:
        latest[(row.entity, row.ref)] = row
    objects = ctx.plan.objects
    return [r for r in latest.values() if r.entity in objects]


# The objects' rows looked up one by one through the primary key (a LATERAL join): a
# plain ``ref = ANY(…)`` lets a planner without statistics (a table just loaded) scan every
# row of the source and entity for each of the page's ids.
# The page's ids go as one JSON array (not an array parameter, whose every element asyncpg
# inspects in Python).
KNOWN_PG = (
    "SELECT k.ref, k.version, k.changed_at, k.identity::text AS identity, k.deleted "
    "FROM json_array_elements_text($3::text::json) AS r(ref), LATERAL (SELECT * "
    "FROM integration_known WHERE source = $1 AND entity = $2 AND ref = r.ref LIMIT 1) AS k"
)
REMEMBER_PG = (
    "WITH r AS (SELECT * FROM json_populate_recordset(NULL::integration_known, $1::text::json)), "
    # Applied now: what was quarantined of them is resolved (in the same statement).
    "resolved AS (DELETE FROM integration_quarantine WHERE id IN (SELECT q.id FROM r, "
    "LATERAL (SELECT id FROM integration_quarantine WHERE source = r.source "
    "AND entity = r.entity AND ref = r.ref LIMIT 1) AS q)) "
    "INSERT INTO integration_known AS k (source, entity, ref, version, changed_at, identity, "
    "deleted) SELECT source, entity, ref, version, changed_at, identity, deleted FROM r "
    "ON CONFLICT (source, entity, ref) DO UPDATE SET version = excluded.version, "
    "changed_at = excluded.changed_at, identity = excluded.identity, deleted = excluded.deleted"
)


async def known_of(host: Host, source: str, entity: str, refs: Sequence[str]) -> dict[str, Known]:
    """What was applied of these objects of ``entity``, by id (those never applied absent)."""
    found: dict[str, Known] = {}
    if not refs:
        return found
    async with host.db.reader() as s:
        conn = await s.connection()
        if conn.dialect.name == "postgresql":
            driver = await driver_connection(conn)
            ids = msgspec.json.encode(list(refs)).decode()
            for r in await driver.fetch(KNOWN_PG, source, entity, ids):
                found[r["ref"]] = Known(
                    r["version"], r["changed_at"], r["identity"], bool(r["deleted"])
                )
            return found
        for start in range(0, len(refs), CHUNK):
            rows = await s.execute(
                select(
                    m.known.c.ref,
                    m.known.c.version,
                    m.known.c.changed_at,
                    m.known.c.identity,
                    m.known.c.deleted,
                ).where(
                    m.known.c.source == source,
                    m.known.c.entity == entity,
                    m.known.c.ref.in_(refs[start : start + CHUNK]),
                )
            )
            for r in rows:
                found[r.ref] = Known(r.version, r.changed_at, r.identity, bool(r.deleted))
    return found


async def remember_pg(conn: AsyncConnection, items: Sequence[dict[str, Any]]) -> None:
    """PostgreSQL: what was applied (rows of ``integration_known``), upserted, and their
    quarantine resolved, in one statement."""
    driver = await driver_connection(conn)
    await driver.execute(REMEMBER_PG, msgspec.json.encode(items).decode())


async def remember(
    s: AsyncSession, source: str, entity: str, items: dict[str, dict[str, Any]]
) -> None:
    """What was applied of these objects (``integration_known`` rows by id), upserted, and
    their quarantine resolved, in the caller's transaction."""
    if not items:
        return
    conn = await s.connection()
    if conn.dialect.name == "postgresql":
        await remember_pg(conn, list(items.values()))
        return
    refs = list(items)
    for start in range(0, len(refs), CHUNK):
        await s.execute(
            delete(m.known).where(
                m.known.c.source == source,
                m.known.c.entity == entity,
                m.known.c.ref.in_(refs[start : start + CHUNK]),
            )
        )
    rows = list(items.values())
    for start in range(0, len(rows), CHUNK):
        await s.execute(insert(m.known), rows[start : start + CHUNK])
    # Applied now: what was quarantined of them is resolved.
    for start in range(0, len(refs), CHUNK):
        await s.execute(
            delete(m.quarantine).where(
                m.quarantine.c.source == source,
                m.quarantine.c.entity == entity,
                m.quarantine.c.ref.in_(refs[start : start + CHUNK]),
            )
        )


async def alive(host: Host, source: str, entity: str) -> list[str]:
    """The ids of the objects of ``entity`` applied and not deleted."""
    async with host.db.reader() as s:
        rows = await s.execute(
            select(m.known.c.ref).where(
                m.known.c.source == source, m.known.c.entity == entity, m.known.c.deleted == 0
            )
        )
        return [r.ref for r in rows]
