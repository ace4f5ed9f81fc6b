"""The host's one file storage: a local folder by default, S3-compatible storage when set.

Every app keeps its files here (dictionary documents, order files, files fetched by the
integration) under keys it chooses, such as ``dictionaries/documents/<uuid>``. Keys are
plain ASCII paths so that they map safely to a folder and to S3; the person's file name
(often Russian) is metadata, given back in the download's ``Content-Disposition``.

Files are streamed both ways: :meth:`FileStorage.save` reads its source chunk by chunk and
refuses a file past the size limit without ever holding it whole in memory (nothing is
left behind), and :meth:`FileStorage.open` / :meth:`FileStorage.download` stream it back.
The S3 backend lives in :mod:`kabinet.files_s3`, imported only when it is used, so
start-up stays fast.

Settings (``[host]``): ``files_backend`` (``local`` or ``s3``), ``files_dir``,
``files_max_size_mb``, ``s3_endpoint_url``, ``s3_bucket``, ``s3_access_key``,
``s3_secret_key``, ``s3_region``, ``s3_part_size_mb``.
"""

from __future__ import annotations

import abc
import contextlib
import dataclasses
import datetime as dt
import inspect
import json
import mimetypes
import os
import re
import unicodedata
import uuid
from collections.abc import (
    AsyncGenerator,
    AsyncIterable,
    AsyncIterator,
    Awaitable,
    Callable,
    Iterable,
)
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable
from urllib.parse import quote

import anyio
import anyio.to_thread
from litestar.background_tasks import BackgroundTask
from litestar.exceptions import ClientException, NotFoundException
from litestar.response import Stream

from kabinet.errors import SettingsError

if TYPE_CHECKING:
    from types import TracebackType

    from kabinet.settings import Settings

MB = 1024 * 1024
CHUNK_SIZE = 64 * 1024
"""How much is read or written at a time."""
S3_MIN_PART_SIZE = 5 * MB
"""S3 refuses multipart parts smaller than this (except the last)."""
DEFAULT_CONTENT_TYPE = "application/octet-stream"

_SEGMENT = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9._-]{0,254}")
_MAX_KEY = 1024


class FileStorageError(Exception):
    """A file cannot be stored or read; ``str()`` says why."""


class InvalidFileKey(FileStorageError, ValueError):
    """A key that is not a safe relative path (a bug in the calling app, not user input)."""


class FileNotFound(FileStorageError, NotFoundException):
    """No file under this key; a route that lets it through answers 404."""

    def __init__(self, key: str) -> None:
        self.key = key
        super().__init__(detail=f"file {key!r} not found")


class FileTooLarge(FileStorageError, ClientException):
    """The file is past the size limit; a route that lets it through answers 413."""

    status_code = 413

    def __init__(self, key: str, limit: int) -> None:
        self.key = key
        self.limit = limit
        super().__init__(
            detail=f"the file is larger than the limit of {_human(limit)}",
            extra={"limit_bytes": limit},
        )


class Download(Stream):
    """A streamed file that keeps its own content type.

    Litestar's ``Stream`` takes the route's media type over its own, so a file returned
    by a route declared without one (JSON by default) left as ``application/json``; this
    one is sent as what it is (``application/pdf``, XLSX, CSV, …) from any route."""

    def to_asgi_response(self, *args: Any, **kwargs: Any) -> Any:
        kwargs["media_type"] = self.media_type or kwargs.get("media_type")
        return super().to_asgi_response(*args, **kwargs)


@dataclasses.dataclass(frozen=True)
class StoredFile:
    """What the storage knows about one file."""

    key: str
    size: int
    content_type: str
    filename: str | None = None
    """The person's file name, as given to :meth:`FileStorage.save`."""
    modified: dt.datetime | None = None


@runtime_checkable
class _Readable(Protocol):
    def read(self, size: int = ..., /) -> Any: ...


Source = bytes | bytearray | memoryview | AsyncIterable[bytes] | Iterable[bytes] | _Readable
"""What :meth:`FileStorage.save` accepts: bytes, an (async) iterator of chunks, or a
file-like with ``read(size)`` (sync, like an open file, or async, like Litestar's
``UploadFile``)."""


class OpenedFile:
    """A file being read: ``info`` at once, then its chunks by ``async for``.

    Close it (``async with`` or :meth:`aclose`) when not read to the end; reading to the
    end closes it too.
    """

    def __init__(
        self,
        info: StoredFile,
        chunks: AsyncGenerator[bytes, None],
        close: Callable[[], Awaitable[None]],
    ) -> None:
        self.info = info
        self._chunks = chunks
        self._close = close

    def __aiter__(self) -> AsyncIterator[bytes]:
        return self._chunks

    async def aclose(self) -> None:
        try:
            await self._chunks.aclose()
        finally:
            await self._close()

    async def __aenter__(self) -> OpenedFile:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()


