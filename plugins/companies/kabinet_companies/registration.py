"""Step 1 of registration, the consent to personal data processing, and invitations.

A person registers with name, e-mail, phone, password and the consent (its version and
time recorded); the e-mail and the phone are confirmed by one-time codes (identity's code
service, delivered through ``deliver_message``, i.e. the notifications app or the
messages folder). Until both are confirmed the account can do nothing else: the gate
(:meth:`Registration.gate`, used by the app's middleware) sends it back to confirming, and
after a new consent version to agreeing again. Confirmed, the person holds the role
``user`` and may ask to join companies (step 2, :mod:`kabinet_companies.requests`).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import secrets
from typing import TYPE_CHECKING, Any

import msgspec
import structlog
from sqlalchemy import func, insert, select, update

from kabinet.forms import FieldError, FormErrors
from kabinet.identity.errors import IdentityError
from kabinet.identity.messages import Message, deliver
from kabinet.identity.services import AccountView, IdentityService, identity_service
from kabinet.roles.services import Actor
from kabinet.roles.services import Conflict as RoleConflict
from kabinet.roles.services import Forbidden as RoleForbidden
from kabinet_companies.models import agreement, consent, invitation, organization, registration
from kabinet_companies.plugin import CompaniesSettings
from kabinet_companies.services import CompaniesService
from kabinet_companies.validation import CompanyError, Conflict, Forbidden, NotFound, bounded

if TYPE_CHECKING:
    from kabinet.host import Host

log = structlog.get_logger("kabinet.companies")

DEFAULT_CONSENT = {
    "ru": "Я даю согласие на обработку моих персональных данных (ФИО, e-mail, телефон) "
    "в целях предоставления доступа к личному кабинету в соответствии с 152-ФЗ.",
    "en": "I agree to the processing of my personal data (name, e-mail, phone) so that I "
    "can be given access to the customer portal.",
}
GATE_TTL = 30.0
"""Seconds a process trusts the current consent version it has read."""


def refuse(errors: dict[str, str]) -> FormErrors:
    """Every field at fault at once (the form shows each next to its field): a message id
    by field name, as the page kit's :class:`~kabinet.forms.FormErrors`."""
    return FormErrors([FieldError(message, field) for field, message in errors.items()])


class Consent(msgspec.Struct, kw_only=True):
    version: int
    text_ru: str
    text_en: str
    created_at: dt.datetime | None


class Invitation(msgspec.Struct, kw_only=True):
    id: int
    email: str
    full_name: str
    organization_id: int
    organization_name: str
    role: str
    status: str
    """pending, accepted, revoked, or expired (pending past its time)."""
    expires_at: dt.datetime
    sent_count: int
    created_at: dt.datetime


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _aware(value: dt.datetime) -> dt.datetime:
    return value if value.tzinfo else value.replace(tzinfo=dt.UTC)


