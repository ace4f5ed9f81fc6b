"""``kabinet backup DEST`` and ``kabinet restore SOURCE``: the database and the file storage.

A backup is a folder holding:

- ``database.dump``: PostgreSQL's own dump (``pg_dump --format=custom``, one consistent
  snapshot while the portal runs), or ``database.sqlite3`` (SQLite's online backup);
- ``files.tar``: the local file storage folder, every file with its metadata
  (S3-compatible storage is backed up with the storage's own tools: versioning or
  replication of the bucket);
- ``backup.json``: when, which release, which database, each plugin's migration revision.

The database is dumped first, the files after: a file is written before the row naming
it commits and never changed under its key, so every file a dumped row names is in the
archive (files newer than the dump come along too, named by nothing: harmless).

Restore goes into an *empty* database and an empty (or missing) files folder, those of
the settings given (``kabinet --settings NEW restore SOURCE``), then ``kabinet db
upgrade`` (a backup of an earlier release) and ``kabinet check``. docs/operations.md,
"Backups", is the procedure; tests/test_backup_restore.py follows it.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import os
import shutil
import sqlite3
import subprocess
import tarfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

import kabinet
from kabinet.commands import Failure, host_command

if TYPE_CHECKING:
    from sqlalchemy.engine import URL

    from kabinet.host import Host

DUMP = "database.dump"
SQLITE = "database.sqlite3"
FILES = "files.tar"
MANIFEST = "backup.json"


def _libpq(url: URL) -> tuple[str, dict[str, str]]:
    """A SQLAlchemy PostgreSQL URL as pg_dump's ``--dbname`` (password in the environment,
    never on the command line other users may read)."""
    env = dict(os.environ)
    if url.password:
        env["PGPASSWORD"] = str(url.password)
    plain = url.set(drivername="postgresql", password=None, query={})
    return plain.render_as_string(hide_password=False), env


def _tool(name: str) -> str:
    found = shutil.which(name)
    if found is None:
        msg = f"{name} is not installed: install the PostgreSQL client (postgresql-client)"
        raise Failure(msg)
    return found


def _run(command: list[str], env: dict[str, str]) -> None:
    done = subprocess.run(command, env=env, capture_output=True, text=True, check=False)  # noqa: S603
    if done.returncode != 0:
        msg = f"{Path(command[0]).name} failed: {done.stderr.strip() or done.stdout.strip()}"
        raise Failure(msg)


def _files_root(host: Host) -> Path | None:
    """The local storage folder, or None for S3-compatible storage."""
    root = getattr(host.files, "root", None)
    return Path(root) if root is not None else None


async def _revisions(host: Host) -> dict[str, str | None]:
    return dict(await host.migrations.current())


def _write(url: URL, root: Path | None, dest: Path) -> int | None:
    """Dump the database, then archive the files folder; how many files (None: S3)."""
    if dest.exists() and any(dest.iterdir()):
        raise Failure(f"{dest} is not empty: give a new folder for each backup")
    dest.mkdir(parents=True, exist_ok=True)
    if url.get_backend_name() == "postgresql":
        target, env = _libpq(url)
        dump = [_tool("pg_dump"), "--format=custom", "--no-owner", "--no-privileges"]
        _run([*dump, f"--file={dest / DUMP}", f"--dbname={target}"], env)
    else:
        source = sqlite3.connect(str(url.database))
        try:
            copy = sqlite3.connect(str(dest / SQLITE))
            with copy:
                source.backup(copy)
            copy.close()
        finally:
            source.close()
    if root is None:
        return None
    files = 0
    with tarfile.open(dest / FILES, "w") as archive:
        if root.exists():
            for path in sorted(root.rglob("*")):
                relative = path.relative_to(root)
                if path.is_file() and relative.parts[0] != ".tmp":
                    archive.add(path, arcname=str(relative))
                    files += 1
    return files


async def create(host: Host, dest: Path) -> dict[str, Any]:
    """Write a backup of ``host``'s database and files into the new folder ``dest``."""
    url = host.db.engine.url
    files = await asyncio.to_thread(_write, url, _files_root(host), dest)
    manifest = {
        "created_at": host.clock.now().isoformat(),
        "kabinet": kabinet.__version__,
        "database": url.get_backend_name(),
        "files": files,
        "revisions": await _revisions(host),
    }
    text = json.dumps(manifest, indent=2)
    await asyncio.to_thread((dest / MANIFEST).write_text, text, encoding="utf-8")
    return manifest


