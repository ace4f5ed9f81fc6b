"""Files attached to invoices in the production system: their print forms (PDF).

The integration app lists an invoice's attached files (1C's
``Catalog_СчетНаОплатуПокупателюПрисоединенныеФайлы`` by owner) after each page of
invoices it applies and hands the list to the ``shipments.invoice_files`` sink, in the
page's transaction: the list replaces the one stored. A file belongs to one invoice (1C
names one owner per file), so a file is readable exactly by those who may see its
invoice. The content is fetched into the host's file storage like an order document's:
ahead after a delta, on demand (the ``invoice_file.requested`` event) when someone opens
it and it is not stored yet.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

from sqlalchemy import delete, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from kabinet.contrib import SinkResult
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
    wanted: dict[str, dict[str, str]] = {}
    for r in records:
        wanted[r.invoice] = {f.external_id: f.name for f in r.files if not f.deleted}
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
        ref: (invoices[ext], name)
        for ext, files in wanted.items()
        if ext in invoices
        for ref, name in files.items()
    }
    mine = set(ids)
    gone = [r.id for ref, r in stored.items() if ref not in listed and r.invoice_id in mine]
    for part_ids in _chunks(gone):
        await conn.execute(delete(m.invoice_file).where(m.invoice_file.c.id.in_(part_ids)))
    new = []
    for ref, (invoice_id, name) in listed.items():
        row = stored.get(ref)
        if row is None:
            new.append({"invoice_id": invoice_id, "file_ref": ref, "file_name": name[:300]})
        elif row.invoice_id != invoice_id or row.file_name != name[:300]:
            await conn.execute(
                update(m.invoice_file)
                .where(m.invoice_file.c.id == row.id)
                .values(invoice_id=invoice_id, file_name=name[:300])
            )
            updated += 1
        else:
            unchanged += 1
    if new:
        await conn.execute(insert(m.invoice_file), new)
    return SinkResult(created=len(new), updated=updated, hidden=len(gone), unchanged=unchanged)


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
