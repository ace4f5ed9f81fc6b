"""How the route matrix reaches the app's objects (the ``route_samples`` hook): a
quarantined record (its JSON API, its dismissal) and an outbound client request (its
retry). Each belongs to the organization of its counterparty, so a sample names a
counterparty of the asked organization (a manager of another organization must get 404
for it)."""

from __future__ import annotations

import contextlib
import uuid
from typing import TYPE_CHECKING

from sqlalchemy import insert

from kabinet.routematrix import RouteSample, SampleRequest
from kabinet_companies.errors import Conflict
from kabinet_companies.services import COMPANIES, SYSTEM, make_inn
from kabinet_integration import models as m

if TYPE_CHECKING:
    from kabinet.host import Host


async def _counterparty(host: Host, organization: int) -> str:
    """A counterparty of the organization (the one the shipments samples make too)."""
    ext = f"sample-cp-{organization}"
    svc = host.services.of(COMPANIES)
    await svc.ensure_organization(organization, f"Образец {organization}")
    with contextlib.suppress(Conflict):  # made by an earlier sample
        await svc.create_counterparty(
            SYSTEM,
            name=f"Контрагент {ext}",
            inn=make_inn(organization),
            organization_id=organization,
            external_id=ext,
        )
    return ext


async def _quarantined(host: Host, organization: int) -> SampleRequest:
    counterparty = await _counterparty(host, organization)
    now = host.clock.now()
    ref = str(uuid.uuid4())
    async with host.db.session() as s:
        item_id = await s.scalar(
            insert(m.quarantine)
            .values(
                source="sample",
                entity="order",
                ref=ref,
                payload={"Ref_Key": ref, "Контрагент_Key": counterparty},
                reason="missing required field `Договор` (contract)",
                state="open",
                attempts=1,
                counterparty=counterparty,
                created_at=now,
                updated_at=now,
            )
            .returning(m.quarantine.c.id)
        )
    return SampleRequest(params={"item_id": int(item_id or 0)})


async def _dismissed(host: Host, organization: int) -> SampleRequest:
    """Dismissing a quarantined record of the organization (staff of others: 404)."""
    made = await _quarantined(host, organization)
    return SampleRequest(params={**made.params, "action": "dismiss"})


async def _outbound(host: Host, organization: int) -> SampleRequest:
    """A client request of a counterparty of the organization that 1C refused (never
    written in 1C's names, so a retry marks it failed again without asking 1C)."""
    counterparty = await _counterparty(host, organization)
    now = host.clock.now()
    async with host.db.session() as s:
        item_id = await s.scalar(
            insert(m.outbound)
            .values(
                source="sample",
                portal_id=str(uuid.uuid4()),
                body={},
                state="failed",
                attempts=1,
                last_error="cannot write the request in 1C's names",
                counterparty=counterparty,
                created_at=now,
                updated_at=now,
            )
            .returning(m.outbound.c.id)
        )
    return SampleRequest(params={"item_id": int(item_id or 0)})


def samples() -> list[RouteSample]:
    return [
        RouteSample(path="/api/integration/quarantine/{item_id:int}", make=_quarantined),
        RouteSample(
            path="/integration/quarantine/{item_id:int}/{action:str}",
            make=_dismissed,
            methods=("POST",),
        ),
        RouteSample(
            path="/integration/outbound/{item_id:int}/retry", make=_outbound, methods=("POST",)
        ),
    ]
