"""From deliveries to channels: sending, the channels' reports, retries and the sweep.

``send`` runs as the job ``notifications.send`` (:data:`SEND_ACTOR`) for a batch of
deliveries (``enqueue``): it claims the due rows, gives each to its channel (a digest of
the person's held messages as one), and ``apply`` records each outcome (sent, failed
and retried with backoff, skipped). ``report`` and ``poll_sms`` move a delivery on when
a channel says it was delivered; ``sweep`` sends what was held (quiet hours, a digest's
window) or lost by a worker. Making the deliveries from an event is :mod:`.delivery`.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import hmac
import json
import time
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import structlog
from sqlalchemy import and_, bindparam, or_, select, update
from sqlalchemy.sql.elements import ColumnElement

from kabinet.jobs import backoff
from kabinet_notifications import models as m
from kabinet_notifications import quiet, stats
from kabinet_notifications.channels.base import Channel, Outcome, Outgoing
from kabinet_notifications.channels.email import SmtpChannel
from kabinet_notifications.channels.folder import FolderChannel
from kabinet_notifications.channels.push import PushChannel
from kabinet_notifications.channels.sms import SmsChannel, SmsRu
from kabinet_notifications.channels.telegram import TelegramApi, TelegramChannel
from kabinet_notifications.services import service_of
from kabinet_notifications.settings import CLAIM_TIMEOUTS

if TYPE_CHECKING:
    from kabinet.host import Host

log = structlog.get_logger("kabinet.notifications")

SEND_ACTOR = "notifications.send"
DIGEST_EVENT = "notifications.digest"
FINAL = ("sent", "delivered", "failed", "skipped")


def chunks(items: Sequence[Any], size: int) -> Iterable[Sequence[Any]]:
    for i in range(0, len(items), size):
        yield items[i : i + size]


async def enqueue(host: Host, ids: list[int], *, delay: float = 0.0) -> None:
    size = max(1, (await service_of(host)).settings.batch_size)
    batches = [list(c) for c in chunks(ids, size)]
    if delay > 0:
        for batch in batches:
            await host.jobs.send_later(delay, SEND_ACTOR, {"ids": batch})
    else:
        await host.jobs.send_many([(SEND_ACTOR, {"ids": b}) for b in batches])


DIGEST_TEXT = {
    "ru": {"subject": "Новые уведомления ({n})", "push": "Новых уведомлений: {n}"},
    "en": {"subject": "New notifications ({n})", "push": "New notifications: {n}"},
}


def digest(channel: str, language: str, parts: list[dict[str, str]]) -> dict[str, str]:
    """One message of several (each already rendered for the person and channel)."""
    t = DIGEST_TEXT.get(language, DIGEST_TEXT["en"])
    n = len(parts)
    if channel == "email":
        return {
            "subject": t["subject"].format(n=n),
            "body": "\n\n— — —\n\n".join(p["body"].strip() for p in parts),
            "html": "<hr>".join(p["html"] or p["body"] for p in parts),
        }
    if channel == "push":
        return {
            "subject": t["push"].format(n=n),
            "body": "\n".join(p["subject"] or p["body"] for p in parts),
            "html": "",
        }
    sep = "\n" if channel == "sms" else "\n\n"
    return {"subject": "", "body": sep.join(p["body"].strip() for p in parts), "html": ""}


# -- sending -------------------------------------------------------------------------------


def make_channel(host: Host, name: str, config: Mapping[str, Any]) -> Channel:
    """The transport for a channel's current settings; without credentials, the folder."""
    if config["transport"] == "folder":
        return FolderChannel(host, name)
    sender = str(config.get("sender_name") or "Kabinet")
    if name == "email":
        return SmtpChannel(dict(config), sender)
    timeout = float(config.get("http_timeout") or 30)  # below the claim (settings.check_claim)
    if name == "sms":
        gateway = SmsRu(
            config["sms_api_id"], config.get("sms_sender", ""), config["sms_api_url"], timeout
        )
        return SmsChannel(gateway)
    if name == "telegram":
        api = TelegramApi(config["telegram_token"], config["telegram_api_url"], timeout)
        return TelegramChannel(api)
    return PushChannel(dict(config))


