"""The portal account of a person Keycloak signed in, and the portal session it gets.

The account is found by its Keycloak subject (``identity_account.external_subject``), else
by an e-mail address both Keycloak has verified and the portal has confirmed (an account the
portal made before Keycloak; an address only one side confirmed is no proof, and such a
sign-in is refused as ``email_taken``), else created through the identity service. Each
sign-in brings the name and e-mail up to date. The portal session is made the way
identity's own login makes one (a fresh token, the session store, the login history and
the security log), and is tied to the Keycloak session so that logging out ends both.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
from typing import TYPE_CHECKING

import structlog
from sqlalchemy import delete, insert, select, update

from kabinet.identity.errors import AccountExists
from kabinet.identity.models import Account, Login
from kabinet.identity.services import identity_service
from kabinet.identity.sessions import SessionRecord, new_token, session_key
from kabinet.keycloak.erased import was_erased
from kabinet.keycloak.errors import LoginError
from kabinet.keycloak.models import session as kc_session
from kabinet.keys import Sealer

if TYPE_CHECKING:
    from kabinet.host import Host
    from kabinet.identity.services import IdentityService
    from kabinet.keycloak.login import KeycloakPerson

log = structlog.get_logger("kabinet.keycloak")


@dataclasses.dataclass(frozen=True)
class SignedIn:
    token: str
    """The portal session cookie's value (only ever given to the browser)."""
    account_id: int
    created: bool
    language: str


