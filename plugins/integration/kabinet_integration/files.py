"""Files of order documents and of invoices: fetched from the production system into the
host's storage.

Two ways in. **On demand**: the shipments app asks for a file when a person opens a
document (its ``document.requested`` event names the file and the storage key); one job
on the ``integration`` queue, beside client requests, fetches it at once. **Ahead**: the
files of orders a delta brought are noted and fetched in batches of ``FILES_PER_JOB`` by
jobs on a queue of their own (``integration_files``), which the job runners keep behind
everything else (``Actor.bulk``), so thousands of queued files never delay a client
request. A first load (until the source's first successful run) fetches ahead only when
the source's ``files_first_load`` is ``"ahead"``; by default its files wait until someone
opens them.

Every request goes through the source's limits (:mod:`kabinet_integration.limits`),
shared by every job and worker. A failure is retried with backoff (a schedule sends what
is due) and shown to staff once the attempts are spent; a 404 (the file, or the order it
belonged to, was deleted in 1C before its fetch) ends the file quietly: state ``gone``,
neither retried nor shown as failed.

Files live in 1C's catalogs of attached files (one per document type): ``entity`` names
the catalog (in the reference ``file``: orders', ``invoice_file``: invoices'; each a set
and fields in the source's settings). A sink says which files its records name
(:attr:`kabinet.contrib.EntitySink.files`, the catalog its feed's ``files``) and where its
plugin reads them (``file_key``); an object that names none of its own (an invoice) has
them listed by owner after each page (an ``attached`` feed,
:func:`kabinet_integration.followups.attached_records`; orders' files are listed too, for
their versions). From there every file goes the same way: ahead after a delta, on demand
after a first load or when someone opens it.

A file fetched is not watched: the storage is never asked whether its copy is still
there. The app that serves it says when it drops its copy (1C replaced the content:
``shipments.file.dropped``, :func:`on_file_dropped`), and the file is fetched again.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import re
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from sqlalchemy import delete, func, insert, select, update

from kabinet.jobs import backoff
from kabinet_integration import models as m
from kabinet_integration import owners
from kabinet_integration.connectors import Connector, SourceError
from kabinet_integration.settings import Settings

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession

    from kabinet.events import Event
    from kabinet.host import Host

log = logging.getLogger(__name__)
FETCH_ACTOR = "integration.fetch_file"
"""One file a person is waiting for (queue ``integration``)."""
BATCH_ACTOR = "integration.fetch_files"
"""A batch of files fetched ahead (queue ``FILES_QUEUE``)."""
DUE_ACTOR = "integration.fetch_due_files"
FILES_QUEUE = "integration_files"
FILES_PER_JOB = 50
QUEUED_SECONDS = 3600.0
"""A file sent in a batch is not sent again by the schedule before this long (its job is
queued); after it, it is (a job lost with an embedded runner's restart)."""
DUE_PER_TICK = 10_000
_KEY_SAFE = re.compile(r"[^A-Za-z0-9._-]")


async def file_keys(host: Host, source: str, entity: str) -> Callable[[str], str]:
    """Where the plugin that receives the files of the catalog ``entity`` expects each
    (:attr:`kabinet.contrib.EntitySink.file_key` of the sink whose feed names that
    catalog); ``integration/files/<entity>/<id>`` when no sink says."""
    from kabinet_integration.mapping import Names
    from kabinet_integration.sync import integration

    svc = integration(host)
    sinks = await svc.sinks()
    for feed in Names.of(svc.source(source)).feeds.values():
        sink = sinks.get(feed.sink)
        if feed.files == entity and sink is not None and sink.file_key is not None:
            return sink.file_key
    return lambda ref: f"integration/files/{entity}/{_KEY_SAFE.sub('_', ref)}"


def target_source(host: Host) -> str | None:
    """The source that answers client requests and holds the files: the
    ``write_back_source`` setting, else the first one pulled (or with a ``base_url``)."""
    settings = host.plugin_settings("integration", Settings)
    if settings.write_back_source:
        return str(settings.write_back_source)
    pulling = [name for name, s in settings.sources.items() if s.mode != "push" or s.base_url]
    return pulling[0] if pulling else None


async def first_load(host: Host, source: str) -> bool:
    """Whether ``source`` has not had a successful run yet (its first load is going on)."""
    async with host.db.reader() as s:
        done = await s.execute(
            select(func.count())
            .select_from(m.run)
            .where(m.run.c.source == source, m.run.c.state == "succeeded")
        )
        return not done.scalar_one()


async def queue_files(
    host: Host, source: str, files: Mapping[str, str], entity: str = "file"
) -> None:
    """Files of orders (or invoices) a run applied (file id -> owner id): fetched ahead in
    batches, unless this is a first load whose files are fetched on demand."""
    settings = host.plugin_settings("integration", Settings).sources[source]
    if settings.files_first_load != "ahead" and await first_load(host, source):
        log.info("integration: %d files of the first load are fetched on demand", len(files))
        return
    await send_batches(host, source, await note_files(host, source, files, entity))


async def send_batches(host: Host, source: str, refs: Sequence[str]) -> None:
    """Jobs on the files queue, ``FILES_PER_JOB`` files each."""
    await host.jobs.send_many(
        (BATCH_ACTOR, {"source": source, "refs": list(refs[i : i + FILES_PER_JOB])})
        for i in range(0, len(refs), FILES_PER_JOB)
    )


async def note_files(
    host: Host, source: str, files: Mapping[str, str], entity: str = "file"
) -> list[str]:
    """Note files to fetch (file id -> owner id); returns the ones not known before.

    A file known already is left as it is, and the file storage is not asked whether its
    copy is still there (on S3 a request per file, for every file of every changed owner
    of every delta): the app that serves a file says when it drops its copy
    (``shipments.file.dropped``, :func:`on_file_dropped`), and a copy lost otherwise is
    asked for when someone opens it (``document.requested``)."""
    from kabinet_integration.sync import CHUNK, batches

    storage_key = await file_keys(host, source, entity)
    now = host.clock.now()
    queued = now + dt.timedelta(seconds=QUEUED_SECONDS)
    new: list[str] = []
    async with host.db.session() as s:
        # Whose each file is: its owner's counterparty (staff see only their own).
        counterparty = await owners.counterparties(s, set(files.values()))
        # In slices: a first load notes the files of every order (over 32,767 parameters).
        for part in batches(list(files), CHUNK):
            known = {
                r.ref
                for r in await s.execute(
                    select(m.file.c.ref).where(m.file.c.source == source, m.file.c.ref.in_(part))
                )
            }
            fresh = [r for r in part if r not in known]
            if fresh:
                await s.execute(
                    insert(m.file),
                    [
                        {
                            "source": source,
                            "ref": r,
                            "key": storage_key(r),
                            "entity": entity,
                            "state": "pending",
                            "attempts": 0,
                            "next_attempt_at": queued,
                            "updated_at": now,
                            "counterparty": counterparty.get(files[r]),
                        }
                        for r in fresh
                    ],
                )
            new.extend(fresh)
    return new


async def on_document_requested(host: Host, event: Event, session: AsyncSession) -> None:
    """The shipments app needs a file now: noted in the event's transaction (SQLite has
    one writer), fetched by a job just after it commits."""
    source = target_source(host)
    if source is None:
        return
    payload: Any = event.payload
    # The order's or the invoice's: staff see only their organizations' files.
    owner = str(
        getattr(payload, "order_external_id", "") or getattr(payload, "invoice_external_id", "")
    )
    await _to_fetch(host, session, source, payload, owner)
    # After the commit, most likely; the files schedule picks up anything it misses.
    await host.jobs.send_later(1.0, FETCH_ACTOR, {"source": source, "ref": payload.file_ref})


async def on_file_dropped(host: Host, event: Event, session: AsyncSession) -> None:
    """The app that serves a file dropped its stored copy (1C replaced the file's content
    under the same id; ``shipments.file.dropped``): the file is fetched again the way a
    new one of a delta is. Ahead (the source's ``files_ahead``, and ``files_first_load =
    "ahead"`` while its first load goes on): due at once on the files queue, behind
    client requests. Otherwise it is forgotten, as a file never noted: fetched when
    someone opens it (``document.requested``)."""
    source = target_source(host)
    if source is None:
        return
    payload: Any = event.payload
    settings = host.plugin_settings("integration", Settings).sources[source]
    ahead = settings.files_ahead and (
        settings.files_first_load == "ahead" or not await first_load(host, source)
    )
    if not ahead:
        await session.execute(
            delete(m.file).where(m.file.c.source == source, m.file.c.ref == payload.file_ref)
        )
        return
    await _to_fetch(host, session, source, payload, str(payload.owner_external_id))
    # One tick of the files schedule, now: due files go in batches on the files queue.
    await host.jobs.send(DUE_ACTOR)


async def _to_fetch(
    host: Host, session: AsyncSession, source: str, payload: Any, owner: str
) -> None:
    """The file ``payload`` names (``file_ref``, ``key``, ``entity``) noted to be fetched
    (due now, its attempts counted afresh), whatever its state was; ``owner``: its order's
    or invoice's 1C id, whose counterparty's staff see it."""
    ref, key = payload.file_ref, payload.key
    entity = str(getattr(payload, "entity", "file"))
    now = host.clock.now()
    counterparty = (await owners.counterparties(session, [owner])).get(owner)
    found = (
        await session.execute(
            select(m.file.c.state).where(m.file.c.source == source, m.file.c.ref == ref)
        )
    ).first()
    if found is None:
        await session.execute(
            insert(m.file).values(
                source=source,
                ref=ref,
                key=key,
                entity=entity,
                state="pending",
                attempts=0,
                updated_at=now,
                counterparty=counterparty,
            )
        )
    else:
        await session.execute(
            update(m.file)
            .where(m.file.c.source == source, m.file.c.ref == ref)
            .values(
                key=key,
                entity=entity,
                state="pending",
                attempts=0,
                next_attempt_at=None,
                updated_at=now,
                **({} if counterparty is None else {"counterparty": counterparty}),
            )
        )


async def fetch(host: Host, source: str, ref: str, conn: Connector | None = None) -> bool:
    """Fetch one file; returns whether it is stored now."""
    from kabinet_integration.sync import integration

    settings = host.plugin_settings("integration", Settings)
    async with host.db.reader() as s:
        row = (
            await s.execute(select(m.file).where(m.file.c.source == source, m.file.c.ref == ref))
        ).first()
    if row is None or row.state in ("fetched", "gone"):
        return row is not None and row.state == "fetched"
    own = conn is None
    connector = conn or await integration(host).connector(source)
    now = host.clock.now()
    try:
        # Orders' files as before (a connector of a plugin may know no other catalog).
        got = connector.file(ref) if row.entity == "file" else connector.file(ref, row.entity)
        name, content = await got
        await host.files.save(row.key, content, filename=name)
    except SourceError as exc:
        attempts = row.attempts + 1
        values: dict[str, Any]
        if exc.status == 404:  # deleted in 1C (with its order): nothing to fetch, ever
            log.info("integration: file %s of %s is gone from 1C: %s", ref, source, exc)
            values = {"state": "gone", "last_error": None, "next_attempt_at": None}
        else:
            state = "failed" if attempts >= settings.file_max_attempts else "pending"
            values = {
                "state": state,
                "last_error": str(exc)[:2000],
                "next_attempt_at": now + dt.timedelta(seconds=backoff(attempts)),
            }
        async with host.db.session() as s:
            await s.execute(
                update(m.file)
                .where(m.file.c.source == source, m.file.c.ref == ref)
                .values(attempts=attempts, updated_at=now, **values)
            )
        return False
    finally:
        if own:
            await connector.aclose()
    async with host.db.session() as s:
        await s.execute(
            update(m.file)
            .where(m.file.c.source == source, m.file.c.ref == ref)
            .values(state="fetched", attempts=row.attempts + 1, last_error=None, updated_at=now)
        )
    return True


async def fetch_batch(host: Host, source: str, refs: Sequence[str]) -> int:
    """Fetch a batch of files (a job of the files queue) through one connector, no more
    at once than the source's ``max_concurrency``; returns how many are stored now."""
    from kabinet_integration.sync import integration

    svc = integration(host)
    gate = asyncio.Semaphore(max(1, svc.source(source).max_concurrency))
    conn = await svc.connector(source)

    async def one(ref: str) -> bool:
        async with gate:
            return await fetch(host, source, ref, conn)

    try:
        return sum(await asyncio.gather(*(one(r) for r in refs)))
    finally:
        await conn.aclose()


async def due(host: Host, *, limit: int = DUE_PER_TICK) -> list[tuple[str, str]]:
    """(source, file) of pending files whose backoff (or queued time) has passed."""
    now = host.clock.now()
    async with host.db.reader() as s:
        rows = await s.execute(
            select(m.file.c.source, m.file.c.ref)
            .where(
                m.file.c.state == "pending",
                (m.file.c.next_attempt_at.is_(None)) | (m.file.c.next_attempt_at <= now),
            )
            .order_by(m.file.c.updated_at)
            .limit(limit)
        )
        return [(r.source, r.ref) for r in rows]


async def queue_due(host: Host) -> int:
    """The schedule's tick: due files sent in batches to the files queue (marked queued,
    so the next tick does not send them again while they wait); returns how many."""
    from kabinet_integration.sync import CHUNK, batches

    found = await due(host)
    queued = host.clock.now() + dt.timedelta(seconds=QUEUED_SECONDS)
    by_source: dict[str, list[str]] = {}
    for source, ref in found:
        by_source.setdefault(source, []).append(ref)
    for source, refs in by_source.items():
        async with host.db.session() as s:
            for part in batches(refs, CHUNK):
                await s.execute(
                    update(m.file)
                    .where(m.file.c.source == source, m.file.c.ref.in_(part))
                    .values(next_attempt_at=queued)
                )
        await send_batches(host, source, refs)
    return len(found)


async def fetch_due(host: Host) -> int:
    """Fetch the files that are due now, here (``kabinet`` commands and tests)."""
    done = 0
    for source, ref in await due(host):
        done += int(await fetch(host, source, ref))
    return done
