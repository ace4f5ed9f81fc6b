"""Times that 1C gives with an order's dates (``ДатаПогрузки``, ``ДатаДоставкиПлан``,
``ДатаДоставкиФакт``) are kept: read from the local 1C in its local time, stored as the
1C-local day and the UTC instant, shown in each person's own time zone on the card, the
registry and the export, and given by the API as an aware instant. A date-only value
(1C writes 00:00:00) shows no time."""

from __future__ import annotations

import csv
import datetime as dt
import io
import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from integration_support import settings_text
from sqlalchemy import insert, select, update

from kabinet.access import Principal
from kabinet.host import Host
from kabinet.identity.services import IDENTITY
from kabinet.jobs import stop_embedded
from kabinet.roles.services import ROLES
from kabinet.routematrix import RouteMatrix
from kabinet.web import build_app
from kabinet_integration.sync import integration
from kabinet_integration_testing import Generated, OneCServer
from kabinet_shipments import models as sm
from kabinet_shipments.exports import EXPORTS

pytestmark = pytest.mark.smoke

ORDERS = "Document_ЗаявкаНаПеревозку"
BEFORE_TIMES = "5c1d2e3f4a6b"  # the integration revision before orders were read again
BEFORE_SHIPMENTS = "65c579926122"  # the shipments revision before the times were kept


class Site:
    """The portal over HTTP with one client organization holding every counterparty, and
    a signed-in client per time zone."""

    def __init__(self, host: Host, http: httpx.AsyncClient, matrix: RouteMatrix) -> None:
        self.host, self.http, self.matrix = host, http, matrix
        self.org = 0
        self.sessions: dict[str, str] = {}
        self.people: dict[str, int] = {}

    async def setup(self) -> None:
        from kabinet_companies.models import counterparty, organization

        now = self.host.clock.now()
        async with self.host.db.session() as s:
            self.org = (
                await s.execute(
                    insert(organization)
                    .values(name="ООО Клиент", search="", created_at=now, updated_at=now)
                    .returning(organization.c.id)
                )
            ).scalar_one()
            await s.execute(update(counterparty).values(organization_id=self.org))

    async def client(self, zone: str) -> str:
        """A signed-in client whose own time zone is ``zone``: the Cookie header value."""
        if zone not in self.sessions:
            identity = self.host.services.of(IDENTITY)
            account = await identity.create_account(
                full_name=f"Клиент {zone}",
                email=f"client-{len(self.sessions)}@example.test",
                timezone=zone,
                language="ru",
            )
            await self.host.services.of(ROLES).grant(int(account.id), "client", int(self.org))
            self.sessions[zone] = await self.matrix.session(int(account.id))
            self.people[zone] = int(account.id)
        return self.sessions[zone]

    async def get(self, zone: str, path: str) -> httpx.Response:
        self.http.cookies.clear()
        answer = await self.http.get(path, headers={"Cookie": await self.client(zone)})
        assert answer.status_code == 200, answer.text
        return answer

    async def order_id(self, ref: str) -> int:
        async with self.host.db.reader() as s:
            found = await s.execute(select(sm.order.c.id).where(sm.order.c.external_id == ref))
            return int(found.scalar_one())


@pytest.fixture
async def site(host: Host) -> AsyncIterator[Site]:
    app = await build_app(host)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://127.0.0.1:8000"
    ) as http:
        s = Site(host, http, RouteMatrix(host, app, http))
        yield s


def set_in_1c(onec: OneCServer, ref: str, **values: str) -> dict[str, Any]:
    """Change an order in the local 1C (its own names and formats)."""
    names = onec.data.renaming.fields
    obj = dict(onec.data.get(ORDERS, ref) or {})
    for name, value in values.items():
        obj[names.get(name, name)] = value
    onec.data.put(ORDERS, obj)
    onec.data.tick()
    return obj


