"""The identity service's base: settings, clock, hasher, stores, the secret key."""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
from typing import TYPE_CHECKING

import structlog

from kabinet.identity.common import (
    Person,
    digest,
)
from kabinet.identity.passwords import PasswordHasher
from kabinet.identity.ratelimit import Limiter, MemoryLimiter, RedisLimiter
from kabinet.identity.sessions import (
    CachedSessions,
    DatabaseSessions,
    RedisSessions,
    SessionStore,
)
from kabinet.identity.settings import IdentitySettings
from kabinet.pages import cookie_name, serves_https

if TYPE_CHECKING:
    from redis.asyncio import Redis

    from kabinet.host import Host

log = structlog.get_logger("kabinet.identity")


# --- the service ----------------------------------------------------------------------


class ServiceBase:
    """What every part of the identity service uses."""

    def __init__(self, host: Host, *, redis: Redis | None = None) -> None:
        self.host = host
        self.settings: IdentitySettings = host.settings.of("identity", IdentitySettings)
        self.cookie_name = cookie_name(
            self.settings.cookie_name, https=serves_https(host.settings.host.base_url)
        )
        """The session cookie's name: ``[identity] cookie_name``, ``__Host-`` before it when
        the portal is served over https (:func:`kabinet.pages.cookie_name`). Read and set
        the cookie by this, never by the setting."""
        self.clock = host.clock
        self.hasher = PasswordHasher(self.settings)
        prefix = "kabinet:" + digest(host.settings.host.database_url)[:10] + ":identity:"
        self.redis = redis
        if redis is None and host.settings.host.redis_url:
            from redis.asyncio import Redis as RedisClient

            self.redis = RedisClient.from_url(host.settings.host.redis_url)
        self.sessions: SessionStore
        self.limiter: Limiter
        if self.redis is not None:
            self.sessions = RedisSessions(self.redis, prefix, self.settings.absolute_timeout)
            self.limiter = RedisLimiter(self.redis, self.clock, prefix)
        else:
            self.sessions = DatabaseSessions(host.db)
            self.limiter = MemoryLimiter(self.clock)
        if self.redis is None and self.settings.session_cache_seconds > 0:
            # Redis answers a session and its version in one sub-millisecond round trip,
            # so changes made by other processes count at once there; the database is the
            # slow path, and the one worth caching.
            self.sessions = CachedSessions(
                self.sessions, self.clock.monotonic, self.settings.session_cache_seconds
            )
        self._people: dict[int, Person] = {}
        self._key: bytes | None = None

    async def close(self) -> None:
        self.hasher.close()
        if self.redis is not None:
            await self.redis.aclose()

    @property
    def now(self) -> dt.datetime:
        return self.clock.now()

    def _hmac(self, *parts: object) -> str:
        if self._key is None:
            self._key = self.host.keys.derive("identity")
        text = ":".join(str(p) for p in parts)
        return hmac.new(self._key, text.encode(), hashlib.sha256).hexdigest()
