"""Client requests reach 1C exactly once, under the portal's own key, in 1C's names.

Requests are made over the portal's HTTP API by a signed-in client, carried by the send
jobs to the local 1C, answered there, and read back by the next sync.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import logging
import sys
import uuid
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import msgspec
import pytest
from integration_support import count, settings_text, wipe
from sqlalchemy import insert, select, text, update

from kabinet.clock import FrozenClock
from kabinet.host import Host
from kabinet.routematrix import RouteMatrix
from kabinet.testing import create_empty_database, drop_database
from kabinet.web import build_app
from kabinet_integration import models as m
from kabinet_integration.outbound import SEND_ACTOR, send_due
from kabinet_integration.settings import Settings
from kabinet_integration.sync import integration
from kabinet_integration_testing import (
    Generated,
    OneCData,
    OneCServer,
    Renaming,
    generate,
)
from kabinet_shipments import models as sm

pytestmark = pytest.mark.smoke

REQUESTS = "Document_ЗапросКлиента"
ORDERS = "Document_ЗаявкаНаПеревозку"
REQUEST = "shipments.orders.request"


class Portal:
    """A portal with its app over HTTP and a client of one organization holding every
    counterparty the local 1C has."""

    def __init__(self, host: Host, http: httpx.AsyncClient, matrix: RouteMatrix) -> None:
        self.host, self.http, self.matrix = host, http, matrix
        self.session = ""
        self.email = ""

    async def setup(self) -> None:
        from kabinet_companies.models import counterparty, organization

        out = await integration(self.host).run("onec")
        assert out.state == "succeeded", out.error
        now = self.host.clock.now()
        async with self.host.db.session() as s:
            org = (
                await s.execute(
                    insert(organization)
                    .values(name="ООО Клиент", search="", created_at=now, updated_at=now)
                    .returning(organization.c.id)
                )
            ).scalar_one()
            await s.execute(update(counterparty).values(organization_id=org))
        person = await self.matrix.person("client")
        await self.host.services["roles"].grant(person, "client", int(org))
        self.session = await self.matrix.session(person)
        from kabinet.identity.models import Account

        async with self.host.db.reader() as s:
            self.email = (
                await s.execute(
                    select(Account.__table__.c.email).where(Account.__table__.c.id == person)
                )
            ).scalar_one()

    async def order_id(self, ref: str) -> int:
        async with self.host.db.reader() as s:
            found = await s.execute(select(sm.order.c.id).where(sm.order.c.external_id == ref))
            return int(found.scalar_one())

    async def ask(self, ref: str, body: dict[str, Any]) -> int:
        """A client's request over the API; returns its id."""
        token = await self.matrix.csrf(self.session)
        self.http.cookies.clear()
        answer = await self.http.post(
            f"/api/shipments/orders/{await self.order_id(ref)}/requests",
            json=body,
            headers={"Cookie": f"{self.session}; kabinet_csrf={token}", "X-CSRF-Token": token},
        )
        assert answer.status_code == 201, answer.text
        return int(answer.json()["id"])

    async def relay(self) -> None:
        """Events to their handlers (the outbound queue)."""
        while await self.host.events.relay():
            await self.host.jobs.drain()

    async def request_row(self, request_id: int) -> Any:
        async with self.host.db.reader() as s:
            return (await s.execute(sm.request.select().where(sm.request.c.id == request_id))).one()


async def portal(host: Host) -> AsyncIterator[Portal]:
    app = await build_app(host)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://127.0.0.1:8000"
    ) as http:
        p = Portal(host, http, RouteMatrix(host, app, http))
        await p.setup()
        yield p


@pytest.fixture
async def site(host: Host, generated: Generated) -> AsyncIterator[Portal]:
    async for p in portal(host):
        yield p


def open_orders(onec: OneCServer, generated: Generated) -> list[str]:
    """Orders a client may still ask about (registered or in progress in 1C)."""
    status = onec.data.renaming.fields.get("Статус", "Статус")
    return [
        ref
        for ref in generated.orders
        if (onec.data.get(ORDERS, ref) or {}).get(status) in ("Оформлена", "ВРаботе")
    ]


def written(onec: OneCServer) -> list[dict[str, Any]]:
    return list(onec.data.sets[onec.data.renaming.set(REQUESTS)].values())


def keys_of(onec: OneCServer, key: str = "ИдентификаторПортала") -> Counter[str]:
    return Counter(str(d[key]) for d in written(onec))


async def send_jobs(host: Host, clock: FrozenClock) -> int:
    """Every send job queued so far, run at once (as many workers would)."""
    clock.advance(5)
    due = host.jobs._take_due()  # type: ignore[attr-defined]
    sends = [msg for msg in due if msg.actor == SEND_ACTOR]
    await asyncio.gather(*(host.jobs.execute(msg) for msg in sends))
    return len(sends)


