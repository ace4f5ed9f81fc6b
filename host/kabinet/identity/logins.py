"""Logins, sessions, password changes and resets."""

from __future__ import annotations

import datetime as dt
import secrets
from typing import TYPE_CHECKING, Any

import structlog
from sqlalchemy import select, update

from kabinet.identity.accounts import AccountService
from kabinet.identity.common import (
    IdentityPrincipal,
    LoginResult,
    Person,
    aware,
    digest,
    login_key,
    text,
)
from kabinet.identity.errors import (
    IdentityError,
    NotFound,
    RateLimited,
)
from kabinet.identity.messages import Message, deliver
from kabinet.identity.models import (
    Account,
    Login,
    ResetToken,
)
from kabinet.identity.passwords import HasherBusy
from kabinet.identity.sessions import (
    SessionRecord,
    new_token,
    session_key,
)

if TYPE_CHECKING:
    from kabinet.identity.ratelimit import Verdict

log = structlog.get_logger("kabinet.identity")


def lock_subject(account_id: int | None, identifier: str) -> str:
    """What failed sign-ins are counted against: the account, whatever names it (e-mail
    or phone, any spelling); for an identifier of no account, the identifier itself."""
    return f"account:{account_id}" if account_id is not None else "login:" + login_key(identifier)


def identifier_keys(account: Account) -> list[str]:
    """The identifiers that name ``account`` (for the per-identifier counts)."""
    return [login_key(n) for n in (account.email, account.phone) if n]


