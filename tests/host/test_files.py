"""The file storage: both backends stream, refuse files past the limit and leave nothing
behind, refuse unsafe keys, and a route streams a download with the right headers.

The S3 backend runs against moto's S3 server on a free local port (a real HTTP server,
so the multipart upload really goes over the wire).
"""

from __future__ import annotations

import hashlib
import io
import os
import subprocess
import sys
import textwrap
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from litestar import Litestar, get
from litestar.params import FromPath
from litestar.response import Stream
from litestar.testing import AsyncTestClient

from kabinet.access import public
from kabinet.errors import SettingsError
from kabinet.files import (
    MB,
    FileNotFound,
    FileStorage,
    FileTooLarge,
    InvalidFileKey,
    LocalFileStorage,
    content_disposition,
)
from kabinet.files_s3 import S3FileStorage
from kabinet.host import Host

RUSSIAN_NAME = "Счёт-фактура №17 от 05.03.pdf"
BUCKET = "kabinet-test"


@pytest.fixture(scope="session")
def s3_endpoint() -> Iterator[str]:
    """moto's S3 server in a thread on a free 127.0.0.1 port, with one bucket."""
    boto3 = pytest.importorskip("boto3")
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    s3_admin(boto3, endpoint).create_bucket(Bucket=BUCKET)
    try:
        yield endpoint
    finally:
        server.stop()


def s3_admin(boto3: Any, endpoint: str) -> Any:
    """A plain boto3 client, to look at the bucket behind the storage's back."""
    return boto3.client(
        "s3",
        endpoint_url=endpoint,
        aws_access_key_id="test",
        aws_secret_access_key="test",
        region_name="us-east-1",
    )


