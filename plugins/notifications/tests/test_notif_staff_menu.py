"""What managers may do with notifications, and the menu matching it (issue 16, point 7).

The case study: managers edit, switch on and off notifications, follow the statistics and
resend what their clients did not get (their assigned organizations only, addresses
masked); channels (secrets) stay with admins."""

from __future__ import annotations

import re
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from litestar.testing import AsyncTestClient
from notif_support import DEPOT, forget_edits, make_host, sign_in, staff

from kabinet.clock import FrozenClock
from kabinet.host import Host
from kabinet.testing import PluginFactory
from kabinet.web import build_app

pytestmark = pytest.mark.smoke
PAGES = (
    "/notifications/",
    "/notifications/stats",
    "/notifications/channels",
    "/notifications/failed",
)


@pytest.fixture
async def web(
    plugin_factory: PluginFactory, database_url: str, tmp_path: Path, clock: FrozenClock
) -> AsyncIterator[tuple[Host, Any]]:
    plugin_factory.add("depot", DEPOT)
    app_host = await make_host(plugin_factory, database_url, tmp_path, clock, start=False)
    app_host.services["host.process"] = "test"
    app = await build_app(app_host)
    side = await make_host(plugin_factory, database_url, tmp_path, clock)
    try:
        async with AsyncTestClient(app) as client:
            yield side, client
    finally:
        await forget_edits(side)
        await side.shutdown()


def _links(html: str) -> set[str]:
    return {p for p in PAGES if re.search(rf'href="{re.escape(p)}"', html)}


async def test_a_manager_manages_notifications_and_sees_only_what_they_may_open(
    web: tuple[Host, Any],
) -> None:
    host, client = web
    manager = await staff(host, "manager")
    await sign_in(client, manager.email)
    allowed = {"/notifications/", "/notifications/stats", "/notifications/failed"}
    for path in PAGES:
        response = await client.get(path)
        assert response.status_code == (200 if path in allowed else 403), path
        if response.status_code == 200:
            # the menu and the tabs offer exactly the pages the manager may open
            assert _links(response.text) == allowed, path
    home = await client.get("/")
    assert _links(home.text) == allowed


async def test_an_admin_is_offered_every_notification_page(web: tuple[Host, Any]) -> None:
    host, client = web
    admin = await staff(host)
    await sign_in(client, admin.email)
    for path in PAGES:
        response = await client.get(path)
        assert response.status_code == 200, path
        assert _links(response.text) == set(PAGES), path


async def test_the_undelivered_list_names_the_person_not_only_the_address(
    web: tuple[Host, Any],
) -> None:
    from notif_support import person, publish, run

    from kabinet_notifications.services import service_of

    host, client = web
    admin = await staff(host)
    await sign_in(client, admin.email)
    svc = await service_of(host)
    ivan = await person(
        host,
        phone="+7916" + str(uuid.uuid4().int % 10**7).zfill(7),
        full_name="Иван Недоставленный",
    )
    await svc.set_preferences(ivan.id, {("depot.parcel.arrived", "sms")})
    await publish(
        host, "depot.parcel.arrived", {"account_id": ivan.id, "parcel": "S-9", "depot": "X"}
    )
    await run(host)
    failed = await client.get(
        "/notifications/failed", params={"event": "depot.parcel.arrived", "status": "skipped"}
    )
    assert failed.status_code == 200
    assert "Иван Недоставленный" in failed.text


async def test_a_saved_channel_secret_can_be_cleared(web: tuple[Host, Any]) -> None:
    from notif_support import csrf_of

    from kabinet_notifications.services import service_of

    host, client = web
    admin = await staff(host)
    await sign_in(client, admin.email)
    form = {"csrf_token": csrf_of(client), "enabled": "1", "telegram_token": "123:SECRET"}
    saved = await client.post("/notifications/channels/telegram", data=form)
    assert saved.status_code in (200, 303)
    page = await client.get("/notifications/channels")
    assert 'name="clear_telegram_token"' in page.text
    # an empty field still keeps the secret; the box clears it
    kept = {"csrf_token": csrf_of(client), "enabled": "1", "telegram_token": ""}
    await client.post("/notifications/channels/telegram", data=kept)
    configs = await (await service_of(host)).channel_configs()
    assert configs["telegram"]["telegram_token"] == "123:SECRET"
    cleared = await client.post(
        "/notifications/channels/telegram",
        data={**kept, "clear_telegram_token": "1"},
    )
    assert cleared.status_code in (200, 303)
    configs = await (await service_of(host)).channel_configs()
    assert not configs["telegram"].get("telegram_token")
    page = await client.get("/notifications/channels")
    assert 'name="clear_telegram_token"' not in page.text
