"""The order card writes every date and time in one style, the reader's short one: a day
as "19.12.2026" beside a time as "10.12.2026, 12:30" (not "19 дек. 2026 г."), in Russian
and in English, times in the reader's zone."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from shipments_support import Site, site
from sqlalchemy import update

from kabinet.clock import FrozenClock
from kabinet_shipments import models as m
from kabinet_shipments.samples import make_order

pytestmark = pytest.mark.smoke


@pytest.fixture
async def web(shipments_url: str, tmp_path: Path, clock: FrozenClock) -> AsyncIterator[Site]:
    async with site(shipments_url, tmp_path, clock) as found:
        yield found


def _facts(html: str) -> str:
    """The card's facts (its definition lists) as text."""
    lists = re.findall(r"<dl[^>]*>(.*?)</dl>", html, re.S)
    assert lists
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", " ".join(lists)))


async def test_the_order_card_writes_dates_and_times_alike(web: Site) -> None:
    ids = await make_order(web.host, 916_901)
    async with web.host.db.session() as s:
        await s.execute(
            update(m.order)
            .where(m.order.c.id == ids["order_id"])
            .values(
                loading_date=dt.date(2026, 12, 10),
                loading_at=dt.datetime(2026, 12, 10, 9, 30, tzinfo=dt.UTC),
                delivery_planned=dt.date(2026, 12, 19),
                delivery_planned_at=None,
            )
        )
    session = await web.client_of(916_901)
    path = f"/shipments/orders/{ids['order_id']}"

    ru = await web.get(path, session)
    loading = re.search(r'id="order-loading">([^<]*)<', ru.text)
    planned = re.search(r'id="order-delivery-planned">([^<]*)<', ru.text)
    assert loading
    assert planned
    assert loading.group(1) == "10.12.2026, 12:30"  # 09:30 UTC in Moscow
    assert planned.group(1) == "19.12.2026"
    facts = _facts(ru.text)
    assert "г." not in facts
    assert "дек" not in facts
    assert re.search(r"\d\d\.\d\d\.\d{4}", facts)

    en = await web.get(path, f"{session}; kabinet_lang=en")
    loading = re.search(r'id="order-loading">([^<]*)<', en.text)
    planned = re.search(r'id="order-delivery-planned">([^<]*)<', en.text)
    assert loading
    assert planned
    assert re.fullmatch(r"12/10/26, 12:30\s?PM", loading.group(1))
    assert planned.group(1) == "12/19/26"
    assert "Dec" not in _facts(en.text)
