"""Messages sent directly rather than from an event: identity's codes, staff's tests."""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING, Any

import structlog

from kabinet.identity.services import identity_service
from kabinet_notifications import models as m
from kabinet_notifications import stats
from kabinet_notifications.channels.base import Outcome, Outgoing
from kabinet_notifications.delivery import Contacts, Renderer
from kabinet_notifications.render import ALWAYS, TemplateError
from kabinet_notifications.sending import make_channel, send
from kabinet_notifications.services import service_of

if TYPE_CHECKING:
    from kabinet.host import Host
    from kabinet.identity.messages import Message

log = structlog.get_logger("kabinet.notifications")


async def deliver_message(host: Host, message: Message) -> bool | None:
    """Identity's code or link through our channel and template; sent at once, in-process.

    The clear text never goes through the job queue: it is sent here, and kept sealed on
    the delivery only while a retry may need it.
    """
    svc = await service_of(host)
    t = svc.catalog.get(message.kind)
    if t is None:
        return None
    config = (await svc.channel_configs()).get(message.channel)
    if config is None or not config["enabled"]:
        return None
    values: dict[str, Any] = {**ALWAYS, **dict(message.context)}
    values["recipient_name"] = str(message.context.get("name") or "")
    if message.account_id is not None and not values["recipient_name"]:
        person = (await identity_service(host).people([message.account_id])).get(message.account_id)
        values["recipient_name"] = person.full_name if person else ""
    renderer = Renderer(svc, t)
    try:
        tv = await renderer.template(message.channel, message.language)
        if not tv.body:
            raise TemplateError("body", "no template on this channel")
        stored, clear = await renderer.render(message.channel, message.language, values)
    except TemplateError:
        log.warning("notifications.template_unusable", kind=message.kind, channel=message.channel)
        stored = {"subject": message.subject, "body": "", "html": ""}
        clear = {"subject": message.subject, "body": message.body, "html": ""}
    clear = clear or dict(stored)
    clear["context"] = dict(message.context)  # type: ignore[assignment]
    now = host.clock.now()
    row = {
        "key": f"direct:{uuid.uuid4().hex}",
        "event": message.kind,
        "person_id": message.account_id,
        "channel": message.channel,
        "address": message.to,
        "language": message.language,
        **stored,
        "variables": message.masked(),
        "sealed": svc.sealer.seal(clear),
        "masked": bool(message.secrets),
        "status": "queued",
        "attempts": 0,
        "created_at": now,
        "updated_at": now,
    }
    async with host.db.session() as s:
        result = await s.execute(m.delivery.insert().values(**row).returning(m.delivery.c.id))
        delivery_id = int(result.scalar_one())
        await stats.bump(s, host.db.dialect, now, [(message.kind, message.channel, "queued")])
    await send(host, [delivery_id])
    return True


async def send_test(host: Host, channel: str, person_id: int | None) -> Outcome | None:
    """A test message to the member of staff through the channel as configured now."""
    if person_id is None:
        return None
    svc = await service_of(host)
    async with host.db.reader() as s:
        contacts = await Contacts.load(s, [person_id], "notifications.test")
    address = contacts.address(person_id, channel)
    if address is None:
        return None
    language = contacts.people[person_id]["language"]
    text = "Kabinet: тестовое сообщение" if language == "ru" else "Kabinet: a test message"
    config = (await svc.channel_configs())[channel]
    transport = make_channel(host, channel, config)
    message = Outgoing(
        delivery_id=0,
        event="notifications.test",
        to=address,
        language=language,
        subject=text,
        body=text,
        html=f"<p>{text}</p>",
        person_id=person_id,
    )
    try:
        [outcome] = await transport.send_batch([message])
    except Exception as exc:  # the page reports any failure of the settings under test
        return Outcome(delivery_id=0, verdict="failed", error=type(exc).__name__)
    log.info("notifications.test_sent", channel=channel, verdict=outcome.verdict, by=person_id)
    return outcome
