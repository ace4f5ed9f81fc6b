"""What a sink asks for after its batches, done generically (the sink declares it on its
:class:`kabinet.contrib.EntitySink`; the settings' feeds say where in 1C it is):

- ``files``: the files a batch's records name, fetched ahead after the run from the
  catalog the entity's feed names (``feeds.<entity>.files``);
- ``refreshes``: records of another sink made stale (a contract's balance), marked owed in
  the batch's transaction and asked for at the end of the run through that sink's
  ``balance`` feed (a register's Balance function);
- a sink fed by an ``attached`` feed receives, after each page of the feed's ``owner``,
  the files attached to the page's objects as 1C lists them (one record per owner).
"""

from __future__ import annotations

import asyncio
import logging
import typing
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import msgspec

from kabinet_integration import balances
from kabinet_integration.connectors import Row, SourceError
from kabinet_integration.mapping import MappingError, Names, Plan, decode
from kabinet_integration.sinkplan import OBJECTS
from kabinet_integration.state import Context

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession

    from kabinet.host import Host

log = logging.getLogger(__name__)


async def after_batch(
    host: Host, ctx: Context, s: AsyncSession, entity: str, records: Sequence[msgspec.Struct]
) -> None:
    """The follow-ups a sink declares for the records of a batch it applied: the files they
    name noted for the run's end, the records of other sinks they make stale marked owed
    (committed with the page)."""
    sink = ctx.plans[entity].sink
    if not records:
        return
    if sink.files is not None:
        catalog = ctx.names.feeds[entity].files
        if catalog:
            found = ctx.new_files.setdefault(catalog, {})
            for record in records:  # file -> its owner's key (whose the file is)
                owner = str(getattr(record, sink.key, "") or "")
                for ref in sink.files([record]):
                    found[str(ref)] = owner
    if sink.refreshes is None:
        return
    for target, keys in sink.refreshes(records).items():
        for owing in ctx.plan.owing(target):
            fresh = {str(k) for k in keys if k}
            if not fresh:
                continue
            ctx.owed.setdefault(owing, set()).update(fresh)
            # Owed until a run refreshes them: committed with the page that changed them.
            await balances.owe(s, ctx.source, owing, fresh, host.clock.now())


# -- attached files ------------------------------------------------------------------------


async def attached(
    ctx: Context,
    records: Mapping[str, list[tuple[Row, msgspec.Struct, str]]],
    relisted: Mapping[str, Sequence[str]] | None = None,
) -> dict[str, list[msgspec.Struct]]:
    """The attached files of a page's live objects, listed in 1C by owner (an object names
    none of its own), as the records of each ``attached`` feed's sink; ``relisted``: owner
    entity -> objects the page brought again unchanged, whose files are listed too (1C
    registers an object as changed when a file is attached to it or replaced)."""
    out: dict[str, list[msgspec.Struct]] = {}
    for owner, entities in ctx.plan.attached.items():
        refs = [
            row.ref
            for row, record, version in records.get(owner, ())
            if version != "deleted" and not getattr(record, "deleted", False)
        ]
        seen = set(refs)
        refs += [r for r in (relisted or {}).get(owner, ()) if r not in seen]
        for entity in entities:
            found = await attached_records(ctx.connector, ctx.names, ctx.plans[entity], refs)
            if found:
                out[entity] = found
    return out


async def attached_records(
    connector: Any, names: Names, p: Plan, owners: Sequence[str]
) -> list[msgspec.Struct]:
    """The files attached to ``owners`` (the catalog ``p.entity``) as the sink's records:
    one per owner (its key field), its files in the struct's one list field (as listed
    now; an owner without files gets an empty list)."""
    listing = getattr(connector, "attached", None)  # a plugin's connector may have none
    if not owners or listing is None:
        return []
    f = names.fields[p.entity]
    sink = p.sink
    lists = [
        (field.name, field.type)
        for field in msgspec.structs.fields(sink.struct)
        if field.name != sink.key and getattr(field.type, "__origin__", None) in (list, tuple)
    ]
    if len(lists) != 1:
        raise MappingError(f"{sink.name}: an attached-files sink has its key and one list field")
    column = lists[0][0]
    line = typing.get_args(lists[0][1])[0]
    taken = {x.name for x in msgspec.structs.fields(line)}
    listed: dict[str, list[dict[str, Any]]] = {ref: [] for ref in owners}
    ref_field = f.get("external_id", "Ref_Key")
    for row in await listing(p.entity, owners):
        owner = str(row.get(f["owner"], ""))
        if owner not in listed or not row.get(ref_field):
            continue
        item = {n: row[source] for n, source in f.items() if source in row and n in taken}
        name = str(row.get(f.get("name", "Description")) or row[ref_field])
        ext = str(row.get(f.get("extension", "")) or "").lstrip(".")
        if ext and not name.lower().endswith("." + ext.lower()):
            name = f"{name}.{ext}"
        item.update(
            external_id=str(row[ref_field]),
            name=name,
            deleted=bool(row.get(f.get("deleted", "DeletionMark"), False)),
        )
        listed[owner].append(item)
    return [
        msgspec.convert({sink.key: ref, column: files}, sink.struct, strict=False)
        for ref, files in listed.items()
    ]


