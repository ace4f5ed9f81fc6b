"""The database: one async engine and one session factory for the whole portal.

Each plugin keeps its tables in its own ``MetaData`` made by :func:`plugin_metadata`, so
every constraint gets a predictable name (migrations can drop and alter them on SQLite
and PostgreSQL alike) and every table is prefixed by its plugin.
"""

from __future__ import annotations

import asyncio
import contextvars
import datetime as dt
import warnings
from collections.abc import AsyncIterator, Awaitable, Callable
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


async def _has_written(session: AsyncSession) -> bool:
    """Whether the session's transaction may hold writes: on SQLite whether it holds the
    write lock; on PostgreSQL whether it has begun (a read-only transaction counts)."""
    if session.get_bind().dialect.name == "sqlite":
        return await _holds_write_lock(session)
    return session.in_transaction()


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
        self._factory = async_sessionmaker(self.engine, expire_on_commit=False)

    @property
    def dialect(self) -> str:
        return self.url.get_backend_name()

    @asynccontextmanager
    async def unit(self) -> AsyncIterator[Unit]:
        """One unit of work: every :meth:`session` this task opens inside it is the
        unit's one session (see :class:`Unit`); committed when the block ends, rolled back
        when it raises. The host opens one per request (committed before the answer's
        first byte unless the answer is a 5xx), per event handler and per job whose
        function takes a ``session``; a service never opens one of its own."""
        unit = Unit(self, asyncio.current_task())
        mark = _current.set(unit)
        try:
            yield unit
        except BaseException:
            await unit.rollback()
            raise
        else:
            await unit.commit()
        finally:
            _current.reset(mark)
            await unit.close()

    @asynccontextmanager
    async def session(self) -> AsyncIterator[AsyncSession]:
        """The session of the unit of work this task is in (:meth:`unit`), or, outside one,
        a unit of its own: committed on success, rolled back on error.

        Inside a unit the block joins the unit's transaction: what it writes commits with
        the unit; when the block raises, what it wrote is undone (a savepoint once the
        unit has written) and the rest of the unit goes on. This is the same on SQLite and
        PostgreSQL, so the same code commits the same way in the demo and in production.
        Work that must commit whatever the unit does (an audit line of a refused sign-in,
        a claim other workers must see at once) says so with :meth:`apart`.
        """
        unit = _current.get()
        if unit is not None and unit.joinable(self):
            async with unit.join() as session:
                yield session
            return
        async with self.unit() as own, own.join() as session:
            yield session

    @asynccontextmanager
    async def apart(self) -> AsyncIterator[AsyncSession]:
        """A transaction of its own, committed when the block ends whatever the unit of
        work around it does. On SQLite it must come before the unit's first write (the
        database has one write lock, which the unit would hold): it raises
        :class:`ApartError` instead of waiting for itself."""
        unit = _current.get()
        if (
            unit is not None
            and unit.joinable(self)
            and unit.open_session is not None
            and self.dialect == "sqlite"
            and await _holds_write_lock(unit.open_session)
        ):
            raise ApartError(
                "db.apart() after the unit of work has written would wait for SQLite's "
                "write lock, which the unit holds: commit apart before the unit's first write"
            )
        mark = _current.set(None)
        try:
            async with self.session() as session:
                yield session
        finally:
            _current.reset(mark)

    def unit_session(self) -> AsyncSession:
        """The session of the unit of work this runs in (a request's, even from a task
        Litestar started to resolve a dependency); :class:`RuntimeError` outside one."""
        unit = _current.get()
        if unit is None or unit.db is not self or unit.done:
            raise RuntimeError("no unit of work is open here (host.db.unit())")
        return unit._session()

    def reader(self) -> AbstractAsyncContextManager[AsyncSession]:
        """A session to read with: the unit's (so it sees what the unit wrote), or outside
        a unit one that is closed (rolled back) when the block ends."""
        unit = _current.get()
        if unit is not None and unit.joinable(self):
            return unit.join()
        return self._factory()

    @asynccontextmanager
    async def read_connection(self) -> AsyncIterator[AsyncConnection]:
        """A connection to read with, for code that reads with Core statements: the unit of
        work's once it holds one (the reads see what it wrote), else one of the pool's for
        this block only.

        Never a second pooled connection while the unit holds one: with as many requests
        at once as the pool has connections, each would hold one and wait for another
        until the pool's timeout (seen on the order card at 16 requests against a pool of
        15). And never the unit's before it holds one: a read early in a request (a page's
        list) does not keep a connection through the page's rendering."""
        unit = current_unit(self)
        if unit is not None and (held := unit.open_session) is not None and held.in_transaction():
            async with unit.join() as session:
                yield await session.connection()
            return
        async with self.engine.connect() as conn:
            yield conn

    @property
    def sessionmaker(self) -> Callable[[], AbstractAsyncContextManager[AsyncSession]]:
        """Deprecated spelling of :meth:`reader` (deprecated in 0.1.0, removed in 0.3):
        inside a unit of work it reads in the unit's session."""
        warnings.warn(
            "host.db.sessionmaker() is deprecated since 0.1.0: use host.db.reader() "
            "(it reads in the request's unit of work)",
            DeprecationWarning,
            stacklevel=2,
        )
        return self.reader

    def savepoint(self, session: AsyncSession) -> AbstractAsyncContextManager[None]:
        """:func:`savepoint` (here for callers that hold the database)."""
        return savepoint(session)

    async def dispose(self) -> None:
        await self.engine.dispose()


