"""Files attached to orders and invoices in the production system, as 1C lists them.

1C keeps one catalog of attached files per document type. The integration app lists a
document's attached files (by ``ВладелецФайла_Key``) after each page of those documents
it applies, and hands each owner's list to a sink of this app in the page's transaction:
``shipments.invoice_files`` (an invoice's print forms,
``Catalog_СчетНаОплатуПокупателюПрисоединенныеФайлы``) and ``shipments.order_files``
(``Catalog_ЗаявкаНаПеревозкуПрисоединенныеФайлы``, the files an order's documents name).
The list replaces the one stored. A file belongs to one owner (1C names one per file).

An invoice names no files of its own, so its listed files are what its card shows, and a
file is readable exactly by those who may see its invoice. An order's documents name their
files themselves (``Документы``.``Файл_Key``, :mod:`~kabinet_shipments.sink_orders`); its
listing only keeps each file's version.

1C may replace a file's content under the same id (a user edits the attached file): the
catalog item's ``DataVersion`` moves. Each file's version as listed is kept; when a listed
version differs from the stored one, in one way for both kinds of files:

- the stored content is dropped once the page's transaction commits (never if it rolls
  back: the old version stays recorded with its copy);
- the file's ``requested_at`` is cleared (an order's documents naming it, or the invoice's
  file), so opening it asks for it again;
- the event ``shipments.file.dropped`` is published in the page's transaction, so the app
  that fetches the files (integration) fetches it again: ahead after a delta, else when
  someone opens it.

An empty version, listed or stored, never does this by itself.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

from sqlalchemy import Table, delete, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from kabinet.contrib import SinkResult
from kabinet.db import current_unit
from kabinet_shipments import events as ev
from kabinet_shipments import models as m
from kabinet_shipments.records import InvoiceFilesRecord, OrderFilesRecord
from kabinet_shipments.services import file_key

if TYPE_CHECKING:
    from kabinet.host import Host

CHUNK = 2000
_KEY_SAFE = re.compile(r"[^A-Za-z0-9._-]")
T = TypeVar("T")


def invoice_file_key(file_ref: str) -> str:
    """Where an invoice's file lives in the host's file storage."""
    return f"shipments/invoices/{_KEY_SAFE.sub('_', file_ref)}"


@dataclasses.dataclass(frozen=True)
class Attached:
    """One kind of attached files: where its owners and its listing are stored."""

    owners: Table
    """The owners' table (orders, invoices), found by ``external_id``."""
    table: Table
    """The listing: ``<owner>_id``, ``file_ref`` (unique), ``file_name``, ``file_version``."""
    owner_column: str
    record_key: str
    """The record's field naming its owner's ``external_id``."""
    key: Callable[[str], str]
    """Where a file's content is stored (the host's file storage)."""
    requested: Table
    """The table whose ``requested_at`` (by ``file_ref``) says the file was asked for."""
    entity: str
    """The integration's name of the catalog (``DocumentRequested`` and the like)."""


INVOICE_FILES = Attached(
    owners=m.invoice,
    table=m.invoice_file,
    owner_column="invoice_id",
    record_key="invoice",
    key=invoice_file_key,
    requested=m.invoice_file,
    entity="invoice_file",
)
ORDER_FILES = Attached(
    owners=m.order,
    table=m.order_file,
    owner_column="order_id",
    record_key="order",
    key=file_key,
    requested=m.document,
    entity="file",
)


def _chunks(items: Sequence[T]) -> Iterable[Sequence[T]]:
    for start in range(0, len(items), CHUNK):
        yield items[start : start + CHUNK]


async def apply_invoice_files(
    host: Host,
    session: AsyncSession,
    records: Sequence[InvoiceFilesRecord],
    *,
    notify: bool = True,
) -> SinkResult:
    """Each listed invoice's files (its print forms) as listed now. Publishes only
    ``shipments.file.dropped``."""
    return await apply_attached(host, session, INVOICE_FILES, records)


async def apply_order_files(
    host: Host,
    session: AsyncSession,
    records: Sequence[OrderFilesRecord],
    *,
    notify: bool = True,
) -> SinkResult:
    """Each listed order's attached files as listed now: their versions. Publishes only
    ``shipments.file.dropped``."""
    return await apply_attached(host, session, ORDER_FILES, records)


