"""What managers may do with notifications, and the menu matching it (issue 16, point 7).

The case study: managers edit, switch on and off notifications, follow the statistics and
resend what their clients did not get (their assigned organizations only, addresses
masked); channels (secrets) stay with admins."""

from __future__ import annotations

import re
import uuid

import pytest

from kabinet.testing import Portal

pytestmark = pytest.mark.smoke
PAGES = (
    "/notifications/",
    "/notifications/stats",
    "/notifications/channels",
    "/notifications/failed",
)


def _links(html: str) -> set[str]:
    return {p for p in PAGES if re.search(rf'href="{re.escape(p)}"', html)}


async def test_a_manager_manages_notifications_and_sees_only_what_they_may_open(
    portal: Portal,
) -> None:
    manager = await portal.person("manager", name="Staff Person")
    client = await portal.signed_in(manager)
    allowed = {"/notifications/", "/notifications/stats", "/notifications/failed"}
    for path in PAGES:
        response = await client.get(path)
        assert response.status_code == (200 if path in allowed else 403), path
        if response.status_code == 200:
            # the menu and the tabs offer exactly the pages the manager may open
            assert _links(response.text) == allowed, path
    home = await client.get("/")
    assert _links(home.text) == allowed


async def test_an_admin_is_offered_every_notification_page(portal: Portal) -> None:
    admin = await portal.person("admin", name="Staff Person")
    client = await portal.signed_in(admin)
    for path in PAGES:
        response = await client.get(path)
        assert response.status_code == 200, path
        assert _links(response.text) == set(PAGES), path


async def test_the_undelivered_list_names_the_person_not_only_the_address(
    portal: Portal,
) -> None:
    from notif_support import publish, run

    from kabinet_notifications.services import service_of

    host = portal.host
    admin = await portal.person("admin", name="Staff Person")
    client = await portal.signed_in(admin)
    svc = await service_of(host)
    ivan = await portal.person(
        phone="+7916" + str(uuid.uuid4().int % 10**7).zfill(7), name="Иван Недоставленный"
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


async def test_a_saved_channel_secret_can_be_cleared(portal: Portal) -> None:
    from notif_support import csrf_of

    from kabinet_notifications.services import service_of

    host = portal.host
    admin = await portal.person("admin", name="Staff Person")
    client = await portal.signed_in(admin)
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
