"""Step 1 of registration, the consent to personal data processing, and invitations.

A person registers with name, e-mail, phone, password and the consent (its version and
time recorded); the e-mail and the phone are confirmed by one-time codes (identity's code
service, delivered through ``deliver_message``, i.e. the notifications app or the
messages folder). Until both are confirmed the account can do nothing else: the gate
(:meth:`Registration.gate`, used by the app's middleware) sends it back to confirming, and
after a new consent version to agreeing again. Confirmed, the person holds the role
``user`` and may ask to join companies (step 2, :mod:`kabinet_companies.requests`).
Invitations are in :mod:`kabinet_companies.invitations` (the part this class builds on).
"""

from __future__ import annotations

import contextlib
import datetime as dt

import msgspec
import structlog
from sqlalchemy import func, insert, select, update

from kabinet.identity.errors import IdentityError
from kabinet.identity.services import AccountView
from kabinet.roles.services import Conflict as RoleConflict
from kabinet_companies.invitations import Invitation as Invitation
from kabinet_companies.invitations import InvitationsPart
from kabinet_companies.models import agreement, consent, registration
from kabinet_companies.services import CompaniesService
from kabinet_companies.validation import new_account_errors
from kabinet_companies.validation import refuse as refuse

log = structlog.get_logger("kabinet.companies")

DEFAULT_CONSENT = {
    "ru": "Я даю согласие на обработку моих персональных данных (ФИО, e-mail, телефон) "
    "в целях предоставления доступа к личному кабинету в соответствии с 152-ФЗ.",
    "en": "I agree to the processing of my personal data (name, e-mail, phone) so that I "
    "can be given access to the customer portal.",
}
GATE_TTL = 30.0
"""Seconds a process trusts the current consent version it has read."""


class Consent(msgspec.Struct, kw_only=True):
    version: int
    text_ru: str
    text_en: str
    created_at: dt.datetime | None