async def send(host: Host, ids: list[int]) -> dict[str, int]:
    """Send the queued deliveries among ``ids`` that are due; returns counts by verdict."""
    svc = await service_of(host)
    now = host.clock.now()
    lease = now + dt.timedelta(seconds=svc.settings.claim_seconds)
    claimed_at = time.monotonic()
    d = m.delivery
    due = (d.c.next_attempt_at.is_(None)) | (d.c.next_attempt_at <= now)
    async with host.db.session() as s:
        # A person's held messages of a channel go together: the claim takes every due
        # one of the people and channels among ``ids``. One UPDATE … RETURNING claims them:
        # a sender at the same moment waits for the row and then finds it leased (not due),
        # so each message is sent once however many workers and schedulers run.
        pairs = (
            await s.execute(
                select(d.c.person_id, d.c.channel)
                .where(d.c.id.in_(ids), d.c.event_id.is_not(None), d.c.person_id.is_not(None))
                .distinct()
            )
        ).all()
        together = [and_(d.c.person_id == p, d.c.channel == c) for p, c in pairs]
        which: ColumnElement[bool] = d.c.id.in_(ids)
        if together:
            held = and_(d.c.event_id.is_not(None), d.c.resend_of.is_(None), or_(*together))
            which = or_(which, held)
        result = await s.execute(
            update(d)
            .where(d.c.status == "queued", due, which)
            .values(attempts=d.c.attempts + 1, next_attempt_at=lease, updated_at=now)
            .returning(*d.c)
        )
        claimed: list[dict[str, Any]] = [
            {**dict(r), "attempts": r["attempts"] - 1} for r in result.mappings()
        ]
    # SMS and Telegram wait for the end of their person's quiet hours (quiet.py).
    claimed, later = await quiet.postpone(host, claimed, now)
    for delay, waiting in later.items():
        await enqueue(host, waiting, delay=delay)
    by_channel: dict[str, list[Mapping[str, Any]]] = defaultdict(list)
    for claimed_row in claimed:
        by_channel[claimed_row["channel"]].append(claimed_row)
    configs = await svc.channel_configs()
    outcomes: list[tuple[Mapping[str, Any], Outcome]] = []
    unsent: list[Mapping[str, Any]] = []
    for channel, rows in by_channel.items():
        messages = []
        groups: dict[tuple[Any, ...], list[Mapping[str, Any]]] = defaultdict(list)
        for row in rows:
            digestible = row["event_id"] is not None and row["resend_of"] is None
            groups[(row["person_id"], row["language"]) if digestible else (row["id"],)].append(row)
        members: dict[int, list[Mapping[str, Any]]] = {}
        for group in groups.values():
            members[group[0]["id"]] = group
        for group in members.values():
            row = group[0]
            content = svc.sealer.open(row["sealed"]) if row["sealed"] else None
            content = content or {
                "subject": row["subject"],
                "body": row["body"],
                "html": row["html"],
            }
            context = {k: str(v) for k, v in (row["variables"] or {}).items()}
            if row["sealed"]:
                context = svc.sealer.open(row["sealed"]).get("context", context)
            messages.append(
                Outgoing(
                    delivery_id=row["id"],
                    event=row["event"],
                    to=await _address(host, row),
                    language=row["language"],
                    subject=content["subject"],
                    body=content["body"],
                    html=content["html"],
                    context=context,
                    person_id=row["person_id"],
                    secret=bool(row["masked"]),
                    key=message_key(host, group),
                )
            )
            if len(group) > 1:  # a digest: one message for the group
                texts = []
                for member in group:
                    opened = svc.sealer.open(member["sealed"]) if member["sealed"] else None
                    texts.append(
                        {k: str((opened or member)[k] or "") for k in ("subject", "body", "html")}
                    )
                joined = digest(channel, str(row["language"]), texts)
                messages[-1] = dataclasses.replace(
                    messages[-1],
                    event=DIGEST_EVENT,
                    secret=any(bool(x["masked"]) for x in group),
                    subject=joined["subject"],
                    body=joined["body"],
                    html=joined["html"],
                )
        timeout = svc.settings.smtp_timeout if channel == "email" else svc.settings.http_timeout
        deadline = claimed_at + svc.settings.claim_seconds - CLAIM_TIMEOUTS * timeout
        results, untried = await _send_in_time(host, channel, configs[channel], messages, deadline)
        # Each message of a digest has the digest's outcome.
        outcomes.extend((member, o) for o in results for member in members[o.delivery_id])
        unsent.extend(member for lead in untried for member in members[lead])
    counts = await apply(host, outcomes)
    if unsent:
        await _release(host, unsent)
        counts["later"] = len(unsent)
    return counts


