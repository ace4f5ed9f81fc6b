"""What other apps may read about people: the identity service's public queries.

Apps never import :mod:`kabinet.identity.models` (the boundary check,
``tests/test_boundaries.py``). They read people through :class:`PeopleQueries`, part of the
identity service (``host.services.of(IDENTITY)``): every method reads in bulk (one query
per call, whatever the number of ids) in the caller's unit of work
(``host.db.reader()``), so a read inside a request sees what the request wrote.

Where an app's own query must join, filter or sort by a person's name or address (a list of
requests sorted by the person who sent them, a search by name), it uses :data:`PEOPLE`, a
read-only selectable of the public columns, instead of the account table; and its tables
reference an account through :data:`ACCOUNT_KEY`. Both are a contract: their names and
columns change only under the deprecation policy of the host's public API.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Protocol

import msgspec
from sqlalchemy import Column, Subquery, select

from kabinet.identity.models import Account

if TYPE_CHECKING:
    from kabinet.host import Host

__all__ = ["ACCOUNT_KEY", "PEOPLE", "AccountView", "PeopleQueries", "Person"]

_CHUNK = 5000
"""Ids per statement: under every database's limit of bound parameters."""

_account = Account.__table__

ACCOUNT_KEY: Column[int] = _account.c.id  # type: ignore[assignment]
"""The account's key, for another app's ``ForeignKey(ACCOUNT_KEY, ondelete=...)``."""

PEOPLE: Subquery = select(
    _account.c.id,
    _account.c.full_name,
    _account.c.email,
    _account.c.phone,
    _account.c.language,
    _account.c.timezone,
    _account.c.status,
).subquery("people")
"""People as other apps may join them: ``id``, ``full_name``, ``email``, ``phone``,
``language``, ``timezone``, ``status`` (``active`` or ``disabled``). A plain projection of
the account table: both databases' planners read it as the table itself (no extra cost)."""


class AccountView(Protocol):
    """What another app may read of an account the identity service returns
    (``create_account``, ``find_by_email``...): annotate with this, never the table's class."""

    @property
    def id(self) -> int: ...
    @property
    def full_name(self) -> str: ...
    @property
    def email(self) -> str | None: ...
    @property
    def phone(self) -> str | None: ...
    @property
    def email_confirmed(self) -> bool: ...
    @property
    def phone_confirmed(self) -> bool: ...
    @property
    def language(self) -> str: ...
    @property
    def timezone(self) -> str: ...
    @property
    def status(self) -> str: ...


class Person(msgspec.Struct, frozen=True, kw_only=True):
    """A person as other apps see them: who they are and how to reach them."""

    id: int
    full_name: str
    email: str | None
    phone: str | None
    language: str
    timezone: str
    status: str
    """``active`` or ``disabled``."""

    @property
    def active(self) -> bool:
        return self.status == "active"


def _chunks(ids: Iterable[int | None]) -> list[list[int]]:
    wanted = sorted({int(i) for i in ids if i is not None})
    return [wanted[i : i + _CHUNK] for i in range(0, len(wanted), _CHUNK)]


class PeopleQueries:
    """The identity service's bulk reads for other apps (mixed into the service)."""

    host: Host

    async def people(self, ids: Iterable[int | None]) -> dict[int, Person]:
        """The people of ``ids`` (``None`` and unknown ids left out), by id: one query per
        5,000 ids."""
        out: dict[int, Person] = {}
        p = PEOPLE.c
        async with self.host.db.reader() as s:
            for chunk in _chunks(ids):
                rows = await s.execute(
                    select(
                        p.id, p.full_name, p.email, p.phone, p.language, p.timezone, p.status
                    ).where(p.id.in_(chunk))
                )
                for r in rows:
                    out[int(r.id)] = Person(
                        id=int(r.id),
                        full_name=str(r.full_name),
                        email=r.email,
                        phone=r.phone,
                        language=str(r.language),
                        timezone=str(r.timezone),
                        status=str(r.status),
                    )
        return out

    async def person_by_email(self, email: str) -> Person | None:
        """The person with this e-mail (compared lower-cased, as stored), or ``None``."""
        async with self.host.db.reader() as s:
            found = await s.scalar(
                select(PEOPLE.c.id).where(PEOPLE.c.email == email.strip().lower())
            )
        if found is None:
            return None
        return (await self.people([int(found)])).get(int(found))

    async def existing(self, ids: Iterable[int | None]) -> set[int]:
        """Which of ``ids`` are accounts."""
        out: set[int] = set()
        async with self.host.db.reader() as s:
            for chunk in _chunks(ids):
                out |= {
                    int(i)
                    for i in await s.scalars(select(PEOPLE.c.id).where(PEOPLE.c.id.in_(chunk)))
                }
        return out
