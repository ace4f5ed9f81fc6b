"""Quiet hours and staff's default channels (issue 16, point 3).

SMS and Telegram due in a person's quiet hours (their time zone) wait for the window's end;
e-mail and a sign-in code do not. Staff choose the channels on by default per notification;
a person who never chose gets them, a person's own choice wins."""

from __future__ import annotations

import datetime as dt
import re
import uuid
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from notif_support import (
    csrf_of,
    deliveries,
    folder,
    publish,
    run,
)

from kabinet.clock import FrozenClock
from kabinet.host import Host
from kabinet.testing import Portal
from kabinet_notifications import quiet
from kabinet_notifications.services import Editor, service_of

pytestmark = pytest.mark.smoke
EVENT = "depot.parcel.arrived"
ZONE = "Asia/Novosibirsk"  # UTC+7 all year


def _phone() -> str:
    return f"+7913{uuid.uuid4().int % 10**7:07d}"


def _local(clock: FrozenClock) -> dt.datetime:
    return clock.now().astimezone(ZoneInfo(ZONE))


def _to_local(clock: FrozenClock, hour: int, minute: int) -> None:
    """Move the clock forward to the next hour:minute on the person's wall clock."""
    now = _local(clock)
    target = now.replace(hour=hour, minute=minute, second=0, microsecond=0)
    if target <= now:
        target += dt.timedelta(days=1)
    clock.advance(seconds=(target - now).total_seconds())


def _sms_to(host: Host, account_id: int) -> list[dict[str, Any]]:
    return [f for f in folder(host) if f["account_id"] == account_id and f["channel"] == "sms"]


@pytest.mark.parametrize(
    ("local", "window", "ends"),
    [
        ("23:30", (22 * 60, 8 * 60), "next 08:00"),
        ("00:30", (22 * 60, 8 * 60), "08:00"),
        ("07:59", (22 * 60, 8 * 60), "08:00"),
        ("08:00", (22 * 60, 8 * 60), None),
        ("21:59", (22 * 60, 8 * 60), None),
        ("13:10", (13 * 60, 14 * 60), "14:00"),
        ("14:00", (13 * 60, 14 * 60), None),
    ],
)
def test_the_quiet_window_ends_on_the_persons_wall_clock(
    local: str, window: tuple[int, int], ends: str | None
) -> None:
    zone = ZoneInfo(ZONE)
    hour, minute = map(int, local.split(":"))
    now = dt.datetime(2026, 3, 10, hour, minute, tzinfo=zone)
    found = quiet.window_end(now.astimezone(dt.UTC), zone, *window)
    if ends is None:
        assert found is None
        return
    day = now.date() + dt.timedelta(days=1 if ends.startswith("next") else 0)
    h, m = map(int, ends.removeprefix("next ").split(":"))
    assert found == dt.datetime(day.year, day.month, day.day, h, m, tzinfo=zone)


async def test_an_sms_due_at_2330_in_quiet_hours_is_sent_at_0800_and_not_before(
    portal: Portal, host: Host, clock: FrozenClock
) -> None:
    ivan = await portal.person(name="Иван", phone=_phone(), timezone=ZONE)
    await quiet.set_quiet_hours(host, ivan.id, 22 * 60, 8 * 60)
    assert await quiet.quiet_hours(host, ivan.id) == (22 * 60, 8 * 60)
    _to_local(clock, 23, 30)
    await publish(host, EVENT, {"account_id": ivan.id, "parcel": "P-2330", "depot": "Омск"})
    await run(host)
    rows = {r["channel"]: r for r in await deliveries(host, person_id=ivan.id)}
    assert rows["email"]["status"] == "sent"  # e-mail does not wake anyone: at once
    assert rows["sms"]["status"] == "queued"
    assert rows["sms"]["attempts"] == 0  # nothing was tried
    eight = (_local(clock) + dt.timedelta(days=1)).replace(hour=8, minute=0, second=0)
    assert rows["sms"]["next_attempt_at"] == eight
    assert _sms_to(host, ivan.id) == []
    # Across midnight: at 00:30 another comes, also for 08:00; a sign-in code goes at once.
    _to_local(clock, 0, 30)
    await publish(host, EVENT, {"account_id": ivan.id, "parcel": "P-0030", "depot": "Омск"})
    await run(host)
    await host.services["identity"].send_code(ivan.id, "confirm_phone")
    await run(host)
    [code] = _sms_to(host, ivan.id)
    assert code["kind"] == "identity.code"
    _to_local(clock, 7, 59)
    await run(host)
    from kabinet_notifications.sending import sweep

    await sweep(host)
    await run(host)
    assert len(_sms_to(host, ivan.id)) == 1  # still only the code
    _to_local(clock, 8, 0)
    await run(host)
    sms = [f for f in _sms_to(host, ivan.id) if f["kind"] != "identity.code"]
    assert len(sms) == 1  # the two held messages go together, once
    assert "P-2330" in sms[0]["body"]
    assert "P-0030" in sms[0]["body"]
    held = [r for r in await deliveries(host, person_id=ivan.id, channel="sms") if r["event_id"]]
    assert [r["status"] for r in held] == ["sent", "sent"]
    assert all(r["sent_at"] == clock.now() for r in held)
    # Outside the window a message goes at once.
    _to_local(clock, 12, 0)
    await publish(host, EVENT, {"account_id": ivan.id, "parcel": "P-1200", "depot": "Омск"})
    await run(host)
    assert any("P-1200" in f["body"] for f in _sms_to(host, ivan.id))


