"""Dictionary types and their fields: created and changed at run time, entries kept.

A change that would leave entries breaking the new rules is refused with the number of
entries at fault (a field made required while 12 entries have no value), unless a default
is given, which then fills them; every entry that changes that way gets a version in its
history, and so does every entry that loses a value to a removed field.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from typing import Any, Literal

import msgspec
from sqlalchemy import delete, func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from kabinet_dictionaries import kinds, models
from kabinet_dictionaries.errors import Conflict, DictionaryError, NotFound, ValueRefused
from kabinet_dictionaries.kinds import Choice, FieldDef

Publish = Literal["none", "all", "some"]
RESERVED = {"documents"}
"""Codes that would hide a page (``/dictionaries/documents/``)."""


class Actor(msgspec.Struct, kw_only=True, frozen=True):
    """Who makes a change, for the history (``person_id=None``: the system, an import)."""

    person_id: int | None = None
    name: str = ""


SYSTEM = Actor(name="system")


class TypeSpec(msgspec.Struct, kw_only=True):
    """A dictionary another app reads, created at start-up when missing (``dictionaries_types``).

    An existing type is left as admins made it, except that missing fields are added.
    """

    code: str
    name_ru: str
    name_en: str
    fields: list[FieldDef] = msgspec.field(default_factory=list)


class TypeInfo(msgspec.Struct, kw_only=True):
    """A dictionary type with its fields in order."""

    id: int
    code: str
    name_ru: str
    name_en: str
    publish: Publish = "none"
    organizations: list[int] = msgspec.field(default_factory=list)
    editor_roles: list[str] = msgspec.field(default_factory=list)
    fields: list[FieldDef] = msgspec.field(default_factory=list)
    revision: int = 1
    """The type's revision when read (a cached copy is current while it still matches)."""

    def name(self, language: str) -> str:
        return self.name_ru if language == "ru" else self.name_en

    def field(self, code: str) -> FieldDef | None:
        return next((f for f in self.fields if f.code == code), None)

    @property
    def title_field(self) -> FieldDef | None:
        """The field that names an entry (in references and lists): the first text one."""
        return next((f for f in self.fields if f.kind == "text"), None)

    def visible_to(self, organizations: Any) -> bool:
        """Published to any of ``organizations`` (a set, or ``ALL``)."""
        if self.publish == "all":
            return bool(organizations)
        if self.publish == "some":
            return any(org in organizations for org in self.organizations)
        return False


def _field_info(row: Any, codes: dict[int, str]) -> FieldDef:
    return FieldDef(
        id=row.id,
        code=row.code,
        name_ru=row.name_ru,
        name_en=row.name_en,
        kind=row.kind,
        required=row.required,
        unique=row.is_unique,
        default=row.default,
        choices=msgspec.convert(row.choices or [], list[Choice]),
        precision=row.precision,
        reference=codes.get(row.ref_type_id) if row.ref_type_id else None,
        position=row.position,
    )


async def _codes(session: AsyncSession, ids: set[int]) -> dict[int, str]:
    if not ids:
        return {}
    t = models.dictionary_type
    rows = await session.execute(select(t.c.id, t.c.code).where(t.c.id.in_(sorted(ids))))
    return {r.id: r.code for r in rows}


async def list_types(session: AsyncSession, ids: Iterable[int] | None = None) -> list[TypeInfo]:
    t = models.dictionary_type
    stmt = select(t).order_by(t.c.name_ru, t.c.id)
    if ids is not None:
        stmt = stmt.where(t.c.id.in_(list(ids)))
    rows = (await session.execute(stmt)).all()
    if not rows:
        return []
    type_ids = [r.id for r in rows]
    fields: dict[int, list[FieldDef]] = {i: [] for i in type_ids}
    field_rows = (
        await session.execute(
            select(models.field)
            .where(models.field.c.type_id.in_(type_ids))
            .order_by(models.field.c.position, models.field.c.id)
        )
    ).all()
    codes = await _codes(session, {f.ref_type_id for f in field_rows if f.ref_type_id})
    for f in field_rows:
        fields[f.type_id].append(_field_info(f, codes))
    orgs: dict[int, list[int]] = {i: [] for i in type_ids}
    for o in await session.execute(
        select(models.type_organization).where(models.type_organization.c.type_id.in_(type_ids))
    ):
        orgs[o.type_id].append(int(o.organization_id))
    return [
        TypeInfo(
            id=r.id,
            code=r.code,
            name_ru=r.name_ru,
            name_en=r.name_en,
            publish=r.publish,
            organizations=sorted(orgs[r.id]),
            editor_roles=list(r.editor_roles or []),
            fields=fields[r.id],
            revision=r.revision,
        )
        for r in rows
    ]


