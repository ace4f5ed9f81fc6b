"""The registry's period is the reader's days (issue 16, point 8): an order made at 20:00
UTC on 6 December is shown on 7 December to a reader in Vladivostok (UTC+10) and on
6 December to one in Moscow (UTC+3), and the period filter finds it on the same day
each reads, on the page and in the export."""

from __future__ import annotations

import datetime as dt
import itertools
from collections.abc import AsyncIterator
from pathlib import Path
from typing import cast

import pytest
from shipments_support import Site, site
from sqlalchemy import Table, select, update

from kabinet.clock import FrozenClock
from kabinet.identity.models import Account
from kabinet_shipments import models as m
from kabinet_shipments.samples import make_order

pytestmark = pytest.mark.smoke
_orgs = itertools.count(940_101)
AT = dt.datetime(2026, 12, 6, 20, 0, tzinfo=dt.UTC)


@pytest.fixture
async def web(shipments_url: str, tmp_path: Path, clock: FrozenClock) -> AsyncIterator[Site]:
    async with site(shipments_url, tmp_path, clock) as found:
        yield found


async def _reader(web: Site, org: int, zone: str) -> str:
    session = await web.client_of(org)
    async with web.host.db.session() as s:
        a = cast(Table, Account.__table__)
        await s.execute(update(a).where(a.c.id == web.people[session]).values(timezone=zone))
    return session


@pytest.mark.parametrize(
    ("zone", "day", "other"),
    [
        ("Asia/Vladivostok", "2026-12-07", "2026-12-06"),
        ("Europe/Moscow", "2026-12-06", "2026-12-07"),
    ],
    ids=["vladivostok", "moscow"],
)
async def test_the_period_is_the_readers_days(web: Site, zone: str, day: str, other: str) -> None:
    org = next(_orgs)
    ids = await make_order(web.host, org)
    async with web.host.db.session() as s:
        await s.execute(update(m.order).where(m.order.c.id == ids["order_id"]).values(date=AT))
        number = (
            await s.execute(select(m.order.c.number).where(m.order.c.id == ids["order_id"]))
        ).scalar_one()
    session = await _reader(web, org, zone)

    async def found(path: str) -> bool:
        answer = await web.get(path, session)
        assert answer.status_code == 200, path
        return number in answer.text

    shown_day = ".".join(reversed(day.split("-")))
    registry = await web.get("/shipments/", session)
    assert shown_day in registry.text  # the day the reader sees
    for path in ("/shipments/", "/shipments/orders.csv"):
        assert await found(f"{path}?date_from={day}&date_to={day}"), path
        assert not await found(f"{path}?date_from={other}&date_to={other}"), path