class Registration:
    """Registration, consent, the confirmation gate and invitations."""

    def __init__(self, companies: CompaniesService) -> None:
        self.companies = companies
        self.host: Host = companies.host
        self._gates: dict[tuple[int, int], str | None] = {}
        self._consent: tuple[float, int] | None = None

    @property
    def identity(self) -> IdentityService:
        return identity_service(self.host)

    @property
    def now(self) -> dt.datetime:
        return self.host.clock.now()

    @property
    def invitation_ttl(self) -> dt.timedelta:
        """How long an invitation link works (``[companies] invitation_days``)."""
        return dt.timedelta(
            days=self.host.plugin_settings("companies", CompaniesSettings).invitation_days
        )

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
        from kabinet.identity.common import normalize_email, normalize_phone

        identity = self.identity
        errors: dict[str, str] = {}
        if not full_name.strip():
            errors["full_name"] = "A name is required."
        email_n = phone_n = None
        try:
            email_n = normalize_email(email)
        except IdentityError as exc:
            errors["email"] = exc.message
        try:
            phone_n = normalize_phone(phone)
        except IdentityError as exc:
            errors["phone"] = exc.message
        try:
            identity.check_password_rules(password)
        except IdentityError as exc:
            errors["password"] = exc.message
        if password != password2:
            errors["password2"] = "The passwords differ."
        if not agreed:
            errors["consent"] = "Agree to the processing of personal data to register."
        if email_n and await identity.find_by_email(email_n) is not None:
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

    async def _keycloak_user(self, account: AccountView, password: str | None) -> None:
        """In Keycloak mode the person exists there too (same password, linked)."""
        from kabinet.keycloak.services import keycloak_service

        keycloak = keycloak_service(self.host)
        if keycloak is None:
            return
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

    # -- invitations ------------------------------------------------------------------------

    async def invite(
        self,
        *,
        organization_id: int,
        email: str,
        full_name: str,
        role: str = "client",
        actor_id: int | None,
    ) -> Invitation:
        from kabinet.identity.common import normalize_email

        try:
            email_n = normalize_email(email)
        except IdentityError as exc:
            raise CompanyError(exc.message, "email") from None
        if not bounded(full_name, invitation.c.full_name, "full_name"):
            raise CompanyError("A name is required.", "full_name")
        if role not in {r.code for r in await self.companies.grantable_roles()}:
            raise CompanyError("this role cannot be given in an organization", "role")
        await self.companies.organization(organization_id)
        if actor_id is not None:
            # nobody gives themselves rights, an invitation to their own address included
            existing = await identity_service(self.host).find_by_email(email_n)
            if existing is not None and existing.id == actor_id:
                raise Forbidden("You cannot invite yourself.", "email")
        ttl = self.invitation_ttl
        token = secrets.token_urlsafe(32)
        async with self.host.db.session() as s:
            open_one = await s.scalar(
                select(invitation.c.id).where(
                    invitation.c.email == email_n,
                    invitation.c.organization_id == organization_id,
                    invitation.c.status == "pending",
                    invitation.c.expires_at > self.now,
                )
            )
            if open_one is not None:
                raise Conflict("this person is already invited here; resend it", "email")
            new_id = await s.scalar(
                insert(invitation)
                .values(
                    email=email_n,
                    full_name=full_name.strip(),
                    organization_id=organization_id,
                    role=role,
                    token_hash=_digest(token),
                    status="pending",
                    expires_at=self.now + ttl,
                    sent_count=1,
                    created_by=actor_id,
                    created_at=self.now,
                )
                .returning(invitation.c.id)
            )
        assert new_id is not None
        found = await self.invitation(int(new_id))
        await self._send_invitation(found, token)
        return found

    async def resend(self, invitation_id: int) -> Invitation:
        """A fresh link and a fresh expiry (the old link stops working)."""
        found = await self.invitation(invitation_id)
        if found.status not in ("pending", "expired"):
            raise Conflict(f"the invitation is {found.status}", "status")
        token = secrets.token_urlsafe(32)
        ttl = self.invitation_ttl
        async with self.host.db.session() as s:
            await s.execute(
                update(invitation)
                .where(invitation.c.id == invitation_id)
                .values(
                    token_hash=_digest(token),
                    status="pending",
                    expires_at=self.now + ttl,
                    sent_count=invitation.c.sent_count + 1,
                )
            )
        found = await self.invitation(invitation_id)
        await self._send_invitation(found, token)
        return found

    async def revoke(self, invitation_id: int) -> Invitation:
        async with self.host.db.session() as s:
            done = await s.execute(
                update(invitation)
                .where(invitation.c.id == invitation_id, invitation.c.status == "pending")
                .values(status="revoked")
            )
            if not getattr(done, "rowcount", 0):
                raise Conflict("only a pending invitation can be revoked", "status")
        return await self.invitation(invitation_id)

    async def _send_invitation(self, found: Invitation, token: str) -> None:
        link = self.host.absolute_url(f"/companies/invitation?token={token}")
        lang = self.host.settings.host.language
        subject = {
            "ru": f"Приглашение в личный кабинет: {found.organization_name}",
            "en": f"An invitation to the customer portal: {found.organization_name}",
        }
        body = {
            "ru": f"{found.full_name}, вас пригласили в личный кабинет компании "
            f"{found.organization_name}. Задайте пароль по ссылке:\n{link}",
            "en": f"{found.full_name}, you are invited to the customer portal of "
            f"{found.organization_name}. Set your password here:\n{link}",
        }
        await deliver(
            self.host,
            Message(
                kind="companies.invitation",
                channel="email",
                to=found.email,
                language=lang,
                subject=subject.get(lang, subject["en"]),
                body=body.get(lang, body["en"]),
                context={
                    "link": link,
                    "name": found.full_name,
                    "organization": found.organization_name,
                },
                secrets=("link",),
            ),
        )

    async def invitation(self, invitation_id: int) -> Invitation:
        found = await self.invitations(invitation_id=invitation_id)
        if not found:
            raise NotFound("no such invitation", "invitation")
        return found[0]

    async def invitations(
        self, *, organization_id: int | None = None, invitation_id: int | None = None
    ) -> list[Invitation]:
        query = select(invitation, organization.c.name.label("org_name")).join(
            organization, organization.c.id == invitation.c.organization_id
        )
        if organization_id is not None:
            query = query.where(invitation.c.organization_id == organization_id)
        if invitation_id is not None:
            query = query.where(invitation.c.id == invitation_id)
        async with self.host.db.reader() as s:
            rows = (await s.execute(query.order_by(invitation.c.created_at.desc()))).all()
        return [self._invitation(r) for r in rows]

    def _invitation(self, r: Any) -> Invitation:
        status = r.status
        if status == "pending" and _aware(r.expires_at) <= self.now:
            status = "expired"
        return Invitation(
            id=r.id,
            email=r.email,
            full_name=r.full_name,
            organization_id=r.organization_id,
            organization_name=r.org_name,
            role=r.role,
            status=status,
            expires_at=r.expires_at,
            sent_count=r.sent_count,
            created_at=r.created_at,
        )

    async def by_token(self, token: str, *, any_status: bool = False) -> Invitation | None:
        """A usable invitation (pending, not expired) by its link's token; ``any_status``:
        whatever its state (the page says why a link no longer works)."""
        async with self.host.db.reader() as s:
            row = (
                await s.execute(
                    select(invitation, organization.c.name.label("org_name"))
                    .join(organization, organization.c.id == invitation.c.organization_id)
                    .where(invitation.c.token_hash == _digest(token))
                )
            ).first()
        if row is None:
            return None
        found = self._invitation(row)
        return found if any_status or found.status == "pending" else None

    async def accept_invitation(
        self,
        token: str,
        *,
        phone: str,
        password: str,
        password2: str,
        agreed: bool,
        address: str = "",
    ) -> AccountView:
        """Set a password (the link confirms the e-mail), give the phone, agree: the
        person is in the organization with the invited role; the phone is confirmed next."""
        from kabinet.identity.common import normalize_phone

        found = await self.by_token(token)
        if found is None:
            raise refuse({"token": "This invitation has expired or was revoked."})
        identity = self.identity
        errors: dict[str, str] = {}
        phone_n = None
        try:
            phone_n = normalize_phone(phone)
        except IdentityError as exc:
            errors["phone"] = exc.message
        try:
            identity.check_password_rules(password)
        except IdentityError as exc:
            errors["password"] = exc.message
        if password != password2:
            errors["password2"] = "The passwords differ."
        if not agreed:
            errors["consent"] = "Agree to the processing of personal data to register."
        existing = await identity.find_by_email(found.email)
        if phone_n:
            other = await identity.find_by_phone(phone_n)
            if other is not None and (existing is None or other.id != existing.id):
                errors["phone"] = "This phone number is already registered."
        if errors:
            raise refuse(errors)
        if existing is None:
            account = await identity.create_account(
                full_name=found.full_name,
                email=found.email,
                phone=phone_n,
                password=password,
                email_confirmed=True,
                address=address,
            )
            await self._keycloak_user(account, password)
        else:
            account = existing
            await identity.set_password(account.id, password, actor_id=account.id)
        async with self.host.db.session() as s:
            done = await s.execute(
                update(invitation)
                .where(invitation.c.id == found.id, invitation.c.status == "pending")
                .values(status="accepted", accepted_at=self.now, person_id=account.id)
            )
            if not getattr(done, "rowcount", 0):
                raise refuse({"token": "This invitation has expired or was revoked."})
            if (
                not account.phone_confirmed
                and await s.scalar(
                    select(registration.c.person_id).where(registration.c.person_id == account.id)
                )
                is None
            ):
                await s.execute(
                    insert(registration).values(person_id=account.id, created_at=self.now)
                )
            await self.companies.add_member(s, account.id, found.organization_id)
            # given by whoever invited: never by the person to themselves
            inviter = await s.scalar(
                select(invitation.c.created_by).where(invitation.c.id == found.id)
            )
            try:
                with contextlib.suppress(RoleConflict):  # already held there
                    await self.companies.roles.grant(
                        account.id,
                        found.role,
                        found.organization_id,
                        actor=Actor(person_id=inviter),
                        session=s,
                    )
            except RoleForbidden:
                raise refuse({"token": "You cannot accept your own invitation."}) from None
        await self.agree(account.id, address)
        if not account.phone_confirmed:
            await identity.send_code(account.id, "confirm_phone", address=address)
        else:
            await self.confirmed(account.id)
        return account
