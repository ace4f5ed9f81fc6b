"""Identity's codes and reset links go through our channels; the secret is never stored
in clear, never logged, and only the channel (here the messages folder) receives it."""

from __future__ import annotations

import logging

import pytest
import structlog
from notif_support import deliveries, folder

from kabinet.host import Host
from kabinet.testing import Portal
from kabinet_notifications.services import Editor, service_of

pytestmark = pytest.mark.smoke


async def test_hook_deliver_message_sends_a_code_masked_everywhere_but_the_channel(
    portal: Portal, host: Host, caplog: pytest.LogCaptureFixture
) -> None:
    svc = await service_of(host)
    await svc.save_template(
        "identity.code",
        "sms",
        "ru",
        {"body": "Ваш код {{ code }}, {{ recipient_name }}"},
        editor=Editor(None, "Staff"),
    )
    ivan = await portal.person(name="Иван", phone="+79163334455", language="ru")
    identity = host.services["identity"]
    caplog.set_level(logging.DEBUG)
    with structlog.testing.capture_logs() as logs:
        await identity.send_code(ivan.id, "confirm_phone")
    [sms] = [f for f in folder(host) if f["account_id"] == ivan.id]
    code = sms["context"]["code"]
    assert sms["body"] == f"Ваш код {code}, Иван"
    assert sms["channel"] == "sms"
    [row] = await deliveries(host, person_id=ivan.id)
    assert (row["event"], row["status"], row["masked"]) == ("identity.code", "sent", True)
    assert row["body"] == "Ваш код •••, Иван"
    assert row["sealed"] is None
    assert code not in str(row)
    assert code not in caplog.text
    assert code not in str(logs)


async def test_a_reset_link_is_masked_in_the_record_and_never_resent(
    portal: Portal, host: Host
) -> None:
    from kabinet_notifications import reports

    ivan = await portal.person(name="Пётр", password="correct horse battery")
    identity = host.services["identity"]
    await identity.request_reset(ivan.email)
    [mail] = [f for f in folder(host) if f["account_id"] == ivan.id]
    link = mail["context"]["link"]
    assert link in mail["body"]
    assert link in mail["html"]
    [row] = await deliveries(host, person_id=ivan.id)
    assert link not in row["body"]
    assert "•••" in row["body"]
    assert await reports.resend(host, [row["id"]], channel=None, editor=Editor(None, "S")) == []
