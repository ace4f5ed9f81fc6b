"""The identity service: accounts, logins, sessions, codes, resets, API tokens, audit.

Routes, CLI commands, jobs and other plugins all use this one service
(``host.services.of(IDENTITY)``, or :func:`identity_service`), so every rule lives here and
tests exercise it without HTTP. The service is built in parts (accounts, logins, then codes
and tokens here), each a module of its own.
"""

from __future__ import annotations

import datetime as dt
import hmac
import secrets
from collections.abc import Sequence
from typing import TYPE_CHECKING

import structlog
from sqlalchemy import select, update

from kabinet.access import Principal
from kabinet.identity.common import (
    PURPOSES,
    TOKEN_PREFIX,
    IdentityPrincipal,
    NewToken,
    aware,
    digest,
    text,
)
from kabinet.identity.errors import (
    AccountExists,
    CodeRejected,
    IdentityError,
    InvalidInput,
    NotFound,
    RateLimited,
)
from kabinet.identity.logins import LoginService
from kabinet.identity.messages import Message, deliver
from kabinet.identity.models import (
    Account,
    ApiToken,
    Code,
)
from kabinet.identity.people import ACCOUNT_KEY, PEOPLE, AccountView, PeopleQueries, Person
from kabinet.services import ServiceKey

if TYPE_CHECKING:
    from kabinet.host import Host

log = structlog.get_logger("kabinet.identity")

__all__ = [
    "ACCOUNT_KEY",
    "IDENTITY",
    "PEOPLE",
    "AccountExists",
    "AccountView",
    "CodeRejected",
    "IdentityError",
    "IdentityPrincipal",
    "IdentityService",
    "InvalidInput",
    "NotFound",
    "Person",
    "RateLimited",
    "identity_service",
]


