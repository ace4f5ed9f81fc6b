"""From an event to deliveries, and from deliveries to channels.

``dispatch`` runs as the event's subscriber, in the event's transaction: it finds the
recipients, renders each channel's current template in each person's language, and
inserts one delivery per (event, person, channel) — a unique key, so a redelivered event
adds nothing. After the commit the deliveries are sent as jobs in batches
(``notifications.send``). A secret-bearing message is stored masked; its clear text is
sealed until the delivery is final, and only the channel sees it.
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import json
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import msgspec
import structlog
from sqlalchemy import and_, bindparam, func, or_, select, update
from sqlalchemy import event as sa_event
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.elements import ColumnElement

from kabinet.identity.models import Account
from kabinet.jobs import backoff
from kabinet_notifications import models as m
from kabinet_notifications import quiet, render, stats
from kabinet_notifications.channels.base import Channel, Outcome, Outgoing
from kabinet_notifications.channels.email import SmtpChannel
from kabinet_notifications.channels.folder import FolderChannel
from kabinet_notifications.channels.push import PushChannel
from kabinet_notifications.channels.sms import SmsChannel, SmsRu
from kabinet_notifications.channels.telegram import TelegramApi, TelegramChannel
from kabinet_notifications.render import (
    MASK,
    PORTAL_URL,
    TemplateError,
    in_worker_each,
    render_all,
)
from kabinet_notifications.services import NotificationsService, TemplateView, service_of

if TYPE_CHECKING:
    from kabinet.contrib import NotificationType
    from kabinet.events import Event
    from kabinet.host import Host

log = structlog.get_logger("kabinet.notifications")
SEND_ACTOR = "notifications.send"
DIGEST_EVENT = "notifications.digest"
_tasks: set[asyncio.Task[Any]] = set()
FINAL = ("sent", "delivered", "failed", "skipped")


def insert_ignore(dialect: str) -> Any:
    ins = postgresql.insert(m.delivery) if dialect == "postgresql" else sqlite.insert(m.delivery)
    return ins.on_conflict_do_nothing(index_elements=["key"])


def payload_dict(payload: Any) -> dict[str, Any]:
    if isinstance(payload, msgspec.Struct):
        data: dict[str, Any] = msgspec.to_builtins(payload)
        return data
    return dict(payload or {})


def changed_at(payload: Mapping[str, Any], published: dt.datetime) -> dt.datetime:
    """When the change an event tells of happened: its payload's ``changed_at`` (ISO; a
    time without a zone is UTC), else when the event was published."""
    value = payload.get("changed_at")
    if isinstance(value, str) and value:
        try:
            found = dt.datetime.fromisoformat(value)
        except ValueError:
            return published
        return found if found.tzinfo else found.replace(tzinfo=dt.UTC)
    return published if published.tzinfo else published.replace(tzinfo=dt.UTC)


def _ids(value: Any) -> set[int]:
    if isinstance(value, bool) or value is None:
        return set()
    if isinstance(value, int):
        return {value}
    if isinstance(value, str) and value.isdigit():
        return {int(value)}
    if isinstance(value, list | tuple | set):
        return {i for v in value for i in _ids(v)}
    return set()


class Contacts:
    """People's names, languages and addresses per channel, read in bulk."""

    def __init__(self) -> None:
        self.people: dict[int, dict[str, Any]] = {}
        self.telegram: dict[int, str] = {}
        self.push: dict[int, list[dict[str, Any]]] = defaultdict(list)
        self.chosen: dict[tuple[int, str], bool] = {}
        """(person, channel) -> on, as the person chose; staff's default where absent."""

    @classmethod
    async def load(cls, s: AsyncSession, people: Sequence[int], event: str) -> Contacts:
        c = cls()
        a = Account.__table__
        for chunk in _chunks(sorted(people), 5000):
            for row in (
                await s.execute(
                    select(
                        a.c.id,
                        a.c.full_name,
                        a.c.email,
                        a.c.phone,
                        a.c.language,
                        a.c.timezone,
                        a.c.status,
                    ).where(a.c.id.in_(chunk))
                )
            ).mappings():
                if row["status"] == "active":
                    c.people[row["id"]] = dict(row)
            tl = m.telegram_link
            for pid, chat in await s.execute(
                select(tl.c.person_id, tl.c.chat_id).where(
                    tl.c.person_id.in_(chunk), tl.c.state == "linked"
                )
            ):
                c.telegram[pid] = str(chat)
            ps = m.push_subscription
            for row in (await s.execute(select(ps).where(ps.c.person_id.in_(chunk)))).mappings():
                c.push[row["person_id"]].append(
                    {
                        "id": row["id"],
                        "endpoint": row["endpoint"],
                        "p256dh": row["p256dh"],
                        "auth": row["auth"],
                    }
                )
            p = m.preference
            for pid, ch, enabled in await s.execute(
                select(p.c.person_id, p.c.channel, p.c.enabled).where(
                    p.c.person_id.in_(chunk), p.c.event == event
                )
            ):
                c.chosen[(pid, ch)] = bool(enabled)
        return c

    def address(self, person: int, channel: str) -> str | None:
        info = self.people.get(person)
        if info is None:
            return None
        if channel == "email":
            return info["email"] or None
        if channel == "sms":
            return info["phone"] or None
        if channel == "telegram":
            return self.telegram.get(person)
        if channel == "push":
            subs = self.push.get(person)
            return json.dumps(subs) if subs else None
        return None


