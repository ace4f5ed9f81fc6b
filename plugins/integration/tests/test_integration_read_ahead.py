"""Reading ahead: the next page is fetched while the current one is written, yet an object
on two pages in a row is read back only once the first page is committed."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Mapping, Sequence
from typing import Any

import pytest
from integration_support import count

from kabinet.host import Host
from kabinet_integration.connectors import Page, Row
from kabinet_integration.sync import integration
from kabinet_integration_testing import Generated, OneCServer
from kabinet_shipments import models as sm

pytestmark = pytest.mark.smoke
ORDERS = "Document_ЗаявкаНаПеревозку"


class Pages:
    """A connector that delivers the given pages of the change register."""

    read_ahead = True

    def __init__(self, pages: list[list[Row]], objects: dict[str, dict[str, Any]]) -> None:
        self.pages, self.objects = pages, objects
        self.fetched: list[str] = []

    async def changes(self, position: str | None) -> AsyncIterator[Page]:
        for n, rows in enumerate(self.pages, start=1):
            yield Page(rows, f"2099-01-01T00:00:{n:02d}|{n}")

    async def acknowledge(self, page: Page) -> None:
        pass

    async def fetch(self, entity: str, refs: Sequence[str]) -> dict[str, dict[str, Any]]:
        self.fetched.extend(refs)
        return {r: self.objects[r] for r in refs if r in self.objects}

    async def balances(self, contracts: Sequence[str]) -> list[dict[str, Any]]:
        return []

    async def versions(self, entity: str) -> AsyncIterator[list[tuple[str, str, bool]]]:
        raise AssertionError("a delta reads no versions")
        yield []

    async def file(self, ref: str) -> tuple[str, bytes]:
        raise AssertionError("no files here")

    async def find_request(self, portal_id: str) -> str | None:
        return None

    async def create_request(self, body: Mapping[str, Any]) -> str:
        raise AssertionError("no requests here")

    async def aclose(self) -> None:
        pass


async def test_an_order_made_and_deleted_on_the_next_page_ends_hidden(
    host: Host, onec: OneCServer, generated: Generated
) -> None:
    svc = integration(host)
    assert (await svc.run("onec")).state == "succeeded"  # counterparties and contracts
    template = onec.data.get(ORDERS, generated.orders[0]) or {}
    new = str(uuid.uuid4())
    made = {**template, "Ref_Key": new, "Number": "ЗП-900001", "DataVersion": "AAAAAAAAAAE="}
    moved = generated.orders[1]
    objects = {new: made, moved: {**(onec.data.get(ORDERS, moved) or {}), "Дислокация": "Тверь"}}
    objects[moved]["DataVersion"] = "AAAAAAAAAAI="
    pages = [
        [
            Row("order", new, at="2099-01-01T00:00:01"),
            Row("order", moved, at="2099-01-01T00:00:01"),
        ],
        # 1C deleted the new order at once: only what the first page applied can say which.
        [Row("order", new, deleted=True, at="2099-01-01T00:00:02")],
    ]
    out = await svc.run("onec", connector=Pages(pages, objects))
    assert out.state == "succeeded", out.error
    async with host.db.reader() as s:
        hidden = (
            await s.execute(
                sm.order.select()
                .with_only_columns(sm.order.c.hidden)
                .where(sm.order.c.external_id == new)
            )
        ).scalar_one()
    assert hidden is True
    assert await count(host, sm.order, sm.order.c.location == "Тверь") == 1
    assert await svc.cursor("onec") == "2099-01-01T00:00:02|2"
