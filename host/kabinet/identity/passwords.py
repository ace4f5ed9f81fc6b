"""Password hashing: argon2id, off the event loop, in a bounded pool of threads.

argon2 is deliberately slow and memory-hard; run on the event loop it would stall every
other request while it works. A small pool (one thread fewer than the CPUs) leaves a core
for the rest of the portal, and a bounded queue turns a flood of logins into quick "busy"
answers instead of an ever-growing backlog.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import threading
from concurrent.futures import ThreadPoolExecutor

from argon2 import PasswordHasher as Argon2
from argon2 import Type
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from kabinet.identity.settings import IdentitySettings

HASH_NICENESS = 10
"""How much lower than the web's own threads the hashing threads run (Linux nice)."""


def _lower_priority() -> None:
    """Hashing threads yield the CPU to the event loop: a flood of sign-in attempts slows
    other sign-ins, not every page of the portal. (Linux sets niceness per thread.)"""
    try:
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), HASH_NICENESS)
    except (AttributeError, OSError):  # another OS, or not permitted: run at normal priority
        return


class HasherBusy(RuntimeError):
    """More logins wait for a hashing thread than the queue allows."""


class PasswordHasher:
    """argon2id with the configured cost; hashes and verifies in worker threads."""

    def __init__(self, settings: IdentitySettings) -> None:
        self._argon = Argon2(
            time_cost=settings.argon2_time_cost,
            memory_cost=settings.argon2_memory_kib,
            parallelism=settings.argon2_parallelism,
            hash_len=32,
            salt_len=16,
            type=Type.ID,
        )
        self.workers = settings.hash_workers or max(1, (os.cpu_count() or 2) - 1)
        self._limit = self.workers + settings.hash_queue
        self._pool = ThreadPoolExecutor(
            self.workers, thread_name_prefix="kabinet-argon2", initializer=_lower_priority
        )
        self._pending = 0
        self._lock = threading.Lock()
        self._dummy: str | None = None

    async def _run(self, fn: object, *args: str) -> object:
        with self._lock:
            if self._pending >= self._limit:
                raise HasherBusy
            self._pending += 1
        try:
            loop = asyncio.get_running_loop()
            return await loop.run_in_executor(self._pool, fn, *args)  # type: ignore[arg-type]
        finally:
            with self._lock:
                self._pending -= 1

    async def hash(self, password: str) -> str:
        return str(await self._run(self._argon.hash, password))

    def hash_sync(self, password: str) -> str:
        """For the CLI and demo data, where no event loop waits on it."""
        return self._argon.hash(password)

    async def verify(self, hashed: str | None, password: str) -> bool:
        """Whether ``password`` matches; with no hash, a dummy one is checked (same time)."""
        if not hashed:
            if self._dummy is None:
                self._dummy = self._argon.hash(secrets.token_urlsafe(16))
            hashed = self._dummy
            password = password + "\x00never"
        return bool(await self._run(self._check, hashed, password))

    def _check(self, hashed: str, password: str) -> bool:
        try:
            return self._argon.verify(hashed, password)
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return False

    def needs_rehash(self, hashed: str) -> bool:
        """True when the stored hash was made with other parameters than today's."""
        try:
            return self._argon.check_needs_rehash(hashed)
        except InvalidHashError:
            return True

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
