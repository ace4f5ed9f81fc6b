"""The push inbox: the production system POSTs batches instead of being polled.

A batch has the shape of the exchange service's ``changes`` plus a ``batch_id``; it is
applied like a page of a delta (quarantine, sinks in order) in one transaction that also
records the ``batch_id``, so the same batch POSTed again is a no-op.
"""

from __future__ import annotations

import hmac
from typing import TYPE_CHECKING, Annotated, Any

import msgspec
from sqlalchemy import insert, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from kabinet.inputs import fits
from kabinet_integration import followups
from kabinet_integration import models as m
from kabinet_integration.connectors import Change, rows_of
from kabinet_integration.locks import RunLock
from kabinet_integration.mapping import Names
from kabinet_integration.settings import Settings
from kabinet_integration.sync import Counts, SyncError, integration

if TYPE_CHECKING:
    from kabinet.host import Host


class InboxChange(Change, kw_only=True):
    """A change as the push inbox takes it: bounded by the columns that keep it."""

    type: Annotated[str, fits(m.quarantine.c.entity)]
    ref: Annotated[str, fits(m.quarantine.c.ref)]
    object: dict[Annotated[str, msgspec.Meta(max_length=200)], Any] | None = None


class InboxBatch(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """What the production system POSTs."""

    batch_id: Annotated[str, fits(m.inbox.c.batch_id)] = msgspec.field()
    changes: list[InboxChange]
    message_no: Annotated[int, msgspec.Meta(ge=0, le=2**63 - 1)] | None = None


class Received(msgspec.Struct, kw_only=True):
    """What the inbox answers."""

    batch_id: str
    duplicate: bool
    run_id: int | None
    received: int = 0
    applied: int = 0
    unchanged: int = 0
    quarantined: int = 0


class Unauthorized(Exception):
    """The token is missing or wrong (or the source takes no pushes)."""


def check_token(host: Host, source: str, header: str | None) -> None:
    sources = host.plugin_settings("integration", Settings).sources
    settings = sources.get(source)
    if settings is None or not settings.inbox_token:
        raise Unauthorized("this source takes no pushes")
    scheme, _, token = (header or "").partition(" ")
    if scheme.lower() != "bearer" or not hmac.compare_digest(
        token.strip().encode(), settings.inbox_token.encode()
    ):
        raise Unauthorized("wrong or missing API token")


async def receive(host: Host, source: str, batch: InboxBatch) -> Received:
    """Apply a pushed batch once; Busy when a run of the source is going on."""
    svc = integration(host)
    settings = svc.source(source)
    if not batch.batch_id.strip() or len(batch.batch_id) > 100:
        raise SyncError("batch_id: give 1 to 100 characters")
    async with host.db.reader() as s:
        seen = await s.execute(
            select(m.inbox.c.run_id).where(
                m.inbox.c.source == source, m.inbox.c.batch_id == batch.batch_id
            )
        )
        found = seen.first()
    if found is not None:
        return Received(batch_id=batch.batch_id, duplicate=True, run_id=found.run_id)
    lock = RunLock(host, source)
    await lock.acquire()
    conn = await svc.connector(source)
    try:
        run_id = await svc._start(source, "push")
        names = Names.of(settings)
        ctx = await svc.context(source, settings, conn, run_id, lock, notify=True)

        async def record(s: AsyncSession) -> None:
            await s.execute(
                insert(m.inbox).values(
                    source=source,
                    batch_id=batch.batch_id,
                    run_id=run_id,
                    received_at=host.clock.now(),
                )
            )

        try:
            await svc.apply_page(ctx, rows_of(names, batch.changes), None, within=record)
        except IntegrityError:  # the same batch, committed by a concurrent POST
            await svc._finish(ctx, "succeeded", "the same batch was already received")
            return Received(batch_id=batch.batch_id, duplicate=True, run_id=None)
        except Exception as exc:
            await svc._finish(ctx, "failed", f"{type(exc).__name__}: {exc}")
            raise
        if settings.base_url:
            await followups.refresh(host, ctx)
        await svc._finish(ctx, "succeeded", None)
        c: Counts = ctx.counts
        return Received(
            batch_id=batch.batch_id,
            duplicate=False,
            run_id=run_id,
            received=c.received,
            applied=c.applied,
            unchanged=c.unchanged,
            quarantined=c.quarantined,
        )
    finally:
        await conn.aclose()
        await lock.release()