class KeycloakAccounts:
    """Links Keycloak people to portal accounts and starts and ends their sessions."""

    def __init__(self, host: Host) -> None:
        self.host = host
        self._seal: Sealer | None = None

    def _sealer(self) -> Sealer:
        """Keycloak's tokens rest sealed with the portal's key for them (``host.keys``)."""
        if self._seal is None:
            # Before host.keys: a SHA-256 of the secret; what it sealed still opens.
            before = hashlib.sha256(b"kabinet.keycloak.tokens:" + self.host.keys.secret).digest()
            self._seal = self.host.keys.sealer("keycloak.tokens", legacy=[before])
        return self._seal

    def seal(self, value: str) -> str:
        return self._sealer().seal(value.encode()) if value else ""

    def unseal(self, value: str) -> str | None:
        """The token; ``None`` when it was sealed with another secret key (or is empty)."""
        if not value:
            return None
        opened = self._sealer().open(value)
        if opened is None:
            log.warning("keycloak.token_unreadable", reason="sealed with another secret_key")
            return None
        return opened.decode()

    @property
    def identity(self) -> IdentityService:
        return identity_service(self.host)

    async def account_for(self, person: KeycloakPerson) -> tuple[Account, bool]:
        """The person's account, created on first sign-in and updated on every one."""
        async with self.host.db.session() as s:
            account = (
                await s.scalars(select(Account).where(Account.external_subject == person.subject))
            ).first()
            if account is None and person.email and person.email_verified:
                account = (
                    await s.scalars(
                        select(Account).where(
                            Account.email == person.email,
                            Account.external_subject.is_(None),
                            # confirmed by the portal too: an address someone registered
                            # and never confirmed proves nothing (docs/security.md)
                            Account.email_confirmed.is_(True),
                        )
                    )
                ).first()
        if account is None:
            return await self._create(person), True
        await self._update(account, person)
        return account, False

    async def _create(self, person: KeycloakPerson) -> Account:
        if not person.email:
            raise LoginError(
                "no_email", "Your Keycloak account has no e-mail address; ask an administrator"
            )
        try:
            account = await self.identity.create_account(
                full_name=person.full_name or person.email,
                email=person.email,
                email_confirmed=person.email_verified,
            )
        except AccountExists:
            raise LoginError(
                "email_taken",
                "A portal account with this e-mail address belongs to someone else; "
                "ask an administrator",
                409,
            ) from None
        async with self.host.db.session() as s:
            await s.execute(
                update(Account)
                .where(Account.id == account.id)
                .values(external_subject=person.subject)
            )
            await self.identity.record_security_event(
                None,
                "account.created",
                subject_id=account.id,
                details={"via": "keycloak"},
                session=s,
            )
        log.info("keycloak.account_created", account_id=account.id)
        account.external_subject = person.subject
        return account

    async def _update(self, account: Account, person: KeycloakPerson) -> None:
        values: dict[str, object] = {}
        if account.external_subject != person.subject:
            values["external_subject"] = person.subject
        if person.full_name and person.full_name != account.full_name:
            values["full_name"] = person.full_name[:200]
        if person.email and person.email != account.email:
            values["email"] = person.email
            values["email_confirmed"] = person.email_verified
        elif person.email_verified and not account.email_confirmed:
            values["email_confirmed"] = True
        if not values:
            return
        async with self.host.db.session() as s:
            if "email" in values:
                taken = await s.scalar(
                    select(Account.id).where(
                        Account.email == person.email, Account.id != account.id
                    )
                )
                if taken is not None:
                    # Keep the old address rather than take another account's.
                    values.pop("email")
                    values.pop("email_confirmed")
                    log.warning("keycloak.email_taken", account_id=account.id)
            if values:
                await s.execute(update(Account).where(Account.id == account.id).values(**values))
                await self.identity.bump_version(account.id, s)
        for key, value in values.items():
            setattr(account, key, value)

    async def sign_in(
        self, person: KeycloakPerson, *, address: str = "", user_agent: str = ""
    ) -> SignedIn:
        """Start a portal session for the person; a disabled account is refused, and so is
        a Keycloak user of a person removed in the portal (:mod:`kabinet.keycloak.erased`):
        neither their account nor a new one is made for them."""
        if await was_erased(self.host, person.subject):
            log.warning("keycloak.erased_user_refused")
            raise LoginError(
                "erased", "This account was removed from the portal; ask an administrator", 403
            )
        account, created = await self.account_for(person)
        if account.status != "active":
            await self.identity.record_security_event(
                None,
                "login.failed",
                subject_id=account.id,
                address=address,
                details={"reason": "disabled", "via": "keycloak"},
            )
            raise LoginError("disabled", "Your account is disabled; ask an administrator", 403)
        token, key = new_token()
        now = self.host.clock.now()
        stale = now - dt.timedelta(seconds=self.identity.settings.absolute_timeout)
        async with self.host.db.session() as s:
            # Portal sessions end by themselves after the absolute timeout: so does the link.
            await s.execute(delete(kc_session).where(kc_session.c.created_at < stale))
            await s.execute(
                update(Account).where(Account.id == account.id).values(last_login_at=now)
            )
            s.add(
                Login(
                    account_id=account.id,
                    at=now,
                    success=True,
                    address=address,
                    user_agent=user_agent[:300],
                )
            )
            await self.identity.record_security_event(
                account.id,
                "login",
                subject_id=account.id,
                address=address,
                details={"via": "keycloak"},
                session=s,
            )
        await self.identity.sessions.create(
            SessionRecord(
                key=key,
                account_id=account.id,
                created_at=now,
                last_seen_at=now,
                address=address,
                user_agent=user_agent[:300],
            )
        )
        async with self.host.db.session() as s:
            await s.execute(
                insert(kc_session).values(
                    key=key,
                    account_id=account.id,
                    subject=person.subject,
                    keycloak_session=person.session_id,
                    refresh_token=self.seal(person.refresh_token),
                    id_token=self.seal(person.id_token),
                    created_at=now,
                )
            )
        log.info("login", account_id=account.id, via="keycloak", created=created)
        return SignedIn(
            token=token, account_id=account.id, created=created, language=account.language
        )

    async def take_keycloak_session(self, token: str) -> str | None:
        """Forget the Keycloak session behind a portal session; returns its refresh token."""
        key = session_key(token)
        async with self.host.db.session() as s:
            row = (
                await s.execute(select(kc_session.c.refresh_token).where(kc_session.c.key == key))
            ).first()
            await s.execute(delete(kc_session).where(kc_session.c.key == key))
        return self.unseal(str(row[0])) if row is not None else None
