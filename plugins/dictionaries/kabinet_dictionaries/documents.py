"""Documents: files with metadata in the host's file storage, every version kept.

A file is accepted by what it is, not by its name: its first bytes are matched against
known signatures (``filetype``), and text formats (CSV, TXT) must decode as text. The
size limit is checked while the upload streams, so a huge file never fills a disk.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import AsyncIterable, AsyncIterator, Callable, Set
from typing import Annotated, Any

import filetype  # type: ignore[import-untyped]
import msgspec
from sqlalchemy import delete, insert, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from kabinet import lists
from kabinet.access import AllOrganizations
from kabinet.files import FileStorage, FileTooLarge
from kabinet.inputs import INT_MAX, Id, fits
from kabinet_dictionaries import models
from kabinet_dictionaries.errors import DictionaryError, FileRefused, FileTooBig, NotFound
from kabinet_dictionaries.structure import Actor

SNIFF_BYTES = 8192
TEXT_TYPES = {"csv": "text/csv", "txt": "text/plain"}


class StoredUpload(msgspec.Struct, kw_only=True):
    key: str
    filename: str
    content_type: str
    size: int


_doc = models.document.c


class DocumentMeta(msgspec.Struct, kw_only=True):
    """What a person fills in about a document."""

    title: Annotated[str, fits(_doc.title)]
    kind: Annotated[str, fits(_doc.kind)] = ""
    number: Annotated[str, fits(_doc.number)] = ""
    date: dt.date | None = None
    organization_id: Id | None = None
    """``None``: every client may see it."""
    valid_from: dt.date | None = None
    valid_to: dt.date | None = None


class DocumentVersion(msgspec.Struct, kw_only=True):
    version: int
    filename: str
    content_type: str
    size: int
    uploaded_at: dt.datetime
    uploaded_by: int | None


class Document(msgspec.Struct, kw_only=True):
    id: int
    title: str
    kind: str
    number: str
    date: dt.date | None
    organization_id: int | None
    valid_from: dt.date | None
    valid_to: dt.date | None
    version: int
    filename: str
    content_type: str
    size: int
    updated_at: dt.datetime
    versions: list[DocumentVersion] = msgspec.field(default_factory=list)

    def valid_on(self, day: dt.date) -> bool:
        return (self.valid_from is None or self.valid_from <= day) and (
            self.valid_to is None or day <= self.valid_to
        )


def sniff(head: bytes, filename: str, allowed: Set[str]) -> tuple[str, str]:
    """(extension, content type) of a file by its first bytes, if it is of an allowed kind."""
    if not head:
        raise FileRefused("file_empty", "file")
    found = filetype.guess(head)
    if found is not None:
        ext, mime = str(found.extension), str(found.mime)
        if ext == "zip":
            # Office files are zips; filetype names them when their parts come first.
            named = filename.rsplit(".", 1)[-1].lower()
            if named in allowed and named in {"docx", "xlsx", "pptx", "odt", "ods"}:
                ext = named
    else:
        named = filename.rsplit(".", 1)[-1].lower() if "." in filename else ""
        try:
            head.decode("utf-8")
            is_text = b"\x00" not in head
        except UnicodeDecodeError as exc:
            is_text = exc.start > len(head) - 4 and b"\x00" not in head  # a cut character
        if not (is_text and named in TEXT_TYPES):
            raise FileRefused("file_type", "file", found="?", allowed=", ".join(sorted(allowed)))
        ext, mime = named, TEXT_TYPES[named]
    if ext not in allowed:
        raise FileRefused("file_type", "file", found=ext, allowed=", ".join(sorted(allowed)))
    if ext in {"docx", "xlsx", "pptx"}:
        mime = {
            "docx": "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
            "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
            "pptx": "application/vnd.openxmlformats-officedocument.presentationml.presentation",
        }[ext]
    return ext, mime


async def _iterate(source: bytes | AsyncIterable[bytes]) -> AsyncIterator[bytes]:
    if isinstance(source, bytes):
        yield source
        return
    async for chunk in source:
        yield chunk


async def store(
    files: FileStorage,
    prefix: str,
    filename: str,
    source: bytes | AsyncIterable[bytes],
    *,
    allowed: Set[str],
    max_size: int,
) -> StoredUpload:
    """Check the kind by content, then stream into storage under ``<prefix>/<uuid>``."""
    chunks = _iterate(source)
    head = b""
    async for chunk in chunks:
        head += chunk
        if len(head) >= SNIFF_BYTES:
            break
    _ext, mime = sniff(head[:SNIFF_BYTES] if len(head) > SNIFF_BYTES else head, filename, allowed)

    async def everything() -> AsyncIterator[bytes]:
        yield head
        async for rest in chunks:
            yield rest

    key = f"{prefix}/{uuid.uuid4().hex}"
    name = filename.replace("/", "_").replace("\\", "_").strip() or "file"
    try:
        saved = await files.save(
            key, everything(), content_type=mime, filename=name, max_size=max_size
        )
    except FileTooLarge:
        raise FileTooBig("file_size", "file", limit=max_size // (1024 * 1024)) from None
    return StoredUpload(key=key, filename=name, content_type=mime, size=saved.size)


def meta_from(get: Callable[[str], str]) -> DocumentMeta:
    """A document's metadata from form fields (pages and the API's multipart uploads);
    a bad date or organization is refused naming its field."""

    def day(name: str) -> dt.date | None:
        text = get(name).strip()
        if not text:
            return None
        try:
            return dt.date.fromisoformat(text)
        except ValueError:
            raise DictionaryError("date", name) from None

    org = get("organization_id").strip()
    if org and (not org.isdigit() or not 0 < int(org) <= INT_MAX):
        raise DictionaryError("organization", "organization_id")
    for name in ("title", "kind", "number"):
        longest = fits(_doc[name]).max_length or 0
        if len(get(name)) > longest:
            raise DictionaryError("too_long", name, max=longest)
    return DocumentMeta(
        title=get("title"),
        kind=get("kind"),
        number=get("number"),
        date=day("date"),
        organization_id=int(org) if org else None,
        valid_from=day("valid_from"),
        valid_to=day("valid_to"),
    )


def _check(meta: DocumentMeta) -> None:
    if not meta.title.strip():
        raise DictionaryError("title", "title")
    if meta.valid_from and meta.valid_to and meta.valid_to < meta.valid_from:
        raise DictionaryError("validity", "valid_to")


def _meta_values(meta: DocumentMeta) -> dict[str, Any]:
    return {
        "title": meta.title.strip(),
        "kind": meta.kind.strip(),
        "number": meta.number.strip(),
        "date": meta.date,
        "organization_id": meta.organization_id,
        "valid_from": meta.valid_from,
        "valid_to": meta.valid_to,
    }


async def create(
    session: AsyncSession,
    meta: DocumentMeta,
    upload: StoredUpload,
    *,
    actor: Actor,
    now: dt.datetime,
) -> int:
    _check(meta)
    doc_id = await session.scalar(
        insert(models.document)
        .values(**_meta_values(meta), version=1, created_at=now, updated_at=now)
        .returning(models.document.c.id)
    )
    assert doc_id is not None
    await _add_version(session, int(doc_id), 1, upload, actor=actor, now=now)
    return int(doc_id)


async def _add_version(
    session: AsyncSession,
    doc_id: int,
    version: int,
    upload: StoredUpload,
    *,
    actor: Actor,
    now: dt.datetime,
) -> None:
    await session.execute(
        insert(models.document_version).values(
            document_id=doc_id,
            version=version,
            file_key=upload.key,
            filename=upload.filename,
            content_type=upload.content_type,
            size=upload.size,
            uploaded_at=now,
            uploaded_by=actor.person_id,
        )
    )


async def update_meta(
    session: AsyncSession, doc_id: int, meta: DocumentMeta, *, now: dt.datetime
) -> None:
    _check(meta)
    done = await session.execute(
        update(models.document)
        .where(models.document.c.id == doc_id)
        .values(**_meta_values(meta), updated_at=now)
    )
    if not done.rowcount:  # type: ignore[attr-defined]
        raise NotFound(f"document {doc_id}")


async def replace_file(
    session: AsyncSession, doc_id: int, upload: StoredUpload, *, actor: Actor, now: dt.datetime
) -> int:
    """A new version of the document's file; the earlier ones stay downloadable."""
    d = models.document
    current = await session.scalar(select(d.c.version).where(d.c.id == doc_id))
    if current is None:
        raise NotFound(f"document {doc_id}")
    version = int(current) + 1
    await _add_version(session, doc_id, version, upload, actor=actor, now=now)
    await session.execute(update(d).where(d.c.id == doc_id).values(version=version, updated_at=now))
    return version


