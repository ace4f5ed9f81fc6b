"""The sync: pages of changes from a source, mapped, handed to the sinks, committed.

Each page is one transaction: the sinks' writes (in the order of their ``depends_on``),
the quarantine of refused records, what was received of each object, the run's counters
and the cursor. So the cursor (or the exchange service's acknowledgement, sent after the
commit) moves only with a committed batch, and a run killed anywhere resumes where the last
commit left it. Replaying a page changes nothing: an object whose ``DataVersion`` was
applied is skipped, and the sinks write nothing for an identical record.

Which entities a source delivers, into which sinks and how, is the plan
(:mod:`kabinet_integration.sinkplan`: the ``entity_sinks`` hook's sinks over the settings'
feeds); one page is written by :mod:`kabinet_integration.writer`, what the sinks ask for
after their batches by :mod:`kabinet_integration.followups`.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING

from sqlalchemy import and_, insert, select, update

from kabinet.contrib import EntitySink
from kabinet_integration import followups
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
from kabinet_integration.mapping import MappingError, Names, Plan
from kabinet_integration.settings import Settings, Source
from kabinet_integration.sinkplan import SyncPlan, build, ordered
from kabinet_integration.state import Context, Counts, Outcome, Prepared, SyncError
from kabinet_integration.store import CHUNK, alive, batches, failure, heap_set_aside, known_of
from kabinet_integration.store import latest_of as latest_of
from kabinet_integration.writer import CHANGES, PageWriter

if TYPE_CHECKING:
    from kabinet.host import Host


class SyncService(PageWriter):
    """Runs syncs; one per host (``integration(host)``)."""

    def __init__(self, host: Host) -> None:
        self.host = host
        self._sinks: list[EntitySink] | None = None
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
        """The sinks the enabled plugins declare, by name, in dependency order."""
        return {s.name: s for s in await self.ordered_sinks()}

    async def ordered_sinks(self) -> list[EntitySink]:
        """The ``entity_sinks`` hook's sinks, each after those it ``depends_on``; raises
        :class:`~kabinet_integration.sinkplan.SinkPlanError` naming a sink in a cycle or
        depending on one no enabled plugin declares."""
        if self._sinks is None:
            results = await self.host.plugins.acall("entity_sinks", host=self.host)
            self._sinks = ordered([s for _p, s in self.host.plugins.flat(results)])
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

    async def sync_plan(self, source: Source) -> SyncPlan:
        """What a run of ``source`` applies, in which order (its feeds over the sinks)."""
        pulling = source.mode != "push" or bool(source.base_url)
        return build(Names.of(source), await self.ordered_sinks(), pulling=pulling)

    async def plans(self, source: Source) -> dict[str, Plan]:
        """Entity -> its mapping plan, in the order of the sinks (:meth:`sync_plan`)."""
        return dict((await self.sync_plan(source)).plans)

    async def context(
        self,
        source: str,
        settings: Source,
        connector: Connector,
        run_id: int,
        lock: RunLock | None,
        *,
        notify: bool,
    ) -> Context:
        names = Names.of(settings)
        sinks = await self.ordered_sinks()
        pulling = settings.mode != "push" or bool(settings.base_url)
        plan = build(names, sinks, pulling=pulling)
        return Context(source, settings, names, plan, connector, run_id, lock, notify=notify)

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
        plan = await self.sync_plan(settings)
        feeds = Names.of(settings).feeds
        known = [e for e, f in feeds.items() if f.kind == "objects"]
        asked = tuple(entities) or tuple(settings.entities)
        unknown = [e for e in asked if e not in known]
        if unknown:
            raise SyncError(f"unknown entities {unknown}; known: {', '.join(sorted(known))}")
        # In the sinks' order; an entity whose sink is not installed is left out.
        wanted = tuple(e for e in plan.objects if not asked or e in asked)
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
            ctx = await self.context(
                source,
                settings,
                conn,
                run_id,
                lock,
                notify=mode == "delta" and await self.cursor(source) is not None,
            )
            try:
                if mode == "full":
                    await self._full(ctx, wanted)
                else:
                    await self._delta(ctx, wanted, bool(entities), page_hook)
                await followups.refresh(self.host, ctx, full=mode == "full")
                await self._retry_quarantine(ctx)
                if settings.files_ahead:
                    await followups.queue_new_files(self.host, ctx)
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
        async with self.host.db.reader() as s:
            found = await s.execute(
                select(m.cursor.c.position).where(
                    m.cursor.c.source == source, m.cursor.c.entity == CHANGES
                )
            )
            position: str | None = found.scalar_one_or_none()
            return position

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
                for r in await alive(self.host, ctx.source, entity)
                if r not in seen
            ]
            for part in batches(gone, ctx.settings.page_size):
                await self.apply_page(ctx, part, None, progress=f"{entity}: deletions")

    async def retry(self, source: str, ids: Sequence[int]) -> Outcome:
        """Apply quarantined records again now (from the quarantine page)."""
        settings = self.source(source)
        lock = RunLock(self.host, source)
        await lock.acquire()
        conn = await self.connector(source)
        try:
            run_id = await self._start(source, "retry")
            ctx = await self.context(
                source, settings, conn, run_id, lock, notify=await self.cursor(source) is not None
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


__all__ = [
    "CHUNK",
    "Busy",
    "Context",
    "Counts",
    "Outcome",
    "SyncError",
    "SyncService",
    "batches",
    "integration",
]
