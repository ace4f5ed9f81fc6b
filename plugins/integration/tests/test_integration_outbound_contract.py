"""The public outbound contract (issue 18.2): a plugin that is none of the five hands a new
order over through ``OUTBOUND`` in its own transaction; it reaches 1C exactly once (two
portals sending at once, an answer lost after 1C created the document), the local 1C
accepts it and creates the order, which arrives by the delta, and 1C's answer reaches
the plugin's own sink; what 1C cannot apply comes back rejected with its reason; a
renamed configuration works by settings alone."""

from __future__ import annotations

import asyncio
import json
import types
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from typing import Any

import msgspec
import pytest
from integration_support import wipe
from sqlalchemy import select

from kabinet.clock import FrozenClock
from kabinet.contrib import EntitySink, Manifest, SinkResult
from kabinet.hookspecs import hookimpl
from kabinet.host import Host
from kabinet.plugins import Candidate, builtin_candidates, entry_point_candidates
from kabinet.testkit import Portal
from kabinet_integration import models as m
from kabinet_integration.outbound import send_due
from kabinet_integration.services import OUTBOUND
from kabinet_integration.structs import OutboundRecord
from kabinet_integration.sync import integration
from kabinet_integration_testing import Generated, OneCData, OneCServer, Renaming, generate
from kabinet_shipments import models as sm

pytestmark = pytest.mark.smoke

REQUESTS = "Document_ЗапросКлиента"
ORDERS = "Document_ЗаявкаНаПеревозку"
CONTRACTS = "Catalog_ДоговорыКонтрагентов"
EMPTY = "00000000-0000-0000-0000-000000000000"
REPLY_TO = "intake.request_answer"


class IntakeAnswer(msgspec.Struct, kw_only=True, frozen=True):
    """What the test plugin takes of 1C's answer."""

    portal_id: str
    status: str
    answer: str = ""
    order: str | None = None


def intake_plugin(received: list[IntakeAnswer]) -> types.ModuleType:
    """A plugin of the test's own that requires the integration app and names a sink of
    its own for 1C's answers; every answer it gets is noted in ``received``."""
    module = types.ModuleType("intake_test_plugin")

    async def apply(
        host: Host, session: Any, records: Sequence[IntakeAnswer], *, notify: bool = True
    ) -> SinkResult:
        received.extend(records)
        return SinkResult(updated=len(records))

    @hookimpl
    def manifest() -> Manifest:
        return Manifest(
            name="intake",
            version="1.0",
            title={"ru": "Приём заявок", "en": "Intake"},
            requires=("integration",),
        )

    @hookimpl
    def entity_sinks(host: Host) -> list[EntitySink]:
        return [EntitySink(name=REPLY_TO, struct=IntakeAnswer, apply=apply, key="portal_id")]

    module.manifest = manifest  # type: ignore[attr-defined]
    module.entity_sinks = entity_sinks  # type: ignore[attr-defined]
    return module


async def hand_over(host: Host, fields: dict[str, Any], **extra: Any) -> str:
    """The plugin's own service: a new order handed over in its transaction; its key."""
    key = str(uuid.uuid4())
    extra.setdefault("reply_to", REPLY_TO)
    async with host.db.session() as session:
        queued = await host.services.of(OUTBOUND).hand_over(
            session,
            OutboundRecord(
                kind="new_order",
                portal_id=key,
                fields=fields,
                description="Новая заявка с портала",
                contact_name="Иванов Иван",
                contact_email="ivanov@example.test",
                asked_at="2026-01-15T12:00:00",
                **extra,
            ),
        )
    assert queued
    return key


PortalMaker = Callable[..., Awaitable[Portal]]


@pytest.fixture
async def intake(
    make_portal: Callable[..., Awaitable[Portal]], onec: OneCServer
) -> AsyncIterator[tuple[PortalMaker, list[IntakeAnswer]]]:
    """Portals with the intake plugin (through the harness), on the local 1C."""
    received: list[IntakeAnswer] = []
    plugin = intake_plugin(received)
    made: list[Portal] = []

    async def make(source: dict[str, Any] | None = None) -> Portal:
        onec_source = {
            "base_url": onec.base_url,
            "username": "portal",
            "password": "пароль",
            "rate_per_second": 0,
            "timeout_seconds": 2,
            "retry_seconds": 0.05,
            **(source or {}),
        }
        found = await make_portal(
            candidates=[
                *builtin_candidates(),
                *entry_point_candidates(),
                Candidate(name="intake", entry_point="intake = (this test)", load=lambda: plugin),
            ],
            plugins=["companies", "shipments", "integration", "intake"],
            settings={"integration": {"sources": {"onec": onec_source}}},
        )
        made.append(found)
        return found

    yield make, received
    if made:
        await wipe(made[0].host)