class ApartError(RuntimeError):
    """:meth:`Database.apart` asked where it could only wait for itself (SQLite)."""


_current: contextvars.ContextVar[Unit | None] = contextvars.ContextVar(
    "kabinet_db_unit", default=None
)
"""The unit of work this task is in (:meth:`Database.unit`)."""


def current_unit(db: Database) -> Unit | None:
    """The unit of work of ``db`` this task is in, if any (and not yet ended)."""
    unit = _current.get()
    return unit if unit is not None and unit.joinable(db) else None


class Unit:
    """A unit of work: one session, begun at its first statement, committed or rolled
    back once. Only the task that opened it joins it (tasks it starts, which copy the
    context, get sessions of their own: a session is not shared between tasks)."""

    def __init__(self, db: Database, task: asyncio.Task[Any] | None) -> None:
        self.db = db
        self.task = task
        self.open_session: AsyncSession | None = None
        self.done = False
        self._after_commit: list[Callable[[], Awaitable[Any]]] = []

    def after_commit(self, work: Callable[[], Awaitable[Any]]) -> None:
        """Run ``work`` once the unit has committed (never if it rolls back): a job sent
        from a request is queued only when what it will read is there."""
        self._after_commit.append(work)

    def joinable(self, db: Database) -> bool:
        return not self.done and self.db is db and self.task is asyncio.current_task()

    def _session(self) -> AsyncSession:
        if self.open_session is None:
            self.open_session = self.db._factory()
        return self.open_session

    @asynccontextmanager
    async def join(self) -> AsyncIterator[AsyncSession]:
        """The unit's session for one block: what the block writes, and the work it queued
        with :meth:`after_commit`, is undone if it raises (a savepoint when the unit has
        written before it)."""
        session = self._session()
        queued = len(self._after_commit)
        try:
            if await _has_written(session):
                async with savepoint(session):
                    yield session
                return
            try:
                yield session
            except BaseException:
                if await _has_written(session):
                    await session.rollback()  # nothing was written before this block
                raise
        except BaseException:
            # What the block queued for after the commit goes with what it wrote: a job
            # sent by a block that failed must not run on the rest of the unit's commit.
            del self._after_commit[queued:]
            raise

    async def commit(self) -> None:
        """Commits what the unit wrote (from now on this task's sessions are their own)."""
        if self.done:
            return
        self.done = True
        if self.open_session is not None:
            await self.open_session.commit()
        work, self._after_commit = self._after_commit, []
        for then in work:
            await then()

    async def rollback(self) -> None:
        self._after_commit.clear()
        if self.done:
            return
        self.done = True
        if self.open_session is not None:
            await self.open_session.rollback()

    async def close(self) -> None:
        self.done = True
        if self.open_session is not None:
            await self.open_session.close()
            self.open_session = None
