"""The ``[identity]`` settings section."""

from __future__ import annotations

import msgspec

from kabinet.errors import SettingsError

OWASP_MIN_MEMORY_KIB = 7168
"""OWASP's smallest argon2id memory (7 MiB, with t=5); m*t must reach 7168*5."""
OWASP_MIN_COST = 7168 * 5


class IdentitySettings(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """How long sessions live, how hard passwords are hashed, how brute force is limited."""

    idle_timeout: int = 2 * 3600
    """Seconds without a request after which a session ends."""
    absolute_timeout: int = 12 * 3600
    """Seconds after sign-in after which a session ends whatever happens."""
    cookie_name: str = "kabinet_session"
    session_cache_seconds: float = 2.0
    """How long a process trusts a session it read from the database before reading it
    again (0: never cache). A session ended or an account changed in another process
    stops being honoured here within this time; in this process, at once. Sessions in
    Redis are not cached: one round trip reads a session and its version."""
    argon2_time_cost: int = 2
    argon2_memory_kib: int = 19456
    argon2_parallelism: int = 1
    hash_workers: int = 0
    """Threads hashing passwords; 0 = one less than the CPUs (at least one)."""
    hash_queue: int = 64
    """Logins waiting for a hashing thread beyond which the portal answers "busy"."""
    login_failures_per_account: int = 5
    login_failures_per_address: int = 100
    lockout_seconds: int = 15 * 60
    """The window in which failures count, and how long a lock lasts."""
    code_ttl: int = 10 * 60
    code_attempts: int = 5
    code_resend_seconds: int = 60
    codes_per_hour: int = 10
    reset_ttl: int = 60 * 60
    resets_per_hour: int = 5
    registrations_per_hour: int = 20
    """Per client address (registration itself is the companies app's)."""
    trusted_proxies: list[str] = msgspec.field(default_factory=list)
    """Peers whose ``X-Forwarded-For`` is believed (a load balancer in front)."""
    minimum_password_length: int = 10
    codes_kept_days: int = 30
    """Days confirmation codes and reset links are kept after they are made (0: for good)."""
    logins_kept_days: int = 365
    """Days each sign-in record (address, browser) is kept (0: for good)."""
    audit_kept_days: int = 3 * 365
    """Days a line of the security log is kept (0: for good)."""

    def __post_init__(self) -> None:
        if self.argon2_memory_kib < OWASP_MIN_MEMORY_KIB or (
            self.argon2_memory_kib * self.argon2_time_cost < OWASP_MIN_COST
        ):
            msg = (
                "[identity] argon2_memory_kib * argon2_time_cost is below OWASP's minimum "
                f"(at least {OWASP_MIN_MEMORY_KIB} KiB and m*t >= {OWASP_MIN_COST})"
            )
            raise SettingsError(msg)
        for name in ("codes_kept_days", "logins_kept_days", "audit_kept_days"):
            if getattr(self, name) < 0:
                msg = f"[identity] {name} must be 0 (kept for good) or more days"
                raise SettingsError(msg)
        if self.idle_timeout <= 0 or self.absolute_timeout < self.idle_timeout:
            msg = "[identity] expected 0 < idle_timeout <= absolute_timeout"
            raise SettingsError(msg)