class FileStorage(abc.ABC):
    """The interface every app uses; the backends below implement the ``_`` methods."""

    def __init__(self, *, max_size: int) -> None:
        self.max_size = max_size
        """The installation's ceiling in bytes (``files_max_size_mb``)."""

    async def save(
        self,
        key: str,
        source: Source,
        *,
        content_type: str | None = None,
        filename: str | None = None,
        max_size: int | None = None,
    ) -> StoredFile:
        """Store ``source`` under ``key`` (replacing what was there), streamed.

        ``max_size`` lowers the limit for this file; it never raises it past the
        installation's ceiling. Past the limit :class:`FileTooLarge` is raised and nothing
        is stored (a file already under ``key`` stays as it was).
        """
        check_key(key)
        limit = self.max_size if max_size is None else min(max_size, self.max_size)
        if content_type is None:
            content_type = guess_type(filename or key)
        chunks = _limited(_chunks(source), key, limit)
        try:
            size = await self._write(key, chunks, content_type, filename)
        finally:
            await chunks.aclose()
        return StoredFile(key=key, size=size, content_type=content_type, filename=filename)

    async def stat(self, key: str) -> StoredFile:
        """Size and metadata; :class:`FileNotFound` when there is no such file."""
        check_key(key)
        return await self._stat(key)

    async def exists(self, key: str) -> bool:
        try:
            await self.stat(key)
        except FileNotFound:
            return False
        return True

    async def open(self, key: str, *, chunk_size: int = CHUNK_SIZE) -> OpenedFile:
        """Open for streaming; :class:`FileNotFound` is raised here, not mid-stream."""
        check_key(key)
        return await self._open(key, chunk_size)

    async def read(self, key: str) -> bytes:
        """The whole file in memory: only for files known to be small."""
        async with await self.open(key) as opened:
            return b"".join([chunk async for chunk in opened])

    async def delete(self, key: str) -> None:
        """Remove the file; removing a missing file is not an error."""
        check_key(key)
        await self._delete(key)

    async def download(
        self,
        key: str,
        *,
        filename: str | None = None,
        content_type: str | None = None,
        inline: bool = False,
    ) -> Download:
        """A Litestar response streaming the file, for a route to return.

        Sets ``Content-Type``, ``Content-Length`` and ``Content-Disposition`` (the stored
        or given file name, UTF-8 safe). Raises :class:`FileNotFound` (404) before anything
        is sent.
        """
        opened = await self.open(key)
        info = opened.info
        name = filename or info.filename or key.rsplit("/", 1)[-1]
        return Download(
            opened,
            media_type=content_type or info.content_type,
            headers={
                "Content-Length": str(info.size),
                "Content-Disposition": content_disposition(name, inline=inline),
            },
            background=BackgroundTask(opened.aclose),
        )

    async def close(self) -> None:  # noqa: B027 (a no-op unless the backend holds connections)
        """Release connections (the host calls it at shutdown)."""

    @abc.abstractmethod
    async def _write(
        self,
        key: str,
        chunks: AsyncIterator[bytes],
        content_type: str,
        filename: str | None,
    ) -> int:
        """Store the chunks; on any error leave nothing behind. Returns the size."""

    @abc.abstractmethod
    async def _stat(self, key: str) -> StoredFile: ...

    @abc.abstractmethod
    async def _open(self, key: str, chunk_size: int) -> OpenedFile: ...

    @abc.abstractmethod
    async def _delete(self, key: str) -> None: ...


