"""Staff answer client requests in the portal when no production system does (issue 16,
point 6): what the manager, the client and a stranger see over HTTP."""

from __future__ import annotations

import contextlib
import datetime as dt
import itertools
from collections.abc import AsyncIterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import httpx
import pytest
from shipments_support import Site, site
from sqlalchemy import select, update

from kabinet.clock import FrozenClock
from kabinet.host import Host
from kabinet.jobs import stop_embedded
from kabinet.models import event
from kabinet.routematrix import RouteMatrix
from kabinet.web import build_app
from kabinet_shipments import models as m
from kabinet_shipments.samples import make_order

pytestmark = pytest.mark.smoke
_orgs = itertools.count(930_101)


@pytest.fixture
async def web(shipments_url: str, tmp_path: Path, clock: FrozenClock) -> AsyncIterator[Site]:
    async with site(shipments_url, tmp_path, clock, jobs=False) as found:
        yield found


async def _staff(web: Site, role: str, organization: int | None) -> str:
    person = await web.matrix.person(role)
    await web.host.services["roles"].grant(person, role, organization)
    session: str = await web.matrix.session(person)
    web.people[session] = person
    return session


async def _asked(web: Site, org: int) -> tuple[int, int, str]:
    """A client's cancel request on a new order of ``org``: (order, request, client)."""
    ids = await make_order(web.host, org)
    client = await web.client_of(org)
    sent = await web.post(
        f"/shipments/orders/{ids['order_id']}/requests",
        client,
        {"kind": "cancel", "comment": "Груз не готов"},
    )
    assert sent.status_code == 303
    async with web.host.db.engine.connect() as conn:
        request_id = (
            await conn.execute(
                select(m.request.c.id).where(m.request.c.order_id == ids["order_id"])
            )
        ).scalar_one()
    return ids["order_id"], int(request_id), client


async def test_a_manager_answers_a_request_nobody_else_can_and_the_client_sees_it(
    web: Site,
) -> None:
    org = next(_orgs)
    order_id, request_id, client = await _asked(web, org)
    manager = await _staff(web, "manager", org)

    listed = await web.get("/shipments/requests", manager)
    assert listed.status_code == 200
    assert f'data-request="{request_id}" data-transport="none"' in listed.text
    assert "Учётная система не подключена" in listed.text
    assert "Груз не готов" in listed.text
    assert 'href="/shipments/requests"' in listed.text  # in the manager's menu

    # refusing needs a reason, named on the field
    bare = await web.post(
        f"/shipments/requests/{request_id}/answer", manager, {"decision": "rejected"}
    )
    assert bare.status_code == 422
    assert "Укажите причину отказа" in bare.text
    assert 'aria-invalid="true"' in bare.text

    done = await web.post(
        f"/shipments/requests/{request_id}/answer",
        manager,
        {"decision": "accepted", "comment": "Отменили, счёт не выставляем"},
    )
    assert done.status_code == 303
    assert done.headers["location"] == "/shipments/requests"
    after = await web.get("/shipments/requests", manager)
    assert f'data-request="{request_id}"' not in after.text

    card = await web.get(f"/shipments/orders/{order_id}", client)
    assert 'data-kind="cancel" data-status="accepted"' in card.text
    assert "Отменили, счёт не выставляем" in card.text
    async with web.host.db.engine.connect() as conn:
        told = (
            await conn.execute(
                select(event.c.payload).where(event.c.type == "shipments.request.answered")
            )
        ).all()
    answered = [p for (p,) in told if p["request_id"] == request_id]
    assert len(answered) == 1
    assert answered[0]["status"] == "accepted"
    assert answered[0]["person_id"] == web.people[client]

    again = await web.post(
        f"/shipments/requests/{request_id}/answer",
        manager,
        {"decision": "rejected", "comment": "Нет"},
    )
    assert again.status_code == 409
    assert "уже ответили" in again.text


