"""The database: one async engine and one session factory for the whole portal.

Each plugin keeps its tables in its own ``MetaData`` made by :func:`plugin_metadata`, so
every constraint gets a predictable name (migrations can drop and alter them on SQLite
and PostgreSQL alike) and every table is prefixed by its plugin.
"""

from __future__ import annotations

import asyncio
import contextvars
import datetime as dt
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import DateTime, MetaData, event
from sqlalchemy.dialects import sqlite
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError
from sqlalchemy.ext.asyncio import (
    AsyncConnection,
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.pool import NullPool

from kabinet.errors import SettingsError

NAMING_CONVENTION: dict[str, str] = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_N_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def plugin_metadata() -> MetaData:
    """A fresh ``MetaData`` with the portal's constraint naming convention."""
    return MetaData(naming_convention=NAMING_CONVENTION)


def parse_url(url: str, base: Path) -> URL:
    """Parse a database URL; a relative SQLite path is taken relative to ``base``."""
    try:
        parsed = make_url(url)
    except ArgumentError:
        raise SettingsError(f"[host] database_url: not a database URL: {url!r}") from None
    if parsed.get_backend_name() == "sqlite":
        if parsed.drivername != "sqlite+aiosqlite":
            parsed = parsed.set(drivername="sqlite+aiosqlite")
        if (
            parsed.database
            and parsed.database != ":memory:"
            and not Path(parsed.database).is_absolute()
        ):
            parsed = parsed.set(database=str(base / parsed.database))
    elif parsed.get_backend_name() == "postgresql":
        if parsed.drivername != "postgresql+asyncpg":
            parsed = parsed.set(drivername="postgresql+asyncpg")
    else:
        raise SettingsError(
            f"[host] database_url: expected sqlite+aiosqlite:// or postgresql+asyncpg://, "
            f"got {parsed.drivername}://"
        )
    return parsed


def create_engine(url: URL, *, echo: bool = False) -> AsyncEngine:
    """The engine; SQLite gets foreign keys enforced and a wait instead of 'locked'."""
    kwargs: dict[str, Any] = {"echo": echo}
    if url.get_backend_name() == "sqlite":
        if url.database and url.database != ":memory:":
            Path(url.database).parent.mkdir(parents=True, exist_ok=True)
        kwargs["connect_args"] = {"timeout": 30}
        kwargs["poolclass"] = NullPool
    else:
        # No pre-ping: it costs a round trip on every checkout (every transaction). After
        # a server restart the first statement on a dead connection fails, and SQLAlchemy
        # then drops the whole pool; connections are also renewed every half hour.
        kwargs["pool_recycle"] = 1800
    engine = create_async_engine(url, **kwargs)
    if url.get_backend_name() == "sqlite":
        event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
        dialect = engine.sync_engine.dialect
        dialect.colspecs = {**dialect.colspecs, DateTime: _UtcSQLiteDateTime}
    return engine


class _UtcSQLiteDateTime(sqlite.DATETIME):
    """``DateTime(timezone=True)`` on SQLite, which keeps no zone: written in UTC, read
    back aware in UTC, as PostgreSQL answers (a naive read leaked into the API as a
    timestamp without a zone). Columns without ``timezone=True`` are left as they are."""

    def bind_processor(self, dialect: Any) -> Any:
        process = super().bind_processor(dialect)
        if not self.timezone or process is None:
            return process

        def bind(value: Any) -> Any:
            if isinstance(value, dt.datetime) and value.tzinfo is not None:
                value = value.astimezone(dt.UTC)
            return process(value)

        return bind

    def result_processor(self, dialect: Any, coltype: object) -> Any:
        process = super().result_processor(dialect, coltype)
        if not self.timezone or process is None:
            return process

        def result(value: Any) -> Any:
            value = process(value)
            if isinstance(value, dt.datetime) and value.tzinfo is None:
                value = value.replace(tzinfo=dt.UTC)
            return value

        return result


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


_open_write: contextvars.ContextVar[tuple[asyncio.Task[Any] | None, AsyncSession] | None] = (
    contextvars.ContextVar("kabinet_db_open_write", default=None)
)
"""The SQLite transaction this task has open (see :meth:`Database.session`)."""


async def driver_connection(conn: AsyncConnection) -> Any:
    """The driver's own connection under ``conn`` (asyncpg's, aiosqlite's), in ``conn``'s
    transaction: for bulk statements SQLAlchemy would only slow down."""
    raw = await conn.get_raw_connection()
    return raw.driver_connection


async def _holds_write_lock(session: AsyncSession) -> bool:
    """Whether this SQLite session's connection is inside a transaction (it has written)."""
    if not session.in_transaction():
        return False
    driver = await driver_connection(await session.connection())
    return bool(getattr(driver, "in_transaction", False))


@asynccontextmanager
async def savepoint(session: AsyncSession) -> AsyncIterator[None]:
    """A savepoint in ``session``'s transaction: what fails inside is undone, the rest of
    the transaction goes on. Use it instead of ``session.begin_nested()``.

    On SQLite the driver begins a transaction only at the first write, and a SAVEPOINT
    outside a transaction begins one whose RELEASE commits it, whatever the session does
    after. So where the session has not written yet this first begins its transaction
    (``BEGIN IMMEDIATE``: the write lock now, so what is read inside cannot go stale
    before the write)."""
    if session.get_bind().dialect.name == "sqlite" and not await _holds_write_lock(session):
        await (await session.connection()).exec_driver_sql("BEGIN IMMEDIATE")
    async with session.begin_nested():
        yield


class Database:
    """The engine and the one session factory."""

    def __init__(self, url: URL, *, echo: bool = False) -> None:
        self.url = url
        self.engine = create_engine(url, echo=echo)
        self.sessionmaker = async_sessionmaker(self.engine, expire_on_commit=False)

    @property
    def dialect(self) -> str:
        return self.url.get_backend_name()

    @asynccontextmanager
    async def session(self) -> AsyncIterator[AsyncSession]:
        """A session in a transaction: committed on success, rolled back on error.

        On SQLite, a ``session()`` opened while the same task is already inside one that
        has written (and so holds the database's one write lock) joins it in a savepoint
        instead of opening a second connection: a second writer would wait for that lock
        until the busy timeout says "database is locked", while the first waits for the
        second. An outer session that has not written holds no lock (the driver begins a
        transaction at the first write), so the inner one stays its own transaction, as
        before; joining there would start the outer's transaction at a savepoint with a
        read snapshot that another writer can make stale. On PostgreSQL each call is its
        own transaction, as callers expect.
        """
        if self.dialect == "sqlite":
            task = asyncio.current_task()
            outer = _open_write.get()
            if outer is not None and outer[0] is task and await _holds_write_lock(outer[1]):
                async with outer[1].begin_nested():
                    yield outer[1]
                return
            async with self.sessionmaker() as session, session.begin():
                mark = _open_write.set((task, session))
                try:
                    yield session
                finally:
                    _open_write.reset(mark)
            return
        async with self.sessionmaker() as session, session.begin():
            yield session

    def savepoint(self, session: AsyncSession) -> AbstractAsyncContextManager[None]:
        """:func:`savepoint` (here for callers that hold the database)."""
        return savepoint(session)

    async def dispose(self) -> None:
        await self.engine.dispose()
