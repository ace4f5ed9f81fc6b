"""Invitations: staff invite a person by e-mail into an organization with a role; the
link sets the password, and the person is in (the invitations' part of
:class:`~kabinet_companies.registration.Registration`)."""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import secrets
from typing import TYPE_CHECKING, Any

import msgspec
from sqlalchemy import insert, select, update

from kabinet.identity.errors import IdentityError
from kabinet.identity.messages import Message, deliver
from kabinet.identity.services import AccountView, IdentityService, identity_service
from kabinet.roles.services import Actor
from kabinet.roles.services import Conflict as RoleConflict
from kabinet.roles.services import Forbidden as RoleForbidden
from kabinet_companies.models import invitation, organization, registration
from kabinet_companies.plugin import CompaniesSettings
from kabinet_companies.validation import (
    CompanyError,
    Conflict,
    Forbidden,
    NotFound,
    bounded,
    new_account_errors,
    refuse,
)

if TYPE_CHECKING:
    from kabinet.host import Host
    from kabinet_companies.services import CompaniesService


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


class InvitationsPart:
    """Invitations, and what every part of the registration uses (the host, identity,
    the clock)."""

    def __init__(self, companies: CompaniesService) -> None:
        self.companies = companies
        self.host: Host = companies.host

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

    if TYPE_CHECKING:  # the registration's own steps, which accepting an invitation takes

        async def agree(self, person_id: int, address: str = "") -> int: ...

        async def confirmed(self, person_id: int) -> bool: ...

        async def _keycloak_user(self, account: AccountView, password: str | None) -> None: ...

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
        found = await self.by_token(token)
        if found is None:
            raise refuse({"token": "This invitation has expired or was revoked."})
        identity = self.identity
        phone_n, errors = new_account_errors(
            identity, phone=phone, password=password, password2=password2, agreed=agreed
        )
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