@pytest.fixture(params=[pytest.param("local", marks=pytest.mark.smoke), "s3"])
async def storage(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[FileStorage]:
    """Each backend with a 1 MB limit (S3 parts of the 5 MB minimum)."""
    if request.param == "local":
        yield LocalFileStorage(tmp_path / "files", max_size=MB)
        return
    endpoint = request.getfixturevalue("s3_endpoint")
    s3 = S3FileStorage(
        bucket=BUCKET,
        max_size=MB,
        endpoint_url=endpoint,
        access_key="test",
        secret_key="test",
        region="us-east-1",
        part_size=5 * MB,
    )
    try:
        yield s3
    finally:
        await s3.close()


@pytest.fixture
def local(tmp_path: Path) -> LocalFileStorage:
    return LocalFileStorage(tmp_path / "files", max_size=MB)


@pytest.fixture
async def s3(s3_endpoint: str) -> AsyncIterator[S3FileStorage]:
    """S3 with a 20 MB limit and 5 MB parts, for the multipart tests."""
    storage = S3FileStorage(
        bucket=BUCKET,
        max_size=20 * MB,
        endpoint_url=s3_endpoint,
        access_key="test",
        secret_key="test",
        region="us-east-1",
        part_size=5 * MB,
    )
    try:
        yield storage
    finally:
        await storage.close()


async def pieces(count: int, size: int, seen: list[int] | None = None) -> AsyncIterator[bytes]:
    """``count`` chunks of ``size`` bytes, each different; records how many were pulled."""
    for index in range(count):
        if seen is not None:
            seen.append(index)
        yield bytes([index % 251]) * size


def digest(count: int, size: int) -> str:
    h = hashlib.sha256()
    for index in range(count):
        h.update(bytes([index % 251]) * size)
    return h.hexdigest()


# Both backends ------------------------------------------------------------------------


async def test_round_trip_keeps_bytes_type_and_russian_name(storage: FileStorage) -> None:
    key = "dictionaries/documents/0001"
    saved = await storage.save(
        key, pieces(10, 10_000), content_type="application/pdf", filename=RUSSIAN_NAME
    )
    assert saved.size == 100_000

    info = await storage.stat(key)
    assert (info.key, info.size, info.content_type, info.filename) == (
        key,
        100_000,
        "application/pdf",
        RUSSIAN_NAME,
    )
    assert info.modified is not None
    assert await storage.exists(key)
    body = await storage.read(key)
    assert hashlib.sha256(body).hexdigest() == digest(10, 10_000)


async def test_content_type_is_guessed_from_the_name(storage: FileStorage) -> None:
    await storage.save("shipments/orders/7/a", b"x,y\n", filename="реестр.csv")
    assert (await storage.stat("shipments/orders/7/a")).content_type == "text/csv"
    await storage.save("shipments/orders/7/b", b"\x00\x01")
    assert (await storage.stat("shipments/orders/7/b")).content_type == "application/octet-stream"


async def test_saving_again_replaces_the_file(storage: FileStorage) -> None:
    await storage.save("a/b", b"first version", filename="один.txt")
    await storage.save("a/b", b"second", filename="два.txt")
    assert await storage.read("a/b") == b"second"
    info = await storage.stat("a/b")
    assert (info.size, info.filename) == (6, "два.txt")


async def test_sources_sync_file_async_reader_and_bytes(storage: FileStorage) -> None:
    class Upload:
        """Like Litestar's UploadFile: an async ``read(size)``."""

        def __init__(self, data: bytes) -> None:
            self.stream = io.BytesIO(data)

        async def read(self, size: int = -1) -> bytes:
            return self.stream.read(size)

    data = os.urandom(200_000)
    await storage.save("from/file", io.BytesIO(data))
    await storage.save("from/upload", Upload(data))
    await storage.save("from/bytes", data)
    await storage.save("from/iterable", [data[:5], data[5:]])
    for key in ("from/file", "from/upload", "from/bytes", "from/iterable"):
        assert await storage.read(key) == data, key


async def test_reading_streams_in_chunks(storage: FileStorage) -> None:
    data = os.urandom(300_000)
    await storage.save("big", data)
    sizes = []
    async with await storage.open("big", chunk_size=64 * 1024) as opened:
        assert opened.info.size == 300_000
        received = bytearray()
        async for chunk in opened:
            sizes.append(len(chunk))
            received += chunk
    assert bytes(received) == data
    assert len(sizes) >= 5
    assert max(sizes) <= 64 * 1024


async def test_too_large_is_refused_early_and_leaves_nothing(storage: FileStorage) -> None:
    await storage.save("docs/1", b"old content")
    pulled: list[int] = []

    async def endless() -> AsyncIterator[bytes]:
        async for chunk in pieces(10**9, 64 * 1024, pulled):
            yield chunk

    with pytest.raises(FileTooLarge) as refused:
        await storage.save("docs/1", endless())
    assert refused.value.status_code == 413
    assert refused.value.limit == MB
    assert "larger than the limit of 1 MB" in refused.value.detail
    # Reading stopped right after the limit was passed: 17 chunks of 64 KB > 1 MB.
    assert len(pulled) == 17
    assert await storage.read("docs/1") == b"old content"

    with pytest.raises(FileTooLarge):
        await storage.save("docs/2", pieces(17, 64 * 1024))
    assert not await storage.exists("docs/2")

    # A lower limit for one save; the ceiling cannot be raised past the storage's.
    with pytest.raises(FileTooLarge):
        await storage.save("docs/3", b"x" * 101, max_size=100)
    with pytest.raises(FileTooLarge):
        await storage.save("docs/3", b"x" * (MB + 1), max_size=10 * MB)
    assert not await storage.exists("docs/3")
    saved = await storage.save("docs/3", b"x" * MB)
    assert saved.size == MB


async def test_missing_file(storage: FileStorage) -> None:
    with pytest.raises(FileNotFound) as missing:
        await storage.stat("no/such/file")
    assert missing.value.status_code == 404
    with pytest.raises(FileNotFound):
        await storage.open("no/such/file")
    assert not await storage.exists("no/such/file")
    await storage.delete("no/such/file")  # removing a missing file is fine


async def test_delete(storage: FileStorage) -> None:
    await storage.save("tmp/x", b"data", filename="x.txt")
    await storage.delete("tmp/x")
    assert not await storage.exists("tmp/x")
    with pytest.raises(FileNotFound):
        await storage.read("tmp/x")


BAD_KEYS = [
    "",
    "../outside",
    "a/../../outside",
    "/etc/passwd",
    "a//b",
    "a/",
    ".hidden",
    "a/./b",
    "a\\..\\b",
    "счёт.pdf",
    "with space",
    "a/" + "b" * 256,
]


@pytest.mark.parametrize("key", BAD_KEYS)
async def test_unsafe_keys_are_refused(storage: FileStorage, key: str) -> None:
    with pytest.raises(InvalidFileKey):
        await storage.save(key, b"data")
    with pytest.raises(InvalidFileKey):
        await storage.open(key)
    with pytest.raises(InvalidFileKey):
        await storage.stat(key)
    with pytest.raises(InvalidFileKey):
        await storage.delete(key)


# A download route -----------------------------------------------------------------------


async def test_download_route_headers_and_body(storage: FileStorage) -> None:
    data = os.urandom(150_000)
    await storage.save("orders/5/scan", data, content_type="application/pdf", filename=RUSSIAN_NAME)

    @get("/files/{key:path}", access=public)
    async def download(key: FromPath[str]) -> Stream:
        return await storage.download(key.lstrip("/"))

    @get("/inline/{key:path}", access=public)
    async def inline(key: FromPath[str]) -> Stream:
        return await storage.download(key.lstrip("/"), filename="scan.pdf", inline=True)

    # The test client runs the app on its own event loop: close that loop's S3 client there.
    app = Litestar([download, inline], on_shutdown=[storage.close])
    async with AsyncTestClient(app) as client:
        answer = await client.get("/files/orders/5/scan")
        assert answer.status_code == 200
        assert answer.headers["content-type"] == "application/pdf"
        assert answer.headers["content-length"] == "150000"
        assert answer.headers["content-disposition"] == (
            'attachment; filename="No17 05.03.pdf"; '
            f"filename*=UTF-8''{quote(RUSSIAN_NAME, safe='')}"
        )
        assert answer.content == data

        answer = await client.get("/inline/orders/5/scan")
        assert answer.headers["content-disposition"] == 'inline; filename="scan.pdf"'

        missing = await client.get("/files/orders/5/none")
        assert missing.status_code == 404


# The local backend ------------------------------------------------------------------------


@pytest.mark.smoke
async def test_local_layout_and_no_temporary_files_left(
    local: LocalFileStorage, tmp_path: Path
) -> None:
    await local.save("a/b/c.bin", b"123", filename="имя.bin")
    assert (tmp_path / "files" / "a" / "b" / "c.bin").read_bytes() == b"123"
    with pytest.raises(FileTooLarge):
        await local.save("a/b/d.bin", pieces(100, 64 * 1024))
    assert list((tmp_path / "files" / ".tmp").iterdir()) == []
    assert not (tmp_path / "files" / "a" / "b" / "d.bin").exists()
    await local.delete("a/b/c.bin")
    leftovers = [p for p in (tmp_path / "files").rglob("*") if p.is_file()]
    assert leftovers == []


@pytest.mark.smoke
async def test_local_refuses_a_symlink_leading_out(local: LocalFileStorage, tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    local.root.mkdir(parents=True)
    (local.root / "link").symlink_to(outside, target_is_directory=True)
    with pytest.raises(InvalidFileKey, match="outside the storage folder"):
        await local.save("link/x", b"data")
    assert list(outside.iterdir()) == []


@pytest.mark.smoke
async def test_local_error_when_a_folder_is_a_file(local: LocalFileStorage) -> None:
    await local.save("plain", b"a file")
    with pytest.raises(Exception, match="cannot store file 'plain/child'"):
        await local.save("plain/child", b"data")
    assert list((local.root / ".tmp").iterdir()) == []


@pytest.mark.smoke
def test_content_disposition() -> None:
    assert content_disposition("report.pdf") == 'attachment; filename="report.pdf"'
    assert content_disposition("отчёт.xlsx") == (
        "attachment; filename=\"file.xlsx\"; filename*=UTF-8''%D0%BE%D1%82%D1%87%D1%91%D1%82.xlsx"
    )
    # Quotes and path separators never reach the header unescaped.
    value = content_disposition('a"b/../c.txt', inline=True)
    assert value.startswith('inline; filename="ab..c.txt"')
    assert "/" not in value.split("filename*=")[-1]


# The multipart upload on S3 ---------------------------------------------------------------


async def test_s3_multipart_upload_for_a_file_larger_than_a_part(
    s3: S3FileStorage, s3_endpoint: str
) -> None:
    boto3 = pytest.importorskip("boto3")
    # 11 MB in 1 MB chunks with 5 MB parts: three parts (5 + 5 + 1).
    saved = await s3.save("integration/fetch/big.bin", pieces(11, MB), filename="выгрузка.bin")
    assert saved.size == 11 * MB
    head = s3_admin(boto3, s3_endpoint).head_object(Bucket=BUCKET, Key="integration/fetch/big.bin")
    assert head["ETag"].strip('"').endswith("-3")  # the ETag of a 3-part upload
    assert head["ContentLength"] == 11 * MB

    h = hashlib.sha256()
    async with await s3.open("integration/fetch/big.bin") as opened:
        assert opened.info.filename == "выгрузка.bin"
        async for chunk in opened:
            h.update(chunk)
    assert h.hexdigest() == digest(11, MB)


async def test_s3_too_large_aborts_the_multipart_upload(
    s3: S3FileStorage, s3_endpoint: str
) -> None:
    boto3 = pytest.importorskip("boto3")
    with pytest.raises(FileTooLarge):
        await s3.save("too/large", pieces(30, MB))
    admin = s3_admin(boto3, s3_endpoint)
    assert admin.list_multipart_uploads(Bucket=BUCKET).get("Uploads", []) == []
    assert admin.list_objects_v2(Bucket=BUCKET, Prefix="too/").get("KeyCount") == 0


async def test_s3_missing_bucket_is_a_clear_error(s3_endpoint: str) -> None:
    storage = S3FileStorage(
        bucket="no-such-bucket",
        max_size=MB,
        endpoint_url=s3_endpoint,
        access_key="test",
        secret_key="test",
        region="us-east-1",
    )
    try:
        with pytest.raises(Exception, match=r"no-such-bucket.*NoSuchBucket"):
            await storage.save("a", b"data")
    finally:
        await storage.close()


# host.files --------------------------------------------------------------------------------


@pytest.mark.smoke
async def test_host_files_is_a_local_folder_in_var_dir(tmp_path: Path) -> None:
    settings = tmp_path / "settings.toml"
    settings.write_text('[host]\nvar_dir = "data"\nfiles_max_size_mb = 2\n')
    host = await Host.create(settings, env={})
    try:
        files = host.files
        assert isinstance(files, LocalFileStorage)
        assert files.root == (tmp_path / "data" / "files").resolve()
        assert files.max_size == 2 * MB
        assert host.files is files
        await files.save("host/check", b"ok")
        assert (tmp_path / "data" / "files" / "host" / "check").read_bytes() == b"ok"
    finally:
        await host.shutdown()


@pytest.mark.smoke
@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"KABINET__HOST__FILES_BACKEND": "s3"}, "s3_bucket: required"),
        (
            {
                "KABINET__HOST__FILES_BACKEND": "s3",
                "KABINET__HOST__S3_BUCKET": "b",
                "KABINET__HOST__S3_PART_SIZE_MB": "1",
            },
            "at least 5 MB",
        ),
        ({"KABINET__HOST__FILES_MAX_SIZE_MB": "0"}, "files_max_size_mb: expected a positive"),
        ({"KABINET__HOST__FILES_BACKEND": "ftp"}, "files_backend"),
    ],
)
async def test_bad_storage_settings_stop_start_up(env: dict[str, str], message: str) -> None:
    with pytest.raises(SettingsError, match=message):
        await Host.create(None, env=env)


def test_no_s3_client_is_imported_unless_configured(tmp_path: Path) -> None:
    script = textwrap.dedent(
        """
        import asyncio, sys
        from kabinet.host import Host

        async def main():
            host = await Host.create(None, env={"KABINET__HOST__VAR_DIR": sys.argv[1]})
            await host.files.save("a", b"x")
            await host.shutdown()

        asyncio.run(main())
        loaded = sorted(m for m in sys.modules if m.split(".")[0] in {"aiobotocore", "botocore"})
        print(loaded)
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script, str(tmp_path)],
        capture_output=True,
        text=True,
        check=True,
        cwd=tmp_path,
    )
    assert done.stdout.strip() == "[]"