def written(onec: OneCServer, key: str) -> list[dict[str, Any]]:
    """The requests in 1C holding ``key`` as their portal id (under any renaming)."""
    name = onec.data.renaming.fields.get("ИдентификаторПортала", "ИдентификаторПортала")
    docs = onec.data.sets[onec.data.renaming.set(REQUESTS)].values()
    return [d for d in docs if d.get(name) == key]


def owner_of(onec: OneCServer, contract: str) -> str:
    owner = onec.data.renaming.fields.get("Owner_Key", "Owner_Key")
    return str((onec.data.get(CONTRACTS, contract) or {})[owner])


def new_order(onec: OneCServer, generated: Generated) -> dict[str, Any]:
    """A new order's fields under the portal's names (the order sink's fields)."""
    contract = generated.contracts[0]
    return {
        "counterparty": owner_of(onec, contract),
        "contract": contract,
        "origin": "Москва, склад 1",
        "destination": "Казань",
        "loading_date": "2026-02-01",
        "cargo_name": "Стекло",
        "cargo_weight": "1200.5",
        "cargo_places": 3,
        "comment": "Хрупкое",
        "services": [{"name": "Погрузка", "quantity": 2, "amount": "2500"}],
    }


async def run(host: Host) -> None:
    out = await integration(host).run("onec")
    assert out.state == "succeeded", out.error


async def order_row(host: Host, ref: str) -> Any:
    async with host.db.reader() as s:
        return (await s.execute(sm.order.select().where(sm.order.c.external_id == ref))).first()


async def outbound_row(host: Host, key: str) -> Any:
    async with host.db.reader() as s:
        return (await s.execute(select(m.outbound).where(m.outbound.c.portal_id == key))).one()


async def test_a_new_order_is_carried_once_accepted_and_comes_back_with_its_order(
    intake: tuple[PortalMaker, list[IntakeAnswer]],
    onec: OneCServer,
    generated: Generated,
    clock: FrozenClock,
) -> None:
    make, received = intake
    first, second = await make(), await make()  # two portals, one database, one 1C
    await run(first.host)
    key = await hand_over(first.host, new_order(onec, generated))
    # The first try's answer is lost after 1C created the document; four senders in two
    # portals race for the row each time.
    onec.fault("lost", match="POST")
    senders = [send_due(h) for h in (first.host, second.host) * 2]
    assert sum(await asyncio.gather(*senders)) == 0
    row = await outbound_row(first.host, key)
    assert (row.state, row.attempts) == ("pending", 1)
    assert len(written(onec, key)) == 1  # 1C has it; the portal does not know yet
    clock.advance(3600)
    senders = [send_due(h) for h in (first.host, second.host) * 2]
    assert sum(await asyncio.gather(*senders)) == 1
    (doc,) = written(onec, key)  # found by its key, not created twice
    row = await outbound_row(first.host, key)
    assert (row.state, row.external_id, row.attempts) == ("sent", doc["Ref_Key"], 2)
    # In 1C's names and formats.
    assert doc["ВидЗапроса"] == "НоваяЗаявка"
    assert doc["Заявка_Key"] == EMPTY
    assert doc["Статус"] == "Новый"
    assert doc["Date"] == "2026-01-15T12:00:00"
    assert doc["КонтактEmail"] == "ivanov@example.test"
    fields = new_order(onec, generated)
    assert json.loads(doc["ИзмененныеПоля"]) == {
        "Контрагент_Key": fields["counterparty"],
        "Договор_Key": fields["contract"],
        "ПунктОтправления": "Москва, склад 1",
        "ПунктНазначения": "Казань",
        "ДатаПогрузки": "2026-02-01T00:00:00",
        "ГрузНаименование": "Стекло",
        "ГрузВес": 1200.5,
        "ГрузМест": 3,
        "Комментарий": "Хрупкое",
        "Услуги": [{"Услуга": "Погрузка", "Количество": 2.0, "Сумма": 2500.0}],
    }
    # Nothing more is sent later.
    clock.advance(3600)
    assert await send_due(first.host) == 0
    assert len(written(onec, key)) == 1
    # The 1C operator accepts: the order is created and the request names it.
    onec.data.tick(30)
    assert onec.accept(key) == 1
    (doc,) = written(onec, key)
    assert doc["Статус"] == "Принят"
    made = onec.data.get(ORDERS, doc["Заявка_Key"])
    assert made is not None
    assert (made["Number"], made["Статус"], made["ПунктНазначения"]) == (
        "ТТ-000001",
        "Оформлена",
        "Казань",
    )
    await run(first.host)
    order = await order_row(first.host, doc["Заявка_Key"])
    assert order is not None
    assert (order.number, order.status, order.origin, order.cargo_places) == (
        "ТТ-000001",
        "registered",
        "Москва, склад 1",
        3,
    )
    async with first.host.db.reader() as s:
        lines = (
            await s.execute(
                select(sm.order_service.c.name, sm.order_service.c.quantity).where(
                    sm.order_service.c.order_id == order.id
                )
            )
        ).all()
    assert [(n, float(q)) for n, q in lines] == [("Погрузка", 2.0)]
    assert received == [
        IntakeAnswer(portal_id=key, status="accepted", answer="Принят", order=doc["Заявка_Key"])
    ]
    await run(first.host)  # a replay delivers nothing twice
    assert len(received) == 1


