"""The dictionaries app's public service: what routes, jobs, sinks and other apps call.

Other apps get it with ``host.services.of(DICTIONARIES)`` (a :class:`Dictionaries`) after
start-up, importing the key from this module when their manifest requires
``dictionaries``. The public API (stable for other apps):

- reading: :meth:`Dictionaries.types`, :meth:`~Dictionaries.get_type`,
  :meth:`~Dictionaries.entries` (filters, sort, search, pages), :meth:`~Dictionaries.entry`,
  :meth:`~Dictionaries.choices` (``[(entry id, title)]``, e.g. for a form's select),
  :meth:`~Dictionaries.history`;
- writing: ``create_type``, ``update_type``, ``set_publication``, ``delete_type``,
  ``add_field``, ``change_field``, ``remove_field``, ``move_field``, ``create_entry``,
  ``update_entry``, ``delete_entry``, ``import_table``, ``export_table``,
  ``apply_records`` (what the entity sink calls);
- documents: ``documents``, ``document``, ``create_document``, ``update_document``,
  ``replace_document_file``, ``delete_document``, ``download``.

Every reading method takes an optional ``principal``: without one it reads everything
(for jobs and other apps' own rules); with one it shows only what that person may see
(staff who may edit a type see all its entries, clients only published entries of types
published to their organizations, and only their organizations' documents). Refusals
are :mod:`kabinet_dictionaries.errors` exceptions that name the field at fault.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterable, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import msgspec
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from kabinet.access import Principal
from kabinet.roles.services import ROLES
from kabinet.services import ServiceKey
from kabinet_dictionaries import documents as docs
from kabinet_dictionaries import entries as store
from kabinet_dictionaries import models, queries, structure, transfer
from kabinet_dictionaries.documents import Document, DocumentMeta, StoredUpload
from kabinet_dictionaries.entries import Entry, EntryPage, Version
from kabinet_dictionaries.errors import DictionaryError, Forbidden, Invalid, NotFound
from kabinet_dictionaries.kinds import Choice, FieldDef
from kabinet_dictionaries.library import DocumentLibrary
from kabinet_dictionaries.queries import Filter, Query
from kabinet_dictionaries.service_base import (
    DOCS_MANAGE,
    DOCS_VIEW,
    EDIT,
    MANAGE,
    VIEW,
)
from kabinet_dictionaries.settings import Settings
from kabinet_dictionaries.sinks import CatalogRecord
from kabinet_dictionaries.structure import SYSTEM, Actor, TypeInfo, TypeSpec
from kabinet_dictionaries.transfer import Format, ImportReport

if TYPE_CHECKING:
    from litestar.response import Stream

    from kabinet.contrib import SinkResult

__all__ = [
    "DICTIONARIES",
    "DOCS_MANAGE",
    "DOCS_VIEW",
    "EDIT",
    "MANAGE",
    "SYSTEM",
    "VIEW",
    "Actor",
    "CatalogRecord",
    "Choice",
    "Dictionaries",
    "DictionaryError",
    "Document",
    "DocumentMeta",
    "Entry",
    "EntryPage",
    "FieldDef",
    "Filter",
    "ImportReport",
    "Invalid",
    "NotFound",
    "Query",
    "Settings",
    "TypeInfo",
    "TypeSpec",
    "Version",
]


class Dictionaries(DocumentLibrary):
    """The service; one per host (``host.services.of(DICTIONARIES)``)."""

    # -- access -------------------------------------------------------------------------------

    async def can_manage(self, principal: Principal) -> bool:
        return await self.host.access.can(principal, MANAGE)

    async def _may_staff(self, principal: Principal, code: str, found: TypeInfo) -> bool:
        """A staff right on a type: a draft (published to nobody) wherever it is held;
        a published one only where it reaches every organization it is published to."""
        if found.publish == "none":
            return await self.host.access.can(principal, code)
        addressed = found.organizations if found.publish == "some" else None
        return await self._reaches(principal, code, addressed)

    async def can_edit(self, principal: Principal, found: TypeInfo) -> bool:
        """Type managers, and editors holding one of the type's editor roles (if it has any),
        each only where their right reaches the organizations the type is published to."""
        if await self._may_staff(principal, MANAGE, found):
            return True
        if not await self._may_staff(principal, EDIT, found):
            return False
        if not found.editor_roles or principal.person_id is None:
            return not found.editor_roles
        grants = await self.host.services.of(ROLES).grants_of(principal.person_id)
        held = {g.role.code for g in grants if g.organization_id is None}
        return bool(held & set(found.editor_roles))

    async def _scope(self, principal: Principal | None, found: TypeInfo) -> str:
        """``all`` entries, ``published`` ones, or NotFound for this principal."""
        if principal is None or await self.can_edit(principal, found):
            return "all"
        if found.visible_to(await self.host.access.organizations(principal, VIEW)):
            return "published"
        raise NotFound(f"dictionary {found.code}")

    async def editable(self, principal: Principal, code: str) -> TypeInfo:
        """The type, if ``principal`` may edit its entries; else NotFound when they may not
        even read it, Forbidden when they may only read it."""
        found = await self.get_type(code)
        if not await self.can_edit(principal, found):
            await self._scope(principal, found)
            raise Forbidden("edit_reach", "code")
        return found

    # -- types ----------------------------------------------------------------------------------

    async def types(self, principal: Principal | None = None) -> list[TypeInfo]:
        """The types ``principal`` may read (all without one)."""
        async with self._session() as session:
            found = await structure.list_types(session)
        if principal is None:
            return found
        visible = []
        for item in found:
            with contextlib.suppress(NotFound):
                await self._scope(principal, item)
                visible.append(item)
        return visible

    async def _type(self, session: AsyncSession, code: str) -> TypeInfo:
        """The type's definition: the copy this process holds while its revision is still
        the current one (one indexed lookup), else read again (four statements).

        Every change of a type or its fields bumps the revision in the same transaction,
        so a process, or another process, never uses a definition older than what it reads.
        """
        t = models.dictionary_type
        row = (await session.execute(select(t.c.id, t.c.revision).where(t.c.code == code))).first()
        if row is None:
            self._types.pop(code, None)
            raise NotFound(f"dictionary {code}")
        cached = self._types.get(code)
        if cached is not None and (cached.id, cached.revision) == (row.id, row.revision):
            return cached
        found = (await structure.list_types(session, [row.id]))[0]
        self._types[code] = found
        return found

    async def get_type(self, code: str, principal: Principal | None = None) -> TypeInfo:
        async with self._session() as session:
            found = await self._type(session, code)
        if principal is not None:
            await self._scope(principal, found)
        return found

    async def create_type(
        self,
        *,
        code: str,
        name_ru: str,
        name_en: str,
        fields: Sequence[FieldDef] = (),
        editor_roles: Sequence[str] = (),
    ) -> TypeInfo:
        await self._check_roles(editor_roles)
        async with self._session() as session:
            return await structure.create_type(
                session,
                code=code,
                name_ru=name_ru,
                name_en=name_en,
                fields=fields,
                editor_roles=editor_roles,
                now=self._now(),
            )

    async def _check_roles(self, codes: Iterable[str]) -> None:
        roles = self.host.services.find(ROLES)
        if roles is None:
            return
        known = {r.code for r in await roles.roles()}
        for code in codes:
            if code not in known:
                raise DictionaryError("role", "editor_roles", role=code)

    async def ensure_types(self, specs: Iterable[TypeSpec | Mapping[str, Any]]) -> list[str]:
        """Create the dictionaries other apps declared (missing ones, and missing fields of
        existing ones); returns the codes created. Admins' changes are kept."""
        created = []
        for item in specs:
            spec = item if isinstance(item, TypeSpec) else msgspec.convert(item, TypeSpec)
            try:
                found = await self.get_type(spec.code)
            except NotFound:
                try:
                    await self.create_type(
                        code=spec.code,
                        name_ru=spec.name_ru,
                        name_en=spec.name_en,
                        fields=spec.fields,
                    )
                    created.append(spec.code)
                    continue
                except (IntegrityError, DictionaryError) as exc:
                    # Another process starting at the same moment (a fleet's first start
                    # after an upgrade) created it first.
                    if isinstance(exc, DictionaryError) and exc.key != "taken_type":
                        raise
                    found = await self.get_type(spec.code)
            for field in spec.fields:
                if found.field(field.code) is None:
                    with contextlib.suppress(IntegrityError):  # the same race, a field's
                        await self.add_field(spec.code, field)
        return created

    async def update_type(
        self, code: str, *, name_ru: str, name_en: str, editor_roles: Sequence[str] = ()
    ) -> TypeInfo:
        await self._check_roles(editor_roles)
        async with self._session() as session:
            return await structure.update_type(
                session,
                code,
                name_ru=name_ru,
                name_en=name_en,
                editor_roles=editor_roles,
                now=self._now(),
            )

    async def set_publication(
        self, code: str, publish: str, organizations: Iterable[int] = ()
    ) -> TypeInfo:
        """Publish entries to every organization (``all``), ``some``, or ``none``."""
        async with self._session() as session:
            return await structure.set_publication(
                session, code, publish, organizations, now=self._now()
            )

    async def delete_type(self, code: str) -> None:
        async with self._session() as session:
            await structure.delete_type(session, code)

    async def add_field(self, code: str, spec: FieldDef, *, actor: Actor = SYSTEM) -> FieldDef:
        async with self._session() as session:
            return await structure.add_field(session, code, spec, now=self._now(), actor=actor)

    async def change_field(
        self, code: str, field_code: str, spec: FieldDef, *, actor: Actor = SYSTEM
    ) -> FieldDef:
        async with self._session() as session:
            return await structure.change_field(
                session, code, field_code, spec, now=self._now(), actor=actor
            )

    async def remove_field(self, code: str, field_code: str, *, actor: Actor = SYSTEM) -> None:
        async with self._session() as session:
            await structure.remove_field(session, code, field_code, now=self._now(), actor=actor)

    async def move_field(self, code: str, field_code: str, offset: int) -> None:
        async with self._session() as session:
            await structure.move_field(session, code, field_code, offset)

    async def count_entries(self, code: str) -> int:
        found = await self.get_type(code)
        async with self._session() as session:
            _ids, total = await queries.select_ids(
                session, found, Query(per_page=1), published_only=False
            )
        return total

    # -- entries --------------------------------------------------------------------------------

    async def entries(
        self,
        code: str,
        query: Query | None = None,
        *,
        principal: Principal | None = None,
        language: str = "ru",
        timezone: str = "UTC",
    ) -> EntryPage:
        """A page of entries matching ``query``; clients see published entries only."""
        query = query or Query(per_page=self.settings.page_size)
        renderer = store.Renderer(language, timezone)
        async with self._session() as session:  # one transaction: the type, ids, values
            # The definition this process holds is used first and checked by the page's
            # own statement (its revision column); only a stale one costs a re-read.
            found = self._types.get(code) or await self._type(session, code)
            while True:
                try:
                    scope = await self._scope(principal, found)
                except NotFound:
                    fresh = await self._type(session, code)
                    if fresh is found:
                        raise
                    found = fresh
                    continue
                try:
                    page = await queries.select_page(
                        session,
                        found,
                        query,
                        published_only=scope == "published",
                        with_values=True,
                    )
                except Invalid:  # a field unknown to a stale definition, say
                    fresh = await self._type(session, code)
                    if fresh is found:
                        raise
                    found = fresh
                    continue
                if page.revision == found.revision:
                    fresh = found
                else:
                    fresh = await self._type(session, code)
                if fresh is found:
                    break
                found = fresh
            values = store.values_of_rows(found, page.rows) if page.rows is not None else None
            items = await store.load_entries(session, found, page.ids, renderer, page.rows, values)
        total = page.total
        return EntryPage(items=items, total=total, page=query.page, per_page=query.per_page)

    async def entry(
        self,
        code: str,
        entry_id: int,
        *,
        principal: Principal | None = None,
        language: str = "ru",
        timezone: str = "UTC",
    ) -> Entry:
        found = await self.get_type(code)
        scope = await self._scope(principal, found)
        async with self._session() as session:
            items = (
                await store.load_entries(
                    session, found, [entry_id], store.Renderer(language, timezone)
                )
                if await self._has(session, found, entry_id)
                else []
            )
        if not items or (scope == "published" and not items[0].published):
            raise NotFound(f"entry {entry_id}")
        return items[0]

    @staticmethod
    async def _has(session: AsyncSession, found: TypeInfo, entry_id: int) -> bool:
        e = models.entry
        return (
            await session.scalar(select(e.c.id).where(e.c.id == entry_id, e.c.type_id == found.id))
            is not None
        )

    async def choices(
        self, code: str, *, principal: Principal | None = None, language: str = "ru"
    ) -> list[tuple[int, str]]:
        """``[(entry id, title)]`` of the type's entries by title, for another app's select."""
        found = await self.get_type(code)
        title = found.title_field
        query = Query(sort=title.code if title else None, per_page=500)
        items: list[tuple[int, str]] = []
        while True:
            page = await self.entries(code, query, principal=principal, language=language)
            items.extend((e.id, e.title) for e in page.items)
            if query.page * query.per_page >= page.total:
                return items
            query.page += 1

    async def create_entry(
        self,
        code: str,
        values: Mapping[str, Any],
        *,
        actor: Actor = SYSTEM,
        published: bool = True,
        timezone: str = "UTC",
        language: str = "ru",
    ) -> Entry:
        found = await self.get_type(code)
        async with self._session() as session:
            valid = await store.validate(session, found, values, timezone=timezone)
            entry_id = await store.write(
                session, found, valid, actor=actor, now=self._now(), published=published
            )
        return await self.entry(code, entry_id, language=language, timezone=timezone)

    async def update_entry(
        self,
        code: str,
        entry_id: int,
        values: Mapping[str, Any],
        *,
        actor: Actor = SYSTEM,
        published: bool | None = None,
        timezone: str = "UTC",
        language: str = "ru",
    ) -> Entry:
        """Change some values (fields not given keep theirs); no change, no new version."""
        found = await self.get_type(code)
        async with self._session() as session:
            if not await self._has(session, found, entry_id):
                raise NotFound(f"entry {entry_id}")
            current = (await store.read_values(session, found, [entry_id]))[entry_id]
            valid = await store.validate(
                session, found, values, entry_id=entry_id, current=current, timezone=timezone
            )
            await store.write(
                session,
                found,
                valid,
                actor=actor,
                now=self._now(),
                entry_id=entry_id,
                published=published,
            )
        return await self.entry(code, entry_id, language=language, timezone=timezone)

    async def delete_entry(self, code: str, entry_id: int) -> None:
        found = await self.get_type(code)
        async with self._session() as session:
            await store.remove(session, found, entry_id)

    async def history(
        self, code: str, entry_id: int, *, principal: Principal | None = None
    ) -> list[Version]:
        """Every version of the entry, newest first: who changed which values, and when."""
        await self.entry(code, entry_id, principal=principal)
        async with self._session() as session:
            return await store.history(session, entry_id)

    async def import_table(
        self,
        code: str,
        data: bytes,
        *,
        actor: Actor = SYSTEM,
        language: str = "en",
        timezone: str = "UTC",
    ) -> ImportReport:
        """Import CSV or XLSX rows: good rows go in, bad rows are reported with reasons."""
        found = await self.get_type(code)
        async with self._session() as session:
            return await transfer.import_table(
                session,
                found,
                data,
                actor=actor,
                now=self._now(),
                language=language,
                timezone=timezone,
            )

    async def export_table(
        self,
        code: str,
        fmt: Format,
        query: Query | None = None,
        *,
        principal: Principal | None = None,
        language: str = "ru",
        timezone: str = "",
    ) -> bytes:
        """Every entry matching ``query`` (all pages) as CSV or XLSX: with a ``timezone``
        (a page's), for the person who asked (their language and zone, see
        :func:`transfer.export_table`); without one, codes and UTC (the API's)."""
        found = await self.get_type(code)
        scope = await self._scope(principal, found)
        base = query or Query()
        renderer = store.Renderer(language, timezone or "UTC")
        rows: list[tuple[int, dict[str, Any]]] = []
        async with self._session() as session:
            page = 1
            while True:
                q = Query(
                    filters=base.filters,
                    sort=base.sort,
                    search=base.search,
                    page=page,
                    per_page=500,
                )
                ids, total = await queries.select_ids(
                    session, found, q, published_only=scope == "published"
                )
                values = await store.read_values(session, found, ids)
                await renderer.load(session, found, values.values())
                rows.extend((i, values[i]) for i in ids)
                if page * 500 >= total:
                    break
                page += 1
        return transfer.export_table(found, rows, renderer, fmt, readable=bool(timezone))

    async def upload_file(
        self, filename: str, source: bytes | AsyncIterable[bytes]
    ) -> StoredUpload:
        """Store a file for a file field; its key is then the field's value."""
        upload = await docs.store(
            self.host.files,
            "dictionaries/files",
            filename,
            source,
            allowed=set(self.settings.allowed_file_types),
            max_size=self.settings.max_file_size_mb * 1024 * 1024,
        )
        async with self._session() as session:
            await session.execute(
                models.file_meta.insert().values(
                    key=upload.key,
                    filename=upload.filename,
                    content_type=upload.content_type,
                    size=upload.size,
                    uploaded_at=self._now(),
                )
            )
        return upload

    async def field_file(
        self, code: str, entry_id: int, field_code: str, principal: Principal
    ) -> Stream:
        """Download the file of an entry's file field, if the principal may see the entry."""
        found = await self.get_type(code)
        field = found.field(field_code)
        item = await self.entry(code, entry_id, principal=principal)
        key = item.values.get(field_code) if field and field.kind == "file" else None
        if not key:
            raise NotFound(f"file {field_code}")
        async with self._session() as session:
            name = (await store.file_names(session, [key])).get(key)
        return await self.host.files.download(key, filename=name)

    async def apply_records(self, records: Sequence[CatalogRecord]) -> SinkResult:
        """Create or update entries by external id (what the 1C catalog sink does), in one
        transaction; a record that fails validation is refused with its reasons."""
        from kabinet_dictionaries.sinks import apply_catalog

        async with self._session() as session:
            return await apply_catalog(self.host, session, records)


DICTIONARIES: ServiceKey[Dictionaries] = ServiceKey("dictionaries", Dictionaries)
"""The dictionaries service's key: ``host.services.of(DICTIONARIES)``."""
