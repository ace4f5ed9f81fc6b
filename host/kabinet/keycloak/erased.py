"""The Keycloak users of people removed in the portal, so that none of them signs in again.

Removing a person writes, in the removal's transaction, a keyed digest of each of their
Keycloak user ids into ``keycloak_erased`` (HMAC-SHA256 with a key derived from ``[host]
secret_key``: the table names no one, and a federated id holding an e-mail address cannot
be guessed back from it). The sign-in refuses a subject found there. This closes the time
between the removal's commit and the job that deletes or disables the Keycloak user (and
any later re-enabling of a disabled user in Keycloak): without it, such a sign-in would
make a new portal account for the removed person from what Keycloak still knows of them.
A person who registers again gets a new Keycloak user, with a new id, and is not refused.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable
from typing import TYPE_CHECKING

from sqlalchemy import insert, select

from kabinet.keycloak.models import erased
from kabinet.keys import hkdf

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession

    from kabinet.host import Host

PURPOSE = "keycloak.erased"


def _digest(key: bytes, subject: str) -> str:
    return hmac.new(key, subject.encode(), hashlib.sha256).hexdigest()


def digests(host: Host, subject: str) -> list[str]:
    """The subject's digest under the current secret key, then under each previous one (a
    removal before a key rotation is still found after it)."""
    keys = [
        host.keys.derive(PURPOSE),
        *(hkdf(old.encode(), PURPOSE) for old in host.settings.host.previous_secret_keys),
    ]
    return [_digest(k, subject) for k in keys]


async def remember(host: Host, s: AsyncSession, subjects: Iterable[str]) -> None:
    """Record the removed person's Keycloak users, in the removal's transaction ``s``."""
    now = host.clock.now()
    for subject in subjects:
        if not subject:
            continue
        if await s.scalar(
            select(erased.c.subject_digest).where(
                erased.c.subject_digest.in_(digests(host, subject))
            )
        ):
            continue
        await s.execute(
            insert(erased).values(subject_digest=digests(host, subject)[0], erased_at=now)
        )


async def was_erased(host: Host, subject: str) -> bool:
    """Whether the Keycloak user ``subject`` belonged to a person removed in the portal."""
    async with host.db.session() as s:
        found = await s.scalar(
            select(erased.c.subject_digest).where(
                erased.c.subject_digest.in_(digests(host, subject))
            )
        )
    return found is not None