async def test_what_1c_cannot_apply_comes_back_rejected_with_the_reason(
    intake: tuple[PortalMaker, list[IntakeAnswer]],
    onec: OneCServer,
    generated: Generated,
    clock: FrozenClock,
) -> None:
    make, received = intake
    # This portal's mapping names the comment "Примечание", an attribute this 1C lacks.
    portal = await make({"fields": {"order": {"comment": "Примечание"}}})
    host = portal.host
    await run(host)
    # Without the comment but for the one case: the attribute 1C does not know comes first.
    good = {k: v for k, v in new_order(onec, generated).items() if k != "comment"}
    other = next(c for c in generated.contracts if owner_of(onec, c) != good["counterparty"])
    unknown = str(uuid.uuid4())
    cases = {
        "Контрагент": {**good, "counterparty": unknown},
        "Договор": {**good, "contract": unknown},
        "другим контрагентом": {**good, "contract": other},
        "Не заполнен реквизит 'ПунктОтправления'": {k: v for k, v in good.items() if k != "origin"},
        "Неизвестный реквизит 'Примечание'": {**good, "comment": "Хрупкое"},
    }
    keys = {await hand_over(host, fields): why for why, fields in cases.items()}
    assert await send_due(host) == len(cases)
    onec.data.tick(30)
    assert onec.accept() == len(cases)
    await run(host)
    got = {a.portal_id: a for a in received}
    assert sorted(got) == sorted(keys)
    for key, why in keys.items():
        assert (got[key].status, got[key].order) == ("rejected", None), why
        assert why in got[key].answer, (why, got[key].answer)
    assert why_unknown(onec, keys, cases)
    # 1C created no order for any of them.
    assert len(onec.data.sets[ORDERS]) == len(generated.orders)


def why_unknown(onec: OneCServer, keys: dict[str, str], cases: dict[str, Any]) -> bool:
    """The unknown counterparty and contract are named by their keys in 1C's answer."""
    for key, why in keys.items():
        (doc,) = written(onec, key)
        fields = cases[why]
        if why == "Контрагент":
            assert fields["counterparty"] in doc["Ответ"]
        if why == "Договор":
            assert fields["contract"] in doc["Ответ"]
    return True


async def test_a_field_the_mapping_cannot_name_is_never_sent_and_staff_see_why(
    intake: tuple[PortalMaker, list[IntakeAnswer]], onec: OneCServer, generated: Generated
) -> None:
    make, _received = intake
    host = (await make()).host
    await run(host)
    key = await hand_over(host, {**new_order(onec, generated), "pallets": 4})
    assert await send_due(host) == 0
    row = await outbound_row(host, key)
    assert row.state == "failed"
    assert "pallets" in row.last_error
    assert written(onec, key) == []


async def test_handing_the_same_key_over_twice_queues_it_once(
    intake: tuple[PortalMaker, list[IntakeAnswer]], onec: OneCServer, generated: Generated
) -> None:
    make, _received = intake
    host = (await make()).host
    key = str(uuid.uuid4())
    record = {"kind": "new_order", "portal_id": key, "reply_to": REPLY_TO}
    async with host.db.session() as s:
        assert await host.services.of(OUTBOUND).hand_over(s, record)
        assert not await host.services.of(OUTBOUND).hand_over(s, record)
    # A transaction that rolls back hands nothing over.
    rolled = str(uuid.uuid4())

    async def failing() -> None:
        async with host.db.session() as s:
            await host.services.of(OUTBOUND).hand_over(s, {**record, "portal_id": rolled})
            raise RuntimeError("the plugin's own write failed")

    with pytest.raises(RuntimeError):
        await failing()
    async with host.db.reader() as s:
        keys = list((await s.execute(select(m.outbound.c.portal_id))).scalars())
    assert keys == [key]