class Registration(InvitationsPart):
    """Registration, consent, the confirmation gate and invitations."""

    def __init__(self, companies: CompaniesService) -> None:
        super().__init__(companies)
        self._gates: dict[tuple[int, int], str | None] = {}
        self._consent: tuple[float, int] | None = None

    # -- consent ----------------------------------------------------------------------------

    async def consent(self) -> Consent:
        """The current consent text (a default one before staff ever edit it)."""
        async with self.host.db.reader() as s:
            row = (
                await s.execute(select(consent).order_by(consent.c.version.desc()).limit(1))
            ).first()
        if row is None:
            return Consent(
                version=0,
                text_ru=DEFAULT_CONSENT["ru"],
                text_en=DEFAULT_CONSENT["en"],
                created_at=None,
            )
        return Consent(
            version=row.version, text_ru=row.text_ru, text_en=row.text_en, created_at=row.created_at
        )

    async def consent_versions(self) -> list[Consent]:
        async with self.host.db.reader() as s:
            rows = await s.execute(select(consent).order_by(consent.c.version.desc()))
            return [
                Consent(
                    version=r.version,
                    text_ru=r.text_ru,
                    text_en=r.text_en,
                    created_at=r.created_at,
                )
                for r in rows
            ]

    async def publish_consent(self, text_ru: str, text_en: str, actor_id: int | None) -> Consent:
        """A new version: everyone who agreed to an older one is asked again."""
        errors = {}
        if not text_ru.strip():
            errors["text_ru"] = "the Russian text is required"
        if not text_en.strip():
            errors["text_en"] = "the English text is required"
        if errors:
            raise refuse(errors)
        async with self.host.db.session() as s:
            last = await s.scalar(select(func.max(consent.c.version)))
            version = int(last or 0) + 1
            await s.execute(
                insert(consent).values(
                    version=version,
                    text_ru=text_ru.strip(),
                    text_en=text_en.strip(),
                    created_by=actor_id,
                    created_at=self.now,
                )
            )
        self._consent = None
        self._gates.clear()
        return await self.consent()

    async def _ensure_consent(self) -> int:
        """The current version, saving the default text as version 1 when there is none,
        so an agreement always points at the exact text agreed to."""
        current = await self.consent()
        if current.version:
            return current.version
        try:
            return (await self.publish_consent(current.text_ru, current.text_en, None)).version
        except Exception:  # another process saved it at the same moment
            return (await self.consent()).version

    async def agree(self, person_id: int, address: str = "") -> int:
        version = await self._ensure_consent()
        async with self.host.db.session() as s:
            exists = await s.scalar(
                select(agreement.c.version).where(
                    agreement.c.person_id == person_id, agreement.c.version == version
                )
            )
            if exists is None:
                await s.execute(
                    insert(agreement).values(
                        person_id=person_id, version=version, at=self.now, address=address[:64]
                    )
                )
        self._gates = {k: v for k, v in self._gates.items() if k[0] != person_id}
        return version

    async def agreements(self, person_id: int) -> list[tuple[int, dt.datetime]]:
        async with self.host.db.reader() as s:
            rows = await s.execute(
                select(agreement.c.version, agreement.c.at)
                .where(agreement.c.person_id == person_id)
                .order_by(agreement.c.version)
            )
            return [(int(r[0]), r[1]) for r in rows]

    # -- step 1 -----------------------------------------------------------------------------

    async def register(
        self,
        *,
        full_name: str,
        email: str,
        phone: str,
        password: str,
        password2: str,
        agreed: bool,
        address: str = "",
        language: str | None = None,
    ) -> AccountView:
        """Create the account (and, with Keycloak, its Keycloak user) and send both codes;
        ``language`` is the one the person registered in (their messages and pages keep it).

        Raises :class:`FormErrors` with every field at fault."""
        from kabinet.identity.common import normalize_email

        identity = self.identity
        errors: dict[str, str] = {}
        if not full_name.strip():
            errors["full_name"] = "A name is required."
        email_n = None
        try:
            email_n = normalize_email(email)
        except IdentityError as exc:
            errors["email"] = exc.message
        phone_n, more = new_account_errors(
            identity, phone=phone, password=password, password2=password2, agreed=agreed
        )
        errors |= more
        if email_n and (
            await identity.find_by_email(email_n) is not None or await self._in_keycloak(email_n)
        ):
            errors["email"] = "This e-mail address is already registered."
        if phone_n and await identity.find_by_phone(phone_n) is not None:
            errors["phone"] = "This phone number is already registered."
        if errors:
            raise refuse(errors)
        await identity.limit_registration(address)
        try:
            account = await identity.create_account(
                full_name=full_name,
                email=email_n,
                phone=phone_n,
                password=password,
                address=address,
                language=language if language in self.host.settings.host.languages else None,
            )
        except IdentityError as exc:
            raise refuse({exc.field or "email": exc.message}) from None
        await self._keycloak_user(account, password)
        async with self.host.db.session() as s:
            await s.execute(insert(registration).values(person_id=account.id, created_at=self.now))
            await self.companies.ensure_contact(s, account.id)
        await self.agree(account.id, address)
        for purpose in ("confirm_email", "confirm_phone"):
            await identity.send_code(account.id, purpose, address=address)
        return account

    async def _in_keycloak(self, email: str) -> bool:
        """In Keycloak mode: Keycloak already has a user with this address (or username).
        A registration never takes such a user over (its address is not confirmed yet):
        it is refused like an address the portal has, and the person signs in instead."""
        from kabinet.keycloak.services import keycloak_service

        keycloak = keycloak_service(self.host)
        if keycloak is None:
            return False
        return await keycloak.sync.find_user(email, email) is not None

    async def _keycloak_user(self, account: AccountView, password: str | None) -> None:
        """In Keycloak mode the person exists there too (same password, linked). A user
        Keycloak already has is linked only on proof (:class:`LinkRefused` otherwise: made
        there in the meantime, or an invitee's address Keycloak has not verified); the
        account then stays unlinked, logged and in the security log, and Keycloak's user
        untouched."""
        from kabinet.keycloak.services import keycloak_service
        from kabinet.keycloak.sync import LinkRefused

        keycloak = keycloak_service(self.host)
        if keycloak is None:
            return
        with contextlib.suppress(LinkRefused):
            await keycloak.sync.create_user(
                email=account.email,
                full_name=account.full_name,
                phone=account.phone,
                password=password,
                email_verified=account.email_confirmed,
                account_id=account.id,
            )

    async def confirmed(self, person_id: int) -> bool:
        """Both contacts confirmed: finish registration (role ``user``) once."""
        account = await self.identity.get_account(person_id)
        if account is None or not (account.email_confirmed and account.phone_confirmed):
            return False
        async with self.host.db.session() as s:
            done = await s.execute(
                update(registration)
                .where(registration.c.person_id == person_id, registration.c.confirmed_at.is_(None))
                .values(confirmed_at=self.now)
            )
            finished = bool(getattr(done, "rowcount", 0))
            if finished:
                # finished and given the role together (a crash between would leave a
                # registration done without its rights)
                with contextlib.suppress(RoleConflict):  # held already
                    await self.companies.roles.grant(person_id, "user", session=s)
        if finished:
            await self.identity.bump_version(person_id)
        self._gates = {k: v for k, v in self._gates.items() if k[0] != person_id}
        return True

    async def pending(self, person_id: int) -> bool:
        async with self.host.db.reader() as s:
            return (
                await s.scalar(
                    select(registration.c.person_id).where(
                        registration.c.person_id == person_id,
                        registration.c.confirmed_at.is_(None),
                    )
                )
            ) is not None

    # -- the gate ---------------------------------------------------------------------------

    async def _current_version(self) -> int:
        now = self.host.clock.monotonic()
        if self._consent is not None and now - self._consent[0] < GATE_TTL:
            return self._consent[1]
        version = (await self.consent()).version
        self._consent = (now, version)
        return version

    async def gate(self, person_id: int, version: int) -> str | None:
        """Where a signed-in person must go first: ``confirm``, ``consent`` or nowhere.

        Cached per (person, account version): confirming a code bumps the version."""
        current = await self._current_version()
        key = (person_id, version * 100_000 + current)
        if key in self._gates:
            return self._gates[key]
        verdict: str | None = None
        if await self.pending(person_id):
            verdict = "confirm"
        else:
            agreed = await self.agreements(person_id)
            if agreed and current and agreed[-1][0] < current:
                verdict = "consent"
        if len(self._gates) > 50_000:
            self._gates.clear()
        self._gates[key] = verdict
        return verdict
