"""Server-side sessions: in the database (embedded default) or in Redis (production).

The cookie carries a random token; the store knows only its SHA-256, so a leaked table or
Redis dump opens no session. A request reads its session once (together with the
account's version, in one query or one round trip) and writes only when something
changed: the "last seen" time is refreshed at most once per ``touch_every`` seconds, so
an idle timeout of hours costs no write per request.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import json
import secrets
from collections.abc import Callable
from typing import TYPE_CHECKING, Protocol

from sqlalchemy import delete, select, update

from kabinet.flight import SingleFlight
from kabinet.identity.models import Account
from kabinet.identity.models import Session as SessionRow

if TYPE_CHECKING:
    from redis.asyncio import Redis

    from kabinet.db import Database


def new_token() -> tuple[str, str]:
    """A fresh cookie value and the key it is stored under."""
    token = secrets.token_urlsafe(32)
    return token, session_key(token)


def session_key(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


@dataclasses.dataclass(frozen=True)
class SessionRecord:
    key: str
    account_id: int
    created_at: dt.datetime
    last_seen_at: dt.datetime
    address: str = ""
    user_agent: str = ""


class SessionStore(Protocol):
    async def create(self, record: SessionRecord) -> None: ...

    async def get(self, key: str) -> tuple[SessionRecord, int | None] | None:
        """The session and its account's version (``None`` when the store cannot tell)."""

    async def touch(self, key: str, at: dt.datetime) -> None: ...

    async def delete(self, key: str) -> None: ...

    async def delete_account(self, account_id: int, *, keep: str | None = None) -> int:
        """End every session of the account (but ``keep``); returns how many ended."""

    async def of_account(self, account_id: int) -> list[SessionRecord]: ...

    async def set_version(self, account_id: int, version: int) -> None:
        """Publish the account's new version to every process reading this store."""


def _aware(value: dt.datetime) -> dt.datetime:
    """SQLite returns naive datetimes; they are UTC by construction."""
    return value if value.tzinfo else value.replace(tzinfo=dt.UTC)


class DatabaseSessions:
    """Sessions in ``identity_session``; the version comes from the same joined query."""

    def __init__(self, db: Database) -> None:
        self.db = db

    async def create(self, record: SessionRecord) -> None:
        async with self.db.session() as s:
            s.add(
                SessionRow(
                    id=record.key,
                    account_id=record.account_id,
                    created_at=record.created_at,
                    last_seen_at=record.last_seen_at,
                    address=record.address,
                    user_agent=record.user_agent,
                )
            )

    async def get(self, key: str) -> tuple[SessionRecord, int | None] | None:
        async with self.db.reader() as s:
            row = (
                await s.execute(
                    select(SessionRow, Account.version)
                    .join(Account, Account.id == SessionRow.account_id)
                    .where(SessionRow.id == key)
                )
            ).first()
        if row is None:
            return None
        return _record(row[0]), int(row[1])

    async def touch(self, key: str, at: dt.datetime) -> None:
        # Housekeeping of the request's first moment, not part of its work: committed
        # apart, so the request holds no lock on the session row (nor SQLite's write lock)
        # while it runs, and parallel requests of one person do not wait for each other.
        async with self.db.apart() as s:
            await s.execute(update(SessionRow).where(SessionRow.id == key).values(last_seen_at=at))

    async def delete(self, key: str) -> None:
        async with self.db.session() as s:
            await s.execute(delete(SessionRow).where(SessionRow.id == key))

    async def delete_account(self, account_id: int, *, keep: str | None = None) -> int:
        query = delete(SessionRow).where(SessionRow.account_id == account_id)
        if keep is not None:
            query = query.where(SessionRow.id != keep)
        async with self.db.session() as s:
            result = await s.execute(query)
        return int(getattr(result, "rowcount", 0) or 0)

    async def of_account(self, account_id: int) -> list[SessionRecord]:
        async with self.db.reader() as s:
            rows = (
                await s.scalars(
                    select(SessionRow)
                    .where(SessionRow.account_id == account_id)
                    .order_by(SessionRow.last_seen_at.desc())
                )
            ).all()
        return [_record(r) for r in rows]

    async def set_version(self, account_id: int, version: int) -> None:
        """Nothing to do: :meth:`get` reads the version from the accounts table."""


def _record(row: SessionRow) -> SessionRecord:
    return SessionRecord(
        key=row.id,
        account_id=row.account_id,
        created_at=_aware(row.created_at),
        last_seen_at=_aware(row.last_seen_at),
        address=row.address,
        user_agent=row.user_agent,
    )


_GET = """
local text = redis.call('GET', KEYS[1])
if not text then return nil end
local account = cjson.decode(text)['account_id']
local version = redis.call('GET', ARGV[1] .. tostring(account))
if not version then return {text} end
return {text, version}
"""