STEP = {"email": 20}
"""Messages handed to a channel at once: e-mail sends them over one SMTP connection; the
other channels send one request a message, so one at a time."""


async def _send_in_time(
    host: Host, channel: str, config: Mapping[str, Any], messages: list[Outgoing], deadline: float
) -> tuple[list[Outcome], list[int]]:
    """Send ``messages`` in steps while the claim leaves room for one more (the worst a
    step waits on a stalled provider is kept in reserve: ``deadline``); returns the
    outcomes and the deliveries not tried, which go back to the queue untouched. So a slow
    gateway with a large batch never holds a message past its claim, when another sender
    would take it again and the first could still send it."""
    step = STEP.get(channel, 1)
    results: list[Outcome] = []
    for start in range(0, len(messages), step):
        if start and time.monotonic() > deadline:
            untried = [x.delivery_id for x in messages[start:]]
            log.warning("notifications.claim_running_out", channel=channel, untried=len(untried))
            return results, untried
        part = messages[start : start + step]
        transport = make_channel(host, channel, config)  # one instance per batch
        try:
            results.extend(await transport.send_batch(part))
        except Exception as exc:  # a transport's own bug must not lose the batch
            log.exception("notifications.channel_crashed", channel=channel)
            results.extend(
                Outcome(delivery_id=x.delivery_id, verdict="retry", error=type(exc).__name__)
                for x in part
            )
    return results, []


async def _release(host: Host, rows: Sequence[Mapping[str, Any]]) -> None:
    """Give claimed deliveries back as they were (the attempt not made is not counted)
    and send them at once, in a job of their own."""
    d = m.delivery
    ids = [int(r["id"]) for r in rows]
    async with host.db.session() as s:
        await s.execute(
            update(d)
            .where(d.c.id.in_(ids), d.c.status == "queued")
            .values(attempts=d.c.attempts - 1, next_attempt_at=None, updated_at=host.clock.now())
        )
    await enqueue(host, ids)


def message_key(host: Host, group: Sequence[Mapping[str, Any]]) -> str:
    """The same for each attempt at sending these deliveries as one message, different
    for any other message and any other installation (the e-mail's Message-ID)."""
    made = ",".join(f"{r['id']}@{r['created_at'].isoformat()}" for r in group)
    key = host.keys.derive("notifications.message-id")
    return hmac.new(key, made.encode(), hashlib.sha256).hexdigest()[:20]


async def _address(host: Host, row: Mapping[str, Any]) -> str:
    """Push deliveries go to the person's subscriptions as they are now."""
    if row["channel"] != "push":
        return str(row["address"])
    ps = m.push_subscription
    async with host.db.reader() as s:
        subs = (await s.execute(select(ps).where(ps.c.person_id == row["person_id"]))).mappings()
        return json.dumps(
            [
                {"id": r["id"], "endpoint": r["endpoint"], "p256dh": r["p256dh"], "auth": r["auth"]}
                for r in subs
            ]
        )


