"""A sender that dies after taking its deliveries: nobody sends them while its claim holds
(``[notifications] claim_seconds``), the next send job takes them once it lapsed, and the
message sent again is the same message (its key, hence the e-mail's Message-ID)."""

from __future__ import annotations

import asyncio

import pytest
from notif_support import deliveries, publish

from kabinet.clock import FrozenClock
from kabinet.host import Host
from kabinet.testing import Portal
from kabinet_notifications import sending
from kabinet_notifications.channels.base import Outcome, Outgoing
from kabinet_notifications.channels.email import Composer

pytestmark = pytest.mark.smoke


class Dies:
    """A channel whose process is killed while the provider has the message."""

    name = "email"

    def __init__(self, seen: list[Outgoing]) -> None:
        self.seen = seen

    async def send_batch(self, messages: list[Outgoing]) -> list[Outcome]:
        self.seen.extend(messages)
        raise asyncio.CancelledError  # the job stops here, nothing is recorded


class Takes(Dies):
    async def send_batch(self, messages: list[Outgoing]) -> list[Outcome]:
        self.seen.extend(messages)
        return [Outcome(delivery_id=m.delivery_id, verdict="sent") for m in messages]


# a claim is at least twice the channels' timeouts (settings.check_claim)
@pytest.mark.kabinet_settings(
    notifications={"claim_seconds": 30, "smtp_timeout": 15, "http_timeout": 15}
)
async def test_deliveries_of_a_dead_sender_are_taken_again_once_its_claim_lapses(
    portal: Portal, host: Host, clock: FrozenClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: list[Outgoing] = []
    ivan = await portal.person()
    monkeypatch.setattr(sending, "make_channel", lambda *_: Dies(seen))
    await publish(
        host, "depot.parcel.arrived", {"account_id": ivan.id, "parcel": "K-1", "depot": "X"}
    )
    await host.events.relay()
    with pytest.raises(asyncio.CancelledError):
        await host.jobs.drain()  # type: ignore[attr-defined]
    [row] = await deliveries(host, person_id=ivan.id)
    assert (row["status"], row["attempts"]) == ("queued", 1)
    monkeypatch.setattr(sending, "make_channel", lambda *_: Takes(seen))
    # The same job again (Redis gives it to another worker): the claim still holds.
    assert await sending.send(host, [row["id"]]) == {}
    clock.advance(29)
    assert await sending.send(host, [row["id"]]) == {}
    clock.advance(2)
    assert await sending.send(host, [row["id"]]) == {"sent": 1}
    [row] = await deliveries(host, person_id=ivan.id)
    assert (row["status"], row["attempts"]) == ("sent", 2)
    first, second = seen
    assert first.key
    assert first.key == second.key
    composer = Composer("portal@example.com", "Кабинет")
    assert composer.message_id(first) == composer.message_id(second)
    assert composer.message_id(first) == f"<{first.key}.{row['id']}@example.com>"


async def test_each_message_has_a_key_of_its_own(portal: Portal, host: Host) -> None:
    seen: list[Outgoing] = []
    ivan, anna = await portal.person(), await portal.person()
    for who in (ivan, anna):
        await publish(
            host, "depot.parcel.arrived", {"account_id": who.id, "parcel": "K-2", "depot": "X"}
        )
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(sending, "make_channel", lambda *_: Takes(seen))
        await host.events.relay()
        await host.jobs.drain()  # type: ignore[attr-defined]
    mine = [m for m in seen if m.person_id in (ivan.id, anna.id)]
    keys = {m.key for m in mine}
    assert len(mine) == 2
    assert len(keys) == 2
    assert sorted(len(k) for k in keys) == [20, 20]