async def remove(session: AsyncSession, doc_id: int) -> list[str]:
    """Delete the document; returns its files' keys for the caller to delete after commit."""
    v = models.document_version
    keys = list(await session.scalars(select(v.c.file_key).where(v.c.document_id == doc_id)))
    done = await session.execute(delete(models.document).where(models.document.c.id == doc_id))
    if not done.rowcount:  # type: ignore[attr-defined]
        raise NotFound(f"document {doc_id}")
    return keys


def _visible(organizations: Set[int] | AllOrganizations | None) -> Any:
    d = models.document
    if organizations is None or isinstance(organizations, AllOrganizations):
        return d.c.id.is_not(None)
    return or_(d.c.organization_id.is_(None), d.c.organization_id.in_(sorted(organizations)))


async def listing(
    session: AsyncSession,
    *,
    organizations: Set[int] | AllOrganizations | None,
    valid_on: dt.date | None = None,
    kind: str = "",
    search: str = "",
) -> list[Document]:
    """Documents visible in ``organizations`` (``None``: all, for staff), newest first."""
    d, v = models.document, models.document_version
    stmt = (
        select(d, v.c.filename, v.c.content_type, v.c.size)
        .join(v, (v.c.document_id == d.c.id) & (v.c.version == d.c.version))
        .where(_visible(organizations))
        .order_by(d.c.date.desc().nulls_last(), d.c.id.desc())
    )
    if valid_on is not None:
        stmt = stmt.where(
            or_(d.c.valid_from.is_(None), d.c.valid_from <= valid_on),
            or_(d.c.valid_to.is_(None), d.c.valid_to >= valid_on),
        )
    if kind:
        stmt = stmt.where(d.c.kind == kind)
    stmt = stmt.where(lists.search(search, d.c.title, d.c.number))
    return [_document(r) for r in await session.execute(stmt)]


