"""1C's answers to handed-over records, delivered to the sink each record named.

``Document_ЗапросКлиента`` read back by the delta feeds this app's own entity sink
:data:`REPLIES` (:class:`kabinet_integration.structs.Answer`: ``Статус``, ``Ответ``,
``Заявка_Key``, the 1C request's ``Ref_Key``). Each answer is looked up by its
``ИдентификаторПортала`` in the outbound queue and handed, in the sync's transaction, to
the entity sink its record named (``OutboundRecord.reply_to``), converted to that sink's
struct; what that sink refuses goes to the quarantine like any record. An answer to a
record this portal never handed over (another portal writing to the same 1C, staging
beside production) is not this portal's business: left alone, not quarantined. One whose
1C request is not the one this portal's record was created as (``Ref_Key``) is refused.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import msgspec
from sqlalchemy import select

from kabinet.contrib import EntitySink, SinkResult
from kabinet_integration import models as m
from kabinet_integration.mapping import ORDER, SINKS
from kabinet_integration.structs import Answer

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession

    from kabinet.host import Host

REPLIES = "integration.request_answer"
"""The sink ``Document_ЗапросКлиента`` feeds (``feeds.answer``)."""
CHUNK = 500


async def apply_answers(
    host: Host, session: AsyncSession, records: Sequence[Answer], *, notify: bool = True
) -> SinkResult:
    """Hand each answer to its record's ``reply_to`` sink; the counts are theirs."""
    from kabinet_integration.sync import integration

    latest = {r.portal_id: r for r in records}  # the last of a key in the batch wins
    keys = sorted(latest)
    conn = await session.connection()
    held: dict[str, Any] = {}
    t = m.outbound.c
    for i in range(0, len(keys), CHUNK):
        stmt = select(t.portal_id, t.reply_to, t.external_id).where(
            t.portal_id.in_(keys[i : i + CHUNK])
        )
        held.update({row.portal_id: row for row in await conn.execute(stmt)})
    rejected: dict[str, str] = {}
    unchanged = 0
    by_sink: dict[str, list[Answer]] = defaultdict(list)
    for key in keys:
        answer, row = latest[key], held.get(key)
        if row is None or not row.reply_to:
            unchanged += 1  # not handed over here: another portal's
            continue
        if answer.external_id and row.external_id and answer.external_id != row.external_id:
            rejected[key] = (
                f"answer of 1C request {answer.external_id!r} names portal record {key!r}, "
                f"which is 1C request {row.external_id!r}"
            )
            continue
        by_sink[row.reply_to].append(answer)
    sinks = await integration(host).sinks()
    totals = {"created": 0, "updated": 0, "hidden": 0, "unchanged": unchanged}
    for name, answers in by_sink.items():
        sink = sinks.get(name)
        if sink is None:
            for a in answers:
                rejected[a.portal_id] = f"the sink {name!r} that takes this answer is not installed"
            continue
        taken = set(sink.struct.__struct_fields__)  # the fields of the answer it takes
        converted = []
        for a in answers:
            given = {k: v for k, v in msgspec.structs.asdict(a).items() if k in taken}
            try:
                converted.append(msgspec.convert(given, sink.struct, strict=False))
            except msgspec.ValidationError as exc:
                rejected[a.portal_id] = f"{name}: {exc}"
        if not converted:
            continue
        result = await sink.apply(host, session, converted, notify=notify)
        for field in totals:
            totals[field] += getattr(result, field)
        rejected.update(result.rejected)
    return SinkResult(rejected=rejected, **totals)


def entity_sinks() -> list[EntitySink]:
    return [
        EntitySink(
            name=REPLIES,
            struct=Answer,
            apply=apply_answers,
            key="portal_id",
            # After every other entity read through the change register: an accepted new
            # order's answer names the order the same delta brought.
            depends_on=tuple(SINKS[e] for e in ORDER if e in SINKS and SINKS[e] != REPLIES),
            title={"ru": "Ответы 1С на запросы портала", "en": "1C's answers to portal requests"},
        )
    ]
