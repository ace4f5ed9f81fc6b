"""The staff's notification pages in the person's words (issue 16, point 8): statuses,
channels and kinds of message by their labels, refusals worded in Russian and English."""

from __future__ import annotations

import re
import uuid

import pytest
from notif_support import (
    csrf_of,
    publish,
    run,
)

from kabinet.testing import Portal
from kabinet_notifications.services import service_of

pytestmark = pytest.mark.smoke
EVENT = "depot.parcel.arrived"


def text(html: str) -> str:
    html = re.sub(r"(?is)<(script|style|select|code)\b.*?</\1>", " ", html)
    return " ".join(re.sub(r"(?s)<[^>]+>", " ", html).split())


@pytest.mark.parametrize(
    ("lang", "words"),
    [
        ("ru", ("Пропущено", "Посылка прибыла", "Электронная почта", "получатель отключил")),
        ("en", ("Skipped", "Parcel arrived", "E-mail", "the recipient turned this channel off")),
    ],
)
async def test_statuses_channels_and_kinds_are_shown_by_their_labels(
    portal: Portal, lang: str, words: tuple[str, ...]
) -> None:
    host = portal.host
    admin = await portal.person("admin", language=lang)
    client = await portal.signed_in(admin, language=lang)
    ivan = await portal.person(phone=f"+7916{uuid.uuid4().int % 10**7:07d}")
    await (await service_of(host)).set_preferences(ivan.id, {(EVENT, "sms")})
    await publish(host, EVENT, {"account_id": ivan.id, "parcel": "L-1", "depot": "X"})
    await run(host)
    failed = await client.get("/notifications/failed", params={"status": "skipped"})
    assert failed.status_code == 200
    row = re.search(rf"<tr>(?:(?!</tr>).)*{re.escape(ivan.name)}.*?</tr>", failed.text, re.S)
    assert row, failed.text
    shown = text(row.group(0))
    for word in words:
        assert word in shown
    for code in (EVENT, "skipped", "email", "preference"):
        assert code not in shown
    stats = (await client.get("/notifications/stats")).text
    legend = re.search(r'<table class="notif-legend" id="totals">(.*?)</table>', stats, re.S)
    assert legend
    names = [text(c) for c in re.findall(r"<tr><td>(.*?)</td>", legend.group(1), re.S)]
    assert names == (
        ["Ожидает отправки", "Отправлено", "Доставлено", "Не доставлено", "Пропущено"]
        if lang == "ru"
        else ["Waiting to be sent", "Sent", "Delivered", "Not delivered", "Skipped"]
    )
    channels = text((await client.get("/notifications/channels")).text)
    assert "api_id" not in channels
    assert "API ID" in channels


async def test_refusals_are_worded_for_a_person(portal: Portal) -> None:
    admin = await portal.person("admin", name="Staff Person")
    client = await portal.signed_in(admin)
    bad = await client.get("/notifications/failed", params={"organization": "x"})
    assert bad.status_code == 400
    assert "Организация: укажите номер организации числом" in bad.text
    stats = await client.get("/notifications/stats", params={"start": "7.12.2026"})
    assert "С: дата пишется как ГГГГ-ММ-ДД" in stats.text
    port = await client.post(
        "/notifications/channels/email",
        data={"csrf_token": csrf_of(client), "enabled": "1", "smtp_port": "двадцать пять"},
    )
    assert port.status_code == 400
    # beside its labelled field, the form keeping what was sent
    assert re.search(r'<label for="email-smtp_port">Порт SMTP</label>', port.text)
    assert '<small class="field-error" id="e-smtp_port">порт — это число</small>' in port.text
    assert 'value="двадцать пять"' in port.text
    assert "Электронная почта · Настройки не сохранены" in port.text
    # the box as it was sent (the channel is on by default): unticked stays unticked
    off = await client.post(
        "/notifications/channels/email", data={"csrf_token": csrf_of(client), "smtp_port": "x"}
    )
    email = re.search(r'<section class="card" id="channel-email">(.*?)</section>', off.text, re.S)
    assert email
    assert 'name="enabled" value="1">' in email.group(1)
    sms = re.search(r'<section class="card" id="channel-sms">(.*?)</section>', off.text, re.S)
    assert sms
    assert 'name="enabled" value="1" checked>' in sms.group(1)  # another channel: as stored
    none = await client.post(
        "/notifications/failed/resend",
        data={"csrf_token": csrf_of(client), "scope": "chosen"},
        follow_redirects=True,
    )
    assert "отметьте сообщения, которые отправить повторно" in none.text
