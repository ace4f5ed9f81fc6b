"""Staff pages and a person's own page over HTTP."""

from __future__ import annotations

import re

import pytest
from notif_support import (
    csrf_of,
    deliveries,
    publish,
    run,
)

from kabinet.testing import Portal
from kabinet_notifications.services import service_of

pytestmark = pytest.mark.smoke
EVENT = "depot.parcel.arrived"


async def test_staff_edit_a_template_see_an_error_with_its_line_preview_and_roll_back(
    portal: Portal,
) -> None:
    host = portal.host
    admin = await portal.person("admin", name="Staff Person")
    client = await portal.signed_in(admin)
    listing = await client.get("/notifications/")
    assert listing.status_code == 200
    assert EVENT in listing.text
    url = f"/notifications/n/{EVENT}/sms/ru"
    editor = await client.get(url)
    assert "Посылка P-1 прибыла" in editor.text  # the preview with sample values
    token = csrf_of(client)
    bad = await client.post(
        url,
        data={
            "csrf_token": token,
            "body": "Посылка {{ parcel }}\n{{ secret_sauce }}",
            "action": "save",
        },
    )
    assert bad.status_code == 400
    assert re.search(r"(строка|line) 2", bad.text)
    assert "secret_sauce" in bad.text
    svc = await service_of(host)
    assert (await svc.template(EVENT, "sms", "ru")).version == 0  # never saved
    preview = await client.post(
        url, data={"csrf_token": token, "body": "Ваша {{ parcel }} ждёт", "action": "preview"}
    )
    assert "Ваша P-1 ждёт" in preview.text
    saved = await client.post(
        url,
        data={"csrf_token": token, "body": "Ваша {{ parcel }} ждёт", "action": "save"},
        follow_redirects=False,
    )
    assert saved.status_code == 303
    current = await svc.template(EVENT, "sms", "ru")
    assert (current.version, current.body, current.created_by_name) == (
        1,
        "Ваша {{ parcel }} ждёт",
        "Staff Person",
    )
    await client.post(url, data={"csrf_token": token, "body": "v2 {{ parcel }}", "action": "save"})
    back = await client.post(
        f"{url}/rollback", data={"csrf_token": token, "version": "1"}, follow_redirects=False
    )
    assert back.status_code == 303
    current = await svc.template(EVENT, "sms", "ru")
    assert (current.version, current.body) == (3, "Ваша {{ parcel }} ждёт")
    ivan = await portal.person(phone="+79160001122")
    await publish(host, EVENT, {"account_id": ivan.id, "parcel": "Z-9", "depot": "X"})
    await run(host)
    sms = [d for d in await deliveries(host, person_id=ivan.id) if d["channel"] == "sms"]
    assert sms[0]["body"] == "Ваша Z-9 ждёт"
    listing = await client.get("/notifications/")
    assert "Staff Person" in listing.text


async def test_a_mandatory_notification_cannot_be_turned_off(portal: Portal) -> None:
    host = portal.host
    admin = await portal.person("admin", name="Staff Person")
    client = await portal.signed_in(admin)
    await client.post(
        "/notifications/n/identity.code/active", data={"csrf_token": csrf_of(client), "active": "0"}
    )
    view = await (await service_of(host)).notification("identity.code")
    assert view.active


