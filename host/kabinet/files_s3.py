"""The S3-compatible backend of the host's file storage (see :mod:`kabinet.files`).

Built by :func:`kabinet.files.create_storage` when ``[host] files_backend = "s3"``; the S3
client (aiobotocore) is imported only when the first file is read or written, so a portal
on the local backend never loads it.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import weakref
from collections.abc import AsyncGenerator, AsyncIterator
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, unquote

import anyio

from kabinet.errors import SettingsError
from kabinet.files import (
    MB,
    S3_MIN_PART_SIZE,
    FileNotFound,
    FileStorage,
    FileStorageError,
    OpenedFile,
    StoredFile,
    _human,
    guess_type,
)

if TYPE_CHECKING:
    from types_aiobotocore_s3 import S3Client
    from types_aiobotocore_s3.type_defs import CompletedPartTypeDef


class S3FileStorage(FileStorage):
    """Files in an S3-compatible bucket (AWS, MinIO, Yandex Object Storage, moto…).

    Uploads of up to one part are a single ``PutObject``; larger streams go up as a
    multipart upload, one part in memory at a time, aborted on any error so nothing is
    left behind. The person's file name is kept percent-encoded in the object's metadata
    (S3 metadata is ASCII).

    The client's connections belong to one event loop, so each loop that uses the storage
    (the web app's, a worker thread's) gets its own client; :meth:`close` releases the
    current loop's.
    """

    def __init__(
        self,
        *,
        bucket: str,
        max_size: int,
        endpoint_url: str | None = None,
        access_key: str | None = None,
        secret_key: str | None = None,
        region: str | None = None,
        part_size: int = 8 * MB,
    ) -> None:
        super().__init__(max_size=max_size)
        if part_size < S3_MIN_PART_SIZE:
            raise SettingsError(
                f"[host] s3_part_size_mb: S3 needs parts of at least 5 MB, got {_human(part_size)}"
            )
        self.bucket = bucket
        self.endpoint_url = endpoint_url or None
        self.access_key = access_key or None
        self.secret_key = secret_key or None
        self.region = region or None
        self.part_size = part_size
        self._clients: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _LoopClient] = (
            weakref.WeakKeyDictionary()
        )

    async def _client(self) -> S3Client:
        loop = asyncio.get_running_loop()
        state = self._clients.get(loop)
        if state is None:
            state = self._clients[loop] = _LoopClient()
        if state.client is not None:
            return state.client
        async with state.lock:
            if state.client is None:
                from aiobotocore.config import AioConfig
                from aiobotocore.session import get_session

                config = AioConfig(
                    # Path-style URLs for a custom endpoint (MinIO and most S3-compatible
                    # servers); checksums only where required, which they all accept.
                    s3={"addressing_style": "path" if self.endpoint_url else "auto"},
                    request_checksum_calculation="when_required",
                    response_checksum_validation="when_required",
                )
                state.client = await state.stack.enter_async_context(
                    get_session().create_client(
                        "s3",
                        endpoint_url=self.endpoint_url,
                        aws_access_key_id=self.access_key,
                        aws_secret_access_key=self.secret_key,
                        region_name=self.region,
                        config=config,
                    )
                )
            return state.client

    async def close(self) -> None:
        state = self._clients.pop(asyncio.get_running_loop(), None)
        if state is not None:
            await state.stack.aclose()

    async def _write(
        self,
        key: str,
        chunks: AsyncIterator[bytes],
        content_type: str,
        filename: str | None,
    ) -> int:
        client = await self._client()
        metadata = {"filename": quote(filename)} if filename is not None else {}
        buffer = bytearray()
        size = 0
        upload_id: str | None = None
        parts: list[CompletedPartTypeDef] = []

        async def upload_part(body: bytes) -> None:
            assert upload_id is not None
            number = len(parts) + 1
            answer = await client.upload_part(
                Bucket=self.bucket, Key=key, UploadId=upload_id, PartNumber=number, Body=body
            )
            parts.append({"PartNumber": number, "ETag": answer["ETag"]})

        try:
            async for chunk in chunks:
                buffer += chunk
                size += len(chunk)
                while len(buffer) >= self.part_size:
                    if upload_id is None:
                        created = await client.create_multipart_upload(
                            Bucket=self.bucket, Key=key, ContentType=content_type, Metadata=metadata
                        )
                        upload_id = created["UploadId"]
                    await upload_part(bytes(buffer[: self.part_size]))
                    del buffer[: self.part_size]
            if upload_id is None:
                await client.put_object(
                    Bucket=self.bucket,
                    Key=key,
                    Body=bytes(buffer),
                    ContentType=content_type,
                    Metadata=metadata,
                )
            else:
                if buffer:
                    await upload_part(bytes(buffer))
                await client.complete_multipart_upload(
                    Bucket=self.bucket,
                    Key=key,
                    UploadId=upload_id,
                    MultipartUpload={"Parts": parts},
                )
        except BaseException as exc:
            if upload_id is not None:
                with anyio.CancelScope(shield=True), contextlib.suppress(Exception):
                    await client.abort_multipart_upload(
                        Bucket=self.bucket, Key=key, UploadId=upload_id
                    )
            if isinstance(exc, FileStorageError):
                raise
            raise self._wrap(exc, key) from exc
        return size

    def _wrap(self, exc: BaseException, key: str) -> BaseException:
        from botocore.exceptions import BotoCoreError, ClientError

        if isinstance(exc, ClientError):
            error = exc.response.get("Error", {})
            if error.get("Code") in {"NoSuchKey", "404", "NotFound"}:
                return FileNotFound(key)
            return FileStorageError(
                f"S3 bucket {self.bucket!r}, file {key!r}: "
                f"{error.get('Code', '?')}: {error.get('Message', exc)}"
            )
        if isinstance(exc, BotoCoreError):
            return FileStorageError(f"S3 bucket {self.bucket!r}, file {key!r}: {exc}")
        return exc

    async def _stat(self, key: str) -> StoredFile:
        client = await self._client()
        try:
            head = await client.head_object(Bucket=self.bucket, Key=key)
        except Exception as exc:
            raise self._wrap(exc, key) from exc
        return self._info(key, dict(head))

    def _info(self, key: str, head: dict[str, Any]) -> StoredFile:
        name = head.get("Metadata", {}).get("filename")
        return StoredFile(
            key=key,
            size=int(head["ContentLength"]),
            content_type=head.get("ContentType") or guess_type(key),
            filename=unquote(name) if name is not None else None,
            modified=head.get("LastModified"),
        )

    async def _open(self, key: str, chunk_size: int) -> OpenedFile:
        client = await self._client()
        try:
            answer = await client.get_object(Bucket=self.bucket, Key=key)
        except Exception as exc:
            raise self._wrap(exc, key) from exc
        body = answer["Body"]

        async def chunks() -> AsyncGenerator[bytes, None]:
            try:
                async for chunk in body.iter_chunks(chunk_size):
                    yield chunk
            finally:
                body.close()

        async def close() -> None:
            body.close()

        return OpenedFile(self._info(key, dict(answer)), chunks(), close)

    async def _delete(self, key: str) -> None:
        client = await self._client()
        try:
            await client.delete_object(Bucket=self.bucket, Key=key)
        except Exception as exc:
            raise self._wrap(exc, key) from exc


@dataclasses.dataclass
class _LoopClient:
    """The S3 client of one event loop."""

    lock: asyncio.Lock = dataclasses.field(default_factory=asyncio.Lock)
    stack: contextlib.AsyncExitStack = dataclasses.field(default_factory=contextlib.AsyncExitStack)
    client: S3Client | None = None
