"""What identity keeps about a person (the ``personal_data`` hook): periods, the download,
the removal.

Kept for a period (``[identity]`` settings): confirmation codes and reset links
(``codes_kept_days``), sign-in records (``logins_kept_days``), lines of the security log
(``audit_kept_days``); sessions go a day after their absolute timeout.

Removing a person keeps their account row, anonymised (no name, e-mail, phone, password,
Keycloak subject; disabled): orders, requests and consent records of other apps point to
it and keep an author who is no longer anyone. Everything else of theirs goes: sessions,
codes, reset links, API tokens, sign-in records; the security log keeps its lines about
them (who did what, when) without addresses and details.
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any

from sqlalchemy import delete, or_, select, update

from kabinet.identity.models import (
    Account,
    ApiToken,
    Code,
    Login,
    ResetToken,
    SecurityEvent,
    Session,
)
from kabinet.identity.settings import IdentitySettings
from kabinet.personal import Kept, PersonalData, Rows, delete_older

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession

    from kabinet.host import Host

ERASED_NAME = "—"
"""The name an erased person's account keeps (shown as the author of what they did)."""
ERASED_ACTION = "account.erased"

ACCOUNT_FIELDS = (
    "id",
    "full_name",
    "email",
    "phone",
    "status",
    "email_confirmed",
    "phone_confirmed",
    "language",
    "timezone",
    "external_subject",
    "created_at",
    "last_login_at",
)
EVENT_FIELDS = ("at", "actor_id", "action", "subject_id", "organization_id", "address", "details")


def _plain(obj: Any, fields: tuple[str, ...]) -> dict[str, Any]:
    return {name: getattr(obj, name) for name in fields}


def _settings(host: Host) -> IdentitySettings:
    found = host.plugin_settings("identity")
    assert isinstance(found, IdentitySettings)
    return found


def personal_data(host: Host) -> PersonalData:
    settings = _settings(host)
    session_days = settings.absolute_timeout // 86400 + 1

    async def codes(s: AsyncSession, before: dt.datetime) -> int:
        gone = await delete_older(s, Code.__table__, Code.created_at, before)
        return gone + await delete_older(s, ResetToken.__table__, ResetToken.created_at, before)

    async def logins(s: AsyncSession, before: dt.datetime) -> int:
        return await delete_older(s, Login.__table__, Login.at, before)

    async def audit(s: AsyncSession, before: dt.datetime) -> int:
        return await delete_older(s, SecurityEvent.__table__, SecurityEvent.at, before)

    async def sessions(s: AsyncSession, before: dt.datetime) -> int:
        return await delete_older(s, Session.__table__, Session.last_seen_at, before)

    async def export(s: AsyncSession, person_id: int) -> dict[str, Rows]:
        from kabinet.identity.services import IDENTITY

        account = await s.get(Account, person_id)
        if account is None:
            return {}
        records = await host.services.of(IDENTITY).sessions.of_account(person_id)

        async def all_of(model: Any, *where: Any) -> list[Any]:
            return list((await s.scalars(select(model).where(*where).order_by(model.id))).all())

        found_codes = await all_of(Code, Code.account_id == person_id)
        resets = await all_of(ResetToken, ResetToken.account_id == person_id)
        tokens = await all_of(ApiToken, ApiToken.account_id == person_id)
        found_logins = await all_of(Login, Login.account_id == person_id)
        events = await all_of(
            SecurityEvent,
            or_(SecurityEvent.subject_id == person_id, SecurityEvent.actor_id == person_id),
        )
        return {
            "identity_account": [
                {**_plain(account, ACCOUNT_FIELDS), "has_password": bool(account.password_hash)}
            ],
            "identity_session": [
                _plain(r, ("created_at", "last_seen_at", "address", "user_agent")) for r in records
            ],
            "identity_code": [
                _plain(c, ("purpose", "channel", "target", "created_at", "expires_at", "used_at"))
                for c in found_codes
            ],
            "identity_reset_token": [
                _plain(r, ("created_at", "expires_at", "used_at")) for r in resets
            ],
            "identity_api_token": [
                _plain(
                    t,
                    (
                        "name",
                        "permissions",
                        "organizations",
                        "created_at",
                        "last_used_at",
                        "revoked_at",
                    ),
                )
                for t in tokens
            ],
            "identity_login": [
                _plain(g, ("at", "success", "address", "user_agent")) for g in found_logins
            ],
            "identity_security_event": [
                _plain(
                    e,
                    (
                        "at",
                        "actor_id",
                        "action",
                        "subject_id",
                        "organization_id",
                        "address",
                        "details",
                    ),
                )
                for e in events
            ],
        }

    async def erase(s: AsyncSession, person_id: int) -> dict[str, int]:
        from kabinet.identity.services import IDENTITY

        account = await s.get(Account, person_id)
        if account is None:
            return {}
        ended = await host.services.of(IDENTITY).sessions.delete_account(person_id)
        done: dict[str, int] = {"identity_session": ended}
        for model in (Code, ResetToken, ApiToken, Login):
            result = await s.execute(delete(model).where(model.account_id == person_id))
            done[model.__tablename__] = int(getattr(result, "rowcount", 0) or 0)
        result = await s.execute(
            update(SecurityEvent)
            .where(or_(SecurityEvent.subject_id == person_id, SecurityEvent.actor_id == person_id))
            .values(address="", details={})
        )
        done["identity_security_event"] = int(getattr(result, "rowcount", 0) or 0)
        account.full_name = ERASED_NAME
        account.email = None
        account.phone = None
        account.password_hash = None
        account.external_subject = None
        account.email_confirmed = False
        account.phone_confirmed = False
        account.status = "disabled"
        account.last_login_at = None
        account.version += 1  # every process stops honouring what is left of them
        done["identity_account"] = 1
        await s.flush()
        return done

    async def identifiers(s: AsyncSession, person_id: int) -> list[str]:
        account = await s.get(Account, person_id)
        if account is None:
            return []
        found = [account.full_name, account.email or "", account.phone or ""]
        return [n for n in (*found, (account.phone or "").removeprefix("+")) if n]

    return PersonalData(
        identifiers=identifiers,
        kept=[
            Kept(name="identity_code", days=settings.codes_kept_days, purge=codes),
            Kept(name="identity_login", days=settings.logins_kept_days, purge=logins),
            Kept(name="identity_security_event", days=settings.audit_kept_days, purge=audit),
            Kept(name="identity_session", days=session_days, purge=sessions),
        ],
        export=export,
        erase=erase,
    )
