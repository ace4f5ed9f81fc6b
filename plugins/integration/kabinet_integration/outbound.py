"""Outbound records carried to the production system, once: the public contract.

Any plugin hands over a record (:class:`kabinet_integration.structs.OutboundRecord`) in
its own transaction through the :data:`kabinet_integration.services.OUTBOUND` service
(:meth:`Outbound.hand_over`); the integration app names no plugin. The record is written
in the source's 1C names at once (a row of the outbound queue, in the caller's
transaction, so a rolled-back transaction hands over nothing) and a send job tries it
soon after. A sender **claims** a row before it sends it (one ``UPDATE … WHERE state is
due … RETURNING``: state ``sending`` with a lease in ``next_attempt_at``), so each row has
one sender whatever the number of jobs, workers and processes; a sender that dies leaves
its claim to expire, and the next one takes the row again. Sending looks the record up by
its key (``ИдентификаторПортала``, a UUID unique across installations) first, so a retry
after a lost answer, or after a dead sender, creates no duplicate; a failure waits with
exponential backoff (a schedule retries what is due) and is shown to staff. The answer
comes back by the next delta into :mod:`kabinet_integration.replies`, which hands it to
the sink the record named (``reply_to``).

What is written is in the source's 1C names: the request's kinds and statuses as
configured (``values.request``), ``ИзмененныеПоля`` with the target entity's 1C attribute
names of the read side's mapping (``fields.order``) and 1C's value formats, the ``Date``
in 1C's local time, ``КонтактФИО`` and ``КонтактEmail``.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import msgspec
from sqlalchemy import and_, insert, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from kabinet.jobs import backoff
from kabinet_integration import models as m
from kabinet_integration import owners
from kabinet_integration.connectors import SourceError
from kabinet_integration.files import target_source
from kabinet_integration.mapping import EMPTY_GUID, SINKS, MappingError, Names, changes_to_onec
from kabinet_integration.settings import Settings
from kabinet_integration.structs import OutboundRecord

if TYPE_CHECKING:
    from kabinet.host import Host

SEND_ACTOR = "integration.send_requests"


class Outbound:
    """The :data:`kabinet_integration.services.OUTBOUND` service: records handed over
    for 1C, each carried exactly once.

    Example (a plugin's own service, in its own transaction)::

        import uuid
        from kabinet_integration.services import OUTBOUND
        from kabinet_integration.structs import OutboundRecord

        async with host.db.session() as session:
            ...  # the plugin's own rows
            await host.services.of(OUTBOUND).hand_over(
                session,
                OutboundRecord(
                    kind="new_order",
                    portal_id=str(uuid.uuid4()),  # keep it: the answer names it
                    reply_to="booking.request_answer",  # an entity sink of yours
                    fields={
                        "counterparty": "<Контрагент_Key>",
                        "contract": "<Договор_Key>",
                        "origin": "Москва, склад 1",
                        "destination": "Казань",
                        "loading_date": "2026-02-01",
                        "cargo_name": "Стекло",
                        "cargo_weight": 1200.0,
                    },
                    description="Новая заявка с портала",
                    contact_name="Иванов Иван",
                    contact_email="ivanov@example.test",
                ),
            )

    The answer arrives by a later delta as :class:`kabinet_integration.structs.Answer`
    records (converted to the ``reply_to`` sink's struct) in the sync's transaction:
    ``accepted`` with ``order`` (the order 1C created, which the same delta brought to
    the order sink first) or ``rejected`` with ``answer`` (1C's reason)."""

    def __init__(self, host: Host) -> None:
        self.host = host

    def connected(self) -> bool:
        """Whether a source takes records (``[integration] write_back_source``)."""
        return target_source(self.host) is not None

    async def hand_over(
        self, session: AsyncSession, record: OutboundRecord | Mapping[str, Any]
    ) -> bool:
        """Queue ``record`` in ``session``'s transaction; True when queued, False when its
        ``portal_id`` was handed over before (a no-op) or no source takes records.

        A plugin that does not require this app passes the same fields as a mapping."""
        if not isinstance(record, OutboundRecord):
            record = msgspec.convert(dict(record), OutboundRecord)
        return await _queue(self.host, session, record)


async def body_of(host: Host, source: str, record: OutboundRecord) -> dict[str, Any]:
    """The ``Document_ЗапросКлиента`` to create, in this source's names and formats;
    raises MappingError when a field cannot be named in this 1C."""
    from kabinet_integration.sync import integration

    settings = host.plugin_settings("integration", Settings).sources[source]
    names = Names.of(settings)
    f = names.fields["request"]
    feed = getattr(names, "feeds", {}).get(record.entity)  # the source's feed, if any
    sink_name = feed.sink if feed is not None else SINKS.get(record.entity, "")
    sink = (await integration(host).sinks()).get(sink_name)
    if sink is None:
        raise MappingError(f"{record.entity}: no entity sink gives its fields' types")
    changes = fields_to_onec(names, sink.struct, record.fields, record.entity)
    kind = names.to_onec("request", "kind", record.kind)
    if kind == record.kind and kind not in names.values.get("request", {}).get("kind", {}):
        raise MappingError(f"kind: no 1C value is configured for {record.kind!r} (request.kind)")
    return {
        f["date"]: record.asked_at or _local_now(host),
        f["order"]: record.target or EMPTY_GUID,
        f["kind"]: kind,
        f["description"]: record.description,
        f["changes"]: json.dumps(changes, ensure_ascii=False),
        f["contact_name"]: record.contact_name,
        f["contact_email"]: record.contact_email,
        f["portal_id"]: record.portal_id,
        f["status"]: names.to_onec("request", "status", "new"),
    }


def fields_to_onec(
    names: Names, struct: type[Any], fields: Mapping[str, Any], entity: str
) -> dict[str, Any]:
    """``ИзмененныеПоля``: the fields through the mapping (:func:`changes_to_onec`), a
    tabular section (a list of rows, each a mapping of the line's portal fields) as an
    array of rows under the section's 1C names (``fields.<entity>.<section>``)."""
    sections = _sections(struct)
    out = changes_to_onec(
        names, struct, {k: v for k, v in fields.items() if k not in sections}, entity
    )
    for name, rows in fields.items():
        if name not in sections:
            continue
        target = names.fields.get(entity, {}).get(name)
        if target is None:
            raise MappingError(f"{name}: no 1C attribute is configured for it ({entity}.{name})")
        if not isinstance(rows, list | tuple) or not all(isinstance(r, Mapping) for r in rows):
            raise MappingError(f"{name}: a tabular section is a list of rows")
        line = f"{entity}.{name}"
        out[target] = [changes_to_onec(names, sections[name], row, line) for row in rows]
    return out


def _sections(struct: type[Any]) -> dict[str, type[Any]]:
    """The struct's tabular sections: field -> the struct of its lines."""
    info = msgspec.inspect.type_info(struct)
    assert isinstance(info, msgspec.inspect.StructType)
    found: dict[str, type[Any]] = {}
    for f in info.fields:
        kinds = f.type.types if isinstance(f.type, msgspec.inspect.UnionType) else (f.type,)
        for kind in kinds:
            if not isinstance(kind, msgspec.inspect.VarTupleType | msgspec.inspect.ListType):
                continue
            if isinstance(kind.item_type, msgspec.inspect.StructType):
                found[f.name] = kind.item_type.cls
    return found


def _local_now(host: Host) -> str:
    """Now in 1C's local time (a record handed over without its time)."""
    from zoneinfo import ZoneInfo

    from kabinet.services import ServiceMissing
    from kabinet_shipments.services import SHIPMENTS

    try:
        zone = host.services.of(SHIPMENTS).settings.source_timezone
    except ServiceMissing:  # a host not started (its relay runs in a started one)
        zone = host.settings.host.timezone
    local = host.clock.now().astimezone(ZoneInfo(zone))
    return local.replace(tzinfo=None, microsecond=0).isoformat()


async def _queue(host: Host, session: AsyncSession, record: OutboundRecord) -> bool:
    """Queue the record (once per portal id) in the caller's transaction."""
    source = target_source(host)
    if source is None:
        return False
    found = await session.execute(
        select(m.outbound.c.id).where(
            m.outbound.c.source == source, m.outbound.c.portal_id == record.portal_id
        )
    )
    if found.first() is not None:
        return False
    now = host.clock.now()
    try:
        body, state, error = await body_of(host, source, record), "pending", None
    except MappingError as exc:
        # Not sent at all rather than sent with names 1C ignores: staff see why.
        body, state, error = {}, "failed", f"cannot write the request in 1C's names: {exc}"
    counterparty = await owners.of_request(session, record.fields, record.target)
    await session.execute(
        insert(m.outbound).values(
            source=source,
            portal_id=record.portal_id,
            reply_to=record.reply_to,
            body=body,
            state=state,
            attempts=0,
            last_error=error,
            counterparty=counterparty,
            next_attempt_at=now,
            created_at=now,
            updated_at=now,
        )
    )
    # After the commit, most likely; the schedule picks up anything it misses.
    await host.jobs.send_later(1.0, SEND_ACTOR, {})
    return True


def _due(now: dt.datetime, force: bool) -> Any:
    """Rows a sender may claim now: pending and due, or claimed by a sender whose lease
    has run out (it died); staff's "retry" also takes a failed one."""
    t = m.outbound.c
    expired = and_(t.state == "sending", t.next_attempt_at <= now)
    if force:
        return or_(t.state.in_(("pending", "failed")), expired)
    return or_(and_(t.state == "pending", t.next_attempt_at <= now), expired)


async def _claim(host: Host, row_id: int, *, force: bool) -> Any:
    """The row, claimed by this sender until its lease ends; None if another has it.

    One statement: on PostgreSQL a second sender's UPDATE waits for the first's and then
    finds the row no longer due; on SQLite writers take turns."""
    settings = host.plugin_settings("integration", Settings)
    now = host.clock.now()
    t = m.outbound.c
    async with host.db.session() as s:
        claimed = await s.execute(
            update(m.outbound)
            .where(t.id == row_id, _due(now, force))
            .values(
                state="sending",
                attempts=t.attempts + 1,
                next_attempt_at=now + dt.timedelta(seconds=settings.outbound_claim_seconds),
                updated_at=now,
            )
            .returning(*m.outbound.c)
        )
        return claimed.first()


async def send_due(host: Host, *, force_ids: tuple[int, ...] = ()) -> int:
    """Send every request whose time has come and that no other sender holds; returns how
    many went through."""
    from kabinet_integration.sync import integration

    settings = host.plugin_settings("integration", Settings)
    now = host.clock.now()
    async with host.db.reader() as s:
        stmt = select(m.outbound.c.id).where(_due(now, bool(force_ids)))
        if force_ids:
            stmt = stmt.where(m.outbound.c.id.in_(force_ids))
        ids = list((await s.execute(stmt.order_by(m.outbound.c.id))).scalars())
    sent = 0
    connectors: dict[str, Any] = {}
    try:
        for row_id in ids:
            row = await _claim(host, row_id, force=bool(force_ids))
            if row is None:
                continue  # another sender took it meanwhile
            if not row.body:  # never written in 1C's names (_queue said why)
                async with host.db.session() as s:
                    await s.execute(
                        update(m.outbound).where(m.outbound.c.id == row.id).values(state="failed")
                    )
                continue
            if row.source not in connectors:
                connectors[row.source] = await integration(host).connector(row.source)
            conn = connectors[row.source]
            try:
                ref = await conn.find_request(row.portal_id)
                if ref is None:
                    ref = await conn.create_request(row.body)
            except SourceError as exc:
                failed = row.attempts >= settings.outbound_max_attempts
                later = host.clock.now()
                async with host.db.session() as s:
                    await s.execute(
                        update(m.outbound)
                        .where(m.outbound.c.id == row.id, m.outbound.c.state == "sending")
                        .values(
                            state="failed" if failed else "pending",
                            last_error=str(exc)[:2000],
                            next_attempt_at=later + dt.timedelta(seconds=backoff(row.attempts)),
                            updated_at=later,
                        )
                    )
                continue
            async with host.db.session() as s:
                await s.execute(
                    update(m.outbound)
                    .where(m.outbound.c.id == row.id)
                    .values(
                        state="sent",
                        external_id=ref,
                        last_error=None,
                        updated_at=host.clock.now(),
                    )
                )
            sent += 1
    finally:
        for conn in connectors.values():
            await conn.aclose()
    return sent
