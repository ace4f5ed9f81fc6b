"""The invoices sink and the sink of answers to client requests."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from sqlalchemy import insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from kabinet.contrib import Rejection, SinkResult
from kabinet_companies.services import COUNTERPARTY_ROWS
from kabinet_shipments import events as ev
from kabinet_shipments import models as m
from kabinet_shipments.labels import REQUEST_STATUS
from kabinet_shipments.records import (
    InvoiceRecord,
    RequestAnswerRecord,
)

if TYPE_CHECKING:
    from kabinet.host import Host

from kabinet_shipments.sink_common import (
    Across,
    _rows,
    _update_by_id,
    across_reasons,
    chunks,
    last_of,
    references,
    touch_feed,
)


def _invoice_values(
    r: InvoiceRecord, cp_id: int, contract_id: int | None, order_id: int | None, now: dt.datetime
) -> dict[str, Any]:
    return {
        "external_id": r.external_id,
        "counterparty_id": cp_id,
        "contract_id": contract_id,
        "order_id": order_id,
        "number": r.number,
        "date": r.date,
        "amount": r.amount,
        "paid": r.paid,
        "currency": r.currency,
        "due_date": r.due_date,
        "payment_status": r.payment_status,
        "hidden": r.deleted,
        "digest": r.digest(),
        "updated_at": now,
    }


def invoice_event(
    row: Any, organization_id: int, *, notify: bool = True, changed_at: str = ""
) -> ev.InvoiceEvent:
    return ev.InvoiceEvent(
        invoice_id=row.id,
        number=row.number,
        organization_id=organization_id,
        amount=f"{row.amount:.2f}",
        debt=f"{row.amount - row.paid:.2f}",
        currency=row.currency,
        date=row.date.isoformat(),
        due_date=row.due_date.isoformat() if row.due_date else "",
        notify=notify,
        changed_at=changed_at,
    )


def _overdue(r: InvoiceRecord, today: dt.date) -> bool:
    """Unpaid past its due date (the overdue job's rule)."""
    return r.due_date is not None and r.due_date < today and r.paid < r.amount


async def apply_invoices(
    host: Host, session: AsyncSession, records: Sequence[InvoiceRecord], *, notify: bool = True
) -> SinkResult:
    conn = await session.connection()
    now = host.clock.now()
    today = now.astimezone(ZoneInfo(host.settings.host.timezone)).date()
    batch = last_of(records, "external_id")
    refs = await references(conn, batch)
    orders = await _rows(
        conn,
        m.order,
        "external_id",
        sorted({r.order for r in batch if r.order}),
        "id",
        "external_id",
        "counterparty_id",
    )
    stored = await _rows(
        conn,
        m.invoice,
        "external_id",
        [r.external_id for r in batch],
        "id",
        "external_id",
        "digest",
        "hidden",
    )
    new: list[dict[str, Any]] = []
    changed: list[dict[str, Any]] = []
    rejected: dict[str, str] = {}
    across: list[Across] = []
    unchanged = hidden = 0
    for r in batch:
        resolved = refs.resolve(r.external_id, r.counterparty, r.contract, rejected, across)
        if resolved is None:
            continue
        cp, contract = resolved
        order = orders.get(r.order) if r.order else None
        if r.order and order is None and not r.deleted:
            # Not received yet: set aside and tried again (linked, checked) once it is.
            rejected[r.external_id] = Rejection(
                f"unknown order {r.order!r} (not received yet)", "unknown_order", value=r.order
            )
            continue
        if order is not None and order.counterparty_id != cp.id:
            across.append(
                (r.external_id, "order", str(r.order), order.counterparty_id, r.counterparty)
            )
            continue
        values = _invoice_values(
            r, cp.id, contract.id if contract else None, order.id if order else None, now
        )
        row = stored.get(r.external_id)
        if row is None:
            if not r.deleted:
                # Overdue before a first load or backfill brought it: no reminder either.
                quiet = not notify and _overdue(r, today)
                new.append({**values, "created_at": now, "overdue_at": now if quiet else None})
        elif row.digest == values["digest"]:
            unchanged += 1
        else:
            hidden += int(r.deleted and not row.hidden)
            changed.append({"_id": row.id, **values})
    if new:
        org_of = {cp.id: cp.organization_id for cp in refs.counterparties.values()}
        for part in chunks(new):
            result = await conn.execute(
                insert(m.invoice).returning(
                    m.invoice.c.id,
                    m.invoice.c.number,
                    m.invoice.c.amount,
                    m.invoice.c.paid,
                    m.invoice.c.currency,
                    m.invoice.c.date,
                    m.invoice.c.due_date,
                    m.invoice.c.counterparty_id,
                    sort_by_parameter_order=True,
                ),
                part,
            )
            for row in result.all():
                organization_id = org_of.get(row.counterparty_id)
                if organization_id is not None:
                    await host.events.publish(
                        session,
                        ev.INVOICE_CREATED,
                        invoice_event(row, organization_id, notify=notify),
                    )
    if changed:
        await conn.execute(_update_by_id(m.invoice, changed[0]), changed)
    rejected.update(await across_reasons(conn, across))
    await touch_feed(conn, "invoice", now)
    return SinkResult(
        created=len(new),
        updated=len(changed) - hidden,
        hidden=hidden,
        unchanged=unchanged,
        rejected=rejected,
    )


# -- answers to client requests ----------------------------------------------------------------


async def apply_answers(
    host: Host,
    session: AsyncSession,
    records: Sequence[RequestAnswerRecord],
    *,
    notify: bool = True,
) -> SinkResult:
    """The production system's answer to a request: recorded, shown, told to the client."""
    conn = await session.connection()
    now = host.clock.now()
    batch = last_of(records, "portal_id")
    keys = {r.portal_id: _portal_key(r.portal_id) for r in batch}
    rows = await _rows(conn, m.request, "portal_key", sorted({k for k in keys.values() if k}))
    ids = [int(r.portal_id) for r in batch if keys[r.portal_id] is None and r.portal_id.isdigit()]
    legacy = await _rows(conn, m.request, "id", sorted(ids))
    rejected: dict[str, str] = {}
    updated = unchanged = 0
    for r in batch:
        key = keys[r.portal_id]
        if key is not None:
            row = rows.get(key)
            if row is None:
                # Another portal's request on the same 1C (staging beside production), or
                # one this portal no longer holds: not this portal's business.
                unchanged += 1
                continue
        else:
            # A row id, the key before keys were UUIDs: every portal has a request "1", so
            # only the request 1C already linked to this very document takes the answer.
            row = legacy.get(int(r.portal_id)) if r.portal_id.isdigit() else None
            if row is None or not r.external_id or r.external_id != row.external_id:
                rejected[r.portal_id] = Rejection(
                    f"ИдентификаторПортала {r.portal_id!r} is not a request key of this portal",
                    "not_our_request",
                    value=r.portal_id,
                )
                continue
        if r.external_id and row.external_id and r.external_id != row.external_id:
            # The answer of one 1C request naming another one's portal request (of
            # another order, perhaps another company): not written on it.
            rejected[r.portal_id] = Rejection(
                f"answer of 1C request {r.external_id!r} names portal request "
                f"{r.portal_id!r}, which is 1C request {row.external_id!r}",
                "answer_mismatch",
                external_id=r.external_id,
                portal_id=r.portal_id,
                linked=str(row.external_id),
            )
            continue
        status = row.status if r.status == "new" else r.status
        if (status, r.answer, r.external_id or row.external_id) == (
            row.status,
            row.answer,
            row.external_id,
        ):
            unchanged += 1
            continue
        await conn.execute(
            update(m.request)
            .where(m.request.c.id == row.id)
            .values(
                status=status,
                answer=r.answer,
                external_id=r.external_id or row.external_id,
                updated_at=now,
            )
        )
        updated += 1
        if (status, r.answer) == (row.status, row.answer):
            continue  # only the production system's id arrived
        await conn.execute(
            insert(m.request_event).values(request_id=row.id, status=status, text=r.answer, at=now)
        )
        await _publish_answer(host, session, row, status, r.answer, notify=notify)
    await touch_feed(conn, "request", now)
    return SinkResult(updated=updated, unchanged=unchanged, rejected=rejected)


def _portal_key(value: str) -> str | None:
    """A request's portal key (a UUID, as written) from an answer; None if it is none."""
    try:
        return str(uuid.UUID(value))
    except ValueError:
        return None


async def _publish_answer(
    host: Host, session: AsyncSession, row: Any, status: str, answer: str, *, notify: bool = True
) -> None:
    conn = await session.connection()
    found = (
        await conn.execute(
            select(m.order.c.number, COUNTERPARTY_ROWS.c.organization_id)
            .join(COUNTERPARTY_ROWS, COUNTERPARTY_ROWS.c.id == m.order.c.counterparty_id)
            .where(m.order.c.id == row.order_id)
        )
    ).one()
    if found.organization_id is None:
        return
    await host.events.publish(
        session,
        ev.REQUEST_ANSWERED,
        ev.RequestAnswered(
            request_id=row.id,
            order_id=row.order_id,
            order_number=found.number,
            organization_id=found.organization_id,
            person_id=row.person_id,
            kind=row.kind,
            status=status,
            status_ru=REQUEST_STATUS[status]["ru"],
            status_en=REQUEST_STATUS[status]["en"],
            answer=answer,
            notify=notify,
        ),
    )