async def _touch(session: AsyncSession, type_id: int, now: dt.datetime | None = None) -> None:
    """A new revision of the type: processes holding the old definition read it again."""
    t = models.dictionary_type
    values: dict[str, Any] = {"revision": t.c.revision + 1}
    if now is not None:
        values["updated_at"] = now
    await session.execute(update(t).where(t.c.id == type_id).values(**values))


async def load_type(session: AsyncSession, code: str) -> TypeInfo:
    t = models.dictionary_type
    type_id = await session.scalar(select(t.c.id).where(t.c.code == code))
    if type_id is None:
        raise NotFound(f"dictionary {code}")
    return (await list_types(session, [type_id]))[0]


def _check_names(name_ru: str, name_en: str) -> None:
    if not name_ru.strip():
        raise DictionaryError("name", "name_ru")
    if not name_en.strip():
        raise DictionaryError("name", "name_en")


async def create_type(
    session: AsyncSession,
    *,
    code: str,
    name_ru: str,
    name_en: str,
    fields: Sequence[FieldDef] = (),
    editor_roles: Sequence[str] = (),
    now: dt.datetime,
) -> TypeInfo:
    if not kinds.CODE.match(code) or code in RESERVED:
        raise DictionaryError("code", "code")
    _check_names(name_ru, name_en)
    t = models.dictionary_type
    if await session.scalar(select(t.c.id).where(t.c.code == code)) is not None:
        raise DictionaryError("taken_type", "code", code=code)
    await session.execute(
        insert(t).values(
            code=code,
            name_ru=name_ru.strip(),
            name_en=name_en.strip(),
            publish="none",
            editor_roles=list(editor_roles),
            created_at=now,
            updated_at=now,
        )
    )
    for index, spec in enumerate(fields):
        try:
            await add_field(session, code, spec, now=now, actor=SYSTEM)
        except DictionaryError as exc:
            exc.field = f"fields.{index}.{exc.field or 'code'}"
            raise
    return await load_type(session, code)


async def update_type(
    session: AsyncSession,
    code: str,
    *,
    name_ru: str,
    name_en: str,
    editor_roles: Sequence[str],
    now: dt.datetime,
) -> TypeInfo:
    found = await load_type(session, code)
    _check_names(name_ru, name_en)
    await session.execute(
        update(models.dictionary_type)
        .where(models.dictionary_type.c.id == found.id)
        .values(
            name_ru=name_ru.strip(),
            name_en=name_en.strip(),
            editor_roles=sorted(set(editor_roles)),
            updated_at=now,
            revision=models.dictionary_type.c.revision + 1,
        )
    )
    return await load_type(session, code)


async def set_publication(
    session: AsyncSession,
    code: str,
    publish: str,
    organizations: Iterable[int] = (),
    *,
    now: dt.datetime,
) -> TypeInfo:
    """Publish the type's entries to every organization, to some, or to none (staff only)."""
    found = await load_type(session, code)
    if publish not in ("none", "all", "some"):
        raise DictionaryError("publish", "publish")
    orgs = sorted(set(organizations)) if publish == "some" else []
    await session.execute(
        update(models.dictionary_type)
        .where(models.dictionary_type.c.id == found.id)
        .values(publish=publish, updated_at=now, revision=models.dictionary_type.c.revision + 1)
    )
    await session.execute(
        delete(models.type_organization).where(models.type_organization.c.type_id == found.id)
    )
    if orgs:
        await session.execute(
            insert(models.type_organization),
            [{"type_id": found.id, "organization_id": o} for o in orgs],
        )
    return await load_type(session, code)


async def delete_type(session: AsyncSession, code: str) -> None:
    found = await load_type(session, code)
    row = (
        await session.execute(
            select(models.field.c.name_ru, models.dictionary_type.c.name_ru.label("type_name"))
            .join(models.dictionary_type, models.dictionary_type.c.id == models.field.c.type_id)
            .where(models.field.c.ref_type_id == found.id)
            .where(models.field.c.type_id != found.id)
            .limit(1)
        )
    ).first()
    if row is not None:
        raise Conflict("referenced", None, name=row.name_ru, type=row.type_name)
    # Values first: references inside the type point at its own entries.
    entry_ids = select(models.entry.c.id).where(models.entry.c.type_id == found.id)
    for table in {id(t): t for t in kinds.TABLES.values()}.values():
        await session.execute(delete(table).where(table.c.entry_id.in_(entry_ids)))
    await session.execute(delete(models.entry).where(models.entry.c.type_id == found.id))
    await session.execute(
        delete(models.dictionary_type).where(models.dictionary_type.c.id == found.id)
    )