def _document(r: Any) -> Document:
    return Document(
        id=r.id,
        title=r.title,
        kind=r.kind,
        number=r.number,
        date=r.date,
        organization_id=r.organization_id,
        valid_from=r.valid_from,
        valid_to=r.valid_to,
        version=r.version,
        filename=r.filename,
        content_type=r.content_type,
        size=r.size,
        updated_at=r.updated_at,
    )


async def get(
    session: AsyncSession,
    doc_id: int,
    *,
    organizations: Set[int] | AllOrganizations | None,
) -> Document:
    """One document with its versions; :class:`NotFound` outside ``organizations``."""
    d, v = models.document, models.document_version
    row = (
        await session.execute(
            select(d, v.c.filename, v.c.content_type, v.c.size)
            .join(v, (v.c.document_id == d.c.id) & (v.c.version == d.c.version))
            .where(d.c.id == doc_id, _visible(organizations))
        )
    ).first()
    if row is None:
        raise NotFound(f"document {doc_id}")
    found = _document(row)
    found.versions = [
        DocumentVersion(
            version=r.version,
            filename=r.filename,
            content_type=r.content_type,
            size=r.size,
            uploaded_at=r.uploaded_at,
            uploaded_by=r.uploaded_by,
        )
        for r in await session.execute(
            select(v).where(v.c.document_id == doc_id).order_by(v.c.version.desc())
        )
    ]
    return found


async def file_of(session: AsyncSession, doc_id: int, version: int) -> tuple[str, str, str]:
    """(storage key, file name, content type) of one version."""
    v = models.document_version
    row = (
        await session.execute(
            select(v.c.file_key, v.c.filename, v.c.content_type).where(
                v.c.document_id == doc_id, v.c.version == version
            )
        )
    ).first()
    if row is None:
        raise NotFound(f"document {doc_id} version {version}")
    return row.file_key, row.filename, row.content_type
