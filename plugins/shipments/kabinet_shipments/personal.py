"""What the shipments app keeps about a person (the ``personal_data`` hook).

Orders come from 1C and belong to the client company, not to a person. A person's own
rows are their edit and cancel requests (with their history), their last visit and
their registry exports. Removing them keeps each request (the order's history needs it:
what was asked, 1C's answer) with its author anonymised (``person_name`` emptied of the
name; ``person_id`` points at the anonymised account), and deletes the visit and the
exports with their files.
"""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING, Any

from sqlalchemy import delete, select, update

from kabinet.personal import PersonalData, Rows, rows
from kabinet_shipments.models import export, order, request, request_event, visit

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession

    from kabinet.host import Host

ERASED_NAME = "—"


def _count(result: Any) -> int:
    return int(getattr(result, "rowcount", 0) or 0)


def personal_data(host: Host) -> PersonalData:
    async def export_of(s: AsyncSession, person_id: int) -> dict[str, Rows]:
        mine = select(request.c.id).where(request.c.person_id == person_id)
        return {
            "shipments_request": rows(
                await s.execute(
                    select(
                        request.c.id,
                        order.c.number.label("order"),
                        request.c.kind,
                        request.c.status,
                        request.c.changes,
                        request.c.comment,
                        request.c.person_name,
                        request.c.answer,
                        request.c.created_at,
                        request.c.updated_at,
                    )
                    .join(order, order.c.id == request.c.order_id)
                    .where(request.c.person_id == person_id)
                    .order_by(request.c.id)
                )
            ),
            "shipments_request_event": rows(
                await s.execute(
                    select(request_event)
                    .where(request_event.c.request_id.in_(mine))
                    .order_by(request_event.c.id)
                )
            ),
            "shipments_visit": rows(
                await s.execute(
                    select(visit.c.previous, visit.c.current).where(visit.c.person_id == person_id)
                )
            ),
            "shipments_export": rows(
                await s.execute(
                    select(
                        export.c.format,
                        export.c.params,
                        export.c.status,
                        export.c.file_name,
                        export.c.created_at,
                        export.c.expires_at,
                    ).where(export.c.person_id == person_id)
                )
            ),
        }

    async def erase(s: AsyncSession, person_id: int) -> dict[str, int]:
        keys = (
            await s.scalars(
                select(export.c.file_key).where(
                    export.c.person_id == person_id, export.c.file_key.is_not(None)
                )
            )
        ).all()
        done = {
            "shipments_request": _count(
                await s.execute(
                    update(request)
                    .where(request.c.person_id == person_id)
                    .values(person_name=ERASED_NAME)
                )
            ),
            "shipments_visit": _count(
                await s.execute(delete(visit).where(visit.c.person_id == person_id))
            ),
            "shipments_export": _count(
                await s.execute(delete(export).where(export.c.person_id == person_id))
            ),
        }
        for key in keys:
            with contextlib.suppress(Exception):  # already gone: nothing left to erase
                await host.files.delete(key)
        return done

    return PersonalData(export=export_of, erase=erase)
