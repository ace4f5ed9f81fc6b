"""The connection the shipments app reads with (its services' registry, counts and money).

A request's unit of work (``host.db.unit()``) holds one pooled connection from its first
statement to its end. A read that took a second connection from the pool while the unit
held one would, with as many requests at once as the pool has connections, leave every
request holding one and waiting for another until the pool's timeout (seen on the order
card at 16 requests at once against a pool of 15). So a read joins the unit once the unit
holds its connection; before that (a registry page, the usual case) it borrows one for
the read alone, which is not kept through the page's rendering.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING

from sqlalchemy.ext.asyncio import AsyncConnection

from kabinet.db import current_unit

if TYPE_CHECKING:
    from kabinet.host import Host


@asynccontextmanager
async def connection(host: Host) -> AsyncIterator[AsyncConnection]:
    """A connection to read with: the unit of work's once it holds one (its reads see what
    it wrote), else one of the pool's for this block only."""
    unit = current_unit(host.db)
    if unit is not None and unit.open_session is not None and unit.open_session.in_transaction():
        async with host.db.reader() as session:
            yield await session.connection()
        return
    async with host.db.engine.connect() as conn:
        yield conn