# -- balances ------------------------------------------------------------------------------


async def refresh(host: Host, ctx: Context, full: bool = False) -> None:
    """Refresh, for each ``balance`` feed, the keys this run owes and every key owed by an
    earlier run that failed after its pages (a full run: every live object of the feed's
    ``owner``); their marks go with the transaction that stores them."""
    from kabinet_integration.store import alive

    for entity in ctx.plan.balances:
        keys = set(ctx.owed.get(entity, ()))
        owner = ctx.names.feeds[entity].owner
        feed = ctx.names.feeds.get(owner) if full and owner else None
        if feed is not None and feed.kind == OBJECTS:
            keys.update(await alive(host, ctx.source, owner))
        keys.update(await balances.owed(host, ctx.source, entity))
        if keys:
            await refresh_one(host, ctx, entity, sorted(keys))


async def refresh_one(host: Host, ctx: Context, entity: str, keys: Sequence[str]) -> None:
    p = ctx.plans[entity]
    rows = await balance_rows(ctx.connector, ctx.names, entity, p.sink.key, keys)
    f = ctx.names.fields[entity]
    key = f[p.sink.key]
    found: dict[str, dict[str, Any]] = {k: {} for k in keys}  # no row: owes nothing
    for row in rows:
        found[str(row.get(key))] = row
    records = []
    for k, row in found.items():
        # A register's resources of a key without a row are zero.
        data = {source: row.get(source, 0) for name, source in f.items() if name != p.sink.key}
        data[key] = k
        try:
            records.append(decode(p, data))
        except MappingError as exc:  # asked again only when the key is owed again
            log.warning("%s of %s: %s", entity, k, exc)
            continue
    async with host.db.session() as s:
        result = await p.sink.apply(host, s, records, notify=ctx.notify)
        await balances.settle(s, ctx.source, entity, keys)
    log.info("%s of %d keys: %d updated", entity, len(records), result.updated)


async def balance_rows(
    connector: Any, names: Names, entity: str, key: str, keys: Sequence[str]
) -> list[dict[str, Any]]:
    """The Balance rows of the register ``entity`` for ``keys`` (its ``key`` dimension)."""
    if entity == "balance":  # the connector's own question (a plugin's connector has it)
        rows: list[dict[str, Any]] = await connector.balances(keys)
        return rows
    collection, url = getattr(connector, "collection", None), getattr(connector, "url", None)
    if collection is None or url is None:
        raise SourceError(f"{entity}: this connector cannot read a register's balance")
    dimension = names.fields[entity][key]
    size = max(1, int(getattr(getattr(connector, "source", None), "batch_size", 50)))

    async def one(part: Sequence[str]) -> list[dict[str, Any]]:
        condition = " or ".join(f"{dimension} eq guid''{k}''" for k in part)
        found: list[dict[str, Any]] = await collection(
            url(f"{names.sets[entity]}/Balance(Condition='{condition}')")
        )
        return found

    parts = [keys[i : i + size] for i in range(0, len(keys), size)]
    return [row for rows in await asyncio.gather(*(one(p) for p in parts)) for row in rows]


async def queue_new_files(host: Host, ctx: Context) -> None:
    """The files the run's records named, fetched ahead (after a delta)."""
    from kabinet_integration.files import queue_files

    for catalog, found in ctx.new_files.items():
        if found:
            await queue_files(host, ctx.source, found, catalog)
