"""What the booking tests need from the apps it requires, made through their public
services and sinks (as real data arrives): an organization with a counterparty and a
contract the production system knows, and a client of it."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import datetime as dt
import uuid
from collections.abc import Iterator
from typing import Any

import msgspec
from sqlalchemy import event

from kabinet.host import Host
from kabinet.testing import Person, Portal
from kabinet_booking.samples import counterparty_of


@dataclasses.dataclass
class Company:
    organization_id: int
    counterparty_id: int
    contract_id: int
    contract_key: str
    client: Person


async def sink(host: Host, name: str) -> Any:
    results = await host.plugins.acall("entity_sinks", host=host)
    return next(s for _p, s in host.plugins.flat(results) if s.name == name)


async def company(portal: Portal) -> Company:
    """A new organization whose client may order under one contract."""
    host = portal.host
    org = portal.organization_id()
    party = await counterparty_of(host, org)
    key = f"k-{uuid.uuid4().hex[:12]}"
    contracts = await sink(host, "shipments.contract")
    record = msgspec.convert(
        {
            "external_id": key,
            "counterparty": f"booking-sample-{org}",
            "number": f"K-{key[-6:]}",
            "date": dt.date(2026, 1, 1),
        },
        contracts.struct,
    )
    async with host.db.session() as session:
        result = await contracts.apply(host, session, [record], notify=False)
    assert not result.rejected
    client = await portal.person("client", organization=org)
    from kabinet_booking.services import BOOKING

    found = await host.services.of(BOOKING).contracts(client.principal)
    assert len(found) == 1, found
    return Company(org, party, found[0].id, key, client)


def order_form(contract_id: int, today: dt.date, **changes: str) -> dict[str, str]:
    """The form as a person fills it in (texts, as a browser sends them)."""
    form = {
        "contract_id": str(contract_id),
        "origin": "Москва, Складская 5",
        "destination": "Казань, Портовая 12",
        "loading_date": (today + dt.timedelta(days=2)).isoformat(),
        "loading_from": "09:00",
        "loading_to": "12:00",
        "delivery_date": (today + dt.timedelta(days=4)).isoformat(),
        "cargo_name": "Станки",
        "cargo_weight": "1200.5",
        "cargo_places": "4",
        "packaging": "Паллеты",
        "danger_class": "3",
        "shipper": "ООО «Отправитель»",
        "consignee": "ООО «Получатель»",
        "comment": "Позвонить за час",
    }
    form.update(changes)
    return form


@contextlib.contextmanager
def connections(portal: Portal) -> Iterator[list[int]]:
    """The most pooled connections this task (the in-process request) held at once inside
    the block (``[n]``); other tasks' (the portal's background work) are not counted."""
    pool = portal.host.db.engine.sync_engine.pool
    mine = asyncio.current_task()
    held: set[int] = set()
    most = [0]

    def out(_dbapi: object, record: object, _proxy: object) -> None:
        if asyncio.current_task() is mine:
            held.add(id(record))
            most[0] = max(most[0], len(held))

    def back(_dbapi: object, record: object) -> None:
        held.discard(id(record))

    event.listen(pool, "checkout", out)
    event.listen(pool, "checkin", back)
    try:
        yield most
    finally:
        event.remove(pool, "checkout", out)
        event.remove(pool, "checkin", back)