async def apply_attached(
    host: Host, session: AsyncSession, kind: Attached, records: Sequence[Any]
) -> SinkResult:
    """Each listed owner's files as listed now (an owner not stored is skipped: its files
    come with it once it is applied); a file listed at another version than the stored
    one has its stored copy dropped and is fetched again."""
    conn = await session.connection()
    table, owner_col = kind.table, kind.table.c[kind.owner_column]
    wanted: dict[str, dict[str, tuple[str, str]]] = {}  # owner -> file -> (name, version)
    for r in records:
        wanted[getattr(r, kind.record_key)] = {
            f.external_id: (f.name[:300], f.version[:100]) for f in r.files if not f.deleted
        }
    owners: dict[str, int] = {}
    for part in _chunks(sorted(wanted)):
        rows = await conn.execute(
            select(kind.owners.c.id, kind.owners.c.external_id).where(
                kind.owners.c.external_id.in_(part)
            )
        )
        owners.update({r.external_id: r.id for r in rows})
    if not owners:
        return SinkResult()
    ids = sorted(owners.values())
    refs = sorted({ref for ext, files in wanted.items() if ext in owners for ref in files})
    stored: dict[str, Any] = {}
    for part_ids in _chunks(ids):
        rows = await conn.execute(select(table).where(owner_col.in_(part_ids)))
        stored.update({r.file_ref: r for r in rows})
    for part in _chunks(refs):  # a file 1C now lists under another owner: it moves
        rows = await conn.execute(select(table).where(table.c.file_ref.in_(part)))
        stored.update({r.file_ref: r for r in rows})
    updated = unchanged = 0
    listed = {
        ref: (owners[ext], ext, name, version)
        for ext, files in wanted.items()
        if ext in owners
        for ref, (name, version) in files.items()
    }
    mine = set(ids)
    gone = [
        r.id
        for ref, r in stored.items()
        if ref not in listed and r._mapping[kind.owner_column] in mine
    ]
    for part_ids in _chunks(gone):
        await conn.execute(delete(table).where(table.c.id.in_(part_ids)))
    new = []
    replaced: dict[str, str] = {}  # file -> its owner: the stored copy is stale
    for ref, (owner_id, owner, name, version) in listed.items():
        row = stored.get(ref)
        if row is None:
            new.append(
                {
                    kind.owner_column: owner_id,
                    "file_ref": ref,
                    "file_name": name,
                    "file_version": version,
                }
            )
            continue
        values: dict[str, Any] = {}
        if row._mapping[kind.owner_column] != owner_id or row.file_name != name:
            values.update({kind.owner_column: owner_id, "file_name": name})
        if version and version != row.file_version:  # an empty one says nothing
            values["file_version"] = version
            if row.file_version:  # another version than the stored copy's: fetched again
                replaced[ref] = owner
        if values:
            await conn.execute(update(table).where(table.c.id == row.id).values(**values))
            updated += 1
        else:
            unchanged += 1
    if new:
        await conn.execute(insert(table), new)
    if replaced:
        await _replaced(host, session, kind, replaced)
    return SinkResult(created=len(new), updated=updated, hidden=len(gone), unchanged=unchanged)


async def _replaced(
    host: Host, session: AsyncSession, kind: Attached, files: dict[str, str]
) -> None:
    """Files whose content 1C replaced (file -> its owner's ``external_id``): asked for
    again when opened, told to whoever fetches them (``shipments.file.dropped``, in this
    transaction), and their stored copies dropped once it commits."""
    conn = await session.connection()
    refs = sorted(files)
    for part in _chunks(refs):
        await conn.execute(
            update(kind.requested)
            .where(kind.requested.c.file_ref.in_(part))
            .values(requested_at=None)
        )
    for ref in refs:
        await host.events.publish(
            session,
            ev.FILE_DROPPED,
            ev.FileDropped(
                file_ref=ref,
                key=kind.key(ref),
                entity=kind.entity,
                owner_external_id=files[ref],
            ),
        )
    _drop_after_commit(host, [kind.key(ref) for ref in refs])


def _drop_after_commit(host: Host, keys: Sequence[str]) -> None:
    """Drop the stored copies of files 1C replaced, once the transaction that records
    their new versions commits (never if it rolls back: the old version stays recorded
    with its copy, and the next listing notices the new one again). Dropped before the
    commit, a person could be handed nothing while the old version is still what the
    portal knows."""

    async def drop() -> None:
        for key in keys:
            await host.files.delete(key)

    unit = current_unit(host.db)
    if unit is None:  # the sinks always run in a unit of work (host.db.session())
        raise RuntimeError("attached files' sinks need a unit of work (host.db.session())")
    unit.after_commit(drop)


async def files_of(conn: AsyncConnection, invoice_ids: Sequence[int]) -> dict[int, list[Any]]:
    """The files of these invoices (invoice id -> rows, by name)."""
    found: dict[int, list[Any]] = {}
    if not invoice_ids:
        return found
    rows = await conn.execute(
        select(m.invoice_file)
        .where(m.invoice_file.c.invoice_id.in_(list(invoice_ids)))
        .order_by(m.invoice_file.c.file_name, m.invoice_file.c.id)
    )
    for row in rows:
        found.setdefault(row.invoice_id, []).append(row)
    return found
