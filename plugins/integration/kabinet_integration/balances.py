"""Balances owed: keys (contracts) whose operational balance must be asked of 1C again.

A page whose sink declares that its records make other records stale
(:attr:`kabinet.contrib.EntitySink.refreshes`: shipments' contracts, orders and invoices
make their contract's balance stale) marks those keys owed for the ``balance`` feed that
serves that sink, in the page's own transaction. Every run (delta, ``--full``, a push batch with a
``base_url``) ends by refreshing every contract owed, and drops a mark only in the
transaction that stores the refreshed balance. So a run that fails after committing pages
(the Balance function answers 500 or 401, the exchange service's acknowledgement fails)
leaves its contracts owed, and the next successful run repairs them, though it sees no
new change of theirs.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

from sqlalchemy import delete, select
from sqlalchemy.dialects import postgresql, sqlite

from kabinet_integration import models as m

if TYPE_CHECKING:
    import datetime as dt

    from sqlalchemy.ext.asyncio import AsyncSession

    from kabinet.host import Host

CHUNK = 1000
"""Contracts per statement (a list in one statement stays far under any driver's limit)."""
REFERENCE = "balance"
"""The reference's balance feed: its keys are marked as they are (as before feeds were
configurable); another feed's as ``<entity>:<key>``."""


def _mark(entity: str, key: str) -> str:
    return key if entity == REFERENCE else f"{entity}:{key}"


def _unmark(entity: str, mark: str) -> str | None:
    if entity == REFERENCE:
        return None if ":" in mark else mark
    prefix = f"{entity}:"
    return mark[len(prefix) :] if mark.startswith(prefix) else None


def _insert_ignore(dialect: str) -> Any:
    ins = postgresql.insert if dialect == "postgresql" else sqlite.insert
    return ins(m.balance_owed).on_conflict_do_nothing(index_elements=["source", "contract"])


async def owe(
    s: AsyncSession, source: str, entity: str, contracts: Iterable[str], now: dt.datetime
) -> None:
    """Mark ``contracts`` owed to the feed ``entity``, in the caller's transaction (a mark
    already there stays)."""
    items = sorted({_mark(entity, c) for c in contracts if c})
    if not items:
        return
    stmt = _insert_ignore((await s.connection()).dialect.name)
    for start in range(0, len(items), CHUNK):
        await s.execute(
            stmt,
            [{"source": source, "contract": c, "since": now} for c in items[start : start + CHUNK]],
        )


async def owed(host: Host, source: str, entity: str = REFERENCE) -> list[str]:
    """The contracts of ``source`` whose balance (of the feed ``entity``) is owed."""
    async with host.db.reader() as s:
        rows = await s.execute(
            select(m.balance_owed.c.contract).where(m.balance_owed.c.source == source)
        )
        found = (_unmark(entity, r.contract) for r in rows)
        return sorted(k for k in found if k is not None)


async def settle(s: AsyncSession, source: str, entity: str, contracts: Sequence[str]) -> None:
    """Drop the marks of ``contracts``, in the transaction that stores their balances."""
    contracts = [_mark(entity, c) for c in contracts]
    for start in range(0, len(contracts), CHUNK):
        await s.execute(
            delete(m.balance_owed).where(
                m.balance_owed.c.source == source,
                m.balance_owed.c.contract.in_(contracts[start : start + CHUNK]),
            )
        )
