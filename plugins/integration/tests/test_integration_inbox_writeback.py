"""The push inbox over HTTP, and client requests carried to 1C with retries."""

from __future__ import annotations

import types

import httpx
import pytest
from integration_support import count

from kabinet.clock import FrozenClock
from kabinet.host import Host
from kabinet.web import build_app
from kabinet_integration import models as m
from kabinet_integration.outbound import send_due
from kabinet_integration.services import OUTBOUND
from kabinet_integration.structs import OutboundRecord
from kabinet_integration.sync import integration
from kabinet_integration_testing import Generated, OneCServer
from kabinet_shipments import models as sm
from kabinet_shipments.requests_writeback import on_request_created

pytestmark = pytest.mark.smoke


async def test_a_repeated_push_batch_is_a_no_op(
    host: Host, onec: OneCServer, generated: Generated
) -> None:
    data = onec.data
    changes = [
        {"type": "Catalog_Контрагенты", "ref": r, "object": data.get("Catalog_Контрагенты", r)}
        for r in generated.counterparties
    ] + [
        {
            "type": "Document_ЗаявкаНаПеревозку",
            "ref": r,
            "object": {
                **(data.get("Document_ЗаявкаНаПеревозку", r) or {}),
                "Договор_Key": "00000000-0000-0000-0000-000000000000",
            },
        }
        for r in generated.orders
    ]
    body = {"batch_id": "b-1", "changes": changes}
    app = await build_app(host)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://127.0.0.1:8000"
    ) as client:
        refused = await client.post("/api/integration/inbox/onec", json=body)
        assert refused.status_code == 401
        auth = {"Authorization": "Bearer secret-token"}
        first = await client.post("/api/integration/inbox/onec", json=body, headers=auth)
        assert first.status_code == 200, first.text
        assert first.json()["duplicate"] is False
        assert first.json()["applied"] == 15
        again = await client.post("/api/integration/inbox/onec", json=body, headers=auth)
        assert again.status_code == 200
        assert again.json()["duplicate"] is True
        bad = await client.post("/api/integration/inbox/onec", json={"changes": 1}, headers=auth)
        assert bad.status_code == 400
    assert await count(host, sm.order) == 12
    assert await count(host, m.run, m.run.c.mode == "push") == 1


def created(portal_id: str, order_ref: str) -> types.SimpleNamespace:
    payload = types.SimpleNamespace(
        portal_id=portal_id,
        order_external_id=order_ref,
        kind="cancel",
        changes={},
        comment="Груз не готов",
        person_name="Иванов Иван",
    )
    return types.SimpleNamespace(payload=payload)


async def test_write_back_retries_with_backoff_and_creates_no_duplicate(
    host: Host, onec: OneCServer, generated: Generated, clock: FrozenClock
) -> None:
    async with host.db.session() as s:
        await on_request_created(host, created("41", generated.orders[0]), s)  # type: ignore[arg-type]
        await on_request_created(host, created("41", generated.orders[0]), s)  # type: ignore[arg-type]
    assert await count(host, m.outbound) == 1
    onec.fault("status", status=500, match="Document_ЗапросКлиента")
    assert await send_due(host) == 0
    async with host.db.reader() as s:
        row = (await s.execute(m.outbound.select())).one()
    assert (row.state, row.attempts) == ("pending", 1)
    assert "500" in row.last_error
    assert await send_due(host) == 0  # not due yet: backoff
    # The answer of the next try is lost after 1C created it: the retry finds it.
    onec.fault("lost", match="POST")  # no effect on GET look-ups
    clock.advance(300)
    assert await send_due(host) == 0
    written = list(onec.data.sets["Document_ЗапросКлиента"].values())
    assert len(written) == 1  # 1C has it; the portal does not know
    async with host.db.reader() as s:
        assert (await s.execute(m.outbound.select())).one().state == "pending"
    clock.advance(1800)
    await send_due(host)
    written = list(onec.data.sets["Document_ЗапросКлиента"].values())
    assert len(written) == 1
    assert written[0]["ИдентификаторПортала"] == "41"
    assert written[0]["ВидЗапроса"] == "Отмена"
    async with host.db.reader() as s:
        row = (await s.execute(m.outbound.select())).one()
    assert row.state == "sent"
    assert row.external_id == written[0]["Ref_Key"]


async def test_the_answer_comes_back_by_the_next_delta(
    host: Host, onec: OneCServer, generated: Generated
) -> None:
    svc = integration(host)
    assert (await svc.run("onec")).state == "succeeded"
    async with host.db.reader() as s:
        order_id = (
            await s.execute(
                sm.order.select()
                .with_only_columns(sm.order.c.id)
                .where(sm.order.c.external_id == generated.orders[0])
            )
        ).scalar_one()
    now = host.clock.now()
    async with host.db.session() as s:
        request_id, key = (
            await s.execute(
                sm.request.insert()
                .values(
                    order_id=order_id,
                    kind="cancel",
                    status="new",
                    changes={},
                    comment="",
                    answer="",
                    created_at=now,
                    updated_at=now,
                )
                .returning(sm.request.c.id, sm.request.c.portal_key)
            )
        ).one()
        # Handed over through the public contract, naming the sink of its answer.
        assert await host.services.of(OUTBOUND).hand_over(
            s,
            OutboundRecord(
                kind="cancel",
                portal_id=key,
                reply_to="shipments.request_answer",
                target=generated.orders[0],
            ),
        )
    onec.data.tick(30)
    onec.data.put(
        "Document_ЗапросКлиента",
        {
            "Number": "ЗК-1",
            "Date": "2025-03-01T09:00:30",
            "Заявка_Key": generated.orders[0],
            "ВидЗапроса": "Отмена",
            "ИдентификаторПортала": key,
            "Статус": "Принят",
            "Ответ": "Заявка отменена",
        },
    )
    out = await svc.run("onec")
    assert out.state == "succeeded", out.error
    async with host.db.reader() as s:
        row = (await s.execute(sm.request.select().where(sm.request.c.id == request_id))).one()
    assert (row.status, row.answer) == ("accepted", "Заявка отменена")
