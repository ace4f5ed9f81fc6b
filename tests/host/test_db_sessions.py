"""``Database.session()``: transactions, and nested writers on the embedded SQLite."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from kabinet.db import Database, parse_url

pytestmark = pytest.mark.smoke


@pytest.fixture
async def db(empty_database_url: str, tmp_path: Path) -> AsyncIterator[Database]:
    database = Database(parse_url(empty_database_url, tmp_path))
    async with database.session() as s:
        await s.execute(text("CREATE TABLE t_nested (id INTEGER PRIMARY KEY, what TEXT)"))
    yield database
    await database.dispose()


async def rows(db: Database) -> list[str]:
    async with db.reader() as s:
        return [r[0] for r in (await s.execute(text("SELECT what FROM t_nested ORDER BY id")))]


async def test_a_writer_inside_a_writer_commits_with_it(db: Database) -> None:
    """On SQLite the inner write used to wait for the outer's lock until 'database is locked'."""
    async with db.session() as outer:
        await outer.execute(text("INSERT INTO t_nested (id, what) VALUES (1, 'outer')"))
        async with asyncio.timeout(10), db.session() as inner:
            await inner.execute(text("INSERT INTO t_nested (id, what) VALUES (2, 'inner')"))
    assert await rows(db) == ["outer", "inner"]


async def failing_inner(db: Database) -> None:
    async with db.session() as inner:
        await inner.execute(text("INSERT INTO t_nested (id, what) VALUES (2, 'lost')"))
        raise RuntimeError("the inner work failed")


async def failing_outer(db: Database) -> None:
    async with db.session() as outer:
        await outer.execute(text("INSERT INTO t_nested (id, what) VALUES (1, 'outer')"))
        async with db.session() as inner:
            await inner.execute(text("INSERT INTO t_nested (id, what) VALUES (2, 'inner')"))
        raise RuntimeError("the outer work failed")


async def test_a_failed_inner_writer_loses_only_its_own_rows(db: Database) -> None:
    async with db.session() as outer:
        await outer.execute(text("INSERT INTO t_nested (id, what) VALUES (1, 'outer')"))
        with pytest.raises(RuntimeError):
            await failing_inner(db)
        await outer.execute(text("INSERT INTO t_nested (id, what) VALUES (3, 'after')"))
    assert await rows(db) == ["outer", "after"]


async def test_an_outer_failure_rolls_back_what_joined_it(db: Database) -> None:
    with pytest.raises(RuntimeError):
        await failing_outer(db)
    # The inner writer joined the outer's unit of work, on both databases.
    assert await rows(db) == []


async def test_other_tasks_get_their_own_transactions(db: Database) -> None:
    """Concurrent writers in other tasks wait their turn and all commit."""

    async def write(n: int) -> None:
        async with db.session() as s:
            await s.execute(
                text("INSERT INTO t_nested (id, what) VALUES (:n, :what)"),
                {"n": n, "what": f"task {n}"},
            )
            await asyncio.sleep(0.01)

    async with asyncio.timeout(30):
        await asyncio.gather(*(write(n) for n in range(1, 9)))
    assert sorted(await rows(db)) == sorted(f"task {n}" for n in range(1, 9))


async def savepoint_then_fail(db: Database, *, read_first: bool) -> None:
    async with db.session() as s:
        if read_first:
            await s.execute(text("SELECT count(*) FROM t_nested"))
        async with db.savepoint(s):
            await s.execute(text("INSERT INTO t_nested (id, what) VALUES (1, 'in savepoint')"))
        raise RuntimeError("the transaction's later work failed")


@pytest.mark.parametrize("read_first", [False, True])
async def test_a_savepoint_before_the_first_write_rolls_back_with_its_transaction(
    db: Database, read_first: bool
) -> None:
    """On SQLite a SAVEPOINT outside a transaction began one, and its release committed
    the row whatever the transaction did after."""
    with pytest.raises(RuntimeError):
        await savepoint_then_fail(db, read_first=read_first)
    assert await rows(db) == []


async def failing_savepoint(db: Database, s: AsyncSession) -> None:
    async with db.savepoint(s):
        await s.execute(text("INSERT INTO t_nested (id, what) VALUES (1, 'lost')"))
        raise RuntimeError("this row is set aside")


async def test_a_failed_savepoint_loses_only_its_rows(db: Database) -> None:
    async with db.session() as s:
        with pytest.raises(RuntimeError):
            await failing_savepoint(db, s)
        async with db.savepoint(s):
            await s.execute(text("INSERT INTO t_nested (id, what) VALUES (2, 'kept')"))
        await s.execute(text("INSERT INTO t_nested (id, what) VALUES (3, 'after')"))
    assert await rows(db) == ["kept", "after"]


async def test_the_deprecated_sessionmaker_warns_and_reads_in_the_unit(db: Database) -> None:
    async with db.unit():
        async with db.session() as s:
            await s.execute(text("INSERT INTO t_nested (id, what) VALUES (1, 'unwritten yet')"))
        with pytest.warns(DeprecationWarning, match=r"use host\.db\.reader\(\)"):
            reading = db.sessionmaker()
        async with reading as r:  # the unit's session: it sees the uncommitted row
            found = (await r.execute(text("SELECT what FROM t_nested"))).scalars().all()
    assert found == ["unwritten yet"]