async def _empty(host: Host) -> bool:
    from sqlalchemy import inspect

    async with host.db.engine.connect() as conn:
        names = await conn.run_sync(lambda c: inspect(c).get_table_names())
    return not names


def _manifest(source: Path) -> dict[str, Any]:
    path = source / MANIFEST
    if not path.exists():
        raise Failure(f"{source} is not a Kabinet backup (no {MANIFEST})")
    found: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return found


def _unused(root: Path | None, manifest: dict[str, Any]) -> None:
    if manifest["files"] is None:
        return
    if root is None:
        raise Failure("the backup holds a files folder; the settings name S3 storage")
    if root.exists() and any(root.iterdir()):
        raise Failure(f"the files folder {root} is not empty: restore into a new one")


def _read(url: URL, root: Path | None, source: Path, manifest: dict[str, Any]) -> None:
    if manifest["database"] == "postgresql":
        target, env = _libpq(url)
        command = [_tool("pg_restore"), "--no-owner", "--no-privileges", "--exit-on-error"]
        _run([*command, "--single-transaction", f"--dbname={target}", str(source / DUMP)], env)
    else:
        shutil.copyfile(source / SQLITE, str(url.database))
    if manifest["files"] is not None and root is not None:
        root.mkdir(parents=True, exist_ok=True)
        with tarfile.open(source / FILES) as archive:
            archive.extractall(root, filter="data")


async def restore(host: Host, source: Path) -> dict[str, Any]:
    """Restore the backup in ``source`` into ``host``'s empty database and files folder."""
    manifest = await asyncio.to_thread(_manifest, source)
    url = host.db.engine.url
    if manifest["database"] != url.get_backend_name():
        msg = f"the backup is of {manifest['database']}, the settings name {url.get_backend_name()}"
        raise Failure(msg)
    if not await _empty(host):
        raise Failure(f"the database {url.database} is not empty: restore into a new one")
    root = _files_root(host)
    await asyncio.to_thread(_unused, root, manifest)
    await host.db.dispose()  # nothing of this process holds the database while it fills
    await asyncio.to_thread(_read, url, root, source, manifest)
    return manifest


@click.command("backup")
@click.argument("dest", type=click.Path(file_okay=False, path_type=Path))
@click.pass_context
@host_command()
async def backup_command(ctx: click.Context, host: Host, dest: Path) -> None:
    """Back up the database and the file storage into the new folder DEST."""
    made = await create(host, dest)
    files = "" if made["files"] is None else f" and {made['files']} files"
    click.echo(f"backed up the {made['database']} database{files} into {dest}")
    if made["files"] is None:
        click.echo("files are kept in S3-compatible storage: back the bucket up with its own tools")


@click.command("restore")
@click.argument("source", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.pass_context
@host_command()
async def restore_command(ctx: click.Context, host: Host, source: Path) -> None:
    """Restore the backup in SOURCE into the (empty) database and files folder of the
    settings; then run `kabinet db upgrade` and `kabinet check`."""
    made = await restore(host, source)
    when = dt.datetime.fromisoformat(made["created_at"]).strftime("%Y-%m-%d %H:%M %Z")
    click.echo(
        f"restored the backup of {when} (Kabinet {made['kabinet']}); "
        "next: kabinet db upgrade, then kabinet check"
    )