RENDER_BATCH = 500
"""Messages rendered in one trip to a render worker thread."""


def _chunks(items: Sequence[Any], size: int) -> Iterable[Sequence[Any]]:
    for i in range(0, len(items), size):
        yield items[i : i + size]


class Renderer:
    """Current templates, each read once per dispatch, rendered per language."""

    def __init__(self, svc: NotificationsService, t: NotificationType) -> None:
        self.svc = svc
        self.t = t
        self.cache: dict[tuple[str, str], TemplateView] = {}
        self.portal_url = svc.host.base_url
        """Every template's ``portal_url``: links in messages are absolute."""

    async def template(self, channel: str, language: str) -> TemplateView:
        key = (channel, language)
        if key not in self.cache:
            self.cache[key] = await self.svc.template(self.t.event, channel, language)
        return self.cache[key]

    async def render(
        self, channel: str, language: str, values: Mapping[str, Any]
    ) -> tuple[dict[str, str], dict[str, str] | None]:
        """(stored content with secrets masked, clear content or None when no secret)."""
        (result,) = await self.render_many([(channel, language, values)])
        if isinstance(result, TemplateError):
            raise result
        return result

    async def render_many(
        self, calls: Sequence[tuple[str, str, Mapping[str, Any]]]
    ) -> list[tuple[dict[str, str], dict[str, str] | None] | TemplateError]:
        """:meth:`render` for each (channel, language, values), in order; a template that
        fails gives its :class:`TemplateError` in place of its result. The same bounded
        renderer as the editor's preview, off the event loop: one trip to a worker thread
        per :data:`RENDER_BATCH` messages."""
        for channel, language, _ in calls:
            await self.template(channel, language)
        out: list[tuple[dict[str, str], dict[str, str] | None] | TemplateError] = []
        for chunk in _chunks(calls, RENDER_BATCH):
            out.extend(await in_worker_each(self._render, [tuple(c) for c in chunk]))
        return out

    def _render(
        self, channel: str, language: str, values: Mapping[str, Any]
    ) -> tuple[dict[str, str], dict[str, str] | None]:
        tv = self.cache[(channel, language)]
        parts = {"subject": tv.subject, "body": tv.body, "html": tv.html}
        values = {**values, PORTAL_URL: self.portal_url}
        clear = render_all(channel, parts, values)
        clear_d = {"subject": clear.subject, "body": clear.body, "html": clear.html}
        if not any(k in values for k in self.t.secrets):
            return clear_d, None
        masked_values = {k: (MASK if k in self.t.secrets else v) for k, v in values.items()}
        masked = render_all(channel, parts, masked_values)
        return {"subject": masked.subject, "body": masked.body, "html": masked.html}, clear_d


