"""Entries: validated values in the typed tables, their history, and pages of them.

Queries (filters, sort, search) are :mod:`kabinet_dictionaries.queries`; this module reads
and writes an entry's values: one row per (entry, field) in the value table of the
field's kind, so there is no per-type table and no DDL at run time.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Collection, Iterable, Mapping
from decimal import Decimal
from typing import Any

import msgspec
from sqlalchemy import (
    Boolean,
    Integer,
    Text,
    cast,
    delete,
    func,
    insert,
    null,
    select,
    union_all,
    update,
)
from sqlalchemy.ext.asyncio import AsyncSession

from kabinet_dictionaries import kinds, models
from kabinet_dictionaries.errors import Conflict, Invalid, NotFound, ValueRefused
from kabinet_dictionaries.kinds import FieldDef
from kabinet_dictionaries.queries import resolve_reference
from kabinet_dictionaries.structure import Actor, TypeInfo

NUMERIC = ("number", "money")


class Entry(msgspec.Struct, kw_only=True):
    """One entry: raw values (JSON-ready) and how each reads, in one language."""

    id: int
    type: str
    title: str
    published: bool
    version: int
    external_id: str | None
    values: dict[str, Any]
    display: dict[str, str]
    updated_at: dt.datetime


class EntryPage(msgspec.Struct, kw_only=True):
    items: list[Entry]
    total: int
    page: int
    per_page: int


class Change(msgspec.Struct, kw_only=True):
    field: str
    name_ru: str
    name_en: str
    old: str
    new: str


class Version(msgspec.Struct, kw_only=True):
    version: int
    action: str
    changed_at: dt.datetime
    changed_by: int | None
    changed_by_name: str
    changes: list[Change]


def _tables(fields: Iterable[FieldDef]) -> dict[str, list[FieldDef]]:
    by_table: dict[str, list[FieldDef]] = defaultdict(list)
    for f in fields:
        by_table[kinds.TABLES[f.kind].name].append(f)
    return by_table


_COLUMNS: dict[str, Any] = {
    # One column per Python type of value, so one UNION ALL reads every table's values.
    "dictionaries_value_text": ("text", Text()),
    "dictionaries_value_long": ("text", Text()),
    "dictionaries_value_file": ("text", Text()),
    "dictionaries_value_number": ("number", models.Number()),
    "dictionaries_value_date": ("date", models.value_date.c.value.type),
    "dictionaries_value_datetime": ("datetime", models.UtcDateTime()),
    "dictionaries_value_bool": ("bool", Boolean()),
    "dictionaries_value_ref": ("ref", Integer()),
}
_SLOTS = dict(_COLUMNS.values())


async def read_values(
    session: AsyncSession, found: TypeInfo, entry_ids: Collection[int]
) -> dict[int, dict[str, Any]]:
    """entry id -> {field code: stored value} (blank fields absent), in one statement."""
    result: dict[int, dict[str, Any]] = {e: {} for e in entry_ids}
    if not entry_ids:
        return result
    by_table = _tables(found.fields)
    if not by_table:
        return result
    codes = {f.id: f.code for f in found.fields}
    slots = {f.id: _COLUMNS[kinds.TABLES[f.kind].name][0] for f in found.fields}
    scales = {f.id: Decimal(1).scaleb(-f.scale) for f in found.fields if f.kind in NUMERIC}
    parts = []
    for name, fields in by_table.items():
        table = kinds.TABLES[fields[0].kind]
        own = _COLUMNS[name][0]
        parts.append(
            select(
                table.c.entry_id,
                table.c.field_id,
                *(
                    (table.c.value if slot == own else cast(null(), type_)).label(slot)
                    for slot, type_ in _SLOTS.items()
                ),
            ).where(
                table.c.entry_id.in_(list(entry_ids)),
                table.c.field_id.in_([f.id for f in fields]),
            )
        )
    for r in await session.execute(union_all(*parts) if len(parts) > 1 else parts[0]):
        value = getattr(r, slots[r.field_id])
        if r.field_id in scales:  # NUMERIC(24, 6) reads back with six places
            value = value.quantize(scales[r.field_id])
        result[r.entry_id][codes[r.field_id]] = value
    return result


def values_of_rows(found: TypeInfo, rows: Mapping[int, Any]) -> dict[int, dict[str, Any]]:
    """entry id -> {field code: value} from a page's rows read with ``v<field id>``
    columns (:meth:`kabinet_dictionaries.queries.Plan.counted_walk`)."""
    result: dict[int, dict[str, Any]] = {}
    for entry_id, row in rows.items():
        values: dict[str, Any] = {}
        for f in found.fields:
            value = row._mapping[f"v{f.id}"]
            if value is None:
                continue
            if f.kind in NUMERIC:
                value = value.quantize(Decimal(1).scaleb(-f.scale))
            values[f.code] = value
        result[entry_id] = values
    return result


async def titles(session: AsyncSession, entry_ids: Collection[int]) -> dict[int, str]:
    """The names of entries (their type's first text field), for references."""
    if not entry_ids:
        return {}
    v, f = models.value_text, models.field
    rows = await session.execute(
        select(v.c.entry_id, v.c.value)
        .join(f, f.c.id == v.c.field_id)
        .where(v.c.entry_id.in_(list(entry_ids)), f.c.kind == "text")
        .order_by(v.c.entry_id, f.c.position.desc(), f.c.id.desc())
    )
    found = {r.entry_id: r.value for r in rows}  # the last row per entry is the first field
    return {e: found.get(e, f"#{e}") for e in entry_ids}


async def file_names(session: AsyncSession, keys: Collection[str]) -> dict[str, str]:
    if not keys:
        return {}
    rows = await session.execute(
        select(models.file_meta.c.key, models.file_meta.c.filename).where(
            models.file_meta.c.key.in_(list(keys))
        )
    )
    return {r.key: r.filename for r in rows}


class Renderer:
    """Shows stored values in one language, looking up reference titles and file names."""

    def __init__(self, language: str, timezone: str) -> None:
        self.language = language
        self.timezone = timezone
        self.titles: dict[int, str] = {}
        self.files: dict[str, str] = {}

    async def load(
        self, session: AsyncSession, found: TypeInfo, values: Iterable[Mapping[str, Any]]
    ) -> None:
        refs: set[int] = set()
        files: set[str] = set()
        for row in values:
            for f in found.fields:
                value = row.get(f.code)
                if value is not None and f.kind == "reference":
                    refs.add(int(value))
                elif value is not None and f.kind == "file":
                    files.add(str(value))
        self.titles.update(await titles(session, refs - set(self.titles)))
        self.files.update(await file_names(session, files - set(self.files)))

    def show(self, field: FieldDef, value: Any) -> str:
        return kinds.display(
            field,
            value,
            self.language,
            timezone=self.timezone,
            titles=self.titles,
            files=self.files,
        )


# -- validation -------------------------------------------------------------------------------


async def validate(
    session: AsyncSession,
    found: TypeInfo,
    raw: Mapping[str, Any],
    *,
    entry_id: int | None = None,
    current: Mapping[str, Any] | None = None,
    timezone: str = "UTC",
) -> dict[str, Any]:
    """The entry's complete values from ``raw`` (fields not in ``raw`` keep ``current``),
    or :class:`Invalid` with every field's reason."""
    errors: dict[str, ValueRefused] = {}
    for code in raw:
        if found.field(code) is None:
            errors[code] = ValueRefused("unknown_field", code=code)
    values: dict[str, Any] = {}
    for field in found.fields:
        try:
            if field.code in raw:
                value = kinds.parse(field, raw[field.code], timezone=timezone)
            else:
                value = (current or {}).get(field.code)
            if value is None and entry_id is None:
                value = kinds.check_default(field)
            if value is None:
                if field.required:
                    raise ValueRefused("required")
                continue
            if field.kind == "reference":
                value = await resolve_reference(session, field, value)
            if field.kind == "file" and not await session.scalar(
                select(models.file_meta.c.key).where(models.file_meta.c.key == value)
            ):
                raise ValueRefused("file")
            if field.unique:
                table = kinds.TABLES[field.kind]
                stmt = select(table.c.entry_id).where(
                    table.c.field_id == field.id, table.c.value == value
                )
                if entry_id is not None:
                    stmt = stmt.where(table.c.entry_id != entry_id)
                other = await session.scalar(stmt.limit(1))
                if other is not None:
                    raise ValueRefused("unique", entry=other)
            values[field.code] = value
        except ValueRefused as exc:
            errors[field.code] = exc
    if errors:
        raise Invalid(errors)
    return values


# -- writing ------------------------------------------------------------------------------------


def _search_text(found: TypeInfo, values: Mapping[str, Any]) -> str:
    parts = []
    for f in found.fields:
        value = values.get(f.code)
        if value is None or f.kind in ("reference", "file", "bool"):
            continue
        parts.append(kinds.display(f, value, "ru"))
        if f.kind == "choice":
            parts.append(kinds.display(f, value, "en"))
    return " ".join(parts).lower()[:4000]


async def write(
    session: AsyncSession,
    found: TypeInfo,
    values: Mapping[str, Any],
    *,
    actor: Actor,
    now: dt.datetime,
    entry_id: int | None = None,
    published: bool | None = None,
    external_id: str | None = None,
    action: str | None = None,
) -> int:
    """Store validated ``values`` (all of the entry's) and record the version; returns the id.

    Only values that changed are written; saving without a change records no version.
    """
    e = models.entry
    if entry_id is None:
        new_id = await session.scalar(
            insert(e)
            .values(
                type_id=found.id,
                published=True if published is None else published,
                version=1,
                external_id=external_id,
                search=_search_text(found, values),
                created_at=now,
                updated_at=now,
            )
            .returning(e.c.id)
        )
        assert new_id is not None
        entry_id, old, version, was_published = int(new_id), {}, 1, None
    else:
        row = (
            await session.execute(
                select(e.c.version, e.c.published).where(
                    e.c.id == entry_id, e.c.type_id == found.id
                )
            )
        ).first()
        if row is None:
            raise NotFound(f"entry {entry_id}")
        old = (await read_values(session, found, [entry_id]))[entry_id]
        version, was_published = row.version + 1, bool(row.published)
    changes = []
    for field in found.fields:
        before, after = old.get(field.code), values.get(field.code)
        if before == after:
            continue
        table = kinds.TABLES[field.kind]
        if before is not None:
            await session.execute(
                delete(table).where(table.c.entry_id == entry_id, table.c.field_id == field.id)
            )
        if after is not None:
            await session.execute(
                insert(table).values(entry_id=entry_id, field_id=field.id, value=after)
            )
        changes.append((field, before, after))
    publish_changed = was_published is not None and published not in (None, was_published)
    if version > 1 and not changes and not publish_changed:
        return entry_id
    renderer = Renderer("ru", "UTC")
    await renderer.load(session, found, [old, values])
    rows = [
        {
            "field": f.code,
            "name_ru": f.name_ru,
            "name_en": f.name_en,
            "old": renderer.show(f, b),
            "new": renderer.show(f, a),
        }
        for f, b, a in changes
    ]
    if publish_changed:
        rows.append(
            {
                "field": "published",
                "name_ru": "Опубликована",
                "name_en": "Published",
                "old": "да" if was_published else "нет",
                "new": "да" if published else "нет",
            }
        )
    if version > 1:
        extra: dict[str, Any] = {} if published is None else {"published": published}
        if external_id is not None:
            extra["external_id"] = external_id
        await session.execute(
            update(e)
            .where(e.c.id == entry_id)
            .values(version=version, search=_search_text(found, values), updated_at=now, **extra)
        )
    await session.execute(
        insert(models.entry_version).values(
            entry_id=entry_id,
            version=version,
            action=action or ("created" if version == 1 else "updated"),
            changed_at=now,
            changed_by=actor.person_id,
            changed_by_name=actor.name,
            changes=rows,
        )
    )
    return entry_id


async def remove(session: AsyncSession, found: TypeInfo, entry_id: int) -> None:
    e = models.entry
    if (
        await session.scalar(select(e.c.id).where(e.c.id == entry_id, e.c.type_id == found.id))
        is None
    ):
        raise NotFound(f"entry {entry_id}")
    refs = await session.scalar(
        select(func.count())
        .select_from(models.value_ref)
        .where(models.value_ref.c.value == entry_id, models.value_ref.c.entry_id != entry_id)
    )
    if refs:
        raise Conflict("entry_referenced", None, count=refs)
    await session.execute(delete(models.value_ref).where(models.value_ref.c.entry_id == entry_id))
    await session.execute(delete(e).where(e.c.id == entry_id))


async def history(session: AsyncSession, entry_id: int) -> list[Version]:
    v = models.entry_version
    rows = await session.execute(
        select(v).where(v.c.entry_id == entry_id).order_by(v.c.version.desc())
    )
    return [
        Version(
            version=r.version,
            action=r.action,
            changed_at=r.changed_at,
            changed_by=r.changed_by,
            changed_by_name=r.changed_by_name,
            changes=msgspec.convert(r.changes, list[Change]),
        )
        for r in rows
    ]


# -- pages ------------------------------------------------------------------------------------


async def load_entries(
    session: AsyncSession,
    found: TypeInfo,
    ids: list[int],
    renderer: Renderer,
    rows: Mapping[int, Any] | None = None,
    values: Mapping[int, dict[str, Any]] | None = None,
) -> list[Entry]:
    """The entries ``ids`` with their values; ``rows``: their entry rows, and ``values``
    theirs, if already read."""
    e = models.entry
    if not ids:
        return []
    if rows is None:
        rows = {
            r.id: r
            for r in await session.execute(
                select(e.c.id, e.c.published, e.c.version, e.c.external_id, e.c.updated_at).where(
                    e.c.id.in_(ids)
                )
            )
        }
    if values is None:
        values = await read_values(session, found, ids)
    await renderer.load(session, found, values.values())
    title = found.title_field
    items = []
    for entry_id in ids:
        row, vals = rows[entry_id], values[entry_id]
        items.append(
            Entry(
                id=entry_id,
                type=found.code,
                title=(str(vals.get(title.code) or "") if title else "") or f"#{entry_id}",
                published=row.published,
                version=row.version,
                external_id=row.external_id,
                values={f.code: kinds.to_json(f, vals.get(f.code)) for f in found.fields},
                display={f.code: renderer.show(f, vals.get(f.code)) for f in found.fields},
                updated_at=row.updated_at,
            )
        )
    return items
