"""What the booking app keeps about a person (the ``personal_data`` hook).

A request belongs to its organization (the order it becomes is the company's), so it is
kept when its author is removed, pointing at the anonymised account, like shipments'
requests; the app holds no copy of the author's name, e-mail or phone. The contacts a form
names (at loading, of the shipper) are the company's business contacts, kept with the
request. A person's own rows are the API answers kept for their retries (idempotency
keys): exported, and deleted when they are removed.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sqlalchemy import delete, select

from kabinet.personal import PersonalData, Rows, rows
from kabinet_booking import models as m

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession

    from kabinet.host import Host


def personal_data(host: Host) -> PersonalData:
    async def export_of(s: AsyncSession, person_id: int) -> dict[str, Rows]:
        r = m.request.c
        mine = select(r.id).where(r.person_id == person_id)
        return {
            "booking_request": rows(
                await s.execute(
                    select(
                        r.id,
                        r.organization_id,
                        r.state,
                        r.summary,
                        r.fields,
                        r.reason,
                        r.order_number,
                        r.source,
                        r.created_at,
                        r.updated_at,
                    )
                    .where(r.person_id == person_id)
                    .order_by(r.id)
                )
            ),
            "booking_step": rows(
                await s.execute(
                    select(m.step.c.request_id, m.step.c.state, m.step.c.comment, m.step.c.at)
                    .where((m.step.c.person_id == person_id) | m.step.c.request_id.in_(mine))
                    .order_by(m.step.c.id)
                )
            ),
            "booking_idempotency": rows(
                await s.execute(
                    select(m.idempotency.c.key, m.idempotency.c.status, m.idempotency.c.created_at)
                    .where(m.idempotency.c.owner == f"person:{person_id}")
                    .order_by(m.idempotency.c.id)
                )
            ),
        }

    async def erase(s: AsyncSession, person_id: int) -> dict[str, int]:
        done: Any = await s.execute(
            delete(m.idempotency).where(m.idempotency.c.owner == f"person:{person_id}")
        )
        return {"booking_idempotency": int(getattr(done, "rowcount", 0) or 0)}

    return PersonalData(export=export_of, erase=erase)