# -- exactly once --------------------------------------------------------------------------


async def test_a_burst_of_requests_creates_one_document_each(
    site: Portal, onec: OneCServer, generated: Generated, clock: FrozenClock, make_host: Any
) -> None:
    orders = open_orders(onec, generated)
    ids = await asyncio.gather(
        *(
            site.ask(ref, {"kind": "cancel", "comment": f"Не нужна {n}"})
            for n, ref in enumerate(orders)
        )
    )
    await site.relay()
    # Every request queued its send job; they all run at once, beside a second worker
    # (another host on the same database) sending what is due.
    worker = await make_host()
    jobs = send_jobs(site.host, clock)
    results = await asyncio.gather(jobs, *(send_due(worker) for _ in range(3)), send_due(site.host))
    assert results[0] == len(orders)
    keys = keys_of(onec)
    assert len(written(onec)) == len(orders), keys
    assert set(keys.values()) == {1}
    rows = [await site.request_row(i) for i in ids]
    assert set(keys) == {r.portal_key for r in rows}
    for key in keys:
        assert uuid.UUID(key).version == 4
    assert await count(site.host, m.outbound, m.outbound.c.state == "sent") == len(orders)
    # Nothing more is sent by later ticks.
    clock.advance(3600)
    assert await send_due(site.host) == 0
    assert len(written(onec)) == len(orders)


async def test_bursts_over_time_and_many_jobs_stay_one_document_each(
    site: Portal, onec: OneCServer, generated: Generated, clock: FrozenClock
) -> None:
    orders = open_orders(onec, generated)
    for n, ref in enumerate(orders):  # a second apart, each with its own job
        await site.ask(ref, {"kind": "cancel", "comment": f"Отмена {n}"})
        await site.relay()
        clock.advance(1)
        await asyncio.gather(*(send_due(site.host) for _ in range(5)))
    assert len(written(onec)) == len(orders)
    assert set(keys_of(onec).values()) == {1}


async def test_a_crashed_sender_leaves_its_claim_to_expire(
    site: Portal, onec: OneCServer, generated: Generated, clock: FrozenClock
) -> None:
    await site.ask(open_orders(onec, generated)[0], {"kind": "cancel", "comment": "Не нужна"})
    await site.relay()
    clock.advance(5)
    # A sender claimed the row and created the document, then died before recording it.
    lease = clock.now() + dt.timedelta(seconds=60)
    async with site.host.db.session() as s:
        row = (await s.execute(m.outbound.select())).one()
        await s.execute(update(m.outbound).values(state="sending", next_attempt_at=lease))
    onec.data.put(REQUESTS, dict(row.body))
    # While its claim lasts, no other sender touches the row.
    assert await send_due(site.host) == 0
    async with site.host.db.reader() as s:
        assert (await s.execute(m.outbound.select())).one().state == "sending"
    clock.advance(61)
    await asyncio.gather(*(send_due(site.host) for _ in range(4)))
    assert len(written(onec)) == 1  # the look-up found the dead sender's
    async with site.host.db.reader() as s:
        row = (await s.execute(m.outbound.select())).one()
    assert (row.state, row.external_id) == ("sent", written(onec)[0]["Ref_Key"])


SENDER = """
import asyncio, sys
from kabinet.host import Host
from kabinet_integration.outbound import send_due

async def main():
    host = await Host.create(sys.argv[1], env={"KABINET__HOST__DATABASE_URL": sys.argv[2]})
    try:
        await asyncio.gather(*(send_due(host) for _ in range(4)))
    finally:
        await host.db.dispose()

asyncio.run(main())
"""


async def test_two_processes_send_each_request_once(
    site: Portal, onec: OneCServer, generated: Generated, tmp_path: Path, module_url: str
) -> None:
    orders = open_orders(onec, generated)
    for ref in orders:
        await site.ask(ref, {"kind": "cancel", "comment": "Не нужна"})
    await site.relay()
    settings = tmp_path / "sender.toml"
    settings.write_text(settings_text(onec.base_url))
    procs = [
        await asyncio.create_subprocess_exec(
            sys.executable, "-c", SENDER, str(settings), module_url
        )
        for _ in range(2)
    ]
    await asyncio.gather(*(send_due(site.host) for _ in range(2)))
    codes = await asyncio.gather(*(p.wait() for p in procs))
    assert codes == [0, 0]
    assert len(written(onec)) == len(orders)
    assert set(keys_of(onec).values()) == {1}


# -- two portals on one 1C ----------------------------------------------------------------


@pytest.fixture
async def second_url(tmp_path: Path) -> AsyncIterator[str]:
    folder = tmp_path / "second"
    folder.mkdir()
    url = await create_empty_database(folder)
    yield url
    await drop_database(url)


