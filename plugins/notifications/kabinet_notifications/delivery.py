"""From an event to deliveries (sending them to the channels is :mod:`.sending`).

``dispatch`` runs as the event's subscriber, in the event's transaction: it finds the
recipients, renders each channel's current template in each person's language, and
inserts one delivery per (event, person, channel) — a unique key, so a redelivered event
adds nothing. The deliveries are sent as jobs in batches (``notifications.send``,
:mod:`.sending`), which the host queues once the event's unit of work has committed.
A secret-bearing message is stored masked; its clear text is sealed until the delivery
is final, and only the channel sees it.
"""

from __future__ import annotations

import datetime as dt
import json
from collections import defaultdict
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import msgspec
import structlog
from sqlalchemy import func, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from kabinet.identity.services import PEOPLE
from kabinet_notifications import models as m
from kabinet_notifications import render, stats
from kabinet_notifications.render import (
    MASK,
    PORTAL_URL,
    TemplateError,
    in_worker_each,
    render_all,
)
from kabinet_notifications.sending import chunks, enqueue
from kabinet_notifications.sending import poll_sms as poll_sms
from kabinet_notifications.sending import send as send
from kabinet_notifications.sending import sweep as sweep
from kabinet_notifications.services import NotificationsService, TemplateView, service_of

if TYPE_CHECKING:
    from kabinet.contrib import NotificationType
    from kabinet.events import Event
    from kabinet.host import Host

log = structlog.get_logger("kabinet.notifications")


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
        a = PEOPLE
        for chunk in chunks(sorted(people), 5000):
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
        for chunk in chunks(calls, RENDER_BATCH):
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
    for chunk in chunks(fresh, 1000):
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
    # Inside the unit of work the handler runs in (the relay's batch, one event delivered
    # alone), the host queues the jobs once the unit has committed: a job must find its rows.
    await enqueue(host, queued)
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