async def test_a_window_is_both_ends_or_none(portal: Portal, host: Host) -> None:
    ivan = await portal.person()
    with pytest.raises(quiet.QuietHoursError) as refused:
        await quiet.set_quiet_hours(host, ivan.id, 22 * 60, None)
    assert refused.value.field == "quiet_to"
    with pytest.raises(quiet.QuietHoursError) as refused:
        quiet.parse_time("25:00", "quiet_from")
    assert refused.value.field == "quiet_from"
    await quiet.set_quiet_hours(host, ivan.id, 60, 120)
    await quiet.set_quiet_hours(host, ivan.id, None, None)
    assert await quiet.quiet_hours(host, ivan.id) == (None, None)


async def test_staff_defaults_reach_who_never_chose_and_a_choice_wins(
    portal: Portal, host: Host
) -> None:
    svc = await service_of(host)
    await svc.set_defaults(EVENT, ["email"], editor=Editor(None, "Staff"))
    view = await svc.notification(EVENT)
    assert view.defaults_off == ["push", "sms", "telegram"]
    never = await portal.person(phone=_phone())
    chose = await portal.person(phone=_phone())
    await svc.set_preferences(chose.id, {(EVENT, "email"), (EVENT, "sms")})
    wanted = await svc.wanted(never.id)
    assert (wanted[(EVENT, "email")], wanted[(EVENT, "sms")]) == (True, False)
    for who in (never, chose):
        await publish(host, EVENT, {"account_id": who.id, "parcel": "D", "depot": "X"})
    await run(host)
    got = {r["channel"]: r for r in await deliveries(host, person_id=never.id)}
    assert got["email"]["status"] == "sent"
    assert (got["sms"]["status"], got["sms"]["error"]) == ("skipped", "off by default")
    assert _sms_to(host, never.id) == []
    mine = {r["channel"]: r["status"] for r in await deliveries(host, person_id=chose.id)}
    assert mine == {"email": "sent", "sms": "sent"}
    # A mandatory notification has no defaults to set.
    with pytest.raises(Exception, match="mandatory"):
        await svc.set_defaults("identity.code", [], editor=Editor(None, "Staff"))


async def test_staff_set_defaults_on_the_notification_page_and_a_client_sees_them(
    portal: Portal,
) -> None:
    host = portal.host
    admin = await portal.person("manager", name="Staff Person")
    client = await portal.signed_in(admin)
    page = await client.get(f"/notifications/n/{EVENT}")
    assert page.status_code == 200
    assert 'id="defaults"' in page.text
    assert "Каналы по умолчанию" in page.text
    saved = await client.post(
        f"/notifications/n/{EVENT}/defaults",
        data={"csrf_token": csrf_of(client), "default": ["email", "telegram"]},
        follow_redirects=True,
    )
    assert "Каналы по умолчанию сохранены." in saved.text
    assert 'value="sms"> SMS' in saved.text  # unchecked now
    assert 'value="email" checked> Электронная почта' in saved.text
    assert (await (await service_of(host)).notification(EVENT)).defaults_off == ["push", "sms"]
    ivan = await portal.person(phone=_phone(), timezone=ZONE)
    client = await portal.signed_in(ivan)
    me = await client.get("/notifications/me")
    assert f'value="{EVENT}:sms"> SMS' in me.text  # off: staff's default
    assert f'value="{EVENT}:email" checked> Электронная почта' in me.text
    assert ZONE in me.text
    profile = await client.get("/identity/profile")
    summary = re.search(r'<p id="notifications-summary">(.*?)</p>', profile.text)
    assert summary
    assert summary.group(1) == "Выключено по умолчанию, пока вы не включите: 2."
    # Quiet hours: stored in the person's zone; a wrong time is refused by its field.
    bad = await client.post(
        "/notifications/me",
        data={"csrf_token": csrf_of(client), "p": [f"{EVENT}:sms"], "quiet_from": "25:00"},
    )
    assert bad.status_code == 400
    # beside its labelled field, what was typed kept
    assert '<label for="quiet-from">С</label>' in bad.text
    assert 'id="e-quiet_from">время пишется как ЧЧ:ММ, например 22:00</small>' in bad.text
    assert 'value="25:00"' in bad.text
    assert "Не сохранено" in bad.text
    assert (await (await service_of(host)).preferences(ivan.id)) == {}  # nothing stored
    ok = await client.post(
        "/notifications/me",
        data={
            "csrf_token": csrf_of(client),
            "p": [f"{EVENT}:sms"],
            "quiet_from": "22:00",
            "quiet_to": "08:00",
        },
        follow_redirects=True,
    )
    assert ok.status_code == 200
    assert 'value="22:00"' in ok.text
    assert 'value="08:00"' in ok.text
    assert await quiet.quiet_hours(host, ivan.id) == (22 * 60, 8 * 60)
    wanted = await (await service_of(host)).wanted(ivan.id)
    assert (wanted[(EVENT, "sms")], wanted[(EVENT, "email")]) == (True, False)