async def next_id(host: Host, wanted: int) -> None:
    """The next request of ``host`` gets the id ``wanted`` (a re-created database)."""
    async with host.db.session() as s:
        if host.db.dialect == "postgresql":
            await s.execute(
                text("SELECT setval(pg_get_serial_sequence('shipments_request', 'id'), :n, false)"),
                {"n": wanted},
            )
            return
        if wanted == 1:
            return
        order_id = (await s.execute(select(sm.order.c.id).limit(1))).scalar_one()
        now = host.clock.now()
        await s.execute(
            insert(sm.request).values(
                id=wanted - 1,
                order_id=order_id,
                kind="edit",
                status="done",
                changes={},
                created_at=now,
                updated_at=now,
            )
        )


async def test_two_portals_on_one_1c_each_get_only_their_answers(
    site: Portal,
    onec: OneCServer,
    generated: Generated,
    clock: FrozenClock,
    second_url: str,
    tmp_path: Path,
) -> None:
    settings = tmp_path / "staging.toml"
    settings.write_text(settings_text(onec.base_url))
    staging = await Host.create(
        settings, env={"KABINET__HOST__DATABASE_URL": second_url}, clock=clock
    )
    await staging.migrations.upgrade()
    await staging.startup()
    from kabinet.jobs import stop_embedded

    await stop_embedded(staging)
    try:
        async for other in portal(staging):
            ref = open_orders(onec, generated)[0]
            mine = await site.ask(ref, {"kind": "cancel", "comment": "production"})
            await next_id(staging, mine)  # both databases count their rows alike
            theirs = await other.ask(ref, {"kind": "cancel", "comment": "staging"})
            assert mine == theirs
            await site.relay()
            await other.relay()
            clock.advance(5)
            await send_due(site.host)
            await send_due(staging)
            assert len(written(onec)) == 2  # staging did not take production's for its own
            by_text = {d["Описание"]: d for d in written(onec)}
            assert set(by_text) == {"production", "staging"}
            # 1C answers production's request only.
            onec.data.tick(30)
            onec.data.put(
                REQUESTS, {**by_text["production"], "Статус": "Отклонен", "Ответ": "Поздно"}
            )
            for host in (site.host, staging):
                out = await integration(host).run("onec")
                assert out.state == "succeeded", out.error
            assert (await site.request_row(mine)).status == "rejected"
            assert (await site.request_row(mine)).answer == "Поздно"
            row = await other.request_row(theirs)
            assert (row.status, row.answer) == ("pending", "")
            # Not another portal's business: nothing in staging's quarantine for it.
            assert await count(staging, m.quarantine) == 0
    finally:
        await wipe(staging)
        await staging.shutdown()


# -- the edit under a renamed configuration --------------------------------------------------

RENAMED = Renaming(
    fields={
        "ДатаПогрузки": "ДатаЗагрузки",
        "Комментарий": "Примечание",
        "ГрузМест": "КоличествоМест",
        "ИзмененныеПоля": "НовыеЗначения",
        "ИдентификаторПортала": "КлючПортала",
        "ВидЗапроса": "ТипЗапроса",
        "КонтактEmail": "Почта",
    },
    values={
        "Изменение": "Правка",
        "Отмена": "Аннулирование",
        "Новый": "Создан",
        "Принят": "Одобрен",
    },
)
RENAMED_SETTINGS = """
[integration.sources.onec.fields.order]
loading_date = "ДатаЗагрузки"
comment = "Примечание"
cargo_places = "КоличествоМест"
[integration.sources.onec.fields.request]
changes = "НовыеЗначения"
portal_id = "КлючПортала"
kind = "ТипЗапроса"
contact_email = "Почта"
[integration.sources.onec.values.request.kind]
"Правка" = "edit"
"Аннулирование" = "cancel"
[integration.sources.onec.values.request.status]
"Создан" = "new"
"Одобрен" = "accepted"
"Отклонен" = "rejected"
"Выполнен" = "done"
"""