class RedisSessions:
    """Sessions as JSON strings in Redis; one MGET reads a session and its account's version.

    Keys expire (by Redis's own clock) ``ttl`` seconds after the last write, which only
    collects garbage: the timeouts themselves are checked against the host's clock.
    """

    def __init__(self, redis: Redis, prefix: str, ttl: int) -> None:
        self.redis = redis
        self.prefix = prefix
        self.ttl = ttl
        self._get = redis.register_script(_GET)

    def _key(self, key: str) -> str:
        return f"{self.prefix}session:{key}"

    def _index(self, account_id: int) -> str:
        return f"{self.prefix}sessions:{account_id}"

    def _version(self, account_id: int) -> str:
        return f"{self.prefix}version:{account_id}"

    @staticmethod
    def _dump(record: SessionRecord) -> str:
        data = dataclasses.asdict(record)
        data["created_at"] = record.created_at.isoformat()
        data["last_seen_at"] = record.last_seen_at.isoformat()
        return json.dumps(data)

    @staticmethod
    def _load(text: str | bytes) -> SessionRecord:
        data = json.loads(text)
        data["created_at"] = dt.datetime.fromisoformat(data["created_at"])
        data["last_seen_at"] = dt.datetime.fromisoformat(data["last_seen_at"])
        return SessionRecord(**data)

    async def create(self, record: SessionRecord) -> None:
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.set(self._key(record.key), self._dump(record), ex=self.ttl)
            pipe.sadd(self._index(record.account_id), record.key)
            pipe.expire(self._index(record.account_id), self.ttl)
            await pipe.execute()

    async def get(self, key: str) -> tuple[SessionRecord, int | None] | None:
        found = await self._get(keys=[self._key(key)], args=[f"{self.prefix}version:"])
        if not found:
            return None
        text, version = found[0], found[1] if len(found) > 1 else None
        return self._load(text), int(version) if version else None

    async def touch(self, key: str, at: dt.datetime) -> None:
        text = await self.redis.get(self._key(key))
        if text is not None:
            record = dataclasses.replace(self._load(text), last_seen_at=at)
            await self.redis.set(self._key(key), self._dump(record), ex=self.ttl, xx=True)

    async def delete(self, key: str) -> None:
        text = await self.redis.get(self._key(key))
        await self.redis.delete(self._key(key))
        if text is not None:
            await self.redis.srem(self._index(self._load(text).account_id), key)

    async def delete_account(self, account_id: int, *, keep: str | None = None) -> int:
        keys = [
            k.decode() if isinstance(k, bytes) else k
            for k in await self.redis.smembers(self._index(account_id))
        ]
        doomed = [k for k in keys if k != keep]
        if doomed:
            await self.redis.delete(*[self._key(k) for k in doomed])
            await self.redis.srem(self._index(account_id), *doomed)
        return len(doomed)

    async def of_account(self, account_id: int) -> list[SessionRecord]:
        keys = [
            k.decode() if isinstance(k, bytes) else k
            for k in await self.redis.smembers(self._index(account_id))
        ]
        if not keys:
            return []
        texts = await self.redis.mget([self._key(k) for k in keys])
        records = [self._load(t) for t in texts if t is not None]
        gone = [k for k, t in zip(keys, texts, strict=True) if t is None]
        if gone:
            await self.redis.srem(self._index(account_id), *gone)
        return sorted(records, key=lambda r: r.last_seen_at, reverse=True)

    async def set_version(self, account_id: int, version: int) -> None:
        await self.redis.set(self._version(account_id), version)


@dataclasses.dataclass
class _Cached:
    record: SessionRecord
    version: int | None
    checked: float


class CachedSessions:
    """A store in front of another that keeps the sessions it read in process memory.

    A signed-in request then costs a dict lookup instead of a database query or a Redis
    round trip. Requests that find the same session stale at once share one read. A
    cached session is trusted for ``ttl`` seconds (of the host's monotonic
    clock); after that the next request reads it again, with the account's version, so a
    session ended or an account changed by another process stops being honoured here
    within ``ttl`` seconds. What this process does itself (sign-out, ending a person's
    sessions, a touch) updates the cache at once. Idle and absolute timeouts are checked
    by the caller against the cached record, whose "last seen" moves with each touch.
    """

    def __init__(self, store: SessionStore, monotonic: Callable[[], float], ttl: float) -> None:
        self.store = store
        self.monotonic = monotonic
        self.ttl = ttl
        self._cache: dict[str, _Cached] = {}
        self._flight: SingleFlight[str, tuple[SessionRecord, int | None] | None] = SingleFlight()
        self.reads = 0
        """Reads that went to the store (for tests and benchmarks)."""

    async def create(self, record: SessionRecord) -> None:
        await self.store.create(record)

    async def get(self, key: str) -> tuple[SessionRecord, int | None] | None:
        now = self.monotonic()
        cached = self._cache.get(key)
        if cached is not None and now - cached.checked < self.ttl:
            return cached.record, cached.version
        return await self._flight.do(key, lambda: self._read(key))

    async def _read(self, key: str) -> tuple[SessionRecord, int | None] | None:
        now = self.monotonic()
        self.reads += 1
        found = await self.store.get(key)
        if found is None:
            self._cache.pop(key, None)
            return None
        if self.ttl > 0:
            if len(self._cache) >= MAX_CACHED and key not in self._cache:
                self._cache.pop(next(iter(self._cache)))
            self._cache[key] = _Cached(found[0], found[1], now)
        return found

    async def touch(self, key: str, at: dt.datetime) -> None:
        await self.store.touch(key, at)
        cached = self._cache.get(key)
        if cached is not None:
            cached.record = dataclasses.replace(cached.record, last_seen_at=at)

    async def delete(self, key: str) -> None:
        self._cache.pop(key, None)
        await self.store.delete(key)

    async def delete_account(self, account_id: int, *, keep: str | None = None) -> int:
        self.forget_account(account_id, keep=keep)
        return await self.store.delete_account(account_id, keep=keep)

    async def of_account(self, account_id: int) -> list[SessionRecord]:
        return await self.store.of_account(account_id)

    async def set_version(self, account_id: int, version: int) -> None:
        self.forget_account(account_id)
        await self.store.set_version(account_id, version)

    def forget_account(self, account_id: int, *, keep: str | None = None) -> None:
        """Drop this process's cached sessions of the account (but ``keep``)."""
        for key in [
            k for k, c in self._cache.items() if c.record.account_id == account_id and k != keep
        ]:
            del self._cache[key]


MAX_CACHED = 100_000
"""Sessions kept per process; the oldest read are dropped first beyond that."""