async def dispatch(host: Host, ev: Event, session: AsyncSession) -> list[int]:
    """The subscriber of every declared event: one delivery per person and channel."""
    svc = await service_of(host)
    t = svc.catalog.get(ev.type)
    if t is None:
        return []
    view = await svc.notification(ev.type)
    if not view.active:
        return []
    configs = await svc.channel_configs()
    channels = [c for c in view.channels if c not in view.channels_off and configs[c]["enabled"]]
    payload = payload_dict(ev.payload)
    if payload.get("notify") is False:
        return []  # a first load or a backfill: old news, nobody is told
    people: set[int] = set()
    organization = None
    if t.recipients.person:
        people |= _ids(payload.get(t.recipients.person))
    if t.recipients.organization and t.recipients.permission:
        org = payload.get(t.recipients.organization)
        if isinstance(org, int):
            organization = org
            changed = changed_at(payload, ev.created_at)
            since = await host.access.people_since(t.recipients.permission, org)
            # Only those who could see the organization when it changed hear of it.
            people |= {p for p, at in since.items() if at <= changed}
    if not people or not channels:
        return []
    contacts = await Contacts.load(session, sorted(people), ev.type)
    variables = {k: payload[k] for k in t.variables if k in payload}
    stored_vars = {k: (MASK if k in t.secrets else v) for k, v in variables.items()}
    renderer = Renderer(svc, t)
    now = host.clock.now()
    rows: list[dict[str, Any]] = []
    pending: list[int] = []
    calls: list[tuple[str, str, Mapping[str, Any]]] = []
    counted: list[tuple[str, str, str]] = []
    for person in sorted(people):
        info = contacts.people.get(person)
        if info is None:
            continue
        language = info["language"] or host.settings.host.language
        values = {
            **variables,
            "recipient_name": info["full_name"],
            # the formats of dates and amounts are the recipient's (render's filters)
            render.RECIPIENT_LANGUAGE: language,
            render.RECIPIENT_TIMEZONE: info["timezone"] or host.settings.host.timezone,
        }
        for channel in channels:
            address = contacts.address(person, channel)
            if address is None:
                continue
            status, why = "queued", None
            chosen = contacts.chosen.get((person, channel))
            if not t.mandatory and not (view.on_by_default(channel) if chosen is None else chosen):
                status = "skipped"
                why = "off by default" if chosen is None else "skipped by the person's preference"
            if status == "queued":
                pending.append(len(rows))
                calls.append((channel, language, values))
            rows.append(
                {
                    "key": f"{ev.id}:{person}:{channel}",
                    "event": ev.type,
                    "event_id": ev.id,
                    "person_id": person,
                    "organization_id": organization,
                    "channel": channel,
                    "address": address
                    if channel != "push"
                    else f"{len(contacts.push[person])} device(s)",
                    "language": language,
                    "subject": "",
                    "body": "",
                    "html": "",
                    "variables": {
                        **stored_vars,
                        "recipient_name": info["full_name"],
                        render.RECIPIENT_LANGUAGE: language,
                        render.RECIPIENT_TIMEZONE: values[render.RECIPIENT_TIMEZONE],
                    },
                    "sealed": None,
                    "masked": False,
                    "status": status,
                    "attempts": 0,
                    "error": why,
                    "created_at": now,
                    "updated_at": now,
                }
            )
    for index, result in zip(pending, await renderer.render_many(calls), strict=True):
        row = rows[index]
        if isinstance(result, TemplateError):
            # a delivery failure with its reason; the other deliveries are not held up
            failure = f"template ({result.reason}): {result}"[:500]
            row.update(status="failed", body=failure, error=failure)
            continue
        content, clear = result
        row.update(content)
        row["sealed"] = svc.sealer.seal(clear) if clear else None
        row["masked"] = row["sealed"] is not None
    if not rows:
        return []
    d = m.delivery
    existing = set((await session.execute(select(d.c.key).where(d.c.event_id == ev.id))).scalars())
    fresh = [r for r in rows if r["key"] not in existing]
    for chunk in _chunks(fresh, 1000):
        await session.execute(insert_ignore(host.db.dialect), list(chunk))
    counted = [(str(r["event"]), str(r["channel"]), str(r["status"])) for r in fresh]
    await stats.bump(session, host.db.dialect, now, counted)
    window = dt.timedelta(minutes=max(0, svc.settings.digest_minutes))
    if window and fresh:
        # Held for the digest: sent by the sweep when the person's window on the channel
        # ends, with whatever else came for them there meanwhile.
        await hold(session, ev.id, now, window)
        return []
    queued = list(
        (
            await session.execute(
                select(d.c.id).where(d.c.event_id == ev.id, d.c.status == "queued").order_by(d.c.id)
            )
        ).scalars()
    )
    send_after_commit(host, session, queued)
    return queued


