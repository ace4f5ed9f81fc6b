"""A sender never holds a message past its claim: with a slow gateway and a large batch
it stops starting messages while the claim still has room for the worst a step can wait
(twice the channel's timeout), and gives the rest back untouched, to be sent at once by
another job. Before, an SMS batch went on one message after another, and a message could
be sent after its claim lapsed and another sender had taken it too."""

from __future__ import annotations

import pytest
from notif_fakes import SmsRuFake, serve
from notif_support import deliveries, publish, run

from kabinet.host import Host
from kabinet.testing import Portal
from kabinet_notifications import delivery, sending
from kabinet_notifications.services import Editor, service_of

pytestmark = pytest.mark.smoke

PEOPLE = 6


# The claim leaves 3 - 2 x 1 = 1 s for starting messages (settings.check_claim).
@pytest.mark.kabinet_settings(
    notifications={"claim_seconds": 3, "http_timeout": 1, "smtp_timeout": 1}
)
async def test_a_slow_gateway_gets_what_the_claim_has_time_for_and_the_rest_goes_next(
    portal: Portal, host: Host, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake = SmsRuFake(delay=0.4)  # each message takes 0.4 s: six take 2.4 s
    async with serve(fake.app()) as url:
        svc = await service_of(host)
        staff = Editor(person_id=None, name="Staff")
        for c in ("email", "sms", "telegram", "push"):
            config = {"sms_api_id": "good-key", "sms_api_url": url} if c == "sms" else {}
            await svc.save_channel(c, c == "sms", config, editor=staff)
        people = [await portal.person(phone=f"+7916111{n:04d}") for n in range(PEOPLE)]
        for n, person in enumerate(people):
            await publish(
                host,
                "depot.parcel.arrived",
                {"account_id": person.id, "parcel": f"S-{n}", "depot": "D"},
            )
        held: list[int] = []

        async def hold(_host: Host, ids: list[int], *, delay: float = 0.0) -> None:
            held.extend(ids)

        with monkeypatch.context() as patch:  # the deliveries are made, their send held
            patch.setattr(delivery, "enqueue", hold)
            await host.events.relay()
            await host.jobs.drain()  # type: ignore[attr-defined]
        rows = [r for p in people for r in await deliveries(host, person_id=p.id)]
        assert sorted(held) == sorted(r["id"] for r in rows)
        assert len(rows) == PEOPLE

        counts = await sending.send(host, held)  # one batch, one claim

        sent = counts.get("sent", 0)
        assert 1 <= sent < PEOPLE, counts  # it stopped before the claim ran short
        assert counts.get("later") == PEOPLE - sent
        after = {r["id"]: r for p in people for r in await deliveries(host, person_id=p.id)}
        waiting = [r for r in after.values() if r["status"] == "queued"]
        assert len(waiting) == PEOPLE - sent
        # Given back untouched: the attempt not made is not counted, and it is due now.
        assert {(r["attempts"], r["next_attempt_at"], r["error"]) for r in waiting} == {
            (0, None, None)
        }
        assert len(fake.sent) == sent

        await run(host)  # the job the rest went back with

        final = [r for p in people for r in await deliveries(host, person_id=p.id)]
        assert {(r["status"], r["attempts"]) for r in final} == {("sent", 1)}
        assert sorted(s["to"] for s in fake.sent) == sorted(
            f"7916111{n:04d}" for n in range(PEOPLE)
        )  # each once