class LocalFileStorage(FileStorage):
    """Files in a folder: ``<root>/<key>``, metadata in ``<root>/.meta/<key>.json``.

    Writes go to ``<root>/.tmp/`` and are renamed into place, so a reader sees the old
    file or the new one, never half of one. Keys cannot start a segment with a dot, so no
    key reaches ``.meta`` or ``.tmp``.
    """

    def __init__(self, root: str | os.PathLike[str], *, max_size: int) -> None:
        super().__init__(max_size=max_size)
        self.root = Path(root).resolve()

    def path(self, key: str) -> Path:
        """Where the file of ``key`` lives; refuses anything outside the root."""
        check_key(key)
        return self._inside(self.root / key, key)

    def _meta_path(self, key: str) -> Path:
        return self._inside(self.root / ".meta" / f"{key}.json", key)

    def _inside(self, path: Path, key: str) -> Path:
        # Keys are checked already; this also refuses a symlinked folder leading out.
        resolved = path.resolve()
        if not resolved.is_relative_to(self.root):
            raise InvalidFileKey(f"file key {key!r} leads outside the storage folder")
        return resolved

    async def _write(
        self,
        key: str,
        chunks: AsyncIterator[bytes],
        content_type: str,
        filename: str | None,
    ) -> int:
        target = self.path(key)
        meta_target = self._meta_path(key)
        tmp_dir = self.root / ".tmp"
        await anyio.Path(tmp_dir).mkdir(parents=True, exist_ok=True)
        tmp = tmp_dir / uuid.uuid4().hex
        tmp_meta = tmp_dir / f"{tmp.name}.json"
        size = 0
        try:
            async with await anyio.open_file(tmp, "wb") as out:
                async for chunk in chunks:
                    await out.write(chunk)
                    size += len(chunk)
                await out.flush()
                await anyio.to_thread.run_sync(os.fsync, out.wrapped.fileno())
            meta = {"content_type": content_type, "filename": filename}
            await anyio.Path(tmp_meta).write_text(
                json.dumps(meta, ensure_ascii=False), encoding="utf-8"
            )
            await anyio.to_thread.run_sync(
                self._move_into_place, tmp, target, tmp_meta, meta_target
            )
        except OSError as exc:
            raise FileStorageError(f"cannot store file {key!r}: {exc.strerror or exc}") from exc
        finally:
            for leftover in (tmp, tmp_meta):
                with contextlib.suppress(FileNotFoundError):
                    await anyio.Path(leftover).unlink()
        return size

    @staticmethod
    def _move_into_place(tmp: Path, target: Path, tmp_meta: Path, meta_target: Path) -> None:
        target.parent.mkdir(parents=True, exist_ok=True)
        meta_target.parent.mkdir(parents=True, exist_ok=True)
        os.replace(tmp_meta, meta_target)
        os.replace(tmp, target)

    async def _stat(self, key: str) -> StoredFile:
        path = self.path(key)
        try:
            st = await anyio.Path(path).stat()
        except (FileNotFoundError, NotADirectoryError):
            raise FileNotFound(key) from None
        if not path.is_file():
            raise FileNotFound(key)
        meta = await self._read_meta(key)
        return StoredFile(
            key=key,
            size=st.st_size,
            content_type=meta.get("content_type") or guess_type(key),
            filename=meta.get("filename"),
            modified=dt.datetime.fromtimestamp(st.st_mtime, dt.UTC),
        )

    async def _read_meta(self, key: str) -> dict[str, Any]:
        try:
            text = await anyio.Path(self._meta_path(key)).read_text(encoding="utf-8")
            meta = json.loads(text)
        except (OSError, ValueError):
            return {}
        return meta if isinstance(meta, dict) else {}

    async def _open(self, key: str, chunk_size: int) -> OpenedFile:
        info = await self._stat(key)
        try:
            handle = await anyio.open_file(self.path(key), "rb")
        except (FileNotFoundError, IsADirectoryError):
            raise FileNotFound(key) from None

        async def chunks() -> AsyncGenerator[bytes, None]:
            try:
                while chunk := await handle.read(chunk_size):
                    yield chunk
            finally:
                await handle.aclose()

        return OpenedFile(info, chunks(), handle.aclose)

    async def _delete(self, key: str) -> None:
        for path in (self.path(key), self._meta_path(key)):
            with contextlib.suppress(FileNotFoundError, NotADirectoryError):
                await anyio.Path(path).unlink()


def check_key(key: str) -> None:
    """Refuse a key that is not a relative path of safe ASCII segments.

    Segments are letters, digits, ``_``, ``-`` and ``.``, not starting with a dot (so no
    ``..`` and no hidden files), separated by single ``/``.
    """
    if not isinstance(key, str) or not key:
        raise InvalidFileKey(f"file key {key!r}: must be a non-empty string")
    if len(key) > _MAX_KEY:
        raise InvalidFileKey(f"file key {key[:40]!r}…: longer than {_MAX_KEY} characters")
    for segment in key.split("/"):
        if not _SEGMENT.fullmatch(segment):
            raise InvalidFileKey(
                f"file key {key!r}: segment {segment!r} is not allowed (use letters, digits, "
                "'_', '-' and '.', not starting with '.', separated by single '/')"
            )


