"""How the route matrix reaches the app's objects (the ``route_samples`` hook): a
quarantined record, for its JSON API. A record is 1C's object as it came, addressed to no
organization (staff see all of it, as on the quarantine page)."""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING

from sqlalchemy import insert

from kabinet.routematrix import RouteSample, SampleRequest
from kabinet_integration import models as m

if TYPE_CHECKING:
    from kabinet.host import Host


async def _quarantined(host: Host, organization: int) -> SampleRequest:
    now = host.clock.now()
    ref = str(uuid.uuid4())
    async with host.db.session() as s:
        item_id = await s.scalar(
            insert(m.quarantine)
            .values(
                source="sample",
                entity="order",
                ref=ref,
                payload={"Ref_Key": ref},
                reason="missing required field `Контрагент` (counterparty)",
                state="open",
                attempts=1,
                created_at=now,
                updated_at=now,
            )
            .returning(m.quarantine.c.id)
        )
    return SampleRequest(params={"item_id": int(item_id or 0)})


def samples() -> list[RouteSample]:
    return [
        RouteSample(
            path="/api/integration/quarantine/{item_id:int}", make=_quarantined, addressed=False
        )
    ]