async def apply(host: Host, outcomes: list[tuple[Mapping[str, Any], Outcome]]) -> dict[str, int]:
    """Record what the channels said: status, provider id, error, retries, counts."""
    svc = await service_of(host)
    cfg = svc.settings
    now = host.clock.now()
    d = m.delivery
    updates: list[dict[str, Any]] = []
    counted: list[stats.Move] = []
    retries: dict[float, list[int]] = defaultdict(list)
    verdicts: dict[str, int] = defaultdict(int)
    broken_chats: list[int] = []
    gone_subs: list[int] = []
    for row, o in outcomes:
        status: str = o.verdict
        next_at = None
        sealed = row["sealed"]
        if status == "retry":
            if row["attempts"] + 1 >= cfg.max_attempts:
                status = "failed"
            else:
                delay = max(
                    o.retry_after or 0.0, backoff(row["attempts"] + 1, base=cfg.retry_base_seconds)
                )
                next_at = now + dt.timedelta(seconds=delay)
                retries[delay].append(row["id"])
                status = "queued"
        if status in FINAL:
            sealed = None
        counted.append((row["created_at"], row["event"], row["channel"], row["status"], status))
        if row["channel"] == "telegram" and o.gone and row["person_id"] is not None:
            broken_chats.append(row["person_id"])
        if row["channel"] == "push":
            gone_subs.extend(int(x) for x in o.gone)
        verdicts[o.verdict] += 1
        updates.append(
            {
                "_id": row["id"],
                "status": status,
                "provider_id": o.provider_id,
                "error": o.error,
                "sealed": sealed,
                "next_attempt_at": next_at,
                "updated_at": now,
                "sent_at": now if status == "sent" else None,
            }
        )
    if not updates:
        return dict(verdicts)
    async with host.db.session() as s:
        stmt = (
            update(d)
            .where(d.c.id == bindparam("_id"))
            .values(
                status=bindparam("status"),
                provider_id=bindparam("provider_id"),
                error=bindparam("error"),
                sealed=bindparam("sealed"),
                next_attempt_at=bindparam("next_attempt_at"),
                updated_at=bindparam("updated_at"),
                sent_at=bindparam("sent_at"),
            )
        )
        await s.connection()
        await s.execute(stmt.execution_options(synchronize_session=False), updates)
        await stats.move(s, host.db.dialect, counted)
        if broken_chats:
            await s.execute(
                update(m.telegram_link)
                .where(m.telegram_link.c.person_id.in_(broken_chats))
                .values(state="broken")
            )
        if gone_subs:
            await s.execute(
                m.push_subscription.delete().where(m.push_subscription.c.id.in_(gone_subs))
            )
    for delay, ids in retries.items():
        await enqueue(host, ids, delay=delay)
    log.info("notifications.sent", **dict(verdicts))
    return dict(verdicts)


async def report(host: Host, channel: str, reports: Iterable[Any]) -> int:
    """Move sent deliveries to delivered or failed by the provider's ids; returns how many."""
    d = m.delivery
    now = host.clock.now()
    moved = 0
    async with host.db.session() as s:
        for r in reports:
            rows = (
                await s.execute(
                    select(d.c.id, d.c.event, d.c.created_at).where(
                        d.c.channel == channel,
                        d.c.provider_id == r.provider_id,
                        d.c.status == "sent",
                    )
                )
            ).all()
            values: dict[str, Any] = {"status": r.verdict, "updated_at": now}
            if r.verdict == "delivered":
                values["delivered_at"] = now
            else:
                values["error"] = r.error
            for row_id, event, created in rows:
                await s.execute(update(d).where(d.c.id == row_id).values(**values))
                await stats.move(s, host.db.dialect, [(created, event, channel, "sent", r.verdict)])
                moved += 1
    return moved


async def poll_sms(host: Host) -> int:
    """Ask SMS.ru about SMS sent in the last two days that have no final word yet."""
    svc = await service_of(host)
    config = (await svc.channel_configs())["sms"]
    if config["transport"] != "provider":
        return 0
    d = m.delivery
    since = host.clock.now() - dt.timedelta(days=2)
    async with host.db.reader() as s:
        ids = list(
            (
                await s.execute(
                    select(d.c.provider_id)
                    .where(d.c.channel == "sms", d.c.status == "sent", d.c.sent_at >= since)
                    .limit(1000)
                )
            ).scalars()
        )
    gateway = SmsRu(config["sms_api_id"], config.get("sms_sender", ""), config["sms_api_url"])
    try:
        moved = 0
        for chunk in chunks([i for i in ids if i], 100):
            moved += await report(host, "sms", await gateway.status(list(chunk)))
        return moved
    finally:
        await gateway.close()


async def sweep(host: Host) -> int:
    """Send again what is due: retries whose job was lost, leases that ran out, and
    deliveries whose first job never ran (a process that stopped before sending)."""
    d = m.delivery
    now = host.clock.now()
    lost = now - dt.timedelta(minutes=1)
    due = (d.c.next_attempt_at.is_not(None) & (d.c.next_attempt_at <= now)) | (
        d.c.next_attempt_at.is_(None) & (d.c.created_at <= lost)
    )
    async with host.db.reader() as s:
        ids = list(
            (
                await s.execute(
                    select(d.c.id).where(d.c.status == "queued", due).order_by(d.c.id).limit(5000)
                )
            ).scalars()
        )
    if ids:
        await enqueue(host, ids)
    return len(ids)