# -- fields ---------------------------------------------------------------------------------


async def _check_spec(session: AsyncSession, spec: FieldDef) -> int | None:
    """Refuse a bad field definition; returns the referenced type's id."""
    if not kinds.CODE.match(spec.code):
        raise DictionaryError("code", "code")
    _check_names(spec.name_ru, spec.name_en)
    if spec.kind not in kinds.KINDS:
        raise DictionaryError("kind", "kind", kind=spec.kind)
    if spec.kind == "choice":
        codes = [c.code.strip() for c in spec.choices]
        if not codes or any(not c for c in codes) or len(set(codes)) != len(codes):
            raise DictionaryError("choices_needed", "choices")
    if spec.kind == "number" and spec.precision is not None and not 0 <= spec.precision <= 6:
        raise DictionaryError("precision_range", "precision")
    ref_id = None
    if spec.kind == "reference":
        t = models.dictionary_type
        ref_id = await session.scalar(select(t.c.id).where(t.c.code == (spec.reference or "")))
        if ref_id is None:
            raise DictionaryError("reference_type", "reference")
    try:
        default = kinds.check_default(spec)
    except ValueRefused as exc:
        raise DictionaryError("default_invalid", "default", reason=exc, error=exc) from None
    if (
        default is not None
        and spec.kind == "reference"
        and (
            not isinstance(default, int)
            or await session.scalar(
                select(models.entry.c.id).where(
                    models.entry.c.id == default, models.entry.c.type_id == ref_id
                )
            )
            is None
        )
    ):
        reason = ValueRefused("reference", type=spec.reference or "")
        raise DictionaryError("default_invalid", "default", reason=reason)
    return ref_id


def _row(spec: FieldDef) -> dict[str, Any]:
    return {
        "code": spec.code,
        "name_ru": spec.name_ru.strip(),
        "name_en": spec.name_en.strip(),
        "kind": spec.kind,
        "required": spec.required,
        "is_unique": spec.unique,
        "default": spec.default.strip() if spec.default and spec.default.strip() else None,
        "choices": [msgspec.to_builtins(c) for c in spec.choices],
        "precision": spec.precision if spec.kind == "number" else None,
    }


async def _missing(session: AsyncSession, type_id: int, field: FieldDef) -> list[int]:
    """Entries of the type with no value for ``field``."""
    table = kinds.TABLES[field.kind]
    has = select(table.c.entry_id).where(table.c.field_id == field.id)
    rows = await session.scalars(
        select(models.entry.c.id).where(
            models.entry.c.type_id == type_id, models.entry.c.id.not_in(has)
        )
    )
    return list(rows)


async def _bump(
    session: AsyncSession,
    field: FieldDef,
    values: dict[int, tuple[Any, Any]],
    *,
    action: str,
    actor: Actor,
    now: dt.datetime,
) -> None:
    """Record one history version per entry whose ``field`` changed (old, new)."""
    if not values:
        return
    ids = list(values)
    versions = dict(
        (
            await session.execute(
                select(models.entry.c.id, models.entry.c.version).where(models.entry.c.id.in_(ids))
            )
        ).all()
    )
    rows = []
    for entry_id, (old, new) in values.items():
        change = {
            "field": field.code,
            "name_ru": field.name_ru,
            "name_en": field.name_en,
            "old": kinds.display(field, old, "ru"),
            "new": kinds.display(field, new, "ru"),
        }
        rows.append(
            {
                "entry_id": entry_id,
                "version": versions[entry_id] + 1,
                "action": action,
                "changed_at": now,
                "changed_by": actor.person_id,
                "changed_by_name": actor.name,
                "changes": [change],
            }
        )
    await session.execute(insert(models.entry_version), rows)
    await session.execute(
        update(models.entry)
        .where(models.entry.c.id.in_(ids))
        .values(version=models.entry.c.version + 1, updated_at=now)
    )


async def _fill_default(
    session: AsyncSession, type_id: int, field: FieldDef, *, actor: Actor, now: dt.datetime
) -> int:
    """Give the default to every entry without a value; returns how many got it."""
    default = kinds.check_default(field)
    missing = await _missing(session, type_id, field)
    if default is None or not missing:
        return 0
    table = kinds.TABLES[field.kind]
    await session.execute(
        insert(table), [{"entry_id": e, "field_id": field.id, "value": default} for e in missing]
    )
    await _bump(
        session,
        field,
        dict.fromkeys(missing, (None, default)),
        action="default",
        actor=actor,
        now=now,
    )
    return len(missing)