class IdentityService(LoginService, PeopleQueries):
    """Accounts and everything about signing in, for one host; other apps read people
    through its :class:`~kabinet.identity.people.PeopleQueries`."""

    # --- one-time codes -------------------------------------------------------------

    async def send_code(self, account_id: int, purpose: str, *, address: str = "") -> Code:
        """Send a code confirming the account's e-mail or phone.

        At most one live code per purpose; a new one no sooner than the resend interval,
        and no more than ``codes_per_hour``.
        """
        if purpose not in PURPOSES:
            raise InvalidInput("Unknown purpose.", field="purpose")
        cfg = self.settings
        channel = PURPOSES[purpose]
        now = self.now
        async with self.host.db.session() as s:
            account = await s.get(Account, account_id)
            if account is None:
                raise NotFound("No such account.")
            target = account.email if channel == "email" else account.phone
            if not target:
                field = "email" if channel == "email" else "phone"
                raise InvalidInput("There is nothing to confirm.", field=field)
            last = await s.scalar(
                select(Code)
                .where(Code.account_id == account_id, Code.purpose == purpose)
                .order_by(Code.id.desc())
                .limit(1)
            )
            if last is not None:
                resend = aware(last.resend_after)
                if resend is not None and resend > now:
                    raise RateLimited("A code was sent a moment ago.", resend)
            verdict = await self.limiter.hit(
                "code.account", str(account_id), cfg.codes_per_hour, 3600
            )
            if not verdict.allowed:
                raise RateLimited("Too many codes were sent.", verdict.retry_at)
            await s.execute(
                update(Code)
                .where(
                    Code.account_id == account_id, Code.purpose == purpose, Code.used_at.is_(None)
                )
                .values(used_at=now)
            )
            code = f"{secrets.randbelow(10**6):06d}"
            row = Code(
                account_id=account_id,
                purpose=purpose,
                channel=channel,
                target=target,
                code_hash="",
                created_at=now,
                expires_at=now + dt.timedelta(seconds=cfg.code_ttl),
                resend_after=now + dt.timedelta(seconds=cfg.code_resend_seconds),
                attempts=0,
            )
            s.add(row)
            await s.flush()
            row.code_hash = self._hmac("code", row.id, account_id, purpose, code)
            self._event(
                s,
                account_id,
                "code.sent",
                subject_id=account_id,
                address=address,
                details={"purpose": purpose, "channel": channel, "code_id": row.id},
            )
            lang = account.language
        await deliver(
            self.host,
            Message(
                kind="identity.code",
                channel=channel,
                to=target,
                language=lang,
                subject=text("code_subject", lang),
                body=text("code_body", lang).format(code=code),
                context={"code": code, "purpose": purpose},
                secrets=("code",),
                account_id=account_id,
            ),
        )
        return row

    async def check_code(
        self, account_id: int, purpose: str, code: str, *, address: str = ""
    ) -> None:
        """Confirm the contact if ``code`` matches the live code; else say why not.

        The attempt is counted before the code is compared, in the one statement that
        also checks the limit (``UPDATE … SET attempts = attempts + 1 … RETURNING``): its
        row stays locked (SQLite: the database's write lock) until this transaction ends,
        so of many codes sent at once no more than ``code_attempts`` are ever compared,
        and a code that has had them is void, the right one too.
        """
        cfg = self.settings
        now = self.now
        refused: CodeRejected | None = None
        async with self.host.db.session() as s:
            latest = (
                select(Code.id)
                .where(Code.account_id == account_id, Code.purpose == purpose)
                .order_by(Code.id.desc())
                .limit(1)
                .scalar_subquery()
            )
            counted = (
                await s.execute(
                    update(Code)
                    .where(
                        Code.id == latest,
                        Code.used_at.is_(None),
                        Code.attempts < cfg.code_attempts,
                    )
                    .values(attempts=Code.attempts + 1)
                    .returning(Code.id, Code.attempts, Code.code_hash, Code.target, Code.expires_at)
                    .execution_options(synchronize_session=False)
                )
            ).first()
            if counted is None:
                row = await s.scalar(select(Code).where(Code.id == latest))
                used_up = (
                    row is not None and row.used_at is None and row.attempts >= cfg.code_attempts
                )
                expires = aware(row.expires_at) if row else None
                if used_up and expires is not None and expires > now:
                    raise CodeRejected(
                        "Too many wrong codes; ask for a new one.", reason="attempts"
                    )
                raise CodeRejected("The code has expired; ask for a new one.", reason="expired")
            code_id, attempts, code_hash, target, expires_at = counted
            expires = aware(expires_at)
            if expires is None or expires <= now:
                refused = CodeRejected("The code has expired; ask for a new one.", reason="expired")
            elif not hmac.compare_digest(
                self._hmac("code", code_id, account_id, purpose, code.strip()), code_hash
            ):
                left = cfg.code_attempts - attempts
                self._event(
                    s,
                    account_id,
                    "code.wrong",
                    subject_id=account_id,
                    address=address,
                    details={"purpose": purpose, "code_id": code_id},
                )
                reason = "wrong" if left > 0 else "attempts"
                refused = CodeRejected("Wrong code.", reason=reason, remaining=left)
            else:
                await s.execute(update(Code).where(Code.id == code_id).values(used_at=now))
                account = await s.get(Account, account_id)
                assert account is not None
                if purpose == "confirm_email" and account.email == target:
                    account.email_confirmed = True
                elif purpose == "confirm_phone" and account.phone == target:
                    account.phone_confirmed = True
                await s.flush()
                await self.bump_version(account_id, s)
                self._event(
                    s,
                    account_id,
                    "code.confirmed",
                    subject_id=account_id,
                    address=address,
                    details={"purpose": purpose, "code_id": code_id},
                )
        if refused is not None:  # raised after the commit: the counted attempt stays
            raise refused

    # --- rate limits for others -------------------------------------------------------

    async def limit_registration(self, address: str) -> None:
        """Count a registration from ``address``; :class:`RateLimited` past the limit."""
        verdict = await self.limiter.hit(
            "register.address", address, self.settings.registrations_per_hour, 3600
        )
        if not verdict.allowed:
            raise RateLimited("Too many registrations from this address.", verdict.retry_at)

    # --- API tokens -------------------------------------------------------------------

    async def create_token(
        self,
        principal: Principal,
        name: str,
        permissions: Sequence[str],
        organizations: Sequence[int],
        *,
        address: str = "",
    ) -> NewToken:
        """A token limited to permissions the person holds in each chosen organization."""
        if principal.person_id is None or principal.kind != "person":
            raise InvalidInput("Only a signed-in person creates tokens.")
        name = name.strip()
        if not name or len(name) > 100:
            raise InvalidInput("Give the token a name (up to 100 characters).", field="name")
        perms = sorted(set(permissions))
        orgs = sorted(set(organizations))
        if not perms:
            raise InvalidInput("Choose at least one permission.", field="permissions")
        if not orgs:
            raise InvalidInput("Choose at least one organization.", field="organizations")
        access = self.host.access
        for org in orgs:
            if not await access.can(principal, "identity.tokens.manage", org):
                raise InvalidInput(
                    f"You may not create tokens for organization {org}.", field="organizations"
                )
            for perm in perms:
                if perm not in self.host.permissions:
                    raise InvalidInput(f"Unknown permission {perm}.", field="permissions")
                if self.host.permissions[perm][1].scope != "organization":
                    # a token is limited to organizations: it never acts staff-wide
                    raise InvalidInput(
                        f"A token cannot carry the staff permission {perm}.", field="permissions"
                    )
                if not await access.can(principal, perm, org):
                    raise InvalidInput(
                        f"You do not hold {perm} in organization {org}.", field="permissions"
                    )
        token = TOKEN_PREFIX + secrets.token_urlsafe(32)
        async with self.host.db.session() as s:
            row = ApiToken(
                account_id=principal.person_id,
                name=name,
                token_hash=digest(token),
                permissions=perms,
                organizations=orgs,
                created_at=self.now,
            )
            s.add(row)
            await s.flush()
            self._event(
                s,
                principal.person_id,
                "token.created",
                subject_id=principal.person_id,
                address=address,
                details={
                    "token_id": row.id,
                    "name": name,
                    "permissions": perms,
                    "organizations": orgs,
                },
            )
        return NewToken(row=row, token=token)

    async def tokens_of(self, account_id: int) -> list[ApiToken]:
        async with self.host.db.reader() as s:
            rows = await s.scalars(
                select(ApiToken)
                .where(ApiToken.account_id == account_id)
                .order_by(ApiToken.id.desc())
            )
            return list(rows.all())

    async def revoke_token(self, account_id: int, token_id: int, *, address: str = "") -> None:
        async with self.host.db.session() as s:
            row = await s.get(ApiToken, token_id)
            if row is None or row.account_id != account_id:
                raise NotFound("No such token.")
            if row.revoked_at is None:
                row.revoked_at = self.now
                self._event(
                    s,
                    account_id,
                    "token.revoked",
                    subject_id=account_id,
                    address=address,
                    details={"token_id": token_id},
                )

    async def resolve_token(self, token: str, *, address: str = "") -> IdentityPrincipal | None:
        """The principal of an API token; records its use at most once a minute."""
        if not token.startswith(TOKEN_PREFIX):
            return None
        async with self.host.db.reader() as s:
            row = (
                await s.execute(
                    select(ApiToken, Account)
                    .join(Account, Account.id == ApiToken.account_id)
                    .where(ApiToken.token_hash == digest(token))
                )
            ).first()
        if row is None:
            return None
        tok, account = row
        if tok.revoked_at is not None or account.status != "active":
            return None
        now = self.now
        last = aware(tok.last_used_at)
        if last is None or (now - last).total_seconds() >= 60:
            # apart from the request's unit of work, like a session's "last seen"
            async with self.host.db.apart() as s:
                await s.execute(
                    update(ApiToken).where(ApiToken.id == tok.id).values(last_used_at=now)
                )
                self._event(
                    s,
                    account.id,
                    "token.used",
                    subject_id=account.id,
                    address=address,
                    details={"token_id": tok.id},
                )
        return IdentityPrincipal(
            person_id=account.id,
            name=account.full_name,
            kind="token",
            token_id=tok.id,
            scopes=frozenset(tok.permissions),
            organizations=frozenset(int(o) for o in tok.organizations),
            version=account.version,
            language=account.language,
            timezone=account.timezone,
            email=account.email,
        )


IDENTITY: ServiceKey[IdentityService] = ServiceKey("identity", IdentityService)
"""The identity service's key: ``host.services.of(IDENTITY)``."""


def identity_service(host: Host) -> IdentityService:
    """The host's identity service, made on first use (CLI and jobs have no web start-up)."""
    service = host.services.find(IDENTITY)
    if service is None:
        service = host.services.provide(IDENTITY, IdentityService(host))
    return service
