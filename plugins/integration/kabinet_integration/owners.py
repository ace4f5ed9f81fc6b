"""Whose records the outbound queue and the file fetches hold: the 1C counterparty each
belongs to, stored beside it (``counterparty``) so that staff see only those of the
organizations they may see (:class:`kabinet_integration.services.QuarantineScope`).

A client request carried to 1C names its counterparty among its fields (a new order) or
names the order it is about (an edit, a cancellation); a file belongs to the order or the
invoice that holds it. An order's or an invoice's counterparty is the one the sync
applied it with: the ``counterparty`` its sink requires, remembered in
``integration_known`` (``identity``)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from sqlalchemy import select

from kabinet_integration import models as m
from kabinet_integration.mapping import counterparty_ref
from kabinet_integration.store import CHUNK, batches

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession

FIELD = "counterparty"
"""The sinks' field (portal name) that holds a record's counterparty."""


async def counterparties(session: AsyncSession, refs: Iterable[str]) -> dict[str, str]:
    """The counterparty (its 1C id) of each object the sync applied, by the object's 1C id
    (``refs``: orders, invoices); an object never applied, or whose sink requires no
    counterparty, is left out."""
    wanted = sorted({r for r in refs if r})
    found: dict[str, str] = {}
    for part in batches(wanted, CHUNK):
        rows = await session.execute(
            select(m.known.c.ref, m.known.c.identity).where(m.known.c.ref.in_(part))
        )
        for ref, identity in rows:
            named = counterparty_ref(_field(identity))
            if named is not None:
                found.setdefault(ref, named)
    return found


def _field(identity: Any) -> Any:
    return identity.get(FIELD) if isinstance(identity, Mapping) else None


async def of_request(session: AsyncSession, fields: Mapping[str, Any], target: str) -> str | None:
    """The counterparty of a client request: the one its fields name, else the one of the
    order it is about (``target``)."""
    named = counterparty_ref(fields.get(FIELD))
    if named is not None or not counterparty_ref(target):
        return named
    return (await counterparties(session, [target])).get(target)
