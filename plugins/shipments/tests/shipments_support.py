"""Helpers of the shipments tests (a uniquely named module: pytest's prepend import mode)."""

from __future__ import annotations

import itertools

from sqlalchemy import insert

from kabinet.access import Principal
from kabinet.host import Host
from kabinet.identity.models import Account

_numbers = itertools.count(1)


async def person(host: Host, role: str | None, organization: int | None) -> Principal:
    """A person holding ``role`` in ``organization`` (None: globally)."""
    n = next(_numbers)
    async with host.db.session() as session:
        person_id = await session.scalar(
            insert(Account.__table__)
            .values(
                full_name=f"Person {n}", email=f"sh{n}@example.test", created_at=host.clock.now()
            )
            .returning(Account.__table__.c.id)
        )
    assert person_id is not None
    if role is not None:
        await host.services["roles"].grant(int(person_id), role, organization)
    return Principal(person_id=int(person_id), name=f"Person {n}", kind="person")
