"""Entries: validated values in the typed tables, their history, and indexed queries.

A query "filtered by fields A and B, sorted by C" joins one value table per field on
(field, value), so each step is an index lookup on ``ix_dictionaries_value_<kind>_field``;
there is no per-type table and no DDL at run time.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Callable, Collection, Iterable, Mapping
from decimal import Decimal
from typing import Any, Literal

import msgspec
from sqlalchemy import ColumnElement, Select, and_, delete, exists, func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from kabinet_dictionaries import kinds, models
from kabinet_dictionaries.errors import Conflict, FieldError, Invalid, NotFound
from kabinet_dictionaries.kinds import FieldDef
from kabinet_dictionaries.structure import Actor, TypeInfo

Op = Literal["eq", "ne", "lt", "le", "gt", "ge", "contains", "empty", "filled"]
NUMERIC = ("number", "money")
OPS: tuple[str, ...] = ("eq", "ne", "lt", "le", "gt", "ge", "contains", "empty", "filled")


class Filter(msgspec.Struct, kw_only=True, frozen=True):
    """``field`` ``op`` ``value`` (the value is read by the field's kind)."""

    field: str
    op: Op = "eq"
    value: Any = None


class Query(msgspec.Struct, kw_only=True):
    filters: list[Filter] = msgspec.field(default_factory=list)
    sort: str | None = None
    """A field code, ``-code`` for descending; ``None``: newest first."""
    search: str = ""
    page: int = 1
    per_page: int = 50


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


async def read_values(
    session: AsyncSession, found: TypeInfo, entry_ids: Collection[int]
) -> dict[int, dict[str, Any]]:
    """entry id -> {field code: stored value} (blank fields absent)."""
    result: dict[int, dict[str, Any]] = {e: {} for e in entry_ids}
    if not entry_ids:
        return result
    for fields in _tables(found.fields).values():
        table = kinds.TABLES[fields[0].kind]
        codes = {f.id: f.code for f in fields}
        scales = {f.id: Decimal(1).scaleb(-f.scale) for f in fields if f.kind in NUMERIC}
        rows = await session.execute(
            select(table.c.entry_id, table.c.field_id, table.c.value).where(
                table.c.entry_id.in_(list(entry_ids)), table.c.field_id.in_(list(codes))
            )
        )
        for r in rows:
            value = r.value
            if r.field_id in scales:  # NUMERIC(24, 6) reads back with six places
                value = value.quantize(scales[r.field_id])
            result[r.entry_id][codes[r.field_id]] = value
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


async def _resolve_reference(session: AsyncSession, field: FieldDef, value: Any) -> int:
    t, e = models.dictionary_type, models.entry
    ref_type = select(t.c.id).where(t.c.code == (field.reference or "")).scalar_subquery()
    if isinstance(value, int):
        found = await session.scalar(select(e.c.id).where(e.c.id == value, e.c.type_id == ref_type))
    else:
        v, f = models.value_text, models.field
        first_text = (
            select(f.c.id)
            .where(f.c.type_id == ref_type, f.c.kind == "text")
            .order_by(f.c.position, f.c.id)
            .limit(1)
            .scalar_subquery()
        )
        ids = list(
            await session.scalars(
                select(v.c.entry_id).where(v.c.field_id == first_text, v.c.value == value).limit(2)
            )
        )
        found = ids[0] if len(ids) == 1 else None
    if found is None:
        raise FieldError("reference", type=field.reference or "")
    return int(found)


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
    errors: dict[str, FieldError] = {}
    for code in raw:
        if found.field(code) is None:
            errors[code] = FieldError("unknown_field", code=code)
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
                    raise FieldError("required")
                continue
            if field.kind == "reference":
                value = await _resolve_reference(session, field, value)
            if field.kind == "file" and not await session.scalar(
                select(models.file_meta.c.key).where(models.file_meta.c.key == value)
            ):
                raise FieldError("file")
            if field.unique:
                table = kinds.TABLES[field.kind]
                stmt = select(table.c.entry_id).where(
                    table.c.field_id == field.id, table.c.value == value
                )
                if entry_id is not None:
                    stmt = stmt.where(table.c.entry_id != entry_id)
                other = await session.scalar(stmt.limit(1))
                if other is not None:
                    raise FieldError("unique", entry=other)
            values[field.code] = value
        except FieldError as exc:
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


# -- queries --------------------------------------------------------------------------------------

_COMPARE: dict[str, Callable[[Any, Any], ColumnElement[bool]]] = {
    "eq": lambda c, v: c == v,
    "ne": lambda c, v: c != v,
    "lt": lambda c, v: c < v,
    "le": lambda c, v: c <= v,
    "gt": lambda c, v: c > v,
    "ge": lambda c, v: c >= v,
}


async def _filter_value(session: AsyncSession, field: FieldDef, flt: Filter) -> Any:
    if flt.op == "contains":
        return str(flt.value or "").strip().lower()
    value = kinds.parse(field, flt.value)
    if value is None:
        raise FieldError("required")
    if field.kind == "reference":
        value = await _resolve_reference(session, field, value)
    return value


async def statements(
    session: AsyncSession,
    found: TypeInfo,
    query: Query,
    *,
    published_only: bool,
) -> tuple[Select[Any], Select[Any]]:
    """The page query (ids with the total in a window) and the bare count query.

    The filters on one field share one join of its value table; the first filter's table
    drives the query (its (field, value) index finds the candidates), so the entry row
    is joined only when "published" or the search text is asked for.
    """
    e = models.entry
    errors: dict[str, FieldError] = {}
    by_field: dict[str, list[tuple[int, Filter]]] = defaultdict(list)
    absent: list[ColumnElement[bool]] = []
    for index, flt in enumerate(query.filters):
        field = found.field(flt.field)
        if field is None:
            errors[f"filters.{index}.{flt.field}"] = FieldError("unknown_field", code=flt.field)
        elif flt.op in ("empty", "filled"):
            table = kinds.TABLES[field.kind]
            has = exists().where(table.c.entry_id == e.c.id, table.c.field_id == field.id)
            absent.append(~has if flt.op == "empty" else has)
        else:
            by_field[field.code].append((index, flt))
    joins: list[tuple[Any, ColumnElement[bool]]] = []
    for code, items in by_field.items():
        field = found.field(code)
        assert field is not None
        alias = kinds.TABLES[field.kind].alias()
        conditions: list[ColumnElement[bool]] = [alias.c.field_id == field.id]
        for index, flt in items:
            try:
                value = await _filter_value(session, field, flt)
            except FieldError as exc:
                errors[f"filters.{index}.{flt.field}"] = exc
                continue
            if flt.op == "contains":
                conditions.append(func.lower(alias.c.value).contains(value, autoescape=True))
            else:
                conditions.append(_COMPARE[flt.op](alias.c.value, value))
        joins.append((alias, and_(*conditions)))
    sort_field = None
    if query.sort:
        sort_field = found.field(query.sort.lstrip("-"))
        if sort_field is None:
            errors["sort"] = FieldError("unknown_field", code=query.sort.lstrip("-"))
    if errors:
        raise Invalid(errors)
    need_entry = published_only or bool(query.search.strip()) or bool(absent) or not joins
    if joins:
        driver, condition = joins[0]
        id_col = driver.c.entry_id
        stmt: Select[Any] = select(id_col).select_from(driver).where(condition)
        for alias, condition in joins[1:]:
            stmt = stmt.join(alias, and_(alias.c.entry_id == id_col, condition))
        if need_entry:
            stmt = stmt.join(e, e.c.id == id_col)
    else:
        id_col = e.c.id
        stmt = select(id_col).where(e.c.type_id == found.id)
    if published_only:
        stmt = stmt.where(e.c.published.is_(True))
    for condition in absent:
        stmt = stmt.where(condition)
    if query.search.strip():
        stmt = stmt.where(e.c.search.contains(query.search.strip().lower(), autoescape=True))
    counted = stmt
    order: list[Any] = []
    if sort_field is not None and query.sort:
        alias = kinds.TABLES[sort_field.kind].alias()
        stmt = stmt.outerjoin(
            alias, and_(alias.c.entry_id == id_col, alias.c.field_id == sort_field.id)
        )
        column = alias.c.value.desc() if query.sort.startswith("-") else alias.c.value.asc()
        order.append(column.nulls_last())
    order.append(id_col.asc() if query.sort else id_col.desc())
    per_page = max(1, min(query.per_page, 500))
    page = max(1, query.page)
    return (
        stmt.add_columns(func.count().over().label("total"))
        .order_by(*order)
        .limit(per_page)
        .offset((page - 1) * per_page),
        counted,
    )


async def select_ids(
    session: AsyncSession,
    found: TypeInfo,
    query: Query,
    *,
    published_only: bool,
) -> tuple[list[int], int]:
    """The page of entry ids matching ``query`` and the total count, in one statement."""
    stmt, counted = await statements(session, found, query, published_only=published_only)
    rows = (await session.execute(stmt)).all()
    if rows:
        return [int(r[0]) for r in rows], int(rows[0].total)
    total = await session.scalar(select(func.count()).select_from(counted.subquery()))
    return [], int(total or 0)


async def load_entries(
    session: AsyncSession, found: TypeInfo, ids: list[int], renderer: Renderer
) -> list[Entry]:
    e = models.entry
    if not ids:
        return []
    rows = {
        r.id: r
        for r in await session.execute(
            select(e.c.id, e.c.published, e.c.version, e.c.external_id, e.c.updated_at).where(
                e.c.id.in_(ids)
            )
        )
    }
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