async def _duplicates(session: AsyncSession, field: FieldDef) -> int:
    table = kinds.TABLES[field.kind]
    dup = (
        select(table.c.value)
        .where(table.c.field_id == field.id)
        .group_by(table.c.value)
        .having(func.count() > 1)
        .subquery()
    )
    count = await session.scalar(
        select(func.count())
        .select_from(table)
        .where(table.c.field_id == field.id, table.c.value.in_(select(dup.c.value)))
    )
    return int(count or 0)


async def add_field(
    session: AsyncSession, code: str, spec: FieldDef, *, now: dt.datetime, actor: Actor
) -> FieldDef:
    """Add a field; a required one needs a default when the type already has entries."""
    found = await load_type(session, code)
    if found.field(spec.code) is not None:
        raise DictionaryError("taken_field", "code", code=spec.code)
    ref_id = await _check_spec(session, spec)
    position = max((f.position for f in found.fields), default=-1) + 1
    field_id = await session.scalar(
        insert(models.field)
        .values(type_id=found.id, ref_type_id=ref_id, position=position, **_row(spec))
        .returning(models.field.c.id)
    )
    assert field_id is not None
    await _touch(session, found.id, now)
    added = (await load_type(session, code)).field(spec.code)
    assert added is not None
    if spec.required:
        await _fill_default(session, found.id, added, actor=actor, now=now)
        missing = len(await _missing(session, found.id, added))
        if missing:
            raise Conflict("required_missing", "required", count=missing, name=spec.name_ru)
    return added


async def change_field(
    session: AsyncSession,
    code: str,
    field_code: str,
    spec: FieldDef,
    *,
    now: dt.datetime,
    actor: Actor,
) -> FieldDef:
    """Rename a field or change its rules; refused (nothing changed) while entries break them."""
    found = await load_type(session, code)
    old = found.field(field_code)
    if old is None:
        raise NotFound(f"field {field_code}")
    if spec.kind != old.kind or (spec.kind == "reference" and spec.reference != old.reference):
        raise DictionaryError("kind_change", "kind")
    if spec.code != old.code and found.field(spec.code) is not None:
        raise DictionaryError("taken_field", "code", code=spec.code)
    await _check_spec(session, spec)
    if old.kind == "choice":
        gone = {c.code for c in old.choices} - {c.code for c in spec.choices}
        for choice in sorted(gone):
            used = await session.scalar(
                select(func.count())
                .select_from(models.value_text)
                .where(models.value_text.c.field_id == old.id, models.value_text.c.value == choice)
            )
            if used:
                raise Conflict("choice_in_use", "choices", choice=choice, count=used)
    if spec.unique and not old.unique:
        dups = await _duplicates(session, old)
        if dups:
            raise Conflict("unique_duplicates", "unique", count=dups, name=spec.name_ru)
    await session.execute(
        update(models.field).where(models.field.c.id == old.id).values(_row(spec))
    )
    await _touch(session, found.id, now)
    changed = (await load_type(session, code)).field(spec.code)
    assert changed is not None
    if changed.required:
        await _fill_default(session, found.id, changed, actor=actor, now=now)
        missing = len(await _missing(session, found.id, changed))
        if missing:
            raise Conflict("required_missing", "required", count=missing, name=changed.name_ru)
    return changed


async def remove_field(
    session: AsyncSession, code: str, field_code: str, *, now: dt.datetime, actor: Actor
) -> None:
    """Remove a field and its values; each entry's history keeps the value it had."""
    found = await load_type(session, code)
    old = found.field(field_code)
    if old is None:
        raise NotFound(f"field {field_code}")
    table = kinds.TABLES[old.kind]
    rows = (
        await session.execute(
            select(table.c.entry_id, table.c.value).where(table.c.field_id == old.id)
        )
    ).all()
    await _bump(
        session,
        old,
        {r.entry_id: (r.value, None) for r in rows},
        action="field_removed",
        actor=actor,
        now=now,
    )
    await session.execute(delete(table).where(table.c.field_id == old.id))
    await session.execute(delete(models.field).where(models.field.c.id == old.id))
    await _touch(session, found.id, now)


async def move_field(session: AsyncSession, code: str, field_code: str, offset: int) -> None:
    """Move a field up (-1) or down (+1) in the form and the list."""
    found = await load_type(session, code)
    order = [f.code for f in found.fields]
    if field_code not in order:
        raise NotFound(f"field {field_code}")
    i = order.index(field_code)
    j = max(0, min(len(order) - 1, i + offset))
    order.insert(j, order.pop(i))
    for position, item in enumerate(order):
        await session.execute(
            update(models.field)
            .where(models.field.c.type_id == found.id, models.field.c.code == item)
            .values(position=position)
        )
    await _touch(session, found.id)
