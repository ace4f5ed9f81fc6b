"""The document library of the dictionaries service: clients see their organizations'
documents (and those for all) while valid; staff upload, replace and delete where their
right reaches. Part of :class:`~kabinet_dictionaries.services.Dictionaries`.
"""

from __future__ import annotations

from collections.abc import AsyncIterable
from typing import TYPE_CHECKING

from kabinet.access import ALL, AllOrganizations, Principal
from kabinet_dictionaries import documents as docs
from kabinet_dictionaries.documents import Document, DocumentMeta, StoredUpload
from kabinet_dictionaries.errors import Forbidden, NotFound
from kabinet_dictionaries.service_base import DOCS_MANAGE, DOCS_VIEW, ServiceBase
from kabinet_dictionaries.structure import SYSTEM, Actor

if TYPE_CHECKING:
    from litestar.response import Stream


class DocumentLibrary(ServiceBase):
    """The documents: ``documents``, ``document``, ``create_document``,
    ``update_document``, ``replace_document_file``, ``delete_document``, ``download``."""

    async def _doc_scope(
        self, principal: Principal | None
    ) -> tuple[frozenset[int] | AllOrganizations | None, bool]:
        """(the organizations whose documents ``principal`` sees, ``None``: all; whether as
        staff, who see documents whatever their validity). Staff see the documents of the
        organizations their right reaches (an admin all of them, a manager the assigned
        ones) besides what they see as readers."""
        if principal is None:
            return None, True
        view = await self.host.access.organizations(principal, DOCS_VIEW)
        if not await self.host.access.can(principal, DOCS_MANAGE):
            return (ALL if isinstance(view, AllOrganizations) else frozenset(view)), False
        reach = await self.host.access.organizations(principal, DOCS_MANAGE)
        if isinstance(reach, AllOrganizations):
            return None, True
        if isinstance(view, AllOrganizations):
            return ALL, True
        return frozenset(reach) | frozenset(view), True

    async def may_manage_document(
        self, principal: Principal | None, organization: int | None
    ) -> bool:
        """May ``principal`` upload, change or delete a document of ``organization``
        (``None``: for every organization)? Without a principal (jobs, the CLI): yes."""
        return principal is None or await self._reaches(
            principal, DOCS_MANAGE, None if organization is None else [organization]
        )

    async def _manageable(self, doc_id: int, principal: Principal | None) -> Document:
        """The document if ``principal`` may change it: NotFound if they may not see it,
        Forbidden if they may only see it."""
        found = await self.document(doc_id, principal=principal)
        if not await self.may_manage_document(principal, found.organization_id):
            raise Forbidden("document_reach", "organization_id")
        return found

    async def _may_address(self, principal: Principal | None, meta: DocumentMeta) -> None:
        if not await self.may_manage_document(principal, meta.organization_id):
            raise Forbidden("document_reach", "organization_id")

    async def documents(
        self,
        *,
        principal: Principal | None = None,
        kind: str = "",
        search: str = "",
        valid_only: bool | None = None,
    ) -> list[Document]:
        """Documents the principal may see; clients see only those valid today."""
        scope, staff = await self._doc_scope(principal)
        if valid_only is None:
            valid_only = not staff
        today = self._now().date() if valid_only else None
        async with self._session() as session:
            return await docs.listing(
                session, organizations=scope, valid_on=today, kind=kind, search=search
            )

    async def document(self, doc_id: int, *, principal: Principal | None = None) -> Document:
        scope, staff = await self._doc_scope(principal)
        async with self._session() as session:
            found = await docs.get(session, doc_id, organizations=scope)
        if not staff and not found.valid_on(self._now().date()):
            raise NotFound(f"document {doc_id}")
        return found

    async def _store_document_file(
        self, filename: str, source: bytes | AsyncIterable[bytes]
    ) -> StoredUpload:
        return await docs.store(
            self.host.files,
            "dictionaries/documents",
            filename,
            source,
            allowed=set(self.settings.allowed_file_types),
            max_size=self.settings.max_file_size_mb * 1024 * 1024,
        )

    async def create_document(
        self,
        meta: DocumentMeta,
        filename: str,
        source: bytes | AsyncIterable[bytes],
        *,
        actor: Actor = SYSTEM,
        principal: Principal | None = None,
    ) -> Document:
        """A new document; with a ``principal``, only for an organization their right
        reaches (:class:`Forbidden` naming ``organization_id`` otherwise)."""
        docs._check(meta)
        await self._may_address(principal, meta)
        upload = await self._store_document_file(filename, source)
        try:
            async with self._session() as session:
                doc_id = await docs.create(session, meta, upload, actor=actor, now=self._now())
        except BaseException:
            await self.host.files.delete(upload.key)
            raise
        return await self.document(doc_id)

    async def update_document(
        self, doc_id: int, meta: DocumentMeta, *, principal: Principal | None = None
    ) -> Document:
        await self._manageable(doc_id, principal)
        await self._may_address(principal, meta)
        async with self._session() as session:
            await docs.update_meta(session, doc_id, meta, now=self._now())
        return await self.document(doc_id)

    async def replace_document_file(
        self,
        doc_id: int,
        filename: str,
        source: bytes | AsyncIterable[bytes],
        *,
        actor: Actor = SYSTEM,
        principal: Principal | None = None,
    ) -> Document:
        """Upload a new version; earlier versions stay and can still be downloaded."""
        await self._manageable(doc_id, principal)
        upload = await self._store_document_file(filename, source)
        try:
            async with self._session() as session:
                await docs.replace_file(session, doc_id, upload, actor=actor, now=self._now())
        except BaseException:
            await self.host.files.delete(upload.key)
            raise
        return await self.document(doc_id)

    async def delete_document(self, doc_id: int, *, principal: Principal | None = None) -> None:
        await self._manageable(doc_id, principal)
        async with self._session() as session:
            keys = await docs.remove(session, doc_id)
        for key in keys:
            await self.host.files.delete(key)

    async def download(
        self, doc_id: int, version: int | None = None, *, principal: Principal | None = None
    ) -> Stream:
        """The file of the document (its current version unless one is named), streamed."""
        found = await self.document(doc_id, principal=principal)
        async with self._session() as session:
            key, filename, content_type = await docs.file_of(
                session, doc_id, version or found.version
            )
        return await self.host.files.download(key, filename=filename, content_type=content_type)