async def test_channel_settings_are_stored_encrypted_and_shown_masked(
    portal: Portal,
) -> None:
    host = portal.host
    admin = await portal.person("admin", name="Staff Person")
    client = await portal.signed_in(admin)
    response = await client.post(
        "/notifications/channels/telegram",
        data={
            "csrf_token": csrf_of(client),
            "enabled": "1",
            "telegram_token": "123456:SECRET-TOKEN-VALUE",
        },
        follow_redirects=False,
    )
    assert response.status_code == 303
    page = await client.get("/notifications/channels")
    assert "Настройки канала сохранены." in page.text  # not "the template" (issue 16, point 8)
    assert "Шаблон сохранён" not in page.text
    assert "SECRET-TOKEN" not in page.text
    assert "••••ALUE" in page.text
    assert "Токен бота" in page.text  # fields are labelled in the reader's language
    assert "Электронная почта" in page.text
    from sqlalchemy import select

    from kabinet_notifications import models as m

    async with host.db.reader() as s:
        sealed = await s.scalar(
            select(m.channel_config.c.sealed).where(m.channel_config.c.channel == "telegram")
        )
    assert sealed
    assert "SECRET" not in sealed
    configs = await (await service_of(host)).channel_configs()
    assert configs["telegram"]["telegram_token"] == "123456:SECRET-TOKEN-VALUE"
    assert configs["telegram"]["transport"] == "provider"
    bad = await client.post(
        "/notifications/channels/email", data={"csrf_token": csrf_of(client), "smtp_port": "abc"}
    )
    assert bad.status_code == 400
    assert "smtp_port" in bad.text
    assert "Порт SMTP" in bad.text


async def test_statistics_and_undelivered_with_resend_through_another_channel(
    portal: Portal,
) -> None:
    host = portal.host
    admin = await portal.person("admin", name="Staff Person")
    client = await portal.signed_in(admin)
    svc = await service_of(host)
    ivan = await portal.person(phone="+79160003344")
    await svc.set_preferences(ivan.id, {(EVENT, "sms")})
    await publish(host, EVENT, {"account_id": ivan.id, "parcel": "S-1", "depot": "X"})
    await run(host)
    skipped = [d for d in await deliveries(host, person_id=ivan.id) if d["status"] == "skipped"]
    assert [d["channel"] for d in skipped] == ["email"]
    stats = await client.get("/notifications/stats")
    assert stats.status_code == 200
    assert "<svg" in stats.text
    failed = await client.get("/notifications/failed", params={"event": EVENT, "status": "skipped"})
    assert failed.status_code == 200
    assert ivan.email[:2] in failed.text
    resent = await client.post(
        "/notifications/failed/resend",
        data={
            "csrf_token": csrf_of(client),
            "id": str(skipped[0]["id"]),
            "channel": "sms",
            "scope": "chosen",
        },
        follow_redirects=False,
    )
    assert resent.status_code == 303
    await run(host)
    again = await deliveries(host, resend_of=skipped[0]["id"])
    assert [(d["channel"], d["status"], d["body"]) for d in again] == [
        ("sms", "sent", "Посылка S-1 прибыла")
    ], again
    bad = await client.get("/notifications/failed", params={"organization": "x"})
    assert bad.status_code == 400


async def test_a_person_chooses_channels_on_their_page(portal: Portal) -> None:
    host = portal.host
    ivan = await portal.person(phone="+79160005566")
    client = await portal.signed_in(ivan)
    page = await client.get("/notifications/me")
    assert page.status_code == 200
    assert f"{EVENT}:sms" in page.text
    saved = await client.post(
        "/notifications/me",
        data={"csrf_token": csrf_of(client), "p": [f"{EVENT}:email"]},
        follow_redirects=True,
    )
    # The message survives the redirect, once.
    assert '<div class="flash flash-success" role="status">Сохранено.</div>' in saved.text
    again = await client.get("/notifications/me")
    assert "Сохранено." not in again.text
    prefs = await (await service_of(host)).preferences(ivan.id)
    assert prefs[(EVENT, "sms")] is False
    assert prefs[(EVENT, "email")] is True
    staff_page = await client.get("/notifications/")
    assert staff_page.status_code == 403
    # The profile page carries the notifications panel: what is off, and the way here.
    profile = await client.get("/identity/profile")
    assert profile.status_code == 200
    panel = re.search(
        r'<section class="panel" data-panel="notifications">(.*?)</section>', profile.text, re.S
    )
    assert panel, profile.text
    assert "<h2>Уведомления</h2>" in panel.group(1)
    off = sum(1 for on in prefs.values() if not on)
    assert off >= 1
    assert f"Отключено по вашему выбору: {off}." in panel.group(1)
    assert 'href="/notifications/me"' in panel.group(1)


