"""The entity sink: the integration app fills dictionaries from 1C catalogs.

One sink, ``dictionaries.entry``, takes records of any dictionary: the integration's
settings map a 1C catalog (``Catalog_ВидыУслуг``) to a dictionary code and its fields to
the dictionary's field codes. A record is matched to an entry by its external id (the
catalog's ``Ref_Key``); one marked deleted is unpublished (kept, since other entries may
refer to it). Replaying a batch changes nothing.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import msgspec
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from kabinet.contrib import EntitySink, SinkResult
from kabinet.db import savepoint
from kabinet_dictionaries import entries as store
from kabinet_dictionaries import models, structure
from kabinet_dictionaries.errors import DictionaryError, Invalid
from kabinet_dictionaries.structure import Actor, TypeInfo

if TYPE_CHECKING:
    from kabinet.host import Host

ACTOR = Actor(name="1C")


class CatalogRecord(msgspec.Struct, kw_only=True):
    """One catalog item mapped for a dictionary."""

    dictionary: str
    """The dictionary's code (a constant in the integration's mapping)."""
    external_id: str
    """The item's key in the production system (1C ``Ref_Key``)."""
    values: dict[str, Any] = msgspec.field(default_factory=dict)
    """Field code -> value, read by the field's kind like an import cell."""
    deleted: bool = False
    """1C's ``DeletionMark``: the entry is unpublished, not removed."""


async def apply_catalog(
    host: Host, session: AsyncSession, records: Sequence[CatalogRecord], *, notify: bool = True
) -> SinkResult:
    """Apply a batch in the caller's transaction; each record in a savepoint (nobody is
    told of an entry, so ``notify`` changes nothing)."""
    now = host.clock.now()
    types: dict[str, TypeInfo] = {}
    created = updated = hidden = unchanged = 0
    rejected: dict[str, str] = {}
    e = models.entry
    for record in records:
        try:
            found = types.get(record.dictionary)
            if found is None:
                found = types[record.dictionary] = await structure.load_type(
                    session, record.dictionary
                )
            async with savepoint(session):
                row = (
                    await session.execute(
                        select(e.c.id, e.c.version, e.c.published).where(
                            e.c.type_id == found.id, e.c.external_id == record.external_id
                        )
                    )
                ).first()
                current = None
                if row is not None:
                    current = (await store.read_values(session, found, [row.id]))[row.id]
                values = await store.validate(
                    session,
                    found,
                    record.values,
                    entry_id=None if row is None else row.id,
                    current=current,
                )
                entry_id = await store.write(
                    session,
                    found,
                    values,
                    actor=ACTOR,
                    now=now,
                    entry_id=None if row is None else row.id,
                    published=not record.deleted,
                    external_id=record.external_id,
                    action="synced",
                )
                version = await session.scalar(select(e.c.version).where(e.c.id == entry_id))
        except Invalid as exc:
            rejected[record.external_id] = "; ".join(
                f"{code}: {message}" for code, message in exc.by_field("en").items()
            )
            continue
        except DictionaryError as exc:
            rejected[record.external_id] = f"{record.dictionary}: {exc.english()}"
            continue
        if row is None:
            created += 1
        elif version == row.version:
            unchanged += 1
        elif record.deleted and row.published:
            hidden += 1
        else:
            updated += 1
    return SinkResult(
        created=created, updated=updated, hidden=hidden, unchanged=unchanged, rejected=rejected
    )


def sinks() -> list[EntitySink]:
    return [
        EntitySink(
            name="dictionaries.entry",
            struct=CatalogRecord,
            apply=apply_catalog,
            title={"ru": "Записи справочников", "en": "Dictionary entries"},
        )
    ]