async def test_an_edit_under_a_renamed_configuration_is_applied_and_read_back(
    make_host: Any, onec: OneCServer, clock: FrozenClock
) -> None:
    onec.data = OneCData(RENAMED)
    made = generate(onec.data)
    host: Host = await make_host(
        source=RENAMED_SETTINGS,
        extra='[shipments]\neditable_fields = ["loading_date", "comment", "cargo_places"]\n',
    )
    try:
        async for site in portal(host):
            ref = open_orders(onec, made)[0]
            request_id = await site.ask(
                ref,
                {
                    "kind": "edit",
                    "changes": {
                        "loading_date": "2025-03-07",
                        "comment": "Въезд со двора",
                        "cargo_places": "17",
                    },
                    "comment": "Перенос",
                },
            )
            await site.relay()
            clock.advance(5)
            assert await send_due(host) == 1
            (doc,) = written(onec)
            assert doc["ТипЗапроса"] == "Правка"
            assert doc["Статус"] == "Создан"
            assert doc["КлючПортала"] == (await site.request_row(request_id)).portal_key
            assert json.loads(doc["НовыеЗначения"]) == {
                "ДатаЗагрузки": "2025-03-07T00:00:00",
                "Примечание": "Въезд со двора",
                "КоличествоМест": 17,
            }
            assert doc["Почта"] == site.email
            # 1C's local time (Moscow, UTC+3) of when the client asked.
            assert doc["Date"] == "2026-01-15T12:00:00"
            # The 1C operator accepts: 1C applies the fields to the order.
            onec.data.tick(30)
            onec.data.answer_requests(answer="Изменено")
            order = onec.data.get(ORDERS, ref) or {}
            assert order["ДатаЗагрузки"] == "2025-03-07T00:00:00"
            assert order["Примечание"] == "Въезд со двора"
            out = await integration(host).run("onec")
            assert out.state == "succeeded", out.error
            async with host.db.reader() as s:
                row = (
                    await s.execute(sm.order.select().where(sm.order.c.external_id == ref))
                ).one()
            assert str(row.loading_date)[:10] == "2025-03-07"
            assert row.comment == "Въезд со двора"
            assert row.cargo_places == 17
            answered = await site.request_row(request_id)
            assert (answered.status, answered.answer) == ("accepted", "Изменено")
    finally:
        await wipe(host)


async def test_an_edit_with_portal_names_is_refused_by_1c(onec: OneCServer) -> None:
    """The local 1C knows only its own attribute names and date format."""
    generated = generate(onec.data)
    ref = open_orders(onec, generated)[0]
    onec.data.put(
        REQUESTS,
        {
            "Заявка_Key": ref,
            "ВидЗапроса": "Изменение",
            "ИзмененныеПоля": json.dumps({"loading_date": "2025-03-07"}),
            "ИдентификаторПортала": str(uuid.uuid4()),
            "Статус": "Новый",
        },
    )
    before = dict(onec.data.get(ORDERS, ref) or {})
    onec.data.answer_requests()
    (doc,) = written(onec)
    assert doc["Статус"] == "Отклонен"
    assert "loading_date" in doc["Ответ"]
    onec.data.put(
        REQUESTS,
        {
            "Заявка_Key": ref,
            "ВидЗапроса": "Изменение",
            "ИзмененныеПоля": json.dumps({"ДатаПогрузки": "2025-03-07"}),
            "ИдентификаторПортала": str(uuid.uuid4()),
            "Статус": "Новый",
        },
    )
    onec.data.answer_requests()
    assert {d["Статус"] for d in written(onec)} == {"Отклонен"}
    after = onec.data.get(ORDERS, ref) or {}
    assert after["ДатаПогрузки"] == before["ДатаПогрузки"]


# -- settings ---------------------------------------------------------------------------------


def decode(text: str) -> Settings:
    import tomllib

    return msgspec.convert(tomllib.loads(text), Settings)


def test_request_fields_under_answer_are_read_with_a_deprecation_message(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.WARNING):
        settings = decode(
            '[sources.onec.fields.answer]\nportal_id = "КлючПортала"\n'
            '[sources.onec.values.answer.status]\n"Одобрен" = "accepted"\n'
        )
    source = settings.sources["onec"]
    assert source.fields["request"]["portal_id"] == "КлючПортала"
    assert source.values["request"]["status"] == {"Одобрен": "accepted"}
    assert "answer" not in source.fields
    text = caplog.text
    assert "integration.sources.onec.fields.answer" in text
    assert "integration.sources.onec.fields.request" in text


def test_a_field_configured_twice_differently_stops_the_start() -> None:
    with pytest.raises(msgspec.ValidationError) as error:
        decode(
            '[sources.onec.fields.answer]\nportal_id = "Ключ"\n'
            '[sources.onec.fields.request]\nportal_id = "КлючПортала"\n'
        )
    assert "fields.answer.portal_id" in str(error.value)


def test_configured_request_values_replace_the_reference_ones() -> None:
    from kabinet_integration.mapping import Names

    source = decode(RENAMED_SETTINGS.replace("[integration.", "[")).sources["onec"]
    names = Names.of(source)
    assert names.to_onec("request", "kind", "cancel") == "Аннулирование"
    assert names.to_onec("request", "kind", "edit") == "Правка"
    assert names.to_onec("request", "status", "new") == "Создан"
    # The read side reads the answers under the same configuration.
    assert names.fields["answer"]["portal_id"] == "КлючПортала"
    assert names.values["answer"]["status"]["Одобрен"] == "accepted"
    assert "Принят" not in names.values["answer"]["status"]