async def test_a_templates_versions_are_shown_page_by_page(portal: Portal) -> None:
    """The editor lists 20 versions a page (the page kit's pager); the current one is
    marked on the first page only, and an older one can be rolled back from page 2."""
    from kabinet_notifications.services import Editor

    host = portal.host
    admin = await portal.person("admin", name="Staff Person")
    client = await portal.signed_in(admin)
    svc = await service_of(host)
    for n in range(1, 23):
        await svc.save_template(
            EVENT, "sms", "ru", {"body": f"v{n} {{{{ parcel }}}}"}, editor=Editor(None, "T")
        )
    url = f"/notifications/n/{EVENT}/sms/ru"
    first = await client.get(url)
    assert first.status_code == 200
    table = re.search(r'<table class="table" id="versions">(.*?)</table>', first.text, re.S)
    assert table
    rows = re.findall(r"<tr>\s*<td data-label=\"Версия\">(\d+)( ✓)?", table.group(1))
    assert [int(v) for v, _ in rows] == list(range(22, 2, -1))
    assert [v for v, mark in rows if mark] == ["22"]
    assert "1 / 2" in first.text
    assert f'href="{url}?page=2" rel="next"' in first.text
    second = await client.get(url, params={"page": "2"})
    table = re.search(r'<table class="table" id="versions">(.*?)</table>', second.text, re.S)
    assert table
    rows = re.findall(r"<tr>\s*<td data-label=\"Версия\">(\d+)( ✓)?", table.group(1))
    assert rows == [("2", ""), ("1", "")]
    assert table.group(1).count(f'action="{url}/rollback"') == 2
    assert f'href="{url}" rel="prev"' in second.text
    # A version that is not a number is refused naming what to write, never a 500.
    bad = await client.post(f"{url}/rollback", data={"csrf_token": csrf_of(client), "version": "x"})
    assert bad.status_code == 400
    assert "Введите целое число не меньше 1." in bad.text
    assert (await svc.template(EVENT, "sms", "ru")).version == 22


async def test_the_undelivered_list_pages_keeping_its_filters(portal: Portal) -> None:
    """50 rows a page; the pager's links keep the filters; a link of the old ``page_no``
    still opens its page."""
    import uuid

    from sqlalchemy import delete, insert

    from kabinet_notifications import models as m

    host = portal.host
    admin = await portal.person("admin", name="Staff Person")
    client = await portal.signed_in(admin)
    event = f"depot.paging{uuid.uuid4().hex[:8]}"
    now = host.clock.now()
    rows = [
        {
            "key": f"{event}:{n}",
            "event": event,
            "channel": "sms",
            "address": "+79160000000",
            "status": "failed",
            "error": f"refused {n}",
            "created_at": now,
            "updated_at": now,
        }
        for n in range(53)
    ]
    async with host.db.session() as s:
        await s.execute(insert(m.delivery), rows)
    try:
        first = await client.get("/notifications/failed", params={"event": event})
        assert first.status_code == 200
        assert first.text.count('type="checkbox" name="id"') == 50
        assert "1 / 2" in first.text
        assert f'href="/notifications/failed?event={event}&amp;page=2" rel="next"' in first.text
        second = await client.get("/notifications/failed", params={"event": event, "page": "2"})
        assert second.text.count('type="checkbox" name="id"') == 3
        assert "2 / 2" in second.text
        old = await client.get("/notifications/failed", params={"event": event, "page_no": "2"})
        assert old.text.count('type="checkbox" name="id"') == 3
        wrong = await client.get("/notifications/failed", params={"page": "two"})
        assert wrong.status_code == 400
    finally:
        async with host.db.session() as s:
            await s.execute(delete(m.delivery).where(m.delivery.c.event == event))
