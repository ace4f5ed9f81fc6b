"""Accounts: create, find, change, disable; the security log and login history."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any, Literal

import structlog
from sqlalchemy import or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from kabinet import lists
from kabinet.identity.common import (
    normalize_email,
    normalize_phone,
)
from kabinet.identity.core import ServiceBase
from kabinet.identity.errors import (
    AccountExists,
    InvalidInput,
    NotFound,
)
from kabinet.identity.models import (
    Account,
    Login,
    SecurityEvent,
)

if TYPE_CHECKING:
    pass

log = structlog.get_logger("kabinet.identity")


NAME_MAX = Account.__table__.c.full_name.type.length  # type: ignore[attr-defined]


def _name(full_name: str) -> str:
    """A person's name as stored: required, and no longer than its column."""
    full_name = full_name.strip()
    if not full_name:
        raise InvalidInput("A name is required.", field="full_name")
    if len(full_name) > NAME_MAX:
        raise InvalidInput("The name is too long.", field="full_name")
    return full_name


class AccountService(ServiceBase):
    """Accounts and the security log."""

    # --- accounts -----------------------------------------------------------------

    def check_password_rules(self, password: str, field: str = "password") -> None:
        if len(password) < self.settings.minimum_password_length:
            raise InvalidInput("The password is too short.", field=field)

    async def create_account(
        self,
        *,
        full_name: str,
        email: str | None = None,
        phone: str | None = None,
        password: str | None = None,
        language: str | None = None,
        timezone: str | None = None,
        email_confirmed: bool = False,
        phone_confirmed: bool = False,
        actor_id: int | None = None,
        address: str = "",
    ) -> Account:
        """A new active account; e-mail or phone is required, each unique."""
        full_name = _name(full_name)
        email_n = normalize_email(email) if email else None
        phone_n = normalize_phone(phone) if phone else None
        if not email_n and not phone_n:
            raise InvalidInput("An e-mail address or a phone number is required.", field="email")
        if password is not None:
            self.check_password_rules(password)
        hashed = await self.hasher.hash(password) if password else None
        host = self.host.settings.host
        account = Account(
            full_name=full_name,
            email=email_n,
            phone=phone_n,
            password_hash=hashed,
            status="active",
            email_confirmed=email_confirmed,
            phone_confirmed=phone_confirmed,
            language=language or host.language,
            timezone=timezone or host.timezone,
            version=1,
            created_at=self.now,
        )
        try:
            async with self.host.db.session() as s:
                await self._unique(s, email_n, phone_n)
                s.add(account)
                await s.flush()
                self._event(s, actor_id, "account.created", subject_id=account.id, address=address)
        except IntegrityError:
            raise AccountExists("This e-mail or phone is already registered.") from None
        return account

    async def _unique(
        self, s: AsyncSession, email: str | None, phone: str | None, *, but: int | None = None
    ) -> None:
        for field, value, column in (
            ("email", email, Account.email),
            ("phone", phone, Account.phone),
        ):
            if value is None:
                continue
            query = select(Account.id).where(column == value)
            if but is not None:
                query = query.where(Account.id != but)
            if await s.scalar(query) is not None:
                what = "e-mail address" if field == "email" else "phone number"
                raise AccountExists(f"This {what} is already registered.", field=field)

    async def get_account(self, account_id: int) -> Account | None:
        async with self.host.db.reader() as s:
            return await s.get(Account, account_id)

    async def find_by_email(self, email: str) -> Account | None:
        async with self.host.db.reader() as s:
            return await s.scalar(select(Account).where(Account.email == email.strip().lower()))

    async def find_by_phone(self, phone: str) -> Account | None:
        try:
            number = normalize_phone(phone)
        except InvalidInput:
            return None
        async with self.host.db.reader() as s:
            return await s.scalar(select(Account).where(Account.phone == number))

    async def find_by_login(self, identifier: str) -> Account | None:
        """By e-mail (anything with an ``@``) or phone."""
        if "@" in identifier:
            return await self.find_by_email(identifier)
        return await self.find_by_phone(identifier)

    async def list_accounts(
        self,
        *,
        search: str = "",
        status: str | None = None,
        limit: int | None = 50,
        offset: int = 0,
    ) -> tuple[list[Account], int]:
        query = select(Account).where(
            lists.search(search, Account.full_name, Account.email, Account.phone)
        )
        if status:
            query = query.where(Account.status == status)
        async with self.host.db.reader() as s:
            return await lists.page_scalars(s, query, (Account.id,), limit=limit, offset=offset)

    async def bump_version(self, account_id: int, s: AsyncSession | None = None) -> int:
        """Make every process drop what it caches about this person (grants included)."""
        if s is None:
            async with self.host.db.session() as own:
                return await self.bump_version(account_id, own)
        version = await s.scalar(
            update(Account)
            .where(Account.id == account_id)
            .values(version=Account.version + 1)
            .returning(Account.version)
        )
        self._people.pop(account_id, None)
        if version is not None:
            await self.sessions.set_version(account_id, int(version))
        return int(version or 0)

    async def set_status(
        self,
        account_id: int,
        status: Literal["active", "disabled"],
        *,
        actor_id: int | None,
        address: str = "",
    ) -> Account:
        """Disable (ending every session at once) or enable an account."""
        async with self.host.db.session() as s:
            account = await s.get(Account, account_id)
            if account is None:
                raise NotFound("No such account.")
            if account.status == status:
                return account
            account.status = status
            await s.flush()
            await self.bump_version(account_id, s)
            what = "disabled" if status == "disabled" else "enabled"
            self._event(s, actor_id, f"account.{what}", subject_id=account_id, address=address)
            await self.host.events.publish(
                s, f"identity.account.{what}", {"account_id": account_id}
            )
        if status == "disabled":
            await self.sessions.delete_account(account_id)
        return account

    async def disable(
        self, account_id: int, *, actor_id: int | None = None, address: str = ""
    ) -> Account:
        return await self.set_status(account_id, "disabled", actor_id=actor_id, address=address)

    async def enable(
        self, account_id: int, *, actor_id: int | None = None, address: str = ""
    ) -> Account:
        return await self.set_status(account_id, "active", actor_id=actor_id, address=address)

    async def set_language(self, account_id: int, language: str) -> None:
        """The person's language, as chosen with the header's switch (their next sign-in,
        pages and messages keep it); an unknown language changes nothing."""
        if language not in self.host.settings.host.languages:
            return
        async with self.host.db.session() as s:
            account = await s.get(Account, account_id)
            if account is None or account.language == language:
                return
            account.language = language
            await s.flush()
            await self.bump_version(account_id, s)

    async def update_profile(
        self,
        account_id: int,
        *,
        full_name: str,
        email: str | None,
        phone: str | None,
        language: str,
        timezone: str,
        address: str = "",
    ) -> Account:
        """Change name, contacts, language; a changed contact needs confirming again."""
        full_name = _name(full_name)
        email_n = normalize_email(email) if email else None
        phone_n = normalize_phone(phone) if phone else None
        if not email_n and not phone_n:
            raise InvalidInput("An e-mail address or a phone number is required.", field="email")
        if language not in self.host.settings.host.languages:
            raise InvalidInput("Unknown language.", field="language")
        try:
            import zoneinfo

            zoneinfo.ZoneInfo(timezone)
        except (ValueError, KeyError, zoneinfo.ZoneInfoNotFoundError):
            raise InvalidInput("Unknown time zone.", field="timezone") from None
        async with self.host.db.session() as s:
            account = await s.get(Account, account_id)
            if account is None:
                raise NotFound("No such account.")
            await self._unique(s, email_n, phone_n, but=account_id)
            changed = []
            if email_n != account.email:
                account.email, account.email_confirmed = email_n, False
                changed.append("email")
            if phone_n != account.phone:
                account.phone, account.phone_confirmed = phone_n, False
                changed.append("phone")
            account.full_name, account.language, account.timezone = full_name, language, timezone
            await s.flush()
            await self.bump_version(account_id, s)
            if changed:
                self._event(
                    s,
                    account_id,
                    "account.contacts_changed",
                    subject_id=account_id,
                    address=address,
                    details={"fields": changed},
                )
            await self.host.events.publish(
                s, "identity.account.updated", {"account_id": account_id}
            )
        return account

    # --- security log --------------------------------------------------------------

    def _event(
        self,
        s: AsyncSession,
        actor_id: int | None,
        action: str,
        *,
        subject_id: int | None = None,
        organization_id: int | None = None,
        address: str = "",
        details: dict[str, Any] | None = None,
    ) -> None:
        s.add(
            SecurityEvent(
                at=self.now,
                actor_id=actor_id,
                action=action,
                subject_id=subject_id,
                organization_id=organization_id,
                address=address or "",
                details=details or {},
            )
        )

    async def record_security_event(
        self,
        actor_id: int | None,
        action: str,
        subject_id: int | None = None,
        organization_id: int | None = None,
        address: str | None = None,
        details: dict[str, Any] | None = None,
        *,
        session: AsyncSession | None = None,
    ) -> None:
        """Add a line to the security log (in ``session``'s transaction when given)."""
        if session is not None:
            self._event(
                session,
                actor_id,
                action,
                subject_id=subject_id,
                organization_id=organization_id,
                address=address or "",
                details=details,
            )
            return
        async with self.host.db.session() as s:
            self._event(
                s,
                actor_id,
                action,
                subject_id=subject_id,
                organization_id=organization_id,
                address=address or "",
                details=details,
            )

    async def security_events(
        self,
        *,
        action: str | None = None,
        person_id: int | None = None,
        organization_id: int | None = None,
        since: dt.datetime | None = None,
        until: dt.datetime | None = None,
        limit: int = 50,
        offset: int = 0,
        exact: bool = False,
    ) -> tuple[list[SecurityEvent], int]:
        """The log, newest first. ``action`` is a code's beginning (``roles.`` for every
        roles event), or with ``exact`` the code itself (``login``, not ``login.failed``)."""
        query = select(SecurityEvent)
        if action and exact:
            query = query.where(SecurityEvent.action == action)
        elif action:
            query = query.where(lists.starts_with(SecurityEvent.action, action))
        if person_id is not None:
            query = query.where(
                or_(SecurityEvent.actor_id == person_id, SecurityEvent.subject_id == person_id)
            )
        if organization_id is not None:
            query = query.where(SecurityEvent.organization_id == organization_id)
        if since is not None:
            query = query.where(SecurityEvent.at >= since)
        if until is not None:
            query = query.where(SecurityEvent.at < until)
        order = (SecurityEvent.at.desc(), SecurityEvent.id.desc())
        async with self.host.db.reader() as s:
            return await lists.page_scalars(s, query, order, limit=limit, offset=offset)

    async def last_logins(self, account_id: int, limit: int = 20) -> list[Login]:
        async with self.host.db.reader() as s:
            rows = await s.scalars(
                select(Login)
                .where(Login.account_id == account_id)
                .order_by(Login.at.desc(), Login.id.desc())
                .limit(limit)
            )
            return list(rows.all())

    async def names(self, ids: Iterable[int | None]) -> dict[int, str]:
        wanted = {i for i in ids if i is not None}
        if not wanted:
            return {}
        async with self.host.db.reader() as s:
            rows = await s.execute(
                select(Account.id, Account.full_name).where(Account.id.in_(wanted))
            )
            return {int(r[0]): str(r[1]) for r in rows}