def guess_type(name: str) -> str:
    """The content type of a file name by its extension."""
    return mimetypes.guess_type(name, strict=False)[0] or DEFAULT_CONTENT_TYPE


def content_disposition(filename: str, *, inline: bool = False) -> str:
    """``Content-Disposition`` with an ASCII fallback and the UTF-8 name (RFC 6266)."""
    kind = "inline" if inline else "attachment"
    clean = "".join(c for c in filename if c.isprintable() and c not in "/\\").strip()
    clean = clean or "file"
    fallback = (
        unicodedata.normalize("NFKD", clean).encode("ascii", "ignore").decode().replace('"', "")
    )
    stem, dot, ext = fallback.rpartition(".")
    if not dot:
        stem, ext = fallback, ""
    stem = re.sub(r"\s+", " ", stem).strip(" .-_") or "file"
    fallback = f"{stem}.{ext}" if ext else stem
    value = f'{kind}; filename="{fallback}"'
    if clean != fallback:
        value += f"; filename*=UTF-8''{quote(clean, safe='')}"
    return value


def create_storage(settings: Settings) -> FileStorage:
    """The storage the ``[host]`` settings describe."""
    check_settings(settings)
    host = settings.host
    max_size = host.files_max_size_mb * MB
    if host.files_backend == "s3":
        from kabinet.files_s3 import S3FileStorage

        return S3FileStorage(
            bucket=host.s3_bucket,
            max_size=max_size,
            endpoint_url=host.s3_endpoint_url,
            access_key=host.s3_access_key,
            secret_key=host.s3_secret_key,
            region=host.s3_region,
            part_size=host.s3_part_size_mb * MB,
        )
    root = Path(host.files_dir) if host.files_dir else Path("files")
    if not root.is_absolute():
        base = settings.var_dir if not host.files_dir else _settings_dir(settings)
        root = base / root
    return LocalFileStorage(root, max_size=max_size)


def check_settings(settings: Settings) -> None:
    """Refuse storage settings that cannot work, at start-up rather than at first upload."""
    host = settings.host
    if host.files_max_size_mb <= 0:
        raise SettingsError(
            f"[host] files_max_size_mb: expected a positive number, got {host.files_max_size_mb}"
        )
    if host.files_backend == "s3":
        if not host.s3_bucket:
            raise SettingsError("[host] s3_bucket: required when files_backend = 's3'")
        if host.s3_part_size_mb < S3_MIN_PART_SIZE // MB:
            raise SettingsError(
                f"[host] s3_part_size_mb: S3 needs parts of at least 5 MB, "
                f"got {host.s3_part_size_mb}"
            )


def _settings_dir(settings: Settings) -> Path:
    return settings.raw.path.parent.resolve() if settings.raw.path else Path.cwd()


async def _chunks(source: Source) -> AsyncGenerator[bytes, None]:
    """Any accepted source as chunks of at most :data:`CHUNK_SIZE` (for files and bytes)."""
    if isinstance(source, bytes | bytearray | memoryview):
        view = memoryview(source)
        for start in range(0, len(view), CHUNK_SIZE):
            yield bytes(view[start : start + CHUNK_SIZE])
    elif isinstance(source, AsyncIterable):
        async for chunk in source:
            yield bytes(chunk)
    elif isinstance(source, _Readable):
        read = source.read
        is_async = inspect.iscoroutinefunction(read)
        while True:
            # A sync file-like reads in a worker thread, so a slow disk never blocks the loop.
            if is_async:
                chunk = await read(CHUNK_SIZE)
            else:
                chunk = await anyio.to_thread.run_sync(read, CHUNK_SIZE)
            if not chunk:
                break
            yield bytes(chunk)
    elif isinstance(source, Iterable):
        for chunk in source:
            yield bytes(chunk)
    else:
        raise TypeError(f"cannot store {type(source).__name__}: expected bytes, chunks or a file")


async def _limited(
    chunks: AsyncGenerator[bytes, None], key: str, limit: int
) -> AsyncGenerator[bytes, None]:
    """Pass chunks through, raising :class:`FileTooLarge` as soon as the limit is passed."""
    total = 0
    try:
        async for chunk in chunks:
            total += len(chunk)
            if total > limit:
                raise FileTooLarge(key, limit)
            if chunk:
                yield chunk
    finally:
        await chunks.aclose()


def _human(size: int) -> str:
    if size >= MB and size % MB == 0:
        return f"{size // MB} MB"
    if size >= MB:
        return f"{size / MB:.1f} MB"
    return f"{size} bytes"
