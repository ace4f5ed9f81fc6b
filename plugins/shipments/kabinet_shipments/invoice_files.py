"""Files attached to invoices in the production system: their print forms (PDF).

The integration app lists an invoice's attached files (1C's
``Catalog_СчетНаОплатуПокупателюПрисоединенныеФайлы`` by owner) after each page of
invoices it applies and hands the list to the ``shipments.invoice_files`` sink, in the
page's transaction: the list replaces the one stored. A file belongs to one invoice (1C
names one owner per file), so a file is readable exactly by those who may see its
invoice. The content is fetched into the host's file storage like an order document's:
ahead after a delta, on demand (the ``invoice_file.requested`` event) when someone opens
it and it is not stored yet.

1C may replace a file's content under the same id (a user edits the attached file): the
catalog item's ``DataVersion`` moves. Each file's version as listed is kept; when a listed
version differs from the stored one, the stored content is dropped once the page's
transaction commits, and the file is fetched again like a new one (the integration fetches
ahead what it noted and no longer finds stored; else it is asked for when someone opens
it). An empty version, listed or stored, never does this by itself.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

from sqlalchemy import delete, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from kabinet.contrib import SinkResult
from kabinet.db import current_unit
from kabinet_shipments import models as m
from kabinet_shipments.records import InvoiceFilesRecord

if TYPE_CHECKING:
    from kabinet.host import Host

CHUNK = 2000
_KEY_SAFE = re.compile(r"[^A-Za-z0-9._-]")
T = TypeVar("T")


def invoice_file_key(file_ref: str) -> str:
    """Where an invoice's file lives in the host's file storage."""
    return f"shipments/invoices/{_KEY_SAFE.sub('_', file_ref)}"


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
    """Each listed invoice's files as listed now (an invoice not stored is skipped: its
    files come with it once it is applied). Publishes nothing."""
    conn = await session.connection()
    wanted: dict[str, dict[str, tuple[str, str]]] = {}  # invoice -> file -> (name, version)
    for r in records:
        wanted[r.invoice] = {
            f.external_id: (f.name[:300], f.version[:100]) for f in r.files if not f.deleted
        }
    invoices: dict[str, int] = {}
    for part in _chunks(sorted(wanted)):
        rows = await conn.execute(
            select(m.invoice.c.id, m.invoice.c.external_id).where(m.invoice.c.external_id.in_(part))
        )
        invoices.update({r.external_id: r.id for r in rows})
    if not invoices:
        return SinkResult()
    ids = sorted(invoices.values())
    refs = sorted({ref for ext, files in wanted.items() if ext in invoices for ref in files})
    stored: dict[str, Any] = {}
    for part_ids in _chunks(ids):
        rows = await conn.execute(
            select(m.invoice_file).where(m.invoice_file.c.invoice_id.in_(part_ids))
        )
        stored.update({r.file_ref: r for r in rows})
    for part in _chunks(refs):  # a file 1C now lists under another invoice: it moves
        rows = await conn.execute(select(m.invoice_file).where(m.invoice_file.c.file_ref.in_(part)))
        stored.update({r.file_ref: r for r in rows})
    updated = unchanged = 0
    listed = {
        ref: (invoices[ext], name, version)
        for ext, files in wanted.items()
        if ext in invoices
        for ref, (name, version) in files.items()
    }
    mine = set(ids)
    gone = [r.id for ref, r in stored.items() if ref not in listed and r.invoice_id in mine]
    for part_ids in _chunks(gone):
        await conn.execute(delete(m.invoice_file).where(m.invoice_file.c.id.in_(part_ids)))
    new = []
    replaced: list[str] = []  # files whose content 1C replaced: the stored copy is stale
    for ref, (invoice_id, name, version) in listed.items():
        row = stored.get(ref)
        if row is None:
            new.append(
                {
                    "invoice_id": invoice_id,
                    "file_ref": ref,
                    "file_name": name,
                    "file_version": version,
                }
            )
            continue
        values: dict[str, Any] = {}
        if row.invoice_id != invoice_id or row.file_name != name:
            values.update(invoice_id=invoice_id, file_name=name)
        if version and version != row.file_version:  # an empty one says nothing
            values["file_version"] = version
            if row.file_version:  # another version than the stored copy's: fetched again
                values["requested_at"] = None
                replaced.append(ref)
        if values:
            await conn.execute(
                update(m.invoice_file).where(m.invoice_file.c.id == row.id).values(**values)
            )
            updated += 1
        else:
            unchanged += 1
    if new:
        await conn.execute(insert(m.invoice_file), new)
    if replaced:
        _drop_after_commit(host, [invoice_file_key(ref) for ref in replaced])
    return SinkResult(created=len(new), updated=updated, hidden=len(gone), unchanged=unchanged)


def _drop_after_commit(host: Host, keys: Sequence[str]) -> None:
    """Drop the stored copies of files 1C replaced, once the transaction that records
    their new versions commits (never if it rolls back: the old version stays recorded
    with its copy). Dropped before the commit, a person could be handed nothing while the
    old version is still what the portal knows; dropped by a transaction that then fails,
    the new version would never be noticed again."""

    async def drop() -> None:
        for key in keys:
            await host.files.delete(key)

    unit = current_unit(host.db)
    if unit is None:  # the sinks always run in a unit of work (host.db.session())
        raise RuntimeError("apply_invoice_files needs a unit of work (host.db.session())")
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
