"""The sync: pages of changes from a source, mapped, handed to the sinks, committed.

Each page is one transaction: the sinks' writes (in dependency order), the quarantine of
refused records, what was received of each object, the run's counters and the cursor. So
the cursor (or the exchange service's acknowledgement, sent after the commit) moves only
with a committed batch, and a run killed anywhere resumes where the last commit left it.
Replaying a page changes nothing: an object whose ``DataVersion`` was applied is skipped,
and the sinks write nothing for an identical record.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import gc
import logging
from collections.abc import Awaitable, Callable, Iterable, Iterator, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

import msgspec
from sqlalchemy import and_, bindparam, delete, func, insert, select, tuple_, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from kabinet.contrib import EntitySink
from kabinet.db import driver_connection
from kabinet_integration import balances
from kabinet_integration import models as m
from kabinet_integration.connectors import (
    Connector,
    ConnectorType,
    Page,
    Row,
    SourceError,
    builtin_connectors,
)
from kabinet_integration.locks import Busy, RunLock
from kabinet_integration.mapping import (
    ORDER,
    SINKS,
    Fallback,
    MappingError,
    Names,
    Plan,
    Wire,
    decode,
    finish,
    plan,
    tombstone,
)
from kabinet_integration.mapping import identity as identity_of
from kabinet_integration.reasons import explain
from kabinet_integration.settings import Settings, Source

if TYPE_CHECKING:
    from kabinet.host import Host

log = logging.getLogger(__name__)
CHANGES = "changes"
CHUNK = 1000
INVOICE_FILES_SINK = "shipments.invoice_files"
"""The sink of the files attached to invoices (listed after each page of invoices)."""
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


class SyncError(Exception):
    """A sync cannot start as asked (unknown source, connector or entity)."""


@dataclasses.dataclass
class Counts:
    received: int = 0
    applied: int = 0
    unchanged: int = 0
    quarantined: int = 0


@dataclasses.dataclass
class Outcome:
    """What a run did, as ``kabinet integration sync`` prints it."""

    run_id: int
    state: str
    counts: Counts
    error: str | None = None


@dataclasses.dataclass
class Context:
    source: str
    settings: Source
    names: Names
    plans: dict[str, Plan]
    connector: Connector
    run_id: int
    lock: RunLock | None
    counts: Counts = dataclasses.field(default_factory=Counts)
    contracts: set[str] = dataclasses.field(default_factory=set)
    new_files: dict[str, str] = dataclasses.field(default_factory=dict)
    new_invoice_files: dict[str, str] = dataclasses.field(default_factory=dict)
    notify: bool = True
    """False for a first load, ``--full`` or a backfill (no cursor yet, or some entities
    read whole): the sinks tell nobody of what they write."""


@dataclasses.dataclass
class Known:
    """What was applied of one object (a row of ``integration_known``)."""

    version: str
    changed_at: str | None
    identity: dict[str, Any] | str | None
    """The required fields of the record applied (as JSON text until needed)."""
    deleted: bool

    def remembered(self) -> dict[str, Any] | None:
        if isinstance(self.identity, str):
            self.identity = msgspec.json.decode(self.identity)
        return self.identity  # type: ignore[return-value]


@dataclasses.dataclass
class Prepared:
    """A page fetched, checked and decoded, not yet written."""

    records: dict[str, list[tuple[Row, msgspec.Struct, str]]] = dataclasses.field(
        default_factory=dict
    )
    """Entity -> (row, the sink's record, the version to remember)."""
    bad: list[tuple[Row, str]] = dataclasses.field(default_factory=list)
    seen_again: list[dict[str, Any]] = dataclasses.field(default_factory=list)
    """Rows of an applied version seen at a new register time (the time is noted)."""
    counts: Counts = dataclasses.field(default_factory=Counts)
    invoice_files: list[msgspec.Struct] = dataclasses.field(default_factory=list)
    """The files attached to the page's invoices, as listed now (one record each)."""


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
    return [r for r in latest.values() if r.entity in ctx.plans]


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
    async with host.db.sessionmaker() as s:
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


class SyncService:
    """Runs syncs; one per host (``integration(host)``)."""

    def __init__(self, host: Host) -> None:
        self.host = host
        self._sinks: dict[str, EntitySink] | None = None
        self._connectors: dict[str, ConnectorType] | None = None

    @property
    def settings(self) -> Settings:
        return self.host.plugin_settings("integration", Settings)

    def source(self, name: str) -> Source:
        found: Source | None = self.settings.sources.get(name)
        if found is None:
            known = ", ".join(sorted(self.settings.sources)) or "none configured"
            raise SyncError(f"no source {name!r} in [integration.sources] ({known})")
        return found

    async def sinks(self) -> dict[str, EntitySink]:
        if self._sinks is None:
            results = await self.host.plugins.acall("entity_sinks", host=self.host)
            self._sinks = {s.name: s for _p, s in self.host.plugins.flat(results)}
        return self._sinks

    async def connector_types(self) -> dict[str, ConnectorType]:
        if self._connectors is None:
            found = {c.name: c for c in builtin_connectors()}
            results = await self.host.plugins.acall("integration_connectors", host=self.host)
            found.update({c.name: c for _p, c in self.host.plugins.flat(results)})
            self._connectors = found
        return self._connectors

    async def connector(self, name: str) -> Connector:
        source = self.source(name)
        kind = (await self.connector_types()).get(source.connector)
        if kind is None:
            raise SyncError(f"source {name!r}: no connector {source.connector!r}")
        return kind.create(self.host, name, source)

    async def plans(self, source: Source) -> dict[str, Plan]:
        names = Names.of(source)
        sinks = await self.sinks()
        out = {}
        for entity, sink_name in SINKS.items():
            sink = sinks.get(sink_name)
            if sink is not None:
                out[entity] = plan(names, entity, sink)
        return out

    # -- runs ----------------------------------------------------------------------------

    async def run(
        self,
        source: str,
        *,
        mode: str = "delta",
        entities: Sequence[str] = (),
        connector: Connector | None = None,
        page_hook: Callable[[Page], Awaitable[None]] | None = None,
    ) -> Outcome:
        """One run of ``source`` (``delta`` or ``full``); raises Busy if one is going on."""
        settings = self.source(source)
        wanted = tuple(entities) or tuple(e for e in ORDER if e in settings.entities)
        unknown = [e for e in wanted if e not in ORDER]
        if unknown:
            raise SyncError(f"unknown entities {unknown}; known: {', '.join(ORDER)}")
        if mode not in ("delta", "full"):
            raise SyncError(f"unknown mode {mode!r}")
        if entities and mode == "delta" and settings.mode == "exchange":
            raise SyncError("the exchange service cannot deliver some entities only: use --full")
        lock = RunLock(self.host, source)
        await lock.acquire()
        with heap_set_aside():
            return await self._run(
                source, mode, settings, wanted, entities, lock, connector, page_hook
            )

    async def _run(
        self,
        source: str,
        mode: str,
        settings: Source,
        wanted: Sequence[str],
        entities: Sequence[str],
        lock: RunLock,
        connector: Connector | None,
        page_hook: Callable[[Page], Awaitable[None]] | None,
    ) -> Outcome:
        own = connector is None
        conn = connector or await self.connector(source)
        ctx: Context | None = None
        try:
            await self._interrupted(source)
            run_id = await self._start(source, mode)
            ctx = Context(
                source,
                settings,
                Names.of(settings),
                await self.plans(settings),
                conn,
                run_id,
                lock,
                notify=mode == "delta" and await self.cursor(source) is not None,
            )
            try:
                if mode == "full":
                    await self._full(ctx, wanted)
                    await self._balances(ctx, await self._active_contracts(source))
                else:
                    await self._delta(ctx, wanted, bool(entities), page_hook)
                    await self._balances(ctx, sorted(ctx.contracts))
                await self._retry_quarantine(ctx)
                if settings.files_ahead:
                    from kabinet_integration.files import queue_files

                    if ctx.new_files:
                        await queue_files(self.host, source, ctx.new_files)
                    if ctx.new_invoice_files:
                        await queue_files(self.host, source, ctx.new_invoice_files, "invoice_file")
            except (SourceError, MappingError) as exc:
                await self._finish(ctx, "failed", str(exc))
                return Outcome(run_id, "failed", ctx.counts, str(exc))
            except Exception as exc:
                # Recorded as failed (never left "succeeded" or "running"), then raised.
                await self._finish(ctx, "failed", failure(exc))
                raise
            await self._finish(ctx, "succeeded", None)
            return Outcome(run_id, "succeeded", ctx.counts)
        finally:
            if own:
                await conn.aclose()
            await lock.release()

    async def _interrupted(self, source: str) -> None:
        """Runs left "running" by a killed process: we hold the lock, so none is."""
        async with self.host.db.session() as s:
            await s.execute(
                update(m.run)
                .where(m.run.c.source == source, m.run.c.state == "running")
                .values(state="interrupted", finished_at=self.host.clock.now())
            )

    async def _start(self, source: str, mode: str) -> int:
        async with self.host.db.session() as s:
            result = await s.execute(
                insert(m.run)
                .values(
                    source=source,
                    mode=mode,
                    state="running",
                    started_at=self.host.clock.now(),
                    received=0,
                    applied=0,
                    unchanged=0,
                    quarantined=0,
                    pages=0,
                    progress="",
                )
                .returning(m.run.c.id)
            )
            return int(result.scalar_one())

    async def _finish(self, ctx: Context, state: str, error: str | None) -> None:
        async with self.host.db.session() as s:
            await s.execute(
                update(m.run)
                .where(m.run.c.id == ctx.run_id)
                .values(state=state, error=error, finished_at=self.host.clock.now(), progress="")
            )

    # -- delta ---------------------------------------------------------------------------

    async def _delta(
        self,
        ctx: Context,
        wanted: Sequence[str],
        partial: bool,
        page_hook: Callable[[Page], Awaitable[None]] | None,
    ) -> None:
        position = await self.cursor(ctx.source)
        if position is None and ctx.settings.mode == "odata" and not partial:
            # Where the register stands before the load becomes the cursor after it: what
            # 1C changes while the load runs comes with the next delta.
            start = await self._register_position(ctx)
            await self._full(ctx, wanted)
            if start is not None:
                async with self.host.db.session() as s:
                    await self._move(s, ctx.source, start)
            return

        def cursor_of(page: Page) -> str | None:
            if partial:
                return None
            # The overlap re-reads pages behind the cursor: it never moves back.
            if position is None or (page.position or "") > position:
                return page.position
            return None

        async def committed(page: Page) -> None:
            if not partial:
                await ctx.connector.acknowledge(page)
            if page_hook is not None:
                await page_hook(page)

        if getattr(ctx.connector, "read_ahead", False):
            await self._read_ahead(ctx, position, wanted, cursor_of, committed)
            return
        async for page in ctx.connector.changes(position):
            rows = [r for r in page.rows if r.entity in wanted]
            await self.apply_page(ctx, rows, cursor_of(page), progress=f"page {page.position}")
            await committed(page)

    async def _read_ahead(
        self,
        ctx: Context,
        position: str | None,
        wanted: Sequence[str],
        cursor_of: Callable[[Page], str | None],
        committed: Callable[[Page], Awaitable[None]],
    ) -> None:
        """The delta with the next page fetched and decoded while this one is written.

        Pages are still committed one by one in order (each with its cursor), so a run
        killed anywhere resumes from its last commit. A page that shares an object with
        a page not yet committed waits for that commit before it reads what was applied.
        """
        ready: asyncio.Queue[tuple[Page, set[tuple[str, str]], Prepared] | Exception | None]
        ready = asyncio.Queue(maxsize=1)
        writing: set[tuple[str, str]] = set()
        written = asyncio.Event()

        async def produce() -> None:
            try:
                async for page in ctx.connector.changes(position):
                    rows = latest_of(ctx, [r for r in page.rows if r.entity in wanted])
                    keys = {(r.entity, r.ref) for r in rows}
                    while keys & writing:
                        written.clear()
                        await written.wait()
                    prepared = await self._prepare(ctx, rows)
                    writing.update(keys)
                    await ready.put((page, keys, prepared))
            except Exception as exc:  # handed over: the pages before it are committed first
                await ready.put(exc)
                return
            await ready.put(None)

        task = asyncio.create_task(produce())
        try:
            while (item := await ready.get()) is not None:
                if isinstance(item, Exception):
                    raise item
                page, keys, prepared = item
                await self._commit(ctx, prepared, cursor_of(page), progress=f"page {page.position}")
                writing.difference_update(keys)
                written.set()
                await committed(page)
        finally:
            if not task.done():
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task

    async def _register_position(self, ctx: Context) -> str | None:
        """The change register's position now: one query where the connector can tell
        (``position``); else its pages read to the end (before the load, all the same)."""
        position = getattr(ctx.connector, "position", None)
        if position is not None:
            found: str | None = await position()
            return found
        last = None
        async for page in ctx.connector.changes(None):
            last = page.position
        return last

    async def cursor(self, source: str) -> str | None:
        async with self.host.db.sessionmaker() as s:
            found = await s.execute(
                select(m.cursor.c.position).where(
                    m.cursor.c.source == source, m.cursor.c.entity == CHANGES
                )
            )
            return found.scalar_one_or_none()

    async def _move(self, s: AsyncSession, source: str, position: str) -> None:
        now = self.host.clock.now()
        moved = await s.execute(
            update(m.cursor)
            .where(m.cursor.c.source == source, m.cursor.c.entity == CHANGES)
            .values(position=position, updated_at=now)
        )
        if not moved.rowcount:  # type: ignore[attr-defined]
            await s.execute(
                insert(m.cursor).values(
                    source=source, entity=CHANGES, position=position, updated_at=now
                )
            )

    # -- full reconciliation -------------------------------------------------------------

    async def _full(self, ctx: Context, wanted: Sequence[str]) -> None:
        """Every object's DataVersion against what was applied; fetch what differs, mark
        deleted what vanished."""
        for entity in wanted:
            if entity not in ctx.plans:
                continue
            seen: set[str] = set()
            async for versions in ctx.connector.versions(entity):
                refs = [r for r, _v, _d in versions]
                seen.update(refs)
                stored = await known_of(self.host, ctx.source, entity, refs)
                changed = [
                    Row(entity, r)
                    for r, v, _d in versions
                    if r not in stored or stored[r].version != v
                ]
                ctx.counts.received += len(versions) - len(changed)
                ctx.counts.unchanged += len(versions) - len(changed)
                if changed:  # counted by apply_page
                    await self.apply_page(ctx, changed, None, progress=f"{entity}: full")
            gone = [
                Row(entity, r, deleted=True)
                for r in await self._alive(ctx.source, entity)
                if r not in seen
            ]
            for part in batches(gone, ctx.settings.page_size):
                await self.apply_page(ctx, part, None, progress=f"{entity}: deletions")

    async def _alive(self, source: str, entity: str) -> list[str]:
        async with self.host.db.sessionmaker() as s:
            rows = await s.execute(
                select(m.known.c.ref).where(
                    m.known.c.source == source, m.known.c.entity == entity, m.known.c.deleted == 0
                )
            )
            return [r.ref for r in rows]

    async def _active_contracts(self, source: str) -> list[str]:
        return sorted(await self._alive(source, "contract"))

    # -- one page ------------------------------------------------------------------------

    async def apply_page(
        self,
        ctx: Context,
        rows: Sequence[Row],
        position: str | None,
        *,
        progress: str = "",
        within: Callable[[AsyncSession], Awaitable[None]] | None = None,
    ) -> None:
        """Fetch, decode and apply ``rows`` in one transaction that also moves the cursor."""
        prepared = await self._prepare(ctx, latest_of(ctx, rows))
        await self._commit(ctx, prepared, position, progress=progress, within=within)

    async def _prepare(self, ctx: Context, rows: list[Row]) -> Prepared:
        """What a page will write: its objects fetched and decoded, checked against what
        was applied of them (one read), nothing written yet."""
        out = Prepared()
        out.counts.received = len(rows)
        known: dict[tuple[str, str], Known] = {}
        for entity in {r.entity for r in rows}:
            found = await known_of(
                self.host, ctx.source, entity, [r.ref for r in rows if r.entity == entity]
            )
            known.update(((entity, ref), k) for ref, k in found.items())
        # Rows of the overlap whose change was applied already: dropped, not fetched.
        fresh = []
        for row in rows:
            k = known.get((row.entity, row.ref))
            if row.at is not None and k is not None and k.changed_at == row.at:
                out.counts.unchanged += 1
            else:
                fresh.append(row)
        await self._fetch(ctx, fresh)
        for row in fresh:
            p = ctx.plans[row.entity]
            k = known.get((row.entity, row.ref))
            sent = row.wire is not None or row.obj is not None
            if row.wire is not None and p.wire is not None and p.wire.version is not None:
                version = str(getattr(row.wire, p.wire.version))
            else:
                version = str((row.obj or {}).get("DataVersion", ""))
            if sent and version and k is not None and k.version == version:
                out.counts.unchanged += 1
                if row.at is not None:
                    out.seen_again.append({"e": row.entity, "r": row.ref, "at": row.at})
                continue
            try:
                if not sent:
                    remembered = None if k is None or k.deleted else k.remembered()
                    if remembered is None:
                        out.counts.unchanged += 1  # gone before the portal ever had it
                        continue
                    record = tombstone(p, remembered)
                    version = "deleted"
                elif row.wire is not None and p.wire is not None:
                    try:
                        record = finish(p.wire, row.wire)
                    except Fallback:  # the general way says why
                        record = decode(p, row.payload() or {})
                else:
                    record = decode(p, row.obj or {})
            except MappingError as exc:
                out.bad.append((row, str(exc)))
                continue
            out.records.setdefault(row.entity, []).append((row, record, version))
        out.invoice_files = await self._invoice_files(ctx, out.records.get("invoice", []))
        return out

    async def _invoice_files(
        self, ctx: Context, batch: Sequence[tuple[Row, msgspec.Struct, str]]
    ) -> list[msgspec.Struct]:
        """The attached files of a page's invoices, listed in 1C by owner (an invoice
        names none of its own): the source's ``invoice_files`` setting, over OData."""
        sink = (await self.sinks()).get(INVOICE_FILES_SINK)
        s = ctx.settings
        if sink is None or not s.invoice_files or (s.mode == "push" and not s.base_url):
            return []
        refs = [
            row.ref
            for row, record, version in batch
            if version != "deleted" and not getattr(record, "deleted", False)
        ]
        from kabinet_integration.files import invoice_files

        return await invoice_files(ctx.connector, ctx.names, sink, refs)

    async def _commit(
        self,
        ctx: Context,
        prepared: Prepared,
        position: str | None,
        *,
        progress: str = "",
        within: Callable[[AsyncSession], Awaitable[None]] | None = None,
    ) -> None:
        """Write a prepared page in one transaction: the sinks in dependency order, what
        was applied, the quarantine, the cursor and the run's counters."""
        counts = ctx.counts
        counts.received += prepared.counts.received
        counts.unchanged += prepared.counts.unchanged
        bad = list(prepared.bad)
        async with self.host.db.session() as s:
            for entity in ORDER:
                batch = prepared.records.get(entity)
                if batch:
                    await self._sink(ctx, s, entity, batch, bad)
            if prepared.invoice_files:
                await self._sink_invoice_files(ctx, s, prepared.invoice_files)
            await self._quarantine(ctx, s, bad)
            if prepared.seen_again:
                await s.execute(
                    update(m.known)
                    .where(
                        m.known.c.source == ctx.source,
                        m.known.c.entity == bindparam("e"),
                        m.known.c.ref == bindparam("r"),
                    )
                    .values(changed_at=bindparam("at"))
                    .execution_options(synchronize_session=False),
                    prepared.seen_again,
                )
            if position is not None:
                await self._move(s, ctx.source, position)
            if within is not None:
                await within(s)
            await s.execute(
                update(m.run)
                .where(m.run.c.id == ctx.run_id)
                .values(
                    received=counts.received,
                    applied=counts.applied,
                    unchanged=counts.unchanged,
                    quarantined=counts.quarantined,
                    pages=m.run.c.pages + 1,
                    progress=progress[:200],
                )
            )
        if ctx.lock is not None:
            await ctx.lock.refresh()

    async def _fetch(self, ctx: Context, rows: Sequence[Row]) -> None:
        """Objects of rows that came without one (the change register gives ids only)."""
        fetch_raw = getattr(ctx.connector, "fetch_raw", None)
        for entity in ORDER:
            want = [r for r in rows if r.entity == entity and r.obj is None and not r.deleted]
            if not want:
                continue
            refs = [r.ref for r in want]
            wire = ctx.plans[entity].wire
            if fetch_raw is not None and wire is not None:
                key = ctx.names.fields.get(entity, {}).get("external_id", "Ref_Key")
                found = decode_objects(wire, key, await fetch_raw(entity, refs))
                for row in want:
                    got = found.get(row.ref)  # missing: deleted in 1C since
                    if got is None:
                        row.deleted = True
                    elif isinstance(got, dict):
                        row.obj = got
                    else:
                        row.wire, row.raw = got
                continue
            objects = await ctx.connector.fetch(entity, refs)
            for row in want:
                row.obj = objects.get(row.ref)  # missing: deleted in 1C since
                if row.obj is None:
                    row.deleted = True

    async def _sink(
        self,
        ctx: Context,
        s: AsyncSession,
        entity: str,
        batch: list[tuple[Row, msgspec.Struct, str]],
        bad: list[tuple[Row, str]],
    ) -> None:
        p = ctx.plans[entity]
        # A savepoint: a sink that fails outright sends its batch to quarantine, not the page.
        try:
            async with self.host.db.savepoint(s):
                records = [r for _row, r, _v in batch]
                result = await p.sink.apply(self.host, s, records, notify=ctx.notify)
        except Exception as exc:
            log.warning("sink %s failed on a batch: %s", p.sink.name, exc)
            bad.extend(
                (row, f"{p.sink.name}: {type(exc).__name__}: {exc}") for row, _r, _v in batch
            )
            return
        ctx.counts.applied += result.created + result.updated + result.hidden
        ctx.counts.unchanged += result.unchanged
        applied: list[tuple[Row, msgspec.Struct, str]] = []
        for row, record, version in batch:
            reason = result.rejected.get(str(getattr(record, p.key_field)))
            if reason is not None:
                bad.append((row, reason))
            else:
                applied.append((row, record, version))
        await self._remember(ctx, s, entity, applied)
        owed: set[str] = set()
        for row, record, _v in applied:
            if entity == "contract":
                owed.add(str(getattr(record, "external_id", "")))
            contract = getattr(record, "contract", None)
            if entity in ("order", "invoice") and contract:
                owed.add(str(contract))
            if entity == "order" and not getattr(record, "deleted", False):
                for doc in getattr(record, "documents", ()):
                    if getattr(doc, "file", None):
                        ctx.new_files[str(doc.file)] = row.ref
        ctx.contracts.update(owed)
        if "balance" in ctx.plans and (ctx.settings.mode != "push" or ctx.settings.base_url):
            # Owed until a run refreshes them: committed with the page that changed them.
            await balances.owe(s, ctx.source, owed, self.host.clock.now())

    async def _sink_invoice_files(
        self, ctx: Context, s: AsyncSession, records: Sequence[msgspec.Struct]
    ) -> None:
        """The invoices' files as listed (an invoice the page did not store is skipped by
        the sink); new ones are fetched ahead after the run, like orders' files."""
        sink = (await self.sinks())[INVOICE_FILES_SINK]
        await sink.apply(self.host, s, records, notify=ctx.notify)
        for record in records:
            for f in getattr(record, "files", ()):
                if not getattr(f, "deleted", False):
                    ctx.new_invoice_files[str(f.external_id)] = str(getattr(record, "invoice", ""))

    async def _remember(
        self,
        ctx: Context,
        s: AsyncSession,
        entity: str,
        applied: Iterable[tuple[Row, msgspec.Struct, str]],
    ) -> None:
        """What was applied of each object (upserted), and its quarantine resolved."""
        p = ctx.plans[entity]
        items = {
            row.ref: {
                "source": ctx.source,
                "entity": entity,
                "ref": row.ref,
                "version": version,
                "changed_at": row.at,
                "identity": identity_of(p, record) if version != "deleted" else None,
                "deleted": int(version == "deleted" or bool(getattr(record, "deleted", False))),
            }
            for row, record, version in applied
        }
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
                    m.known.c.source == ctx.source,
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
                    m.quarantine.c.source == ctx.source,
                    m.quarantine.c.entity == entity,
                    m.quarantine.c.ref.in_(refs[start : start + CHUNK]),
                )
            )

    async def _quarantine(self, ctx: Context, s: AsyncSession, bad: list[tuple[Row, str]]) -> None:
        if not bad:
            return
        now = self.host.clock.now()
        ctx.counts.quarantined += len(bad)
        keys = [(row.entity, row.ref) for row, _r in bad]
        existing: dict[tuple[str, str], tuple[int, int | None]] = {}
        for part in batches(keys, CHUNK):  # two parameters a key
            existing.update(
                ((r.entity, r.ref), (r.id, r.run_id))
                for r in await s.execute(
                    select(
                        m.quarantine.c.id,
                        m.quarantine.c.entity,
                        m.quarantine.c.ref,
                        m.quarantine.c.run_id,
                    ).where(
                        m.quarantine.c.source == ctx.source,
                        tuple_(m.quarantine.c.entity, m.quarantine.c.ref).in_(part),
                    )
                )
            )
        for row, reason in bad:
            found, by_run = existing.get((row.entity, row.ref), (None, None))
            values = {
                "payload": row.payload(),
                "reason": explain(ctx.plans[row.entity], reason)[:2000]
                if row.entity in ctx.plans
                else reason[:2000],
                "updated_at": now,
                "run_id": ctx.run_id,
            }
            if found is None:
                await s.execute(
                    insert(m.quarantine).values(
                        source=ctx.source,
                        entity=row.entity,
                        ref=row.ref,
                        state="open",
                        attempts=1,
                        created_at=now,
                        **values,
                    )
                )
            else:
                await s.execute(
                    update(m.quarantine)
                    .where(m.quarantine.c.id == found)
                    .values(
                        # Refused again by the same run (its retry at the end): one attempt.
                        attempts=m.quarantine.c.attempts + int(by_run != ctx.run_id),
                        **values,
                    )
                )

    # -- quarantine and balances ---------------------------------------------------------

    async def _retry_quarantine(self, ctx: Context, ids: Sequence[int] = ()) -> None:
        """Open quarantined records again (their stored object, or fetched anew)."""
        found: list[Any] = []
        async with self.host.db.sessionmaker() as s:
            stmt = select(m.quarantine).where(
                m.quarantine.c.source == ctx.source, m.quarantine.c.state == "open"
            )
            wanted: list[Sequence[int]] = list(batches(sorted(set(ids)), CHUNK)) if ids else [()]
            for chosen in wanted:
                where = stmt.where(m.quarantine.c.id.in_(chosen)) if chosen else stmt
                found.extend(await s.execute(where.order_by(m.quarantine.c.id)))
        if not found:
            return
        rows = [Row(q.entity, q.ref, obj=q.payload) for q in found if q.entity in ctx.plans]
        before = ctx.counts.received

        async def left(s: AsyncSession) -> None:
            # What this run leaves in quarantine, each record once (a record refused early
            # in the run may have gone through now that what it refers to has come).
            ctx.counts.quarantined = int(
                (
                    await s.execute(
                        select(func.count())
                        .select_from(m.quarantine)
                        .where(m.quarantine.c.run_id == ctx.run_id)
                    )
                ).scalar_one()
            )

        # Page by page (the sinks and the quarantine take a page's records at once); each
        # page's count of what is left stands until the next one's.
        for part in batches(rows, ctx.settings.page_size):
            await self.apply_page(ctx, part, None, progress="quarantine", within=left)
        ctx.counts.received = before

    async def _balances(self, ctx: Context, contracts: Sequence[str]) -> None:
        """Refresh the balances of ``contracts`` and of every contract owed (by this run's
        pages or by an earlier run that failed after its pages); their marks go with the
        transaction that stores the balances."""
        p = ctx.plans.get("balance")
        if p is None:
            return
        contracts = sorted({*contracts, *await balances.owed(self.host, ctx.source)})
        if not contracts:
            return
        rows = await ctx.connector.balances(contracts)
        key = ctx.names.fields["balance"]["contract"]
        amount = ctx.names.fields["balance"]["balance"]
        owed: dict[str, dict[str, Any]] = {c: {} for c in contracts}  # no row: owes nothing
        for row in rows:
            owed[str(row.get(key))] = row
        records = []
        for contract, row in owed.items():
            data = {key: contract, amount: row.get(amount, 0)}
            try:
                records.append(decode(p, data))
            except MappingError as exc:  # asked again only when the contract changes again
                log.warning("balance of contract %s: %s", contract, exc)
                continue
        async with self.host.db.session() as s:
            result = await p.sink.apply(self.host, s, records, notify=ctx.notify)
            await balances.settle(s, ctx.source, contracts)
        log.info("balances of %d contracts: %d updated", len(records), result.updated)

    async def retry(self, source: str, ids: Sequence[int]) -> Outcome:
        """Apply quarantined records again now (from the quarantine page)."""
        settings = self.source(source)
        lock = RunLock(self.host, source)
        await lock.acquire()
        conn = await self.connector(source)
        try:
            run_id = await self._start(source, "retry")
            ctx = Context(
                source,
                settings,
                Names.of(settings),
                await self.plans(settings),
                conn,
                run_id,
                lock,
                notify=await self.cursor(source) is not None,
            )
            try:
                await self._retry_quarantine(ctx, ids)
            except SourceError as exc:
                await self._finish(ctx, "failed", str(exc))
                return Outcome(run_id, "failed", ctx.counts, str(exc))
            await self._finish(ctx, "succeeded", None)
            return Outcome(run_id, "succeeded", ctx.counts)
        finally:
            await conn.aclose()
            await lock.release()

    async def dismiss(self, ids: Sequence[int]) -> int:
        done = 0
        async with self.host.db.session() as s:
            for part in batches(sorted(set(ids)), CHUNK):
                result = await s.execute(
                    update(m.quarantine)
                    .where(and_(m.quarantine.c.id.in_(part), m.quarantine.c.state == "open"))
                    .values(state="dismissed", updated_at=self.host.clock.now())
                )
                done += int(result.rowcount)  # type: ignore[attr-defined]
        return done


def integration(host: Host) -> SyncService:
    """The one sync service of ``host`` (``kabinet_integration.services.INTEGRATION``),
    published at startup or on first use (a CLI command's host does not start)."""
    from kabinet_integration.services import INTEGRATION  # it imports this module

    found = host.services.find(INTEGRATION)
    if found is None:
        return host.services.provide(INTEGRATION, SyncService(host))
    return host.services.of(INTEGRATION)


__all__ = ["Busy", "Outcome", "SyncError", "SyncService", "integration"]