class LoginService(AccountService):
    """Signing in and out, sessions, passwords."""

    # --- login, sessions ------------------------------------------------------------

    async def login(
        self,
        identifier: str,
        password: str,
        *,
        address: str = "",
        user_agent: str = "",
        previous: str | None = None,
    ) -> LoginResult:
        """Sign in by e-mail or phone; the same refusal whether or not the account exists.

        The attempt is counted before the password is checked: per client address, per
        identifier typed (in any spelling), and per account. A lock is *told* (429, when to
        try again) only by the identifier's own count, which an identifier of no account
        has alike, so a lock reveals neither that an account exists nor which e-mail and
        phone name the same one. The account's count, one whatever identifier names it,
        still caps the passwords tried against it: once it is spent, every attempt is
        refused exactly like a wrong password (the password is still hashed, for the same
        time, and never accepted) until the window ends. Of many attempts at once only the
        limit's worth are checked; a success gives the address's count back and clears
        the account's and its identifiers' counts. ``previous`` is the cookie of the
        session this browser had: it ends once the new one starts (signing in as someone
        else leaves nothing of the former session).
        """
        cfg = self.settings
        window = cfg.lockout_seconds
        limit = cfg.login_failures_per_account
        verdict = await self.limiter.hit(
            "login.address", address, cfg.login_failures_per_address, window
        )
        if not verdict.allowed:
            raise RateLimited("Too many failed attempts.", verdict.retry_at)
        account = await self.find_by_login(identifier) if identifier.strip() else None
        typed = login_key(identifier)
        per_identifier = await self.limiter.hit("login.identifier", typed, limit, window)
        if not per_identifier.allowed:
            raise RateLimited("Too many failed attempts.", per_identifier.retry_at)
        subject = lock_subject(account.id if account else None, identifier)
        per_account = (
            await self.limiter.hit("login.account", subject, limit, window)
            if account is not None
            else per_identifier
        )
        locked = not per_account.allowed
        try:
            # A locked account's password is hashed too (the same time), never trusted.
            ok = await self.hasher.verify(
                account.password_hash if account and not locked else None, password
            )
        except HasherBusy:  # not checked: neither attempt counts
            if account is not None:
                await self.limiter.release("login.account", subject)
            await self.limiter.release("login.identifier", typed)
            await self.limiter.release("login.address", address)
            raise
        if account is None or not ok or locked or account.status != "active":
            reason = "locked" if locked else "wrong password" if not ok else "disabled"
            await self._failed(account, per_account, address, user_agent, reason=reason)
            raise IdentityError("Wrong login or password.", field="password")
        await self._clear_counts(account)
        await self.limiter.release("login.address", address)
        assert account.password_hash is not None
        rehash = self.hasher.needs_rehash(account.password_hash)
        new_hash = await self.hasher.hash(password) if rehash else None
        await self.end_previous_session(previous, address=address)
        token, skey = new_token()
        now = self.now
        async with self.host.db.session() as s:
            values: dict[str, Any] = {"last_login_at": now}
            if new_hash:
                values["password_hash"] = new_hash
            await s.execute(update(Account).where(Account.id == account.id).values(**values))
            s.add(
                Login(
                    account_id=account.id,
                    at=now,
                    success=True,
                    address=address,
                    user_agent=user_agent[:300],
                )
            )
            self._event(s, account.id, "login", subject_id=account.id, address=address)
        account.last_login_at = now
        await self.sessions.create(
            SessionRecord(
                key=skey,
                account_id=account.id,
                created_at=now,
                last_seen_at=now,
                address=address,
                user_agent=user_agent[:300],
            )
        )
        log.info("login", account_id=account.id, rehashed=rehash)
        return LoginResult(token=token, account=account)

    async def end_previous_session(self, token: str | None, *, address: str = "") -> None:
        """End the session a browser had before it signs in again (as anyone)."""
        if token:
            await self.logout(token, address=address)

    async def _clear_counts(self, account: Account) -> None:
        """Forget the failed sign-ins counted against the account and its identifiers."""
        await self.limiter.reset("login.account", lock_subject(account.id, ""))
        for key in identifier_keys(account):
            await self.limiter.reset("login.identifier", key)

    async def _failed(
        self,
        account: Account | None,
        per_account: Verdict,
        address: str,
        user_agent: str,
        *,
        reason: str,
    ) -> None:
        # The failure that spends the account's count locks it (logged once).
        locked = per_account.count == self.settings.login_failures_per_account
        if account is None:
            log.info("login failed", reason="unknown account")
            return
        async with self.host.db.session() as s:
            s.add(
                Login(
                    account_id=account.id,
                    at=self.now,
                    success=False,
                    address=address,
                    user_agent=user_agent[:300],
                )
            )
            self._event(
                s,
                None,
                "login.failed",
                subject_id=account.id,
                address=address,
                details={"reason": reason},
            )
            if locked:
                self._event(
                    s,
                    None,
                    "login.locked",
                    subject_id=account.id,
                    address=address,
                    details={
                        "until": per_account.ends_at.isoformat() if per_account.ends_at else None
                    },
                )
        log.info("login failed", account_id=account.id, reason=reason)

    async def logout(self, token: str, *, address: str = "") -> None:
        found = await self.sessions.get(session_key(token))
        await self.sessions.delete(session_key(token))
        if found is not None:
            await self.record_security_event(
                found[0].account_id, "logout", subject_id=found[0].account_id, address=address
            )

    async def logout_others(self, token: str, *, address: str = "") -> int:
        """End every session of this person but the current one."""
        found = await self.sessions.get(session_key(token))
        if found is None:
            return 0
        account_id = found[0].account_id
        count = await self.sessions.delete_account(account_id, keep=session_key(token))
        await self.record_security_event(
            account_id,
            "sessions.ended",
            subject_id=account_id,
            address=address,
            details={"count": count},
        )
        return count

    @staticmethod
    def session_key(token: str) -> str:
        """The key a session is stored under (never the cookie value itself)."""
        return session_key(token)

    async def sessions_of(self, account_id: int) -> list[SessionRecord]:
        return await self.sessions.of_account(account_id)

    def touch_every(self) -> float:
        """Seconds between writes of "last seen": a small share of the idle timeout."""
        return float(min(60, max(1, self.settings.idle_timeout // 20)))

    async def resolve_session(self, token: str) -> IdentityPrincipal | None:
        """The person behind a cookie, or ``None``; ends a session that has timed out."""
        key = session_key(token)
        found = await self.sessions.get(key)
        if found is None:
            return None
        record, version = found
        now = self.now
        idle = (now - record.last_seen_at).total_seconds()
        age = (now - record.created_at).total_seconds()
        if idle > self.settings.idle_timeout or age > self.settings.absolute_timeout:
            await self.sessions.delete(key)
            return None
        person = await self.person(record.account_id, version)
        if person is None or person.status != "active":
            await self.sessions.delete(key)
            return None
        if idle >= self.touch_every():
            await self.sessions.touch(key, now)
        return _principal(person)

    async def peek_session(self, token: str) -> IdentityPrincipal | None:
        """The person behind a cookie, like :meth:`resolve_session`, but only reading:
        nothing touched, ended or cached in the store. For a page drawn where the
        middleware did not run (the error page of an address no route matches)."""
        found = await self.sessions.get(session_key(token))
        if found is None:
            return None
        record, version = found
        now = self.now
        idle = (now - record.last_seen_at).total_seconds()
        age = (now - record.created_at).total_seconds()
        if idle > self.settings.idle_timeout or age > self.settings.absolute_timeout:
            return None
        person = self._people.get(record.account_id)
        if person is None or version is None or person.version != version:
            account = await self.get_account(record.account_id)
            if account is None:
                return None
            person = _person(account)
        if person.status != "active":
            return None
        return _principal(person)

    async def person(self, account_id: int, version: int | None) -> Person | None:
        """The cached view of an account, reloaded when its version moved (or is unknown)."""
        cached = self._people.get(account_id)
        if cached is not None and version is not None and cached.version == version:
            return cached
        account = await self.get_account(account_id)
        if account is None:
            self._people.pop(account_id, None)
            return None
        person = _person(account)
        if len(self._people) > 50_000:
            self._people.clear()
        self._people[account_id] = person
        if version is None:
            await self.sessions.set_version(account_id, account.version)
        return person

    # --- passwords -----------------------------------------------------------------

    async def change_password(
        self,
        account_id: int,
        current: str,
        new: str,
        *,
        keep_token: str | None = None,
        address: str = "",
    ) -> None:
        """Asks the current password; ends the person's other sessions."""
        account = await self.get_account(account_id)
        if account is None:
            raise NotFound("No such account.")
        if not await self.hasher.verify(account.password_hash, current):
            raise IdentityError("The current password is wrong.", field="current_password")
        self.check_password_rules(new, "new_password")
        await self._set_password(account_id, new, address=address, action="password.changed")
        keep = session_key(keep_token) if keep_token else None
        await self.sessions.delete_account(account_id, keep=keep)

    async def set_password(
        self, account_id: int, new: str, *, actor_id: int | None, address: str = ""
    ) -> None:
        """Staff or the CLI set a password; every session of the person ends."""
        self.check_password_rules(new)
        await self._set_password(
            account_id, new, address=address, action="password.set", actor_id=actor_id
        )
        await self.sessions.delete_account(account_id)

    async def _set_password(
        self, account_id: int, new: str, *, address: str, action: str, actor_id: int | None = None
    ) -> None:
        hashed = await self.hasher.hash(new)
        async with self.host.db.session() as s:
            await s.execute(
                update(Account).where(Account.id == account_id).values(password_hash=hashed)
            )
            self._event(
                s,
                actor_id if actor_id is not None else account_id,
                action,
                subject_id=account_id,
                address=address,
            )

    async def request_reset(self, identifier: str, *, address: str = "") -> None:
        """Send a one-time reset link to the account's e-mail; silent when there is none.

        Rate-limited per address and per identifier; the answer never tells whether the
        account exists.
        """
        cfg = self.settings
        key = login_key(identifier)
        for bucket, subject in (("reset.address", address), ("reset.account", key)):
            verdict = await self.limiter.hit(bucket, subject, cfg.resets_per_hour, 3600)
            if not verdict.allowed:
                raise RateLimited("Too many reset requests.", verdict.retry_at)
        account = await self.find_by_login(identifier)
        if account is None or account.status != "active" or not account.email:
            log.info("password reset requested", found=False)
            return
        token = secrets.token_urlsafe(32)
        now = self.now
        async with self.host.db.session() as s:
            await s.execute(
                update(ResetToken)
                .where(ResetToken.account_id == account.id, ResetToken.used_at.is_(None))
                .values(used_at=now)
            )
            row = ResetToken(
                account_id=account.id,
                token_hash=digest(token),
                created_at=now,
                expires_at=now + dt.timedelta(seconds=cfg.reset_ttl),
            )
            s.add(row)
            await s.flush()
            self._event(
                s,
                None,
                "password.reset_requested",
                subject_id=account.id,
                address=address,
                details={"reset_id": row.id},
            )
        link = self.host.absolute_url(f"/identity/reset/confirm?token={token}")
        lang = account.language
        await deliver(
            self.host,
            Message(
                kind="identity.password_reset",
                channel="email",
                to=account.email,
                language=lang,
                subject=text("reset_subject", lang),
                body=text("reset_body", lang).format(link=link, minutes=cfg.reset_ttl // 60),
                context={"link": link, "name": account.full_name},
                secrets=("link",),
                account_id=account.id,
            ),
        )
        log.info("password reset requested", found=True, account_id=account.id)

    async def check_reset(self, token: str) -> ResetToken | None:
        """The reset token if it is usable (unused and not expired)."""
        async with self.host.db.reader() as s:
            row = await s.scalar(select(ResetToken).where(ResetToken.token_hash == digest(token)))
        expires = aware(row.expires_at) if row else None
        if row is None or row.used_at is not None or expires is None or expires <= self.now:
            return None
        return row

    async def reset_password(self, token: str, new: str, *, address: str = "") -> Account:
        """Set a new password by a reset link: once, before it expires; sessions end."""
        self.check_password_rules(new)
        row = await self.check_reset(token)
        if row is None:
            raise IdentityError("This link has expired or was already used.", field="token")
        hashed = await self.hasher.hash(new)
        now = self.now
        async with self.host.db.session() as s:
            used = await s.execute(
                update(ResetToken)
                .where(ResetToken.id == row.id, ResetToken.used_at.is_(None))
                .values(used_at=now)
            )
            if not getattr(used, "rowcount", 0):
                raise IdentityError("This link has expired or was already used.", field="token")
            await s.execute(
                update(Account).where(Account.id == row.account_id).values(password_hash=hashed)
            )
            self._event(
                s,
                row.account_id,
                "password.reset",
                subject_id=row.account_id,
                address=address,
                details={"reset_id": row.id},
            )
            account = await s.get(Account, row.account_id)
        await self.sessions.delete_account(row.account_id)
        assert account is not None
        await self._clear_counts(account)
        return account


def _person(account: Any) -> Person:
    """The cached view of an account (what a request needs of its person)."""
    return Person(
        id=account.id,
        version=account.version,
        full_name=account.full_name,
        status=account.status,
        language=account.language,
        timezone=account.timezone,
        email=account.email,
    )


def _principal(person: Person) -> IdentityPrincipal:
    return IdentityPrincipal(
        person_id=person.id,
        name=person.full_name,
        kind="person",
        version=person.version,
        language=person.language,
        timezone=person.timezone,
        email=person.email,
    )