async def hold(
    session: AsyncSession, event_id: int, now: dt.datetime, window: dt.timedelta
) -> None:
    """Set an event's queued deliveries due at the end of their person's digest window on
    their channel: the window a held message of theirs opened, else one opening now."""
    d = m.delivery
    mine = (
        await session.execute(
            select(d.c.id, d.c.person_id, d.c.channel).where(
                d.c.event_id == event_id, d.c.status == "queued"
            )
        )
    ).all()
    for row_id, person, channel in mine:
        opened = await session.scalar(
            select(func.min(d.c.next_attempt_at)).where(
                d.c.person_id == person,
                d.c.channel == channel,
                d.c.status == "queued",
                d.c.attempts == 0,
                d.c.event_id.is_not(None),
                d.c.id != row_id,
                d.c.next_attempt_at > now,
            )
        )
        due = opened if opened is not None else now + window
        await session.execute(update(d).where(d.c.id == row_id).values(next_attempt_at=due))


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


def send_after_commit(host: Host, session: AsyncSession, ids: list[int]) -> None:
    """Send the jobs once the deliveries are committed (a job must find its rows)."""
    if not ids:
        return

    def committed(_sync_session: Any) -> None:
        task = asyncio.get_running_loop().create_task(enqueue(host, ids))
        _tasks.add(task)
        task.add_done_callback(_tasks.discard)

    sa_event.listen(session.sync_session, "after_commit", committed, once=True)


async def enqueue(host: Host, ids: list[int], *, delay: float = 0.0) -> None:
    size = max(1, (await service_of(host)).settings.batch_size)
    batches = [list(c) for c in _chunks(ids, size)]
    if delay > 0:
        for batch in batches:
            await host.jobs.send_later(delay, SEND_ACTOR, {"ids": batch})
    else:
        await host.jobs.send_many([(SEND_ACTOR, {"ids": b}) for b in batches])


# -- sending -------------------------------------------------------------------------------


def make_channel(host: Host, name: str, config: Mapping[str, Any]) -> Channel:
    """The transport for a channel's current settings; without credentials, the folder."""
    if config["transport"] == "folder":
        return FolderChannel(host, name)
    sender = str(config.get("sender_name") or "Kabinet")
    if name == "email":
        return SmtpChannel(dict(config), sender)
    if name == "sms":
        gateway = SmsRu(config["sms_api_id"], config.get("sms_sender", ""), config["sms_api_url"])
        return SmsChannel(gateway)
    if name == "telegram":
        return TelegramChannel(TelegramApi(config["telegram_token"], config["telegram_api_url"]))
    return PushChannel(dict(config))


async def send(host: Host, ids: list[int]) -> dict[str, int]:
    """Send the queued deliveries among ``ids`` that are due; returns counts by verdict."""
    svc = await service_of(host)
    now = host.clock.now()
    lease = now + dt.timedelta(minutes=10)
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
        transport = make_channel(host, channel, configs[channel])
        try:
            results = await transport.send_batch(messages)
        except Exception as exc:  # a transport's own bug must not lose the batch
            log.exception("notifications.channel_crashed", channel=channel)
            results = [
                Outcome(delivery_id=x.delivery_id, verdict="retry", error=type(exc).__name__)
                for x in messages
            ]
        # Each message of a digest has the digest's outcome.
        outcomes.extend((member, o) for o in results for member in members[o.delivery_id])
    return await apply(host, outcomes)


async def _address(host: Host, row: Mapping[str, Any]) -> str:
    """Push deliveries go to the person's subscriptions as they are now."""
    if row["channel"] != "push":
        return str(row["address"])
    ps = m.push_subscription
    async with host.db.sessionmaker() as s:
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
    async with host.db.sessionmaker() as s:
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
        for chunk in _chunks([i for i in ids if i], 100):
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
    async with host.db.sessionmaker() as s:
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
