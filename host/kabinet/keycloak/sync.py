"""Pushing the portal's people, roles and grants to Keycloak through its admin API.

The portal is the source of truth. A role is a realm role (named by its code); a grant in
organization 7 is membership of the group ``/org-7/<role>``; a global grant is the realm
role on the user; a disabled account is a disabled Keycloak user. Every push is
idempotent: :meth:`KeycloakSync.push_person` reads the person's grants as they are now and
makes Keycloak match them (adding what is missing, removing only what the portal manages),
so a retried, repeated or reordered event gives the same result.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

import structlog
from keycloak.exceptions import KeycloakError
from sqlalchemy import select, update

from kabinet.identity.models import Account
from kabinet.roles.services import ROLES

if TYPE_CHECKING:
    from keycloak import KeycloakAdmin
    from sqlalchemy.ext.asyncio import AsyncSession

    from kabinet.host import Host
    from kabinet.keycloak.client import KeycloakClients
    from kabinet.keycloak.settings import KeycloakSettings

log = structlog.get_logger("kabinet.keycloak")

NOT_FOUND = 404
FORBIDDEN = 403
CONFLICT = 409
ERASE_ACTIONS = ("delete", "disable")
"""What :meth:`KeycloakSync.erase_user` does (``[keycloak] erase_user``; ``keep`` never asks)."""
BLANK_USER: dict[str, Any] = {
    "enabled": False,
    "email": "",
    "emailVerified": False,
    "firstName": "",
    "lastName": "",
    "attributes": {},
    "requiredActions": [],
}
"""A disabled user with nothing personal left but its id and username."""
ERASED_USERNAME = "erased-"
"""The prefix of the username a disabled user gets where the realm allows editing it."""


class SyncError(Exception):
    """Keycloak refused a push in a way a retry will not fix (the message says why)."""


class LinkRefused(SyncError):
    """Keycloak already has a user with the person's address (or username) and nothing
    proves it is the same person, so the portal does not link the account to it.

    Proof is one of: the user carries the portal's own mark for this very account
    (attribute ``kabinet_account``, set when the portal made it), or the portal has
    confirmed the account's e-mail address itself (confirmation code, invitation link)
    *and* Keycloak has verified the user's address, the same one. An address nobody
    confirmed, a username (a phone number) that happens to match, or a confirmation on
    one side only is no proof: linking on it would give a registrant someone else's
    Keycloak user (see docs/security.md, "Linking to an existing Keycloak user")."""


def proves_same_person(
    user: dict[str, Any], *, account_id: int | None, email: str | None, email_confirmed: bool
) -> bool:
    """Whether Keycloak user ``user`` may be linked to the portal account (see
    :class:`LinkRefused` for the rule)."""
    if account_id is not None:
        marks = (user.get("attributes") or {}).get("kabinet_account") or []
        if str(account_id) in [str(m) for m in marks]:
            return True
    if not (email and email_confirmed and user.get("emailVerified") is True):
        return False
    return str(user.get("email") or "").strip().lower() == email.strip().lower()


def _status(exc: KeycloakError) -> int | None:
    code = getattr(exc, "response_code", None)
    return int(code) if code is not None else None


class KeycloakSync:
    """Creates users, realm roles and organization groups in Keycloak and keeps them in step."""

    def __init__(self, host: Host, clients: KeycloakClients, settings: KeycloakSettings) -> None:
        self.host = host
        self.clients = clients
        self.settings = settings
        self._group_re = re.compile(rf"^/{re.escape(settings.group_prefix)}\d+/[^/]+$")

    # -- names ---------------------------------------------------------------------------

    def role_name(self, code: str) -> str:
        return f"{self.settings.role_prefix}{code}"

    def group_path(self, organization: int, code: str) -> str:
        return f"/{self.settings.group_prefix}{organization}/{self.role_name(code)}"

    def _admin(self) -> KeycloakAdmin:
        return self.clients.admin()

    # -- roles and groups ----------------------------------------------------------------

    async def ensure_role(self, code: str, description: str = "") -> dict[str, Any]:
        """The realm role of portal role ``code``, created when missing."""
        admin = self._admin()
        name = self.role_name(code)
        try:
            return await admin.a_get_realm_role(name)
        except KeycloakError as exc:
            if _status(exc) != NOT_FOUND:
                raise
        payload: dict[str, Any] = {
            "name": name,
            "description": description or f"Kabinet role {code}",
            "attributes": {"kabinet": ["role"]},
        }
        await admin.a_create_realm_role(payload, skip_exists=True)
        log.info("keycloak.role_created", role=name)
        return await admin.a_get_realm_role(name)

    async def describe_role(self, code: str, description: str) -> None:
        """Keep the realm role's description in step with the portal role's names."""
        role = await self.ensure_role(code, description)
        if role.get("description") != description:
            await self._admin().a_update_realm_role(
                self.role_name(code), {"name": role["name"], "description": description}
            )

    async def remove_role(self, code: str) -> None:
        """Delete a deleted portal role's realm role and its groups in every organization."""
        admin = self._admin()
        name = self.role_name(code)
        try:
            await admin.a_delete_realm_role(name)
            log.info("keycloak.role_deleted", role=name)
        except KeycloakError as exc:
            if _status(exc) != NOT_FOUND:
                raise
        for top in await admin.a_get_groups({"search": self.settings.group_prefix}):
            if not re.fullmatch(rf"/{re.escape(self.settings.group_prefix)}\d+", top["path"]):
                continue
            for child in await admin.a_get_group_children(top["id"]):
                if child["name"] == name:
                    await admin.a_delete_group(child["id"])

    async def _group_by_path(self, path: str) -> dict[str, Any] | None:
        try:
            return await self._admin().a_get_group_by_path(path)
        except KeycloakError as exc:
            if _status(exc) == NOT_FOUND:
                return None
            raise

    async def ensure_group(self, organization: int, code: str) -> str:
        """The id of group ``/org-<organization>/<role>``, creating it (and its parent)."""
        admin = self._admin()
        path = self.group_path(organization, code)
        found = await self._group_by_path(path)
        if found is not None:
            return str(found["id"])
        parent_path = f"/{self.settings.group_prefix}{organization}"
        parent = await self._group_by_path(parent_path)
        if parent is None:
            await admin.a_create_group(
                {
                    "name": parent_path[1:],
                    "attributes": {"kabinet_organization": [str(organization)]},
                },
                skip_exists=True,
            )
            parent = await self._group_by_path(parent_path)
            if parent is None:
                raise SyncError(f"group {parent_path} was created but cannot be found")
        await admin.a_create_group(
            {"name": self.role_name(code)}, parent=str(parent["id"]), skip_exists=True
        )
        found = await self._group_by_path(path)
        if found is None:
            raise SyncError(f"group {path} was created but cannot be found")
        log.info("keycloak.group_created", group=path)
        return str(found["id"])

    # -- users ---------------------------------------------------------------------------

    async def create_user(
        self,
        *,
        email: str | None,
        full_name: str = "",
        phone: str | None = None,
        password: str | None = None,
        email_verified: bool = False,
        enabled: bool = True,
        account_id: int | None = None,
        session: AsyncSession | None = None,
    ) -> str:
        """Create the person's Keycloak user (the portal's registration in Keycloak mode).

        The username is the e-mail address (else the phone number); the password, when
        given, is set as a credential and never logged. Confirmation codes stay in the
        portal: ``email_verified`` says whether the portal has confirmed the address.
        With ``account_id`` the account is linked to the new user (its ``external_subject``),
        in ``session`` when given. Returns Keycloak's user id.

        When Keycloak already has the user (409), the account is linked to it only on
        proof (:func:`proves_same_person`): at registration the address is not confirmed
        yet, so an existing user is never taken over; :class:`LinkRefused` is raised and
        the existing user is left exactly as it was (no password, name or attribute set).
        """
        username = (email or phone or "").strip().lower()
        if not username:
            raise SyncError("a Keycloak user needs an e-mail address or a phone number")
        first, _, last = full_name.strip().partition(" ")
        payload: dict[str, Any] = {
            "username": username,
            "enabled": enabled,
            "emailVerified": bool(email and email_verified),
            "firstName": first,
            "lastName": last.strip(),
            "attributes": {},
        }
        if email:
            payload["email"] = email.strip().lower()
        if phone:
            payload["attributes"]["phoneNumber"] = [phone]
        if account_id is not None:
            payload["attributes"]["kabinet_account"] = [str(account_id)]
        if password:
            payload["credentials"] = [{"type": "password", "value": password, "temporary": False}]
        try:
            user_id = await self._admin().a_create_user(payload)
        except KeycloakError as exc:
            if _status(exc) != CONFLICT:
                raise
            existing = await self.find_user(email, username)
            if existing is None:
                raise SyncError(
                    f"Keycloak has a user like {username!r} but will not show it"
                ) from None
            if not proves_same_person(
                existing,
                account_id=account_id,
                email=email,
                email_confirmed=email_verified,
            ):
                await self._refused(account_id, "create", session)
            user_id = existing["id"]
        log.info("keycloak.user_created", account=account_id)
        if account_id is not None:
            await self._link(account_id, user_id, session)
        return str(user_id)

    async def find_user(self, email: str | None, username: str) -> dict[str, Any] | None:
        """The Keycloak user with this e-mail address, else with this username, in full
        (attributes included); ``None`` when there is none. Finding one proves nothing:
        see :func:`proves_same_person` before linking an account to it."""
        admin = self._admin()
        user_id: str | None = None
        if email:
            found = await admin.a_get_users({"email": email.lower(), "exact": True})
            if found:
                user_id = str(found[0]["id"])
        if user_id is None and username:
            found_id = await admin.a_get_user_id(username.lower())
            user_id = str(found_id) if found_id else None
        if user_id is None:
            return None
        try:
            user: dict[str, Any] = await admin.a_get_user(user_id)
        except KeycloakError as exc:
            if _status(exc) == NOT_FOUND:  # removed in between
                return None
            raise
        return user

    async def _refused(
        self, account_id: int | None, during: str, session: AsyncSession | None
    ) -> None:
        """Refuse to link ``account_id`` to a Keycloak user nothing proves is theirs: a
        warning for the operator and, outside a push's transaction (which the refusal rolls
        back; the failed push is the record there), a line in the security log."""
        log.warning("keycloak.link_refused", account=account_id, during=during)
        if session is None and account_id is not None:
            from kabinet.identity.services import identity_service

            await identity_service(self.host).record_security_event(
                None,
                "keycloak.link_refused",
                subject_id=account_id,
                details={"during": during},
            )
        raise LinkRefused(
            f"Keycloak already has a user with the address or username of account "
            f"{account_id}, and nothing proves it is the same person: not linked "
            "(the portal has not confirmed the address, or Keycloak has not verified it)"
        )

    async def _link(self, account_id: int, subject: str, session: AsyncSession | None) -> None:
        """Remember the account's Keycloak user (``identity_account.external_subject``)."""
        query = update(Account).where(Account.id == account_id).values(external_subject=subject)
        if session is not None:
            await session.execute(query)
            return
        async with self.host.db.session() as own:
            await own.execute(query)

    async def user_of(self, account: Account, session: AsyncSession | None = None) -> str:
        """The account's Keycloak user id: linked, found (by e-mail, else username) and
        proven the same person, or created. Raises :class:`LinkRefused` when Keycloak has
        a user with the account's address or username that nothing proves is theirs."""
        if account.external_subject:
            try:
                await self._admin().a_get_user(account.external_subject)
                return account.external_subject
            except KeycloakError as exc:
                if _status(exc) != NOT_FOUND:
                    raise
                log.warning("keycloak.user_vanished", account=account.id)
        username = (account.email or account.phone or f"kabinet-{account.id}").lower()
        found = await self.find_user(account.email, username)
        if found is not None:
            if not proves_same_person(
                found,
                account_id=account.id,
                email=account.email,
                email_confirmed=account.email_confirmed,
            ):
                await self._refused(account.id, "push", session)
            await self._link(account.id, str(found["id"]), session)
            return str(found["id"])
        return await self.create_user(
            email=account.email,
            full_name=account.full_name,
            phone=account.phone,
            email_verified=account.email_confirmed,
            enabled=account.status == "active",
            account_id=account.id,
            session=session,
        )

    async def _account(self, person_id: int, session: AsyncSession | None) -> Account | None:
        query = select(Account).where(Account.id == person_id)
        if session is not None:
            return (await session.scalars(query)).first()
        async with self.host.db.session() as own:
            return (await own.scalars(query)).first()

    # -- pushing a person ----------------------------------------------------------------

    async def push_person(self, person_id: int, session: AsyncSession | None = None) -> None:
        """Make the person's Keycloak user match the portal: enabled, realm roles, groups."""
        account = await self._account(person_id, session)
        if account is None:
            log.info("keycloak.push_skipped", person=person_id, why="no such account")
            return
        if account.status != "active" and not (
            account.external_subject or account.email or account.phone
        ):
            # A removed person (or one nothing could name a Keycloak user after): a late
            # event about them must not create a user "kabinet-<id>" in Keycloak.
            log.info("keycloak.push_skipped", person=person_id, why="nothing links a user")
            return
        user_id = await self.user_of(account, session)
        await self._push_enabled(user_id, account.status == "active")
        roles_service = self.host.services.of(ROLES)
        grants = await roles_service.grants_of(person_id)
        portal_roles = {self.role_name(r.code): r for r in await roles_service.roles()}
        want_roles = {self.role_name(g.role.code) for g in grants if g.organization_id is None}
        want_groups = {
            (g.organization_id, g.role.code) for g in grants if g.organization_id is not None
        }
        await self._push_roles(user_id, want_roles, portal_roles)
        await self._push_groups(user_id, want_groups)
        log.info("keycloak.person_pushed", person=person_id)

    # -- removing a person ---------------------------------------------------------------

    async def erase_user(self, user_id: str, action: str) -> None:
        """Do ``action`` to the Keycloak user of a person removed in the portal.

        ``delete``: the user goes (Keycloak ends its sessions with it). ``disable``: the
        user stays, disabled, with no name, e-mail, e-mail confirmation, attributes or
        required actions, and its sessions end. Its username (often the e-mail address)
        becomes ``erased-<random>`` where the realm allows editing usernames
        (``editUsernameAllowed``, and not ``registrationEmailAsUsername``); elsewhere
        Keycloak refuses a new username even to an admin, so it stays (see docs).
        Idempotent: a user Keycloak does not have (404) is already gone, which is success,
        so a retried or repeated call does no harm. Any other error is raised for a retry.
        """
        if not user_id:
            raise SyncError("no Keycloak user id to erase")
        if action not in ERASE_ACTIONS:
            raise SyncError(f"unknown erase action {action!r}")
        admin = self._admin()
        try:
            if action == "delete":
                await admin.a_delete_user(user_id)
            else:
                blank = dict(BLANK_USER)
                username = await self._erased_username(user_id)
                if username is not None:
                    blank["username"] = username
                await admin.a_update_user(user_id, blank)
                await admin.a_user_logout(user_id)
        except KeycloakError as exc:
            if _status(exc) != NOT_FOUND:
                raise
            log.info("keycloak.user_erased", action=action, already_gone=True)
            return
        log.info("keycloak.user_erased", action=action, already_gone=False)

    async def _erased_username(self, user_id: str) -> str | None:
        """A username naming no one for a disabled user, or ``None`` to keep its username
        (the realm does not allow editing it, or it is already one of ours)."""
        admin = self._admin()
        try:
            realm = await admin.a_get_realm(self.settings.realm)
        except KeycloakError as exc:
            if _status(exc) != FORBIDDEN:
                raise
            log.warning("keycloak.username_kept", why="no right to read the realm (view-realm)")
            return None
        if not realm.get("editUsernameAllowed") or realm.get("registrationEmailAsUsername"):
            log.info("keycloak.username_kept", why="the realm does not allow editing it")
            return None
        user = await admin.a_get_user(user_id)
        if str(user.get("username", "")).startswith(ERASED_USERNAME):
            return None
        return ERASED_USERNAME + secrets.token_hex(8)

    async def _push_enabled(self, user_id: str, enabled: bool) -> None:
        admin = self._admin()
        user = await admin.a_get_user(user_id)
        if bool(user.get("enabled")) != enabled:
            await admin.a_update_user(user_id, {"enabled": enabled})
            if not enabled:
                await admin.a_user_logout(user_id)

    async def _push_roles(self, user_id: str, want: set[str], portal: dict[str, Any]) -> None:
        admin = self._admin()
        have = {r["name"]: r for r in await admin.a_get_realm_roles_of_user(user_id)}
        missing = sorted(want - set(have))
        if missing:
            reps = [
                await self.ensure_role(portal[n].code) if n in portal else None for n in missing
            ]
            await admin.a_assign_realm_roles(user_id, [r for r in reps if r is not None])
        extra = [have[n] for n in sorted(set(have) - want) if n in portal]
        if extra:
            await admin.a_delete_realm_roles_of_user(user_id, extra)

    async def _push_groups(self, user_id: str, want: Iterable[tuple[int, str]]) -> None:
        admin = self._admin()
        have = {
            g["path"]: str(g["id"])
            for g in await admin.a_get_user_groups(user_id)
            if self._group_re.match(g["path"])
        }
        wanted = {self.group_path(org, code): (org, code) for org, code in want}
        for path in sorted(set(wanted) - set(have)):
            group_id = await self.ensure_group(*wanted[path])
            await admin.a_group_user_add(user_id, group_id)
        for path in sorted(set(have) - set(wanted)):
            await admin.a_group_user_remove(user_id, have[path])
