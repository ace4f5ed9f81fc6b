"""Files of order documents: fetched from the production system into the host's storage.

The shipments app asks for a file (its ``document.requested`` event names the file and
the storage key); new orders' files are queued ahead of time after a delta. Each fetch
is a job within the source's rate limits; a failure is retried with backoff and shown
to staff on the runs page.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from sqlalchemy import insert, select, update

from kabinet.jobs import backoff
from kabinet_integration import models as m
from kabinet_integration.connectors import SourceError

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession

    from kabinet.events import Event
    from kabinet.host import Host

FETCH_ACTOR = "integration.fetch_file"


def storage_key(file_ref: str) -> str:
    """Where the shipments app expects a file (its own rule, when it is installed)."""
    try:
        from kabinet_shipments.services import file_key
    except ImportError:  # pragma: no cover - shipments is a requirement
        return f"shipments/files/{file_ref}"
    return str(file_key(file_ref))


def target_source(host: Host) -> str | None:
    """The source that answers client requests and holds the files: the
    ``write_back_source`` setting, else the first one pulled (or with a ``base_url``)."""
    settings = host.plugin_settings("integration")
    if settings.write_back_source:
        return str(settings.write_back_source)
    pulling = [name for name, s in settings.sources.items() if s.mode != "push" or s.base_url]
    return pulling[0] if pulling else None


async def queue_files(host: Host, source: str, files: Mapping[str, str]) -> None:
    """Note files to fetch (new ones only) and send a job for each."""
    for ref in await note_files(host, source, files):
        await host.jobs.send(FETCH_ACTOR, source=source, ref=ref)


async def note_files(host: Host, source: str, files: Mapping[str, str]) -> list[str]:
    """Note files to fetch (file id -> order id); returns the ones not known before."""
    now = host.clock.now()
    async with host.db.session() as s:
        refs = list(files)
        known = {
            r.ref
            for r in await s.execute(
                select(m.file.c.ref).where(m.file.c.source == source, m.file.c.ref.in_(refs))
            )
        }
        new = [r for r in refs if r not in known]
        if new:
            await s.execute(
                insert(m.file),
                [
                    {
                        "source": source,
                        "ref": r,
                        "key": storage_key(r),
                        "state": "pending",
                        "attempts": 0,
                        "updated_at": now,
                    }
                    for r in new
                ],
            )
    return new


async def on_document_requested(host: Host, event: Event, session: AsyncSession) -> None:
    """The shipments app needs a file now: noted in the event's transaction (SQLite has
    one writer), fetched by a job just after it commits."""
    source = target_source(host)
    if source is None:
        return
    payload: Any = event.payload
    ref, key = payload.file_ref, payload.key
    now = host.clock.now()
    found = (
        await session.execute(
            select(m.file.c.state).where(m.file.c.source == source, m.file.c.ref == ref)
        )
    ).first()
    if found is None:
        await session.execute(
            insert(m.file).values(
                source=source, ref=ref, key=key, state="pending", attempts=0, updated_at=now
            )
        )
    else:
        await session.execute(
            update(m.file)
            .where(m.file.c.source == source, m.file.c.ref == ref)
            .values(key=key, state="pending", attempts=0, next_attempt_at=None, updated_at=now)
        )
    # After the commit, most likely; the files schedule picks up anything it misses.
    await host.jobs.send_later(1.0, FETCH_ACTOR, {"source": source, "ref": ref})


async def fetch(host: Host, source: str, ref: str) -> bool:
    """Fetch one file; returns whether it is stored now."""
    from kabinet_integration.sync import integration

    settings = host.plugin_settings("integration")
    async with host.db.sessionmaker() as s:
        row = (
            await s.execute(select(m.file).where(m.file.c.source == source, m.file.c.ref == ref))
        ).first()
    if row is None or row.state == "fetched":
        return row is not None
    conn = await integration(host).connector(source)
    now = host.clock.now()
    try:
        name, content = await conn.file(ref)
        await host.files.save(row.key, content, filename=name)
    except SourceError as exc:
        attempts = row.attempts + 1
        state = "failed" if attempts >= settings.file_max_attempts else "pending"
        async with host.db.session() as s:
            await s.execute(
                update(m.file)
                .where(m.file.c.source == source, m.file.c.ref == ref)
                .values(
                    attempts=attempts,
                    state=state,
                    last_error=str(exc)[:2000],
                    next_attempt_at=now + dt.timedelta(seconds=backoff(attempts)),
                    updated_at=now,
                )
            )
        return False
    finally:
        await conn.aclose()
    async with host.db.session() as s:
        await s.execute(
            update(m.file)
            .where(m.file.c.source == source, m.file.c.ref == ref)
            .values(state="fetched", attempts=row.attempts + 1, last_error=None, updated_at=now)
        )
    return True


async def fetch_due(host: Host) -> int:
    """Retry files whose backoff has passed (a schedule sends this)."""
    now = host.clock.now()
    async with host.db.sessionmaker() as s:
        rows = list(
            await s.execute(
                select(m.file.c.source, m.file.c.ref).where(
                    m.file.c.state == "pending",
                    (m.file.c.next_attempt_at.is_(None)) | (m.file.c.next_attempt_at <= now),
                )
            )
        )
    done = 0
    for row in rows:
        done += int(await fetch(host, row.source, row.ref))
    return done