# -- a renamed configuration ---------------------------------------------------------------

RENAMED = Renaming(
    fields={
        "ПунктОтправления": "МестоПогрузки",
        "ДатаПогрузки": "ДатаЗагрузки",
        "Заявка_Key": "Заказ_Key",
        "ИзмененныеПоля": "НовыеЗначения",
        "ИдентификаторПортала": "КлючПортала",
        "ВидЗапроса": "ТипЗапроса",
    },
    values={"НоваяЗаявка": "НовыйЗаказ", "Новый": "Создан", "Принят": "Одобрен"},
)
RENAMED_SOURCE = {
    "fields": {
        "order": {"origin": "МестоПогрузки", "loading_date": "ДатаЗагрузки"},
        "invoice": {"order": "Заказ_Key"},
        "request": {
            "order": "Заказ_Key",
            "changes": "НовыеЗначения",
            "portal_id": "КлючПортала",
            "kind": "ТипЗапроса",
        },
    },
    "values": {
        "request": {
            "kind": {"НовыйЗаказ": "new_order"},
            "status": {"Создан": "new", "Одобрен": "accepted"},
        }
    },
}


async def test_a_new_order_under_a_renamed_configuration_works_by_settings(
    intake: tuple[PortalMaker, list[IntakeAnswer]], onec: OneCServer
) -> None:
    onec.data = OneCData(RENAMED)
    made = generate(onec.data)
    make, received = intake
    host = (await make(RENAMED_SOURCE)).host
    await run(host)
    key = await hand_over(host, new_order(onec, made))
    assert await send_due(host) == 1
    (doc,) = written(onec, key)
    assert doc["ТипЗапроса"] == "НовыйЗаказ"
    assert doc["Статус"] == "Создан"
    changes = json.loads(doc["НовыеЗначения"])
    assert changes["МестоПогрузки"] == "Москва, склад 1"
    assert changes["ДатаЗагрузки"] == "2026-02-01T00:00:00"
    onec.data.tick(30)
    assert onec.accept(key) == 1
    (doc,) = written(onec, key)
    assert doc["Статус"] == "Одобрен", doc["Ответ"]
    ref = doc["Заказ_Key"]
    assert (onec.data.get(ORDERS, ref) or {})["МестоПогрузки"] == "Москва, склад 1"
    await run(host)
    order = await order_row(host, ref)
    assert order is not None
    assert (order.origin, str(order.loading_date)[:10]) == ("Москва, склад 1", "2026-02-01")
    assert received == [IntakeAnswer(portal_id=key, status="accepted", answer="Принят", order=ref)]


async def test_an_answer_whose_sink_is_not_installed_waits_in_the_quarantine(
    intake: tuple[PortalMaker, list[IntakeAnswer]], onec: OneCServer, generated: Generated
) -> None:
    make, received = intake
    host = (await make()).host
    await run(host)
    key = await hand_over(host, new_order(onec, generated), reply_to="gone.request_answer")
    assert await send_due(host) == 1
    onec.data.tick(30)
    assert onec.reject(key, answer="Нет машин") == 1
    await run(host)
    assert received == []
    async with host.db.reader() as s:
        (item,) = (await s.execute(select(m.quarantine))).all()
    assert (item.entity, item.ref) == ("answer", written(onec, key)[0]["Ref_Key"])
    assert "'gone.request_answer'" in item.reason
    assert "not installed" in item.reason


async def test_an_operator_who_accepts_at_once_makes_the_order_with_the_first_delta(
    intake: tuple[PortalMaker, list[IntakeAnswer]], onec: OneCServer, generated: Generated
) -> None:
    make, received = intake
    host = (await make()).host
    await run(host)
    onec.data.auto_answer = "accept"  # the demo's 1C: every request answered as written
    key = await hand_over(host, new_order(onec, generated))
    assert await send_due(host) == 1
    (doc,) = written(onec, key)
    assert doc["Статус"] == "Принят"
    await run(host)
    order = await order_row(host, doc["Заявка_Key"])
    assert order is not None
    assert order.number == "ТТ-000001"
    assert [(a.status, a.order) for a in received] == [("accepted", doc["Заявка_Key"])]
