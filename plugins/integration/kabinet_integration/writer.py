"""One page of a run: fetched, decoded, checked against what was applied, and written in one
transaction (the sinks in dependency order, what was applied, the quarantine, the cursor
and the run's counters); and the quarantine's records tried again."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Iterable, Sequence
from typing import TYPE_CHECKING, Any

import msgspec
from sqlalchemy import bindparam, func, insert, select, tuple_, update
from sqlalchemy.ext.asyncio import AsyncSession

from kabinet.contrib import Rejection
from kabinet_integration import followups
from kabinet_integration import models as m
from kabinet_integration.connectors import Row
from kabinet_integration.mapping import (
    Fallback,
    MappingError,
    counterparty_of,
    decode,
    finish,
    tombstone,
)
from kabinet_integration.mapping import identity as identity_of
from kabinet_integration.reasons import explain, structured
from kabinet_integration.state import Context, Known, Prepared
from kabinet_integration.store import CHUNK, batches, decode_objects, known_of, latest_of, remember

if TYPE_CHECKING:
    from kabinet.host import Host

log = logging.getLogger(__name__)
CHANGES = "changes"
"""The cursor's entity: the change register's (or the exchange service's) position."""


class PageWriter:
    """The part of :class:`kabinet_integration.sync.SyncService` that writes pages."""

    host: Host

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
                if row.entity in ctx.plan.attached and not k.deleted:
                    out.relisted.setdefault(row.entity, []).append(row.ref)
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
                out.bad.append((row, exc.reason))
                continue
            out.records.setdefault(row.entity, []).append((row, record, version))
        if ctx.plan.attached:
            out.attached = await followups.attached(ctx, out.records, out.relisted)
        return out

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
            for entity in ctx.plan.order:  # the sinks' dependency order
                batch = prepared.records.get(entity)
                if batch:
                    await self._sink(ctx, s, entity, batch, bad)
                listed = prepared.attached.get(entity)
                if listed:
                    await self._attached(ctx, s, entity, listed)
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
        for entity in ctx.plan.objects:
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
            error = f"{type(exc).__name__}: {exc}"[:1000]
            title = p.sink.title or {}
            said = Rejection(
                f"{p.sink.name}: {error}",
                "sink_failed",
                sink=p.sink.name,
                # What failed to be written, in the reader's language (the sink's title).
                title_ru=str(title.get("ru") or p.sink.name),
                title_en=str(title.get("en") or p.sink.name),
                error=error,
                error_type=type(exc).__name__,
            )
            bad.extend((row, said) for row, _r, _v in batch)
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
        await followups.after_batch(self.host, ctx, s, entity, [r for _row, r, _v in applied])

    async def _attached(
        self, ctx: Context, s: AsyncSession, entity: str, records: Sequence[msgspec.Struct]
    ) -> None:
        """The files attached to a page's objects as listed (an owner the page did not store
        is skipped by the sink); the sink's follow-ups (its files fetched ahead) after."""
        await ctx.plans[entity].sink.apply(self.host, s, records, notify=ctx.notify)
        await followups.after_batch(self.host, ctx, s, entity, records)

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
        await remember(s, ctx.source, entity, items)

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
            payload = row.payload()
            plan = ctx.plans.get(row.entity)
            code, params = structured(plan, reason)
            values = {
                "payload": payload,
                "counterparty": counterparty_of(ctx.names, row.entity, row.ref, payload),
                "reason": (explain(plan, reason) if plan is not None else reason)[:2000],
                "reason_code": code,
                "reason_params": params or None,
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
        async with self.host.db.reader() as s:
            c = m.quarantine.c  # only what a retry reads (a run on any schema revision)
            stmt = select(c.id, c.entity, c.ref, c.payload).where(
                c.source == ctx.source, c.state == "open"
            )
            wanted: list[Sequence[int]] = list(batches(sorted(set(ids)), CHUNK)) if ids else [()]
            for chosen in wanted:
                where = stmt.where(m.quarantine.c.id.in_(chosen)) if chosen else stmt
                found.extend(await s.execute(where.order_by(m.quarantine.c.id)))
        if not found:
            return
        objects = ctx.plan.objects
        rows = [Row(q.entity, q.ref, obj=q.payload) for q in found if q.entity in objects]
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