def card_field(html: str, name: str) -> str:
    found = re.search(rf'<dd id="order-{name}">(.*?)</dd>', html, re.S)
    assert found is not None, f"no {name} on the card"
    return re.sub(r"<[^>]+>", "", found.group(1)).strip()


def registry_cells(html: str, order_id: int) -> dict[str, str]:
    row = re.search(
        rf'<tr[^>]*>\s*<td[^>]*><a href="/shipments/orders/{order_id}".*?</tr>', html, re.S
    )
    assert row is not None, "the order is not in the registry"
    return {
        label: re.sub(r"<[^>]+>", "", text).strip()
        for label, text in re.findall(
            r'<td data-label="([^"]*)"[^>]*>(.*?)</td>', row.group(0), re.S
        )
    }


async def test_times_from_1c_are_kept_and_shown_in_each_persons_zone(
    site: Site, onec: OneCServer, generated: Generated
) -> None:
    ref = generated.orders[0]
    # 14:30 in Moscow (UTC+3) is 11:30 UTC, 12:30 in Berlin (UTC+1 in December).
    obj = set_in_1c(
        onec,
        ref,
        ДатаПогрузки="2026-12-01T14:30:00",
        ДатаДоставкиПлан="2026-12-03T00:00:00",  # a date only
        ДатаДоставкиФакт="2026-12-04T01:15:00",  # still the 3rd in Berlin
    )
    out = await integration(site.host).run("onec")
    assert out.state == "succeeded", out.error
    await site.setup()
    order_id = await site.order_id(ref)
    number = obj["Number"]

    moscow = (await site.get("Europe/Moscow", f"/shipments/orders/{order_id}")).text
    assert "14:30" in card_field(moscow, "loading")
    assert "01.12.2026" in card_field(moscow, "loading")
    assert card_field(moscow, "delivery-planned") == "03.12.2026"  # the day, no time
    assert "01:15" in card_field(moscow, "delivery-actual")
    assert "04.12.2026" in card_field(moscow, "delivery-actual")

    berlin = (await site.get("Europe/Berlin", f"/shipments/orders/{order_id}")).text
    assert "12:30" in card_field(berlin, "loading")
    assert "14:30" not in card_field(berlin, "loading")
    assert card_field(berlin, "delivery-planned") == "03.12.2026"
    assert "23:15" in card_field(berlin, "delivery-actual")
    assert "03.12.2026" in card_field(berlin, "delivery-actual")

    # The registry shows the time the same way, the day alone where 1C gave no time.
    cells = registry_cells((await site.get("Europe/Moscow", "/shipments/")).text, order_id)
    assert "14:30" in cells["Погрузка"]
    assert "01.12" in cells["Погрузка"]
    assert cells["Доставка (план)"] == "03.12.2026"
    cells = registry_cells((await site.get("Europe/Berlin", "/shipments/")).text, order_id)
    assert "12:30" in cells["Погрузка"]

    # The export: the person's local time where 1C gave a time, the day alone otherwise.
    text = (await site.get("Europe/Berlin", "/shipments/orders.csv")).content.decode("utf-8-sig")
    rows = {r["Номер"]: r for r in csv.DictReader(io.StringIO(text), delimiter=";")}
    assert rows[number]["Погрузка"] == "01.12.2026 12:30"
    assert rows[number]["Доставка (план)"] == "03.12.2026"
    # A background export (a larger view) is written in the zone of the person who asked.
    exports = site.host.services.of(EXPORTS)
    berliner = Principal(person_id=site.people["Europe/Berlin"], kind="person")
    export_id = await exports.create(berliner, {}, "csv", send=False)
    await exports.run(export_id)
    row = await exports.get(berliner, export_id)
    text = (await site.host.files.read(row.file_key)).decode("utf-8-sig")
    rows = {r["Номер"]: r for r in csv.DictReader(io.StringIO(text), delimiter=";")}
    assert rows[number]["Погрузка"] == "01.12.2026 12:30"

    # The API: the 1C-local day and the aware instant (none for a date only).
    api = (await site.get("Europe/Berlin", f"/api/shipments/orders/{order_id}")).json()
    assert api["loading_date"] == "2026-12-01"
    assert api["loading_at"] == "2026-12-01T11:30:00Z"
    assert api["delivery_planned"] == "2026-12-03"
    assert api["delivery_planned_at"] is None
    assert api["delivery_actual"] == "2026-12-04"
    assert api["delivery_actual_at"] == "2026-12-03T22:15:00Z"
    listed = (await site.get("Europe/Moscow", "/api/shipments/orders?size=100")).json()
    mine = next(o for o in listed["items"] if o["id"] == order_id)
    assert mine["loading_at"] == "2026-12-01T11:30:00Z"

    # Stored: the day 1C gave (filters and sorts read it) beside the instant.
    async with site.host.db.reader() as s:
        row = (await s.execute(sm.order.select().where(sm.order.c.id == order_id))).one()
    assert str(row.loading_date) == "2026-12-01"
    assert str(row.delivery_planned) == "2026-12-03"
    assert row.delivery_planned_at is None

    # 1C drops the time (back to a date only): the time goes too.
    set_in_1c(onec, ref, ДатаПогрузки="2026-12-02T00:00:00")
    out = await integration(site.host).run("onec")
    assert out.state == "succeeded", out.error
    moscow = (await site.get("Europe/Moscow", f"/shipments/orders/{order_id}")).text
    assert card_field(moscow, "loading") == "02.12.2026"
    api = (await site.get("Europe/Moscow", f"/api/shipments/orders/{order_id}")).json()
    assert (api["loading_date"], api["loading_at"]) == ("2026-12-02", None)