async def test_only_staff_of_the_request_organization_may_answer(web: Site) -> None:
    org, other = next(_orgs), next(_orgs)
    _, request_id, client = await _asked(web, org)
    stranger = await _staff(web, "manager", other)
    listed = await web.get("/shipments/requests", stranger)
    assert listed.status_code == 200
    assert f'data-request="{request_id}"' not in listed.text
    form = {"decision": "accepted", "comment": "Да"}
    assert (
        await web.post(f"/shipments/requests/{request_id}/answer", stranger, form)
    ).status_code == 404
    assert (await web.get("/shipments/requests", client)).status_code == 403
    assert (
        await web.post(f"/shipments/requests/{request_id}/answer", client, form)
    ).status_code == 403
    admin = await _staff(web, "admin", None)
    assert f'data-request="{request_id}"' in (await web.get("/shipments/requests", admin)).text
    assert (
        await web.post(f"/shipments/requests/{request_id}/answer", admin, form)
    ).status_code == 303


class _Transport:
    """The integration's service as it answers when a source is connected."""

    def __init__(self, state: str) -> None:
        self.state = state

    def connected(self) -> bool:
        return True

    async def states(self, keys: list[str]) -> dict[str, Any]:
        row = SimpleNamespace(state=self.state, attempts=3, last_error="503 from 1C")
        return dict.fromkeys(keys, row)


async def test_a_request_on_its_way_to_1c_waits_and_a_stuck_one_may_be_answered(
    web: Site, clock: FrozenClock
) -> None:
    org = next(_orgs)
    _, request_id, _ = await _asked(web, org)
    manager = await _staff(web, "manager", org)
    form = {"decision": "accepted", "comment": "Да"}
    web.host.services["integration.requests"] = _Transport("pending")
    try:
        page = await web.get("/shipments/requests", manager)
        assert f'data-request="{request_id}" data-transport="pending"' in page.text
        assert "Ожидает отправки" in page.text
        assert "Учётная система не подключена" not in page.text
        assert f'action="/shipments/requests/{request_id}/answer"' not in page.text
        refused = await web.post(f"/shipments/requests/{request_id}/answer", manager, form)
        assert refused.status_code == 409
        assert "передаётся в 1С" in refused.text

        web.host.services["integration.requests"] = _Transport("failed")
        page = await web.get("/shipments/requests", manager)
        assert "Ошибка передачи" in page.text
        assert "503 from 1C" in page.text
        assert f'action="/shipments/requests/{request_id}/answer"' in page.text

        # sent but unanswered for a day: stuck, staff may answer
        web.host.services["integration.requests"] = _Transport("sent")
        assert (
            await web.post(f"/shipments/requests/{request_id}/answer", manager, form)
        ).status_code == 409
        async with web.host.db.session() as s:
            await s.execute(
                update(m.request)
                .where(m.request.c.id == request_id)
                .values(created_at=clock.now() - dt.timedelta(hours=25))
            )
        assert (
            await web.post(f"/shipments/requests/{request_id}/answer", manager, form)
        ).status_code == 303
    finally:
        web.host.services.pop("integration.requests", None)


@contextlib.asynccontextmanager
async def _with_integration(url: str, folder: Path, clock: FrozenClock) -> AsyncIterator[Site]:
    path = folder / "settings.toml"
    path.write_text('[host]\nvar_dir = "var"\nsecret_key = "shipments-tests"\n')
    host: Host = await Host.create(path, env={"KABINET__HOST__DATABASE_URL": url}, clock=clock)
    app = await build_app(host)
    await host.startup()
    await stop_embedded(host)
    client = httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://127.0.0.1:8000"
    )
    try:
        yield Site(host, client, RouteMatrix(host, app, client))
    finally:
        await client.aclose()
        await host.shutdown()


async def test_the_integration_page_says_no_source_is_configured(
    shipments_url: str, tmp_path: Path, clock: FrozenClock
) -> None:
    async with _with_integration(shipments_url, tmp_path, clock) as web:
        admin = await _staff(web, "admin", None)
        runs = await web.get("/integration/runs", admin)
        assert runs.status_code == 200
        assert "Все запросы переданы" not in runs.text
        assert "Источник 1С не настроен: запросы клиентов никуда не передаются." in runs.text
        assert 'href="/shipments/requests"' in runs.text
        requests = await web.get("/shipments/requests", admin)
        assert "Учётная система не подключена" in requests.text
