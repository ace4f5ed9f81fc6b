"""One run per source at a time, across every worker and machine.

On PostgreSQL a session advisory lock on a connection held for the run: it ends with the
connection, so a killed worker never leaves it behind. Elsewhere (SQLite, one machine) a
row in ``integration_lock`` with an expiry that the run pushes forward as it goes.
"""

from __future__ import annotations

import datetime as dt
import os
import socket
import uuid
import zlib
from typing import TYPE_CHECKING, Any

from sqlalchemy import delete, insert, or_, select, text, update
from sqlalchemy.exc import IntegrityError

from kabinet_integration.models import lock
from kabinet_integration.settings import Settings

if TYPE_CHECKING:
    from kabinet.host import Host


class Busy(Exception):
    """Another run of this source is going on."""


class RunLock:
    """A held lock; :meth:`refresh` keeps it, :meth:`release` lets it go."""

    def __init__(self, host: Host, source: str) -> None:
        self.host, self.source = host, source
        self.holder = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self.conn: Any = None

    @property
    def ttl(self) -> dt.timedelta:
        return dt.timedelta(seconds=self.host.plugin_settings("integration", Settings).lock_seconds)

    async def acquire(self) -> None:
        if self.host.db.engine.dialect.name == "postgresql":
            key = zlib.crc32(f"kabinet.integration.{self.source}".encode())
            self.conn = await self.host.db.engine.connect()
            got = (await self.conn.execute(text(f"select pg_try_advisory_lock({key})"))).scalar()
            await self.conn.commit()
            if not got:
                await self.conn.close()
                self.conn = None
                raise Busy(self.source)
            self._key = key
            return
        now = self.host.clock.now()
        async with self.host.db.session() as s:
            taken = await s.execute(
                update(lock)
                .where(lock.c.source == self.source, lock.c.expires_at < now)
                .values(holder=self.holder, expires_at=now + self.ttl)
            )
            if taken.rowcount:  # type: ignore[attr-defined]
                return
        try:
            async with self.host.db.session() as s:
                await s.execute(
                    insert(lock).values(
                        source=self.source, holder=self.holder, expires_at=now + self.ttl
                    )
                )
        except IntegrityError:
            raise Busy(self.source) from None

    async def refresh(self) -> None:
        if self.conn is not None:
            return
        async with self.host.db.session() as s:
            await s.execute(
                update(lock)
                .where(lock.c.source == self.source, lock.c.holder == self.holder)
                .values(expires_at=self.host.clock.now() + self.ttl)
            )

    async def release(self) -> None:
        if self.conn is not None:
            try:
                await self.conn.execute(text(f"select pg_advisory_unlock({self._key})"))
                await self.conn.commit()
            finally:
                await self.conn.close()
                self.conn = None
            return
        async with self.host.db.session() as s:
            await s.execute(
                delete(lock).where(lock.c.source == self.source, lock.c.holder == self.holder)
            )


async def held(host: Host, source: str) -> bool:
    """Whether a run of ``source`` holds the lock now (for the pages)."""
    if host.db.engine.dialect.name == "postgresql":
        key = zlib.crc32(f"kabinet.integration.{source}".encode())
        async with host.db.engine.connect() as conn:
            found = await conn.execute(
                text("select 1 from pg_locks where locktype = 'advisory' and objid = :k"),
                {"k": key & 0xFFFFFFFF},
            )
            return found.first() is not None
    async with host.db.reader() as s:
        row = await s.execute(
            select(lock.c.source).where(
                lock.c.source == source, or_(lock.c.expires_at >= host.clock.now())
            )
        )
        return row.first() is not None