async def test_orders_applied_before_get_their_times_at_the_next_full_run(
    empty_database_url: str, onec: OneCServer, generated: Generated, tmp_path: Path
) -> None:
    """Orders applied while times were cut: the integration revision that forgets their
    versions has the next full reconciliation read them again, and their times come."""
    ref = generated.orders[1]
    set_in_1c(onec, ref, ДатаПогрузки="2026-12-01T14:30:00")
    settings = tmp_path / "settings.toml"
    settings.write_text(settings_text(onec.base_url))
    host = await Host.create(settings, env={"KABINET__HOST__DATABASE_URL": empty_database_url})
    try:
        await host.migrations.upgrade()
        await host.migrations.downgrade("integration", BEFORE_TIMES)
        await host.startup()
        await stop_embedded(host)
        out = await integration(host).run("onec")
        assert out.state == "succeeded", out.error
        assert await loading_at(host, ref) is not None
        # As orders stored before their times were kept: the day, no time.
        await host.migrations.downgrade("shipments", BEFORE_SHIPMENTS)
        await host.migrations.upgrade("shipments")
        assert await loading_at(host, ref) is None
        full = await integration(host).run("onec", mode="full")
        assert (full.state, full.counts.applied) == ("succeeded", 0)  # same DataVersion
        assert await loading_at(host, ref) is None

        await host.migrations.upgrade("integration")
        full = await integration(host).run("onec", mode="full")
        assert full.state == "succeeded", full.error
        assert await loading_at(host, ref) == dt.datetime(2026, 12, 1, 11, 30, tzinfo=dt.UTC)
        # Read once: the next full run has nothing to do.
        again = await integration(host).run("onec", mode="full")
        assert (again.state, again.counts.applied) == ("succeeded", 0)
    finally:
        await host.shutdown()


async def loading_at(host: Host, ref: str) -> dt.datetime | None:
    async with host.db.reader() as s:
        value = (
            await s.execute(select(sm.order.c.loading_at).where(sm.order.c.external_id == ref))
        ).scalar_one()
    if value is not None and value.tzinfo is None:
        value = value.replace(tzinfo=dt.UTC)  # SQLite
    return value  # type: ignore[no-any-return]
